"""planner.lookup: the online lookup parts joined, and ICB → NHS region derived spatially."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from planner import lookup
from planner.errors import PlannerError


def _box(x: float, y: float, size: float = 1000.0) -> shapely.Polygon:
    return shapely.box(x, y, x + size, y + size)


def _setup(icb_of: list[str]):
    """Four LSOAs side by side (x = 0..4 km); region A covers x < 2 km, region B the rest."""
    lsoas = gpd.GeoDataFrame(
        {"LSOA21CD": [f"E0100000{i}" for i in range(4)]},
        geometry=[_box(400_000 + 1000 * i, 300_000) for i in range(4)],
        crs=27700,
    )
    lsoa_icb = pd.DataFrame({"LSOA21CD": lsoas["LSOA21CD"], "ICB24CD": icb_of})
    regions = gpd.GeoDataFrame(
        {"NHSER24CD": ["E40000001", "E40000002"], "NHSER24NM": ["A", "B"]},
        geometry=[_box(399_000, 299_000, 3000), _box(402_000, 299_000, 3000)],
        crs=27700,
    ).to_crs(4326)  # as downloaded; derived in British National Grid
    return lsoa_icb, lsoas, regions


def test_each_icb_goes_to_the_region_holding_it() -> None:
    lsoa_icb, lsoas, regions = _setup(["E54000001", "E54000001", "E54000002", "E54000002"])
    table = lookup.derive_icb_regions(lsoa_icb, lsoas, regions)
    assert table.to_dict("records") == [
        {"ICB24CD": "E54000001", "NHSER24CD": "E40000001", "NHSER24NM": "A"},
        {"ICB24CD": "E54000002", "NHSER24CD": "E40000002", "NHSER24NM": "B"},
    ]
    assert lookup.uncovered_icbs(table, lsoa_icb) == []


def test_an_icb_split_between_regions_is_an_error() -> None:
    lsoa_icb, lsoas, regions = _setup(["E54000001", "E54000009", "E54000009", "E54000002"])
    with pytest.raises(PlannerError, match=r"ICB E54000009 lies only 50% in NHS region"):
        lookup.derive_icb_regions(lsoa_icb, lsoas, regions)


def test_a_gap_in_a_part_names_the_part_file_and_code(tmp_path) -> None:
    lsoa = ["E01000001", "E01000002"]
    frames = {
        "lookup_lsoa_icb": pd.DataFrame(
            {"LSOA21CD": lsoa, "LSOA21NM": ["a", "b"], "SICBL24CD": ["S1", "S1"]}
            | {"SICBL24CDH": ["s", "s"], "SICBL24NM": ["n", "n"], "ICB24CD": ["I1", "I1"]}
            | {"ICB24CDH": ["i", "i"], "ICB24NM": ["m", "m"]}
        ),
        "lookup_lsoa_msoa": pd.DataFrame(
            {"LSOA21CD": lsoa[:1], "MSOA21CD": ["M1"], "MSOA21NM": ["m"]}
        ),
    }
    frames = {name: (tmp_path / f"{name}.csv", frame) for name, frame in frames.items()}
    with pytest.raises(PlannerError) as info:
        lookup.assemble_lookup(frames)
    text = str(info.value)
    assert "lookup_lsoa_msoa.csv" in text and "no row for LSOA21CD E01000002" in text

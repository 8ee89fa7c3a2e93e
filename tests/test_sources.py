"""planner.sources: the registry matches the real mirror, and lookups fail clearly."""

from __future__ import annotations

import csv
from pathlib import Path

import pyogrio
import pytest

from planner.download import parse_mirror_manifest
from planner.errors import PlannerError
from planner.sources import (
    DATASETS,
    IMD_ONLINE_DECILE,
    PLAN_INPUTS,
    check_columns,
    columns_for,
    describe_dropped,
    layout_for,
    locate,
    other_countries,
)

CONTRACT_NAMES = {
    "lsoa_boundaries",
    "lookup",
    "population",
    "under3_msoa",
    "imd",
    "icb_boundaries",
    "lad_boundaries",
    "nhser_boundaries",
    "readiness_example",
}


def _header(path: Path, dataset_format: str, layer: str | None) -> list[str]:
    if dataset_format == "gpkg":
        info = pyogrio.read_info(path, layer=layer)
        return [str(c) for c in info["fields"]]
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return next(csv.reader(handle))


def test_registry_names_are_the_contract() -> None:
    assert set(DATASETS) == CONTRACT_NAMES
    for name, ds in DATASETS.items():
        assert ds.name == name
        assert not Path(ds.mirror_path).is_absolute()
        assert ds.licence
        for part in ds.online:
            assert not Path(part.download_path).is_absolute()
            assert part.columns, part.name


def test_online_sources_are_well_formed() -> None:
    base = "https://services1.arcgis.com/ESMARspQHYMw9BZ9/arcgis/rest/services/"
    lsoa = DATASETS["lsoa_boundaries"].online[0]
    assert lsoa.query_url() == (
        base + "Lower_layer_Super_Output_Areas_December_2021_Boundaries_EW_BSC_V4"
        "/FeatureServer/0/query"
    )
    assert {p.name for p in DATASETS["lookup"].online} >= {
        "lookup_lsoa_icb",
        "lookup_lsoa_ward_lad",
        "lookup_lsoa_msoa",
        "lookup_icb_nhser",
    }
    pop = DATASETS["population"].online[0]
    assert pop.kind == "file" and pop.url and pop.url.endswith("sapelsoasyoa20222024.xlsx")
    assert (pop.sheet, pop.header_row) == ("Mid-2022 LSOA 2021", 4)
    assert {"LSOA 2021 Code", "Total", "F0", "F90", "M0", "M90"} <= set(pop.columns)
    assert dict(DATASETS["imd"].online[0].rename)[IMD_ONLINE_DECILE] == "IMD_decile"
    all_downloads = [p.download_path for d in DATASETS.values() for p in d.online]
    assert len(all_downloads) == len(set(all_downloads))


def test_every_mirror_file_exists_with_expected_columns(mirror_dir: Path) -> None:
    listed = parse_mirror_manifest(mirror_dir / "MANIFEST.md")
    for ds in DATASETS.values():
        path = mirror_dir / ds.mirror_path
        assert path.is_file(), path
        assert ds.mirror_path in listed or ds.name == "readiness_example", ds.mirror_path
        header = _header(path, ds.format, ds.layer)
        check_columns(header, ds, path)  # raises PlannerError on a missing column


def test_mirror_layers_and_counts(mirror_dir: Path) -> None:
    expected = {"lsoa_boundaries": 33755, "icb_boundaries": 42, "nhser_boundaries": 7}
    for name, count in expected.items():
        ds = DATASETS[name]
        info = pyogrio.read_info(mirror_dir / ds.mirror_path, layer=ds.layer)
        assert info["features"] == count
        assert info["crs"] == "EPSG:27700"


def test_locate_prefers_mirror_layout_then_download(tmp_path: Path) -> None:
    ds = DATASETS["imd"]
    online = tmp_path / ds.online[0].download_path
    online.parent.mkdir(parents=True)
    online.write_text("x")
    assert locate("imd", tmp_path) == online
    assert columns_for(ds, online) == ds.online[0].columns
    mirror_layout = tmp_path / ds.mirror_path
    mirror_layout.parent.mkdir(parents=True)
    mirror_layout.write_text("x")
    assert locate("imd", tmp_path) == mirror_layout
    assert columns_for(ds, mirror_layout) == ds.columns


def test_locate_missing_dataset_says_run_fetch(tmp_path: Path) -> None:
    with pytest.raises(PlannerError) as err:
        locate("lsoa_boundaries", tmp_path)
    text = str(err.value)
    assert "lsoa_boundaries" in text
    assert "boundaries/lsoa21_bsc_england.gpkg" in text
    assert "planner fetch" in text


def test_locate_lookup_needs_the_assembled_file(tmp_path: Path) -> None:
    part = tmp_path / DATASETS["lookup"].online[0].download_path
    part.parent.mkdir(parents=True)
    part.write_text("x")
    with pytest.raises(PlannerError, match="planner fetch"):
        locate("lookup", tmp_path)


def test_unknown_dataset_lists_known_names(tmp_path: Path) -> None:
    with pytest.raises(PlannerError, match="use one of: icb_boundaries"):
        locate("nope", tmp_path)


def test_check_columns_names_file_column_and_fix() -> None:
    with pytest.raises(PlannerError) as err:
        check_columns(["LSOA21CD", "LSOA21NM"], "population", "raw/pop.csv")
    text = str(err.value)
    assert text.startswith("raw/pop.csv")
    assert "usual_residents_total" in text
    assert "field 'usual_residents_total'" in text
    assert "Fix:" in text and "planner fetch" in text


def test_check_columns_accepts_dataframes() -> None:
    import pandas as pd

    df = pd.DataFrame({"LSOA21CD": ["E01000001"], "IMD_decile": [3]})
    check_columns(df, "imd", "deprivation/imd2025_lsoa21_england.csv")


def test_columns_match_ignoring_case_and_map_to_the_registered_spelling() -> None:
    part = DATASETS["lookup"].part("lookup_lsoa_ward_lad")
    present = ["OBJECTID", "lsoa21cd", "wd24cd", "WD24NM", "lad24cd", "lad24nm"]
    matched = check_columns(present, part, "ons/lsoa21_wd24_lad24_ew_lu.csv")
    assert matched == {
        "lsoa21cd": "LSOA21CD",
        "wd24cd": "WD24CD",
        "WD24NM": "WD24NM",
        "lad24cd": "LAD24CD",
        "lad24nm": "LAD24NM",
    }


def test_each_file_is_read_by_its_own_layout() -> None:
    population = DATASETS["population"]
    online = layout_for(population, "anywhere/sapelsoasyoa20222024.xlsx")
    assert (online.sheet, online.header_row, online.code_column) == (
        "Mid-2022 LSOA 2021",
        4,
        "LSOA21CD",
    )
    assert online.renamed("Total") == "population"
    mirror = layout_for(population, population.mirror_path)
    assert mirror.renamed("usual_residents_total") == "population"
    assert mirror.code_column == "LSOA21CD"


def test_other_countries_are_counted_by_country() -> None:
    codes = ["E01000001", "W01000001", "W01000002", "S01000001", "N00000001", "", "X1", "K04000001"]
    assert other_countries(codes) == {"Welsh": 2, "Scottish": 1, "Northern Irish": 1}
    assert describe_dropped(35_672, {"Welsh": 1_917}) == "35,672 rows; 1,917 Welsh rows dropped"


def test_only_the_plan_inputs_are_fetched_by_default() -> None:
    assert PLAN_INPUTS == ("lsoa_boundaries", "lookup", "population", "under3_msoa", "imd")
    assert DATASETS["nhser_boundaries"].purpose == "derivation"
    assert {DATASETS[n].purpose for n in ("icb_boundaries", "lad_boundaries")} == {"reference"}
    services = {p.service for d in DATASETS.values() for p in d.online}
    assert "SICBL24_ICB24_NHSER24_EN_LU" not in services


def test_a_column_of_another_year_is_called_another_vintage() -> None:
    with pytest.raises(PlannerError) as err:
        check_columns(["LSOA11CD", "LSOA11NM", "usual_residents_total"], "population", "p.csv")
    text = str(err.value)
    assert "LSOA11CD is another vintage of LSOA21CD" in text
    assert "expected: Census 2021 (mirror) / mid-2022 (online)" in text

"""The areas table on the real mirror, and the clear errors bad sources give."""

from __future__ import annotations

import shutil
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from conftest import link_mirror

from planner import areas as areas_mod
from planner import pipeline
from planner.errors import PlannerError
from planner.sources import DATASETS

POPULATION = "population/census2021_ts001_usual_residents_lsoa21_england.csv"
LOOKUP = "lookups/lsoa21_msoa21_wd24_lad24_rgn24_sicbl24_icb24_nhser24_england.csv"
BOUNDARIES = "boundaries/lsoa21_bsc_england.gpkg"


def test_national_table_matches_the_published_counts(prepared):
    _, areas, _ = prepared
    assert len(areas) == 33_755
    assert areas["lsoa21cd"].is_unique
    assert list(areas.columns) == areas_mod.AREA_COLUMNS
    assert areas.crs.to_epsg() == 27700
    assert int(areas["population"].sum()) == 56_490_056
    assert areas["under3"].sum() == pytest.approx(1_803_906, abs=1)
    assert areas["icb24cd"].nunique() == 42
    assert areas["nhser24cd"].nunique() == 7
    assert areas["lad24cd"].nunique() == 296
    assert areas["imd_decile"].between(1, 10).all()
    assert shapely.is_valid(areas.geometry.to_numpy()).all()
    by_icb = areas.groupby("icb24cd")["population"].sum()
    assert int(by_icb.sum()) == 56_490_056
    assert by_icb.min() == 509_143 and by_icb.max() == 2_966_501  # MANIFEST.md's ICB range


def test_under3_shares_each_msoa_exactly(prepared, mirror_dir):
    _, areas, _ = prepared
    msoa = pd.read_csv(
        mirror_dir / "population/census2021_ts007_age_0_to_4_by_single_year_msoa21_england.csv"
    )
    ours = areas.groupby("msoa21cd")["under3"].sum()
    theirs = msoa.set_index("MSOA21CD")["age_0_2"].reindex(ours.index)
    assert (ours - theirs).abs().max() < 1e-6


@pytest.fixture
def raw(mirror_dir: Path, tmp_path: Path) -> Path:
    return link_mirror(mirror_dir, tmp_path / "data" / "raw")


def _replace_csv(raw: Path, rel: str, edit) -> Path:
    path = raw / rel
    frame = pd.read_csv(path.resolve(), dtype=str)
    path.unlink()
    edit(frame).to_csv(path, index=False)
    return path


def _set_cell(raw: Path, rel: str, index: int, column: str, value: str | None) -> None:
    """Change one cell of a CSV (0-based data index: spreadsheet row index + 2)."""

    def edit(frame):
        frame.loc[index, column] = value
        return frame

    _replace_csv(raw, rel, edit)


def _expect(raw: Path, *fragments: str) -> PlannerError:
    with pytest.raises(PlannerError) as info:
        areas_mod.build_areas(raw)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return info.value


def test_missing_column_is_named(raw):
    _replace_csv(raw, POPULATION, lambda f: f.drop(columns=["usual_residents_total"]))
    _expect(raw, "census2021_ts001", "usual_residents_total", "lacks expected column", "--force")


def test_duplicated_lsoa_names_both_rows(raw):
    def duplicate(frame):
        frame.loc[10, "LSOA21CD"] = frame.loc[3, "LSOA21CD"]
        return frame

    _replace_csv(raw, POPULATION, duplicate)
    error = _expect(raw, "row 12", "duplicated code", "first seen on row 5")
    assert error.field == "LSOA21CD"


def test_unknown_lsoa_in_population(raw):
    _set_cell(raw, POPULATION, 7, "LSOA21CD", "E01999999")
    _expect(raw, "row 9", "E01999999", "not LSOA 2021 codes")


def test_missing_lsoa_in_population(raw):
    _replace_csv(raw, POPULATION, lambda f: f.drop(index=[100]))
    _expect(raw, "missing here", "33,755")


def test_other_vintage_is_recognised(raw):
    def vintage_2011(frame):
        frame.loc[:5000, "LSOA21CD"] = [f"E0150{i:04d}" for i in range(5001)]
        return frame

    _replace_csv(raw, POPULATION, vintage_2011)
    _expect(raw, "another vintage")


def test_empty_lookup_value_names_row_and_field(raw):
    _set_cell(raw, LOOKUP, 41, "ICB24CD", None)
    _expect(raw, "row 43", "ICB24CD", "empty value")


def _replace_boundaries(raw: Path, edit) -> None:
    path = raw / BOUNDARIES
    frame = gpd.read_file(path.resolve())
    path.unlink()
    edit(frame).to_file(path, driver="GPKG", layer="lsoa21")


def test_declared_wgs84_is_reprojected(raw):
    _replace_boundaries(raw, lambda f: f.to_crs(4326))
    areas = areas_mod.build_areas(raw)
    assert areas.crs.to_epsg() == 27700
    assert int(areas["population"].sum()) == 56_490_056


def test_mislabelled_crs_is_refused(raw):
    _replace_boundaries(raw, lambda f: f.to_crs(4326).set_crs(27700, allow_override=True))
    _expect(raw, "lsoa21_bsc_england.gpkg", "not in England", "CRS label is wrong")


def test_invalid_polygon_is_named(raw):
    bowtie = shapely.MultiPolygon([shapely.Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])])

    def corrupt(frame):
        frame.loc[5, "geometry"] = shapely.affinity.translate(bowtie, 400_000, 300_000)
        return frame

    _replace_boundaries(raw, corrupt)
    error = _expect(raw, "feature 6", "invalid polygon", "Self-intersection")
    assert error.field == "geometry"


def test_failed_prepare_leaves_processed_untouched(raw, tmp_path):
    workspace = pipeline.Workspace(tmp_path)
    processed = workspace.processed / "areas"
    processed.mkdir(parents=True)
    (processed / "stage.json").write_text('{"key": "earlier"}')
    _replace_csv(raw, POPULATION, lambda f: f.drop(columns=["usual_residents_total"]))
    before = {p.name: p.read_bytes() for p in processed.iterdir()}
    with pytest.raises(PlannerError):
        pipeline.prepare(workspace)
    assert {p.name: p.read_bytes() for p in processed.iterdir()} == before
    assert sorted(p.name for p in workspace.processed.iterdir()) == ["areas"]


SHEET = DATASETS["population"].online[0].sheet


def test_workbook_ages_are_used_directly(tmp_path):
    header = ["LSOA 2021 Code", "LSOA 2021 Name", "Total"] + [
        f"{sex}{age}" for sex in "FM" for age in range(91)
    ]
    rows = [["E01000001", "City of London 001A", 10] + [1] * 91 + [0] * 91]
    frame = pd.DataFrame(rows, columns=header)
    path = tmp_path / "sapelsoasyoa20222024.xlsx"
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame([["title"], ["notes"], [""]]).to_excel(
            writer, sheet_name=SHEET, index=False, header=False
        )
        frame.to_excel(writer, sheet_name=SHEET, index=False, startrow=3)
    population = areas_mod.read_population(path)
    assert population.has_ages
    assert population.table["population"].tolist() == [10]
    assert population.table["under3"].tolist() == [3.0]


def test_copied_mirror_gives_same_table(mirror_dir, tmp_path, prepared):
    """A real copy (not symlinks) reads the same, so nothing depends on link targets."""
    raw = tmp_path / "raw"
    for rel in (
        POPULATION,
        LOOKUP,
        BOUNDARIES,
        "deprivation/imd2025_lsoa21_england.csv",
        "population/census2021_ts007_age_0_to_4_by_single_year_msoa21_england.csv",
    ):
        (raw / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(mirror_dir / rel, raw / rel)
    table = areas_mod.build_areas(raw)
    _, areas, _ = prepared
    pd.testing.assert_frame_equal(
        pd.DataFrame(table.drop(columns="geometry")), pd.DataFrame(areas.drop(columns="geometry"))
    )


IMD = "deprivation/imd2025_lsoa21_england.csv"


def test_imd_decile_out_of_range_names_row_and_value(raw):
    _set_cell(raw, IMD, 19, "IMD_decile", "11")
    error = _expect(raw, "row 21", "IMD decile must be 1–10", "'11'")
    assert error.field == "IMD_decile"


def test_negative_population_names_row_and_value(raw):
    _set_cell(raw, POPULATION, 2, "usual_residents_total", "-5")
    _expect(raw, "row 4", "usual_residents_total", "not a non-negative number", "'-5'")


# ---------------------------------------------------------------- England and Wales files


@pytest.fixture(scope="module")
def welsh_copy(mirror_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from welsh_mirror import build_welsh_mirror

    copy = tmp_path_factory.mktemp("welsh") / "open-data"
    added = build_welsh_mirror(mirror_dir, copy)
    assert set(added) >= {POPULATION, LOOKUP, BOUNDARIES, IMD}
    assert all(n > 0 for n in added.values())
    return copy


def test_welsh_rows_are_dropped_and_counted(
    welsh_copy: Path, tmp_path: Path, prepared, caplog: pytest.LogCaptureFixture
) -> None:
    from planner import download

    raw = tmp_path / "raw"
    download.fetch(raw, mirror=welsh_copy, progress=False)  # verifies the new MANIFEST.md
    with caplog.at_level("INFO"):
        table = areas_mod.build_areas(raw)
    _, areas, _ = prepared
    pd.testing.assert_frame_equal(
        pd.DataFrame(table.drop(columns="geometry")), pd.DataFrame(areas.drop(columns="geometry"))
    )
    assert "lsoa21_bsc_england.gpkg: 33,795 rows; 40 Welsh rows dropped" in caplog.text
    assert "imd2025_lsoa21_england.csv: 33,795 rows; 40 Welsh rows dropped" in caplog.text


def test_a_file_of_another_country_is_named_so(raw: Path) -> None:
    def wales_only(frame):
        frame["LSOA21CD"] = "W" + frame["LSOA21CD"].str[1:]
        return frame

    _replace_csv(raw, IMD, wales_only)
    _expect(raw, "imd2025", "no English rows", "33,755 Welsh", "another country, not England")


@pytest.mark.slow
def test_run_on_the_welsh_copy_gives_the_same_plan(welsh_copy: Path, mirror_dir: Path, tmp_path):
    import subprocess
    import sys

    outputs = {}
    command = [sys.executable, "-m", "planner.cli", "-q", "run", "--no-maps"]
    for label, mirror in (("clean", mirror_dir), ("welsh", welsh_copy)):
        work = tmp_path / label
        done = subprocess.run(
            [*command, "--mirror", str(mirror), "--workdir", str(work)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        outputs[label] = {
            name: (work / "exports" / name).read_bytes()
            for name in ("lsoa_to_team.csv", "teams.csv")
        }
    assert outputs["welsh"] == outputs["clean"]


def test_workbook_rows_keep_their_numbers_after_welsh_rows_are_dropped(tmp_path, caplog):
    header = ["LSOA 2021 Code", "LSOA 2021 Name", "Total"] + [
        f"{sex}{age}" for sex in "FM" for age in range(91)
    ]
    ones = [1] * 182
    rows = [
        ["W01000001", "Cardiff 001A", 182, *ones],
        ["E01000001", "City of London 001A", 182, *ones],
        ["W01000002", "Cardiff 001B", 182, *ones],
        ["E01000002", "City of London 001B", -5, *ones],
    ]
    path = tmp_path / "sapelsoasyoa20222024.xlsx"
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame([["title"], ["notes"], [""]]).to_excel(
            writer, sheet_name=SHEET, index=False, header=False
        )
        pd.DataFrame(rows, columns=header).to_excel(
            writer, sheet_name=SHEET, index=False, startrow=3
        )
    with caplog.at_level("INFO"), pytest.raises(PlannerError) as info:
        areas_mod.read_population(path)
    assert "sapelsoasyoa20222024.xlsx: 4 rows; 2 Welsh rows dropped" in caplog.text
    text = str(info.value)
    assert "row 8, field 'Total': not a non-negative number (value: -5)" in text

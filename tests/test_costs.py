"""The cost model reproduces the proposal's national table cell for cell."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from synthetic import synthetic_country

from planner import costs, phasing
from planner.config import default_scenario, largest_remainder, rescale_teams

# The proposal's published table (£ rounded half-up; SR total = 2022/23..2024/25), typed in
# here from the proposal rather than computed: the code must arrive at them.
YEARS = ["2022/23", "2023/24", "2024/25", "2025/26"]
EXPECTED = {
    "Teams operating fully from 1 April": [40, 80, 135, 202],
    "Teams coming into operation during the year": [40, 55, 67, 0],
    "Labour: teams operating fully from 1 April": [9_507_392, 19_585_227, 34_041_572, 52_464_367],
    "Labour: teams coming into operation during the year": [4_753_696, 6_732_422, 8_447_353, 0],
    "Training": [443_100, 808_763, 1_016_505, 334_163],
    "Development programme": [500_000, 1_000_000, 1_000_000, 0],
    "Total": [15_204_187, 28_126_411, 44_505_430, 52_798_529],
    "Children seen": [8_000, 14_750, 23_600, 30_300],
}
SR_TOTAL = 87_836_029


def proposal_waves(sizes=(40, 40, 55, 67)) -> pd.Series:
    waves = [w for w, n in enumerate(sizes, start=1) for _ in range(n)]
    # team ids deliberately not in wave order, to show order does not matter
    ids = [f"T{(i * 37) % len(waves):03d}" for i in range(len(waves))]
    return pd.Series(waves, index=ids)


@pytest.fixture(scope="module")
def national() -> pd.DataFrame:
    s = default_scenario()
    return costs.national_table(costs.team_year_costs(proposal_waves(), s), s)


def test_round_half_up_is_not_bankers() -> None:
    assert costs.round_half_up(808_762.5) == 808_763  # round() would give 808,762
    assert costs.round_half_up(334_162.5) == 334_163
    assert costs.round_half_up(0.5) == 1 and costs.round_half_up(2.5) == 3
    assert costs.round_half_up(2.4999999) == 2 and costs.round_half_up(-2.5) == -3
    assert costs.round_half_up(float("nan")) is None


def test_salary_bill_and_unit_cost() -> None:
    s = default_scenario()
    assert s.salary_bill == pytest.approx(208_495.43, abs=1e-9)
    assert costs.team_year_cost(s, 0) == pytest.approx(208_495.43 * 1.14, abs=1e-9)
    assert costs.team_year_cost(s, 3) == pytest.approx(208_495.43 * 1.14 * 1.03**3, abs=1e-9)


def test_every_cell_of_the_proposal_table(national: pd.DataFrame) -> None:
    shown = costs.display_table(national).set_index("item")
    assert list(shown.index) == list(EXPECTED)
    assert list(shown.columns) == [*YEARS, "SR total"]
    for row, values in EXPECTED.items():
        for year, value in zip(YEARS, values, strict=True):
            assert shown.at[row, year] == value, (row, year)
    assert shown.at["Total", "SR total"] == SR_TOTAL
    assert shown.at["Children seen", "SR total"] == 8_000 + 14_750 + 23_600
    assert costs.proposal_mismatches(national, default_scenario()) == []


def test_published_figures_constant_matches_test() -> None:
    assert {k: list(v) for k, v in costs.PROPOSAL_TOTALS.items()} == EXPECTED
    assert costs.PROPOSAL_SR_TOTAL == SR_TOTAL


def test_sr_total_is_rounded_sum_of_unrounded(national: pd.DataFrame) -> None:
    raw = national.set_index("item")
    unrounded = raw.loc["Total", YEARS[:3]].sum()
    assert costs.round_half_up(unrounded) == SR_TOTAL
    # total row is the sum of its parts, unrounded
    parts = raw.loc[list(EXPECTED)[2:6], YEARS].sum()
    assert (parts - raw.loc["Total", YEARS]).abs().max() < 1e-6


def test_team_rows() -> None:
    s = default_scenario()
    tc = costs.team_year_costs(pd.Series({"A": 1, "B": 2, "C": 4}), s)
    assert list(tc.columns) == costs.TEAM_YEAR_COLUMNS
    a = tc[tc["team_id"] == "A"]
    assert list(a["status"]) == ["operating"] * 4 and a["training"].sum() == 0
    assert list(a["babies"]) == [150] * 4
    b = tc[tc["team_id"] == "B"]
    assert list(b["status"]) == ["starting", "operating", "operating", "operating"]
    assert list(b["training"]) == [11_077.5, 4_987.5, 0, 0]
    assert list(b["babies"]) == [50, 150, 150, 150]
    assert b["labour"].iloc[0] == pytest.approx(0.5 * costs.team_year_cost(s, 0))
    c = tc[tc["team_id"] == "C"]
    assert list(c["year"]) == ["2024/25", "2025/26"]  # nothing before it starts
    assert list(c["training"]) == [11_077.5, 4_987.5]


def test_extra_year_is_steady_state() -> None:
    s = dataclasses.replace(default_scenario(), years=(*YEARS, "2026/27", "2027/28"))
    table = costs.display_table(
        costs.national_table(costs.team_year_costs(proposal_waves(), s), s)
    ).set_index("item")
    for year in YEARS:
        for row, values in EXPECTED.items():
            assert table.at[row, year] == values[YEARS.index(year)]
    assert table.at["Teams operating fully from 1 April", "2027/28"] == 202
    assert (
        table.at["Training", "2026/27"] == 0 and table.at["Development programme", "2027/28"] == 0
    )
    assert table.at["Children seen", "2027/28"] == 30_300
    unit = costs.team_year_cost(s, 5)
    assert table.at["Total", "2027/28"] == costs.round_half_up(202 * unit)
    assert table.at["Total", "SR total"] == SR_TOTAL


def test_changed_scenario_flows_through() -> None:
    # 250,000 people per team: England's 56,490,048 residents (Census 2021) -> 226 teams.
    teams = round(56_490_048 / 250_000)
    s = rescale_teams(default_scenario(), teams, population_per_team=250_000)
    sizes = largest_remainder([40, 40, 55, 67], teams)
    assert s.wave_sizes == tuple(sizes) and sum(sizes) == 226
    shown = costs.display_table(
        costs.national_table(costs.team_year_costs(proposal_waves(sizes), s), s)
    ).set_index("item")
    f = [sizes[0], sizes[0] + sizes[1], sum(sizes[:3]), 226]
    n = [sizes[1], sizes[2], sizes[3], 0]
    assert list(shown.loc["Teams operating fully from 1 April", YEARS]) == f
    assert list(shown.loc["Teams coming into operation during the year", YEARS]) == n
    assert list(shown.loc["Children seen", YEARS]) == [
        150 * a + 50 * b for a, b in zip(f, n, strict=True)
    ]
    prev = [0, *n[:3]]
    assert list(shown.loc["Training", YEARS]) == [
        costs.round_half_up(11_077.5 * a + 4_987.5 * b) for a, b in zip(n, prev, strict=True)
    ]
    for t, year in enumerate(YEARS):
        unit = 208_495.43 * 1.14 * 1.03**t
        expected = f[t] * unit + 0.5 * n[t] * unit + 11_077.5 * n[t] + 4_987.5 * prev[t]
        expected += [500_000, 1_000_000, 1_000_000, 0][t]
        assert shown.at["Total", year] == costs.round_half_up(expected)
    assert shown.at["Total", YEARS[0]] > 15_204_187
    mismatches = costs.proposal_mismatches(
        costs.national_table(costs.team_year_costs(proposal_waves(sizes), s), s), s
    )
    assert mismatches and any("Total 2022/23" in m for m in mismatches)


def test_attach_costs_and_aggregate() -> None:
    s = default_scenario()
    waves = proposal_waves()
    tc = costs.team_year_costs(waves, s)
    plan = pd.DataFrame({"team_id": sorted(waves.index)})
    plan["wave"] = plan["team_id"].map(waves)
    out = costs.attach_costs(plan, tc, s)
    assert [c for c in out.columns if c.startswith("cost_")] == [
        "cost_2022_23",
        "cost_2023_24",
        "cost_2024_25",
        "cost_2025_26",
    ]
    w4 = out[out["wave"] == 4]
    assert (w4["cost_2022_23"] == 0).all() and (w4["babies_2024_25"] == 50).all()
    national = costs.national_table(tc, s).set_index("item")
    for i, year in enumerate(YEARS):
        col = out[f"cost_{year.replace('/', '_')}"]
        dev = [500_000, 1_000_000, 1_000_000, 0][i]
        assert col.sum() + dev == pytest.approx(national.at["Total", year], abs=1e-6)
    # aggregate with a split: each team half in "X", half in "Y"
    shares = pd.concat(
        [pd.DataFrame({"team_id": plan["team_id"], "area_code": a, "share": 0.5}) for a in "XY"]
    )
    agg = costs.aggregate(tc, shares)
    by_year = agg.groupby("year")[["cost", "babies", "teams_operating", "teams_starting"]].sum()
    assert by_year.at["2022/23", "teams_operating"] == pytest.approx(40)
    assert by_year.at["2022/23", "teams_starting"] == pytest.approx(40)
    assert by_year.at["2025/26", "babies"] == pytest.approx(30_300)
    assert by_year.at["2023/24", "cost"] == pytest.approx(
        national.at["Total", "2023/24"] - 1_000_000, abs=1e-6
    )


# ----------------------------------------------------------------------------- sizing by need


def sized_plan() -> pd.DataFrame:
    """The synthetic country's plan: 202 teams, every tenth holding an operating service."""
    catchments, areas, assignment = synthetic_country()
    operating = sorted(catchments["team_id"])[::10]
    readiness = pd.DataFrame(
        {"area_code": operating, "readiness": "operating", "note": "", "area_name": operating}
    )
    return phasing.assign_phasing(catchments, areas, assignment, readiness, default_scenario())


NEED = dataclasses.replace(default_scenario(), team_sizing="need")


def test_uniform_sizing_is_every_team_alike() -> None:
    plan, team_costs = costs.cost_plan(sized_plan(), default_scenario())
    assert (plan["wte"] == 5.13).all()
    assert plan["babies_per_1000_under1"].to_numpy() == pytest.approx(
        1000 * 150 / (plan["under3"] / 3).to_numpy()
    )
    national = costs.national_table(team_costs, default_scenario())
    assert costs.proposal_mismatches(national, default_scenario()) == []


def test_need_sizing_keeps_every_national_figure() -> None:
    plan, team_costs = costs.cost_plan(sized_plan(), NEED)
    for column in ("wte", "wte_rollout"):
        factor = plan[column] / 5.13
        assert factor.min() >= 0.75 and factor.max() <= 1.5 and factor.std() > 0.05
        # whole hundredths of a WTE, summing exactly to 202 × 5.13
        hundredths = (plan[column] * 100).round().astype(int)
        assert ((plan[column] * 100 - hundredths).abs() < 1e-6).all()
        assert hundredths.sum() == 202 * 513
    # during the rollout, exactly one standard team on average in every wave
    rollout = (plan["wte_rollout"] * 100).round().astype(int)
    waves = pd.Series({1: 40, 2: 40, 3: 55, 4: 67}) * 513
    assert (rollout.groupby(plan["wave"]).sum() == waves).all()
    national = costs.national_table(team_costs, NEED)
    assert costs.proposal_mismatches(national, NEED) == []
    raw = national.set_index("item")
    assert list(raw.loc[costs.ROW_BABIES, YEARS]) == pytest.approx(
        [8_000, 14_750, 23_600, 30_300], abs=1e-9
    )
    # every team-year's WTE sums to the national WTE of the teams operating that year
    yearly = team_costs.groupby("year")["wte"].sum()
    assert list(yearly[list(YEARS)]) == pytest.approx(
        [80 * 5.13, 135 * 5.13, 202 * 5.13, 202 * 5.13]
    )
    # a team's labour and babies scale with its factor (settled from 2025/26); training does not
    factor = plan["wte"] / 5.13
    big = plan.loc[factor.idxmax(), "team_id"]
    rows = team_costs[(team_costs["team_id"] == big) & (team_costs["year"] == "2025/26")]
    assert rows["labour"].iloc[0] == pytest.approx(factor.max() * costs.team_year_cost(NEED, 3))
    assert rows["babies"].iloc[0] == pytest.approx(150 * factor.max())
    assert rows["wte"].iloc[0] == pytest.approx(plan.loc[factor.idxmax(), "wte"])
    before = team_costs[(team_costs["team_id"] == big) & (team_costs["year"] == "2024/25")]
    row = plan.loc[factor.idxmax()]
    if not before.empty:
        assert before["wte"].iloc[0] == pytest.approx(row["wte_rollout"])


def test_settled_year_is_the_first_with_every_team_fully_operating() -> None:
    waves = pd.Series({"A": 1, "B": 2, "C": 3, "D": 4})
    assert costs.settled_year_index(waves, default_scenario()) == 3  # 2025/26
    assert costs.settled_year_index(waves.iloc[:1], default_scenario()) == 0  # wave 1: full
    ramp = pd.Series({"A": True})
    assert costs.settled_year_index(waves.iloc[:1], default_scenario(), ramp_up=ramp) == 1


def test_settled_sizes_follow_need_across_all_of_england() -> None:
    plan = sized_plan()
    settled = costs.settled_size_factors(plan, NEED)
    per_head = costs.need_per_head(plan)
    order = per_head.sort_values(kind="stable").index
    assert settled[order].is_monotonic_increasing
    assert round(settled.sum() * 513) == 202 * 513
    assert (costs.settled_size_factors(plan, default_scenario()) == 1.0).all()


def test_need_sizing_follows_need_per_head_within_each_wave() -> None:
    plan = sized_plan()
    factors = costs.size_factors(plan, NEED)
    per_head = costs.need_per_head(plan)
    for _, group in plan.groupby("wave"):
        ids = list(group["team_id"])
        order = per_head[ids].sort_values(kind="stable").index
        assert factors[order].is_monotonic_increasing  # more need per head, never a smaller team
        inside = factors[ids][(factors[ids] > 0.7505) & (factors[ids] < 1.499)]
        ratio = inside / per_head[inside.index]
        assert ratio.max() / ratio.min() < 1.02  # proportional, to a hundredth of a WTE
    assert factors.equals(
        costs.size_factors(plan.sample(frac=1, random_state=1), NEED).loc[factors.index]
    )


def test_tight_bounds_and_a_lone_team() -> None:
    tight = dataclasses.replace(NEED, team_sizing_min=1.0, team_sizing_max=1.0)
    assert (costs.size_factors(sized_plan(), tight) == 1.0).all()
    plan = sized_plan().iloc[:3].assign(wave=[1, 2, 2])
    factors = costs.size_factors(plan, NEED)
    assert factors.iloc[0] == 1.0 and factors.iloc[1:].sum() == pytest.approx(2.0)


def test_coverage_spread_for_both_sizings() -> None:
    plan = sized_plan()
    uniform, need = costs.coverage_spreads(plan, default_scenario())
    assert (uniform.sizing, need.sizing) == ("uniform", "need")
    cover = 1000 * 150 / (plan["under3"] / 3)
    assert uniform.minimum == pytest.approx(cover.min()) and uniform.maximum == pytest.approx(
        cover.max()
    )
    assert uniform.median == pytest.approx(cover.median())
    assert need.rank_correlation > uniform.rank_correlation
    assert need.rank_correlation_in_cohorts > uniform.rank_correlation_in_cohorts + 0.3
    assert "min / median / max" in need.describe() and "need teams" in need.describe()
    assert costs.coverage_spreads(plan, NEED)[0].sizing == "need"


# ----------------------------------------------------------------------------- wave one without service


def test_wave_one_new_costs_need_places_as_starting() -> None:
    plan = sized_plan()
    new = dataclasses.replace(default_scenario(), wave_one_without_service="new")
    ramp = costs.costed_ramp_up(plan, new)
    by_need = (plan["wave"] == 1) & (plan["readiness"] == "none")
    k = int(by_need.sum())
    assert k > 0 and ramp[plan.loc[by_need, "team_id"]].all()
    assert not ramp[plan.loc[(plan["wave"] == 1) & ~by_need, "team_id"]].any()
    costed, team_costs = costs.cost_plan(plan, new)
    # the plan's dates say what the costs assume: fully operating from the next year
    full_from = costed.set_index("team_id")["full_from"]
    assert (full_from[plan.loc[by_need, "team_id"]] == "2023/24").all()
    assert (full_from[plan.loc[(plan["wave"] == 1) & ~by_need, "team_id"]] == "2022/23").all()
    shown = costs.display_table(costs.national_table(team_costs, new)).set_index("item")
    assert shown.at[costs.ROW_TEAMS_FULL, "2022/23"] == 40 - k
    assert shown.at[costs.ROW_TEAMS_STARTING, "2022/23"] == 40 + k
    assert shown.at[costs.ROW_BABIES, "2022/23"] == 150 * (40 - k) + 50 * (40 + k)
    assert shown.at[costs.ROW_TRAINING, "2022/23"] == costs.round_half_up(11_077.5 * (40 + k))
    assert shown.at[costs.ROW_TEAMS_FULL, "2023/24"] == 80  # full from the next year

    change = costs.wave_one_change(plan, default_scenario())
    assert (change.year, change.teams, change.chosen) == ("2022/23", k, "full")
    assert costs.round_half_up(change.cost_full) == 15_204_187
    unit = costs.team_year_cost(new, 0)
    assert change.cost_new - change.cost_full == pytest.approx(k * (11_077.5 - 0.5 * unit))
    assert (change.babies_full, change.babies_new) == (8_000, 8_000 - 100 * k)
    assert f"{k} places filled by need" in change.describe()
    assert f"-{100 * k:,}" in change.describe()


def test_wave_basis_column_wins_over_readiness() -> None:
    plan = sized_plan().assign(wave_basis="existing service")
    new = dataclasses.replace(default_scenario(), wave_one_without_service="new")
    assert not costs.costed_ramp_up(plan, new)[plan["wave"].eq(1).to_numpy()].any()
    assert costs.wave_one_change(plan, new).teams == 0
    assert "unchanged" in costs.wave_one_change(plan, new).describe()


# ----------------------------------------------------------------------------- the real plan


def test_need_sizing_on_the_real_plan(national_plan) -> None:
    """Issue 13's acceptance: 1,036.26 WTE, factors within bounds, national.csv unchanged."""
    plan, team_costs = costs.cost_plan(national_plan.plan, NEED)
    hundredths = (plan["wte"] * 100).round().astype(int)
    assert hundredths.sum() == 103_626 and math.fsum(plan["wte"]) == pytest.approx(
        1036.26, abs=1e-9
    )
    factor = plan["wte"] / 5.13
    assert factor.min() >= 0.75 and factor.max() <= 1.5
    assert costs.proposal_mismatches(costs.national_table(team_costs, NEED), NEED) == []
    uniform, need = costs.coverage_spreads(national_plan.plan, default_scenario())
    # Uniform teams cover the neediest catchments least. Sized by need, coverage rises with
    # need: over all settled teams, and among the teams starting together in the rollout.
    assert uniform.rank_correlation < -0.5 and uniform.rank_correlation_in_cohorts < 0
    assert need.rank_correlation > 0.3
    assert need.rank_correlation_in_cohorts > 0.5
    assert plan["babies_per_1000_under1"].notna().all()


def test_group_fsum_equals_pandas_groupby_with_fsum() -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "area_code": rng.choice(["E1", "E2", "W3", None], 500),
            "year": rng.choice(["2022/23", "2023/24"], 500),
            "cost": rng.random(500) * 1e6,
            "babies": rng.random(500),
        }
    )
    found = costs.group_fsum(frame, ["area_code", "year"], ["cost", "babies"])
    expected = (
        frame.groupby(["area_code", "year"], sort=True)[["cost", "babies"]]
        .agg(math.fsum)
        .reset_index()
    )
    pd.testing.assert_frame_equal(found, expected, check_exact=True)
    empty = costs.group_fsum(frame.iloc[:0], ["area_code", "year"], ["cost"])
    assert list(empty.columns) == ["area_code", "year", "cost"] and len(empty) == 0

"""The cost model reproduces the proposal's national table cell for cell."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from planner import costs
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

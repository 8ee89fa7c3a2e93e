"""The cost and capacity model, per team-year, and its aggregation to any area level.

It is the proposal's own arithmetic (DESIGN.md), so the national table
reproduces the proposal cell for cell: salary bill S × on-costs × pay growth^t
per team-year; part-year labour, first- and second-year training and fewer
babies for teams coming into operation during a year; a national development
programme on top. Values stay unrounded (floats) until display, where they are
rounded half-up to whole pounds (the proposal's spreadsheet rounding, not
Python's round-half-even).
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

import pandas as pd

from planner.config import Scenario, year_suffix

STARTING, OPERATING = "starting", "operating"

# Row labels of the national table, in the proposal's order.
ROW_TEAMS_FULL = "Teams operating fully from 1 April"
ROW_TEAMS_STARTING = "Teams coming into operation during the year"
ROW_LABOUR_FULL = "Labour: teams operating fully from 1 April"
ROW_LABOUR_STARTING = "Labour: teams coming into operation during the year"
ROW_TRAINING = "Training"
ROW_DEVELOPMENT = "Development programme"
ROW_TOTAL = "Total"
ROW_BABIES = "Children seen"
NATIONAL_ROWS = (
    ROW_TEAMS_FULL,
    ROW_TEAMS_STARTING,
    ROW_LABOUR_FULL,
    ROW_LABOUR_STARTING,
    ROW_TRAINING,
    ROW_DEVELOPMENT,
    ROW_TOTAL,
    ROW_BABIES,
)
SR_TOTAL = "SR total"

# The proposal's published national table (£, rounded half-up; SR total = first three years).
PROPOSAL_YEARS = ("2022/23", "2023/24", "2024/25", "2025/26")
PROPOSAL_TOTALS: dict[str, tuple[int, ...]] = {
    ROW_TEAMS_FULL: (40, 80, 135, 202),
    ROW_TEAMS_STARTING: (40, 55, 67, 0),
    ROW_LABOUR_FULL: (9_507_392, 19_585_227, 34_041_572, 52_464_367),
    ROW_LABOUR_STARTING: (4_753_696, 6_732_422, 8_447_353, 0),
    ROW_TRAINING: (443_100, 808_763, 1_016_505, 334_163),
    ROW_DEVELOPMENT: (500_000, 1_000_000, 1_000_000, 0),
    ROW_TOTAL: (15_204_187, 28_126_411, 44_505_430, 52_798_529),
    ROW_BABIES: (8_000, 14_750, 23_600, 30_300),
}
PROPOSAL_SR_TOTAL = 87_836_029

TEAM_YEAR_COLUMNS = [
    "team_id",
    "wave",
    "year",
    "year_index",
    "status",
    "labour",
    "training",
    "cost",
    "babies",
]


def round_half_up(value: float) -> int | None:
    """Round to whole pounds, halves away from zero (808,762.5 -> 808,763); NaN -> None.

    Goes through the float's shortest repr so that 0.5 stays 0.5 and float
    noise such as 2.4999999999999996 is not pushed over the edge.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return int(Decimal(repr(float(value))).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def team_year_cost(scenario: Scenario, year_index: int) -> float:
    """C_t = S × on-cost uplift × pay growth^t: a full year of one team's labour."""
    return scenario.salary_bill * scenario.oncost_uplift * scenario.pay_growth**year_index


def team_year_costs(waves: pd.Series, scenario: Scenario) -> pd.DataFrame:
    """One row per team and year in which the team operates (long format).

    `waves` maps team_id -> wave number (1-based, as in scenario.waves).
    status is "starting" in a ramp-up year (coming into operation during the
    year), else "operating". Years before a team starts have no row.
    """
    rows = []
    years = list(scenario.years)
    unit = [team_year_cost(scenario, t) for t in range(len(years))]
    for team_id, wave in sorted(waves.items(), key=lambda kv: str(kv[0])):
        spec = scenario.waves[int(wave) - 1]
        start = years.index(spec.start_year)
        for t in range(start, len(years)):
            starting = spec.ramp_up and t == start
            if starting:
                labour = scenario.starting_labour_share * unit[t]
                training = scenario.training_first_year
                babies = scenario.babies_first_year
            else:
                labour = unit[t]
                training = scenario.training_second_year if spec.ramp_up and t == start + 1 else 0.0
                babies = scenario.babies_full_year
            rows.append(
                (
                    str(team_id),
                    int(wave),
                    years[t],
                    t,
                    STARTING if starting else OPERATING,
                    labour,
                    float(training),
                    labour + training,
                    float(babies),
                )
            )
    out = pd.DataFrame(rows, columns=TEAM_YEAR_COLUMNS)
    return out.astype({"wave": "int64", "year_index": "int64"})


def national_table(team_costs: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
    """England's table laid out like the proposal's: one row per item, one column per year + SR total.

    Values are unrounded floats (format with `display_table`). Sums use
    math.fsum so the result does not depend on row order.
    """
    years = list(scenario.years)
    cols: dict[str, list[float]] = {}
    for year in years:
        tc = team_costs[team_costs["year"] == year]
        full = tc[tc["status"] == OPERATING]
        start = tc[tc["status"] == STARTING]
        labour_full = math.fsum(full["labour"])
        labour_start = math.fsum(start["labour"])
        training = math.fsum(tc["training"])
        dev = scenario.development(year)
        cols[year] = [
            float(len(full)),
            float(len(start)),
            labour_full,
            labour_start,
            training,
            dev,
            math.fsum([*tc["labour"], *tc["training"], dev]),
            math.fsum(tc["babies"]),
        ]
    sr = list(scenario.spending_review)
    cols[SR_TOTAL] = [
        math.nan,
        math.nan,
        *(math.fsum(cols[y][i] for y in sr) for i in range(2, len(NATIONAL_ROWS))),
    ]
    table = pd.DataFrame(cols, index=pd.Index(NATIONAL_ROWS, name="item"))
    return table.reset_index()


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """Numbers rounded half-up to whole units (nullable Int64), labels untouched."""
    out = table.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = pd.array([round_half_up(v) for v in out[col]], dtype="Int64")
    return out


def proposal_mismatches(national: pd.DataFrame, scenario: Scenario) -> list[str]:
    """Cells of the national table that differ from the proposal's published figures.

    Empty list: the table reproduces the proposal to the pound. Only the years
    the proposal covers are compared.
    """
    shown = display_table(national).set_index("item")
    out = []
    for row, figures in PROPOSAL_TOTALS.items():
        for year, expected in zip(PROPOSAL_YEARS, figures, strict=True):
            if year not in shown.columns:
                out.append(f"{row} {year}: not in this scenario (proposal {expected:,})")
                continue
            got = shown.at[row, year]
            if got != expected:
                out.append(f"{row} {year}: {got:,} (proposal {expected:,})")
    if tuple(scenario.spending_review) == PROPOSAL_YEARS[:3]:
        got = shown.at[ROW_TOTAL, SR_TOTAL]
        if got != PROPOSAL_SR_TOTAL:
            out.append(f"{ROW_TOTAL} {SR_TOTAL}: {got:,} (proposal {PROPOSAL_SR_TOTAL:,})")
    else:
        out.append(f"{SR_TOTAL}: spending review years differ from the proposal's")
    return out


def attach_costs(plan: pd.DataFrame, team_costs: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
    """The plan with cost_<year> (£, unrounded) and babies_<year> columns, 0 before a team starts."""
    years = list(scenario.years)
    out = plan.copy()
    for value, prefix in (("cost", "cost_"), ("babies", "babies_")):
        wide = team_costs.pivot(index="team_id", columns="year", values=value)
        wide = wide.reindex(index=out["team_id"].astype(str), columns=years).fillna(0.0)
        for year in years:
            out[prefix + year_suffix(year)] = wide[year].to_numpy(dtype="float64")
    return out


def aggregate(team_costs: pd.DataFrame, shares: pd.DataFrame) -> pd.DataFrame:
    """Costs and capacity per area and year, splitting each team by `shares`.

    `shares`: columns team_id, area_code, share (a team's shares sum to 1; for
    nested areas such as ICBs every share is 1). Returns area_code, year,
    teams_operating, teams_starting (team-equivalents), labour, training, cost,
    babies — summing over areas gives the national figures (without the
    national development programme).
    """
    merged = team_costs.merge(shares, on="team_id", how="inner", validate="many_to_many")
    for col in ("labour", "training", "cost", "babies"):
        merged[col] = merged[col] * merged["share"]
    merged["teams_operating"] = merged["share"].where(merged["status"] == OPERATING, 0.0)
    merged["teams_starting"] = merged["share"].where(merged["status"] == STARTING, 0.0)
    cols = ["teams_operating", "teams_starting", "labour", "training", "cost", "babies"]
    grouped = merged.groupby(["area_code", "year"], sort=True)[cols].agg(_fsum)
    return grouped.reset_index()


def _fsum(values: pd.Series) -> float:
    return math.fsum(values)

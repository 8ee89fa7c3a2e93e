"""The cost and capacity model, per team-year, and its aggregation to any area level.

It is the proposal's own arithmetic (DESIGN.md), so the national table
reproduces the proposal cell for cell: salary bill S × on-costs × pay growth^t
per team-year; part-year labour, first- and second-year training and fewer
babies for teams coming into operation during a year; a national development
programme on top. Values stay unrounded (floats) until display, where they are
rounded half-up to whole pounds (the proposal's spreadsheet rounding, not
Python's round-half-even).

Two scenario options change who is costed how, never the arithmetic:
- team.sizing = "need" scales each team's labour and babies by a size factor
  that follows its need per head. While the rollout runs, the factors average
  exactly 1 within every group of teams costed alike (same start year and
  ramp-up): the proposal's yearly figures fix each group's total, so this is
  exactly what keeps every row of the national table the proposal's. From the
  first year in which every team operates fully (2025/26), only the national
  total is fixed, and teams take their settled size: need per head against
  all of England, averaging 1 over all teams;
- phasing.wave_one_without_service = "new" costs wave-one places that hold no
  known service as teams coming into operation in wave one's year.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd

from planner.config import Scenario, next_year, year_suffix
from planner.errors import PlannerError

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

# wave_basis of a wave-one place with no known service (phasing's teams.csv column).
BASIS_NEED = "need"
BASIS_OF_READINESS = {"operating": "existing service", "emerging": "emerging provision"}
SIZING_COLUMNS = ["wte", "wte_rollout", "babies_per_1000_under1"]

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
    "wte",
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


def team_year_costs(
    waves: pd.Series,
    scenario: Scenario,
    *,
    ramp_up: pd.Series | None = None,
    factors: pd.Series | None = None,
    settled_factors: pd.Series | None = None,
) -> pd.DataFrame:
    """One row per team and year in which the team operates (long format).

    `waves` maps team_id -> wave number (1-based, as in scenario.waves).
    `ramp_up` (team_id -> bool, default: the wave's) says whether a team comes
    into operation during its first year; `factors` (team_id -> size factor,
    default 1) scale its labour and babies, and `settled_factors` replace them
    from the first settled year (see settled_year_index). Training stays a cost
    per team. status is "starting" in a ramp-up year, else "operating". Years
    before a team starts have no row.
    """
    rows = []
    years = list(scenario.years)
    unit = [team_year_cost(scenario, t) for t in range(len(years))]
    ramps = {} if ramp_up is None else {str(k): bool(v) for k, v in ramp_up.items()}
    size = {} if factors is None else {str(k): float(v) for k, v in factors.items()}
    settled = (
        {} if settled_factors is None else {str(k): float(v) for k, v in settled_factors.items()}
    )
    first_settled = settled_year_index(waves, scenario, ramp_up=ramp_up)
    for team_id, wave in sorted(waves.items(), key=lambda kv: str(kv[0])):
        spec = scenario.waves[int(wave) - 1]
        ramp = ramps.get(str(team_id), spec.ramp_up)
        start = years.index(spec.start_year)
        for t in range(start, len(years)):
            factor = size.get(str(team_id), 1.0)
            if t >= first_settled:
                factor = settled.get(str(team_id), factor)
            starting = ramp and t == start
            if starting:
                labour = scenario.starting_labour_share * unit[t] * factor
                training = scenario.training_first_year
                babies = scenario.babies_first_year * factor
            else:
                labour = unit[t] * factor
                training = scenario.training_second_year if ramp and t == start + 1 else 0.0
                babies = scenario.babies_full_year * factor
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
                    round(factor * scenario.wte, 6),
                )
            )
    out = pd.DataFrame(rows, columns=TEAM_YEAR_COLUMNS)
    return out.astype({"wave": "int64", "year_index": "int64"})


# ----------------------------------------------------------------------------- who is costed how


def wave_basis(plan: pd.DataFrame) -> pd.Series:
    """Each team's wave_basis (existing service / emerging provision / need), by team_id.

    Phasing's `wave_basis` column when the plan has it, else the same thing
    read from `readiness`.
    """
    if "wave_basis" in plan.columns:
        basis = plan["wave_basis"].astype(str)
    else:
        basis = plan["readiness"].astype(str).map(BASIS_OF_READINESS).fillna(BASIS_NEED)
    return pd.Series(basis.to_numpy(), index=plan["team_id"].astype(str), name="wave_basis")


def costed_ramp_up(plan: pd.DataFrame, scenario: Scenario) -> pd.Series:
    """team_id -> whether the team is costed as coming into operation during its first year.

    Its wave's ramp_up, except that with wave_one_without_service = "new" a
    wave-one team whose place is filled by need (no known service) is costed as
    a team starting that year: part-year labour, training, babies_first_year.
    """
    waves = plan.set_index(plan["team_id"].astype(str))["wave"].astype(int)
    ramp = waves.map(lambda w: scenario.waves[w - 1].ramp_up).astype(bool)
    if scenario.wave_one_without_service == "new":
        by_need = (waves == 1) & (wave_basis(plan) == BASIS_NEED)
        ramp = ramp | by_need
    return ramp.rename("ramp_up")


def cohorts(
    plan: pd.DataFrame, scenario: Scenario, *, ramp_up: pd.Series | None = None
) -> pd.Series:
    """team_id -> "<start year> full" or "<start year> ramp-up": the teams costed alike."""
    ramp = costed_ramp_up(plan, scenario) if ramp_up is None else ramp_up
    waves = plan.set_index(plan["team_id"].astype(str))["wave"].astype(int)
    labels = [
        f"{scenario.waves[w - 1].start_year} {'ramp-up' if ramp[t] else 'full'}"
        for t, w in waves.items()
    ]
    return pd.Series(labels, index=waves.index, name="cohort")


def need_per_head(plan: pd.DataFrame) -> pd.Series:
    """team_id -> need score ÷ population (0 for an empty catchment)."""
    pop = plan["population"].astype(float).to_numpy()
    need = plan["need_score"].astype(float).to_numpy()
    ratio = np.divide(need, pop, out=np.zeros_like(need), where=pop > 0)
    return pd.Series(ratio, index=plan["team_id"].astype(str), name="need_per_head")


def size_units(scenario: Scenario) -> int:
    """How finely size is shared: hundredths of a WTE (513 for 5.13 WTE), else thousandths."""
    hundredths = scenario.wte * 100
    return round(hundredths) if abs(hundredths - round(hundredths)) < 1e-9 else 1000


def settled_year_index(
    waves: pd.Series, scenario: Scenario, *, ramp_up: pd.Series | None = None
) -> int:
    """Index of the first year in which every team operates fully (len(years) if none does).

    From that year on each national figure depends only on the sum of all
    teams' sizes, so teams may take their settled (England-wide) size without
    moving the proposal's totals; before it, each cohort's total is fixed.
    """
    years = list(scenario.years)
    ramps = {} if ramp_up is None else {str(k): bool(v) for k, v in ramp_up.items()}
    first = 0
    for team_id, wave in waves.items():
        spec = scenario.waves[int(wave) - 1]
        start = years.index(spec.start_year)
        first = max(first, start + int(ramps.get(str(team_id), spec.ramp_up)))
    return min(first, len(years))


def size_factors(
    plan: pd.DataFrame, scenario: Scenario, *, ramp_up: pd.Series | None = None
) -> pd.Series:
    """team_id -> size factor while the rollout runs (1 for every team when sizing is "uniform").

    With "need", a team's factor follows its need per head, clipped to
    [sizing_min, sizing_max] (water-filling: the clipped teams' surplus or
    shortfall is shared among the others). Factors are normalised to average
    exactly 1 within each cohort of teams costed alike, i.e. the same start year
    and ramp-up (`ramp_up` from costed_ramp_up): every row of the national
    table sums one cohort or several whole ones, so each keeps the proposal's
    value. They are whole hundredths of a WTE (k / size_units), shared by
    largest remainder, so each cohort's sum is exact, not merely close.
    """
    return _need_shares(plan, scenario, cohorts(plan, scenario, ramp_up=ramp_up))


def settled_size_factors(plan: pd.DataFrame, scenario: Scenario) -> pd.Series:
    """team_id -> size factor once every team operates fully (see settled_year_index).

    The same rule as size_factors, normalised over all of England instead of
    per cohort, so teams that start early (the neediest) are not held to
    their wave's average: the team's establishment, and its `wte` in teams.csv.
    """
    one = pd.Series("England", index=plan["team_id"].astype(str), name="cohort")
    return _need_shares(plan, scenario, one)


def _need_shares(plan: pd.DataFrame, scenario: Scenario, groups: pd.Series) -> pd.Series:
    """Size factors by need per head, averaging exactly 1 within each of `groups`."""
    teams = plan["team_id"].astype(str)
    if scenario.team_sizing == "uniform":
        return pd.Series(1.0, index=teams, name="size_factor")
    cohort = groups.to_dict()
    ratio = need_per_head(plan)
    units = size_units(scenario)
    low = math.ceil(scenario.team_sizing_min * units - 1e-9)
    high = math.floor(scenario.team_sizing_max * units + 1e-9)
    out: dict[str, float] = {}
    for key in sorted(set(cohort.values())):
        members = sorted(t for t, c in cohort.items() if c == key)
        shares = _bounded_shares(ratio[members], units * len(members), low, high)
        out.update({t: shares[t] / units for t in members})
    return pd.Series([out[t] for t in teams], index=teams, name="size_factor")


def _bounded_shares(weights: pd.Series, total: int, low: int, high: int) -> dict[str, int]:
    """Whole units ∝ weights, each within [low, high], summing to `total` exactly.

    The proportional level is found by bisection (the clipped sum rises with
    it); the remainders then go by largest remainder, ties by team id.
    """
    w = weights.to_numpy(dtype=float)
    if not (w > 0).any():  # no need anywhere in the cohort: all alike (total = units × teams)
        return {t: total // len(w) for t in weights.index}

    def filled(level: float) -> np.ndarray:
        return np.clip(level * w, low, high)

    lo, hi = 0.0, total / w.sum()
    while filled(hi).sum() < total and hi < 1e300:
        hi *= 2
    if filled(hi).sum() < total:
        raise PlannerError(
            "need per head is zero for too many teams to size them by need",
            field="team.sizing",
            value="need",
            fix='use team.sizing = "uniform", or check the need weights',
        )
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if filled(mid).sum() < total else (lo, mid)
    quota = filled(hi)
    base = np.floor(quota).astype(np.int64)
    rest = quota - base
    ids = list(weights.index)
    left = total - int(base.sum())
    # largest remainders first (ties by id) while room is left; over-shoot removes from the smallest
    order = sorted(range(len(ids)), key=lambda i: (-rest[i], ids[i]))
    for i in order if left > 0 else reversed(order):
        if left == 0:
            break
        step = 1 if left > 0 else -1
        if low <= base[i] + step <= high:
            base[i] += step
            left -= step
    if left:
        raise PlannerError(
            f"cannot share {total} size units within the bounds",
            field="team.sizing_min / team.sizing_max",
            value=(low, high),
            fix="widen the bounds so that sizing_min <= 1 <= sizing_max",
        )
    return {t: int(b) for t, b in zip(ids, base, strict=True)}


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


def under_ones(plan: pd.DataFrame) -> pd.Series:
    """team_id -> children under 1: the plan's `under1` when it has one, else under3 ÷ 3.

    The areas table carries under-3s only (Census ages 0-2 by MSOA shared over
    LSOAs); a third of them is the under-1 estimate.
    """
    base = plan["under1"] if "under1" in plan.columns else plan["under3"] / 3
    return pd.Series(base.astype(float).to_numpy(), index=plan["team_id"].astype(str))


def attach_sizing(
    plan: pd.DataFrame, factors: pd.Series, settled: pd.Series, scenario: Scenario
) -> pd.DataFrame:
    """The plan with `wte`, `wte_rollout`, `annual_staff_cost` and `babies_per_1000_under1`.

    wte: the team's settled size (settled_size_factors); wte_rollout: its size
    while the rollout runs (size_factors; equal to wte with uniform sizing).
    annual_staff_cost: a full year of the settled team's staff at the first
    year's prices (pay and on-costs; no training, no later pay growth), whole
    pounds, so teams compare in one price year without one-off costs.
    babies_per_1000_under1: babies the settled team sees in a full year per
    1,000 children under 1 in the catchment (see under_ones), its coverage.
    """
    out = plan.copy()
    teams = out["team_id"].astype(str)
    f = settled.reindex(teams).to_numpy(dtype=float)
    out["wte"] = np.round(f * scenario.wte, 6)
    out["wte_rollout"] = np.round(factors.reindex(teams).to_numpy(dtype=float) * scenario.wte, 6)
    out["annual_staff_cost"] = [round_half_up(x * team_year_cost(scenario, 0)) for x in f]
    out["babies_per_1000_under1"] = coverage(plan, settled, scenario).to_numpy()
    return out


def coverage(plan: pd.DataFrame, factors: pd.Series, scenario: Scenario) -> pd.Series:
    """team_id -> babies seen in a full year per 1,000 under-1s (NaN for a catchment without)."""
    under1 = under_ones(plan)
    babies = factors.reindex(under1.index).astype(float) * scenario.babies_full_year
    return (1000 * babies / under1.where(under1 > 0)).rename("babies_per_1000_under1")


def cost_plan(plan: pd.DataFrame, scenario: Scenario) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(plan with wte, babies_per_1000_under1, cost_<year>, babies_<year>; team-year costs).

    The costing stage as one call: who starts how (wave_one_without_service),
    how big each team is (team.sizing), then the proposal's arithmetic. A team
    costed as coming into operation during its first year has its full_from
    moved to the year after, so the plan's dates say what the costs assume.
    """
    ramp = costed_ramp_up(plan, scenario)
    factors = size_factors(plan, scenario, ramp_up=ramp)
    settled = settled_size_factors(plan, scenario)
    waves = plan.set_index(plan["team_id"].astype(str))["wave"]
    team_costs = team_year_costs(
        waves, scenario, ramp_up=ramp, factors=factors, settled_factors=settled
    )
    out = attach_costs(attach_sizing(plan, factors, settled, scenario), team_costs, scenario)
    if "full_from" in out.columns:
        starting = ramp.reindex(out["team_id"].astype(str)).to_numpy(dtype=bool)
        start = [scenario.waves[int(w) - 1].start_year for w in out["wave"]]
        full = [next_year(y) if r else y for y, r in zip(start, starting, strict=True)]
        out["full_from"] = pd.Series(full, index=out.index, dtype=str)
    return out, team_costs


@dataclass(frozen=True)
class CoverageSpread:
    """How evenly a sizing covers England: babies per 1,000 under-1s across the teams."""

    sizing: str
    minimum: float  # coverage of the settled teams (every team operating fully)
    median: float
    maximum: float
    rank_correlation: float  # Spearman, settled coverage against need per head, all teams
    rank_correlation_in_cohorts: float  # rollout coverage, within each cohort, by its teams

    def describe(self) -> str:
        return (
            f"coverage with {self.sizing} teams: {self.minimum:.1f} / {self.median:.1f} / "
            f"{self.maximum:.1f} babies a year per 1,000 under-1s (min / median / max, every "
            f"team operating); rank correlation with need per head {self.rank_correlation:+.2f}"
            f" ({self.rank_correlation_in_cohorts:+.2f} among teams starting together, "
            "during the rollout)"
        )


def coverage_spread(plan: pd.DataFrame, scenario: Scenario, *, sizing: str) -> CoverageSpread:
    """The coverage spread if teams were sized `sizing` ("uniform" or "need")."""
    sized = replace(scenario, team_sizing=sizing)
    cover = coverage(plan, settled_size_factors(plan, sized), sized)
    need = need_per_head(plan)
    ranked = pd.DataFrame({"cover": cover, "need": need}).dropna()
    rollout = pd.DataFrame(
        {
            "cover": coverage(plan, size_factors(plan, sized), sized),
            "need": need,
            "cohort": cohorts(plan, sized),
        }
    ).dropna()
    inside = [
        (len(g), _spearman(g["cover"], g["need"]))
        for _, g in rollout.groupby("cohort", sort=True)
        if len(g) > 2
    ]
    weight = sum(n for n, _ in inside)
    return CoverageSpread(
        sizing,
        float(ranked["cover"].min()),
        float(ranked["cover"].median()),
        float(ranked["cover"].max()),
        _spearman(ranked["cover"], ranked["need"]),
        math.fsum(n * r for n, r in inside) / weight if weight else math.nan,
    )


def _spearman(a: pd.Series, b: pd.Series) -> float:
    return float(a.rank().corr(b.rank()))


def coverage_spreads(plan: pd.DataFrame, scenario: Scenario) -> list[CoverageSpread]:
    """Both sizings, the scenario's own first (for the run summary and the benchmark)."""
    order = sorted(("uniform", "need"), key=lambda s: s != scenario.team_sizing)
    return [coverage_spread(plan, scenario, sizing=s) for s in order]


@dataclass(frozen=True)
class WaveOneChange:
    """What costing wave one's need-filled places as new teams changes in wave one's year."""

    year: str
    teams: int  # wave-one places filled by need (no known service)
    chosen: str  # the scenario's wave_one_without_service
    cost_full: float
    cost_new: float
    babies_full: float
    babies_new: float

    def describe(self) -> str:
        if self.teams == 0:
            return f"wave one: every place holds a known service ({self.year} unchanged)"
        cost = self.cost_new - self.cost_full
        babies = self.babies_new - self.babies_full
        return (
            f"wave one: {self.teams} places filled by need, costed "
            f'"{self.chosen}"; costing them as new teams ("new") instead of running fully '
            f'from 1 April ("full") changes {self.year}: cost £{round_half_up(self.cost_full):,}'
            f" -> £{round_half_up(self.cost_new):,} ({_signed(cost)}), babies seen "
            f"{round_half_up(self.babies_full):,} -> {round_half_up(self.babies_new):,}"
            f" ({_signed(babies, money=False)})"
        )


def _signed(value: float, *, money: bool = True) -> str:
    sign = "-" if value < 0 else "+"
    return f"{sign}{'£' if money else ''}{round_half_up(abs(value)):,}"


def wave_one_change(plan: pd.DataFrame, scenario: Scenario) -> WaveOneChange:
    """Wave one's year under wave_one_without_service "full" and "new" (national totals)."""
    year = scenario.waves[0].start_year
    figures = {}
    for option in ("full", "new"):
        _, team_costs = cost_plan(plan, replace(scenario, wave_one_without_service=option))
        table = national_table(team_costs, replace(scenario, wave_one_without_service=option))
        row = table.set_index("item")[year]
        figures[option] = (float(row[ROW_TOTAL]), float(row[ROW_BABIES]))
    basis = wave_basis(plan)
    waves = plan.set_index(plan["team_id"].astype(str))["wave"].astype(int)
    teams = int(((waves == 1) & (basis == BASIS_NEED)).sum())
    return WaveOneChange(
        year,
        teams,
        scenario.wave_one_without_service,
        figures["full"][0],
        figures["new"][0],
        figures["full"][1],
        figures["new"][1],
    )


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
    return group_fsum(merged, ["area_code", "year"], cols)


def group_fsum(frame: pd.DataFrame, keys: list[str], columns: list[str]) -> pd.DataFrame:
    """`keys` then `columns`: one row per group (sorted), each column's exactly rounded sum.

    math.fsum makes a total independent of row order, so the same plan gives the
    same pennies however its rows were merged.  Each group is a slice of one
    sorted array (pandas' `agg(math.fsum)` builds a Series per group and column,
    which cost every plan about 0.3 s).  Rows with a missing key are
    left out, as groupby does.
    """
    grouper = frame.groupby(keys, sort=True)
    ids = grouper.ngroup().to_numpy()
    order = np.argsort(ids, kind="stable")
    order = order[ids[order] >= 0]
    cuts = np.flatnonzero(np.diff(ids[order])) + 1
    spans = list(zip([0, *cuts.tolist()], [*cuts.tolist(), len(order)], strict=True))
    out = grouper.size().index.to_frame(index=False)
    for column in columns:
        values = frame[column].to_numpy(dtype="float64")[order].tolist()
        out[column] = [math.fsum(values[a:b]) for a, b in spans] if len(out) else []
    return out

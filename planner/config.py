"""Scenario: every parameter of the proposal, as one immutable model.

The defaults below *are* the 2021 proposal (see DESIGN.md); the bundled
`scenarios/proposal-2021.toml` says the same thing with comments and citations,
and a test keeps the two equal. Reading and checking a user's TOML file is
`planner.scenario_file`'s work.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from planner import apportion
from planner.errors import PlannerError

if TYPE_CHECKING:
    import pandas as pd

REPO_DIR = Path(__file__).resolve().parents[1]
SCENARIOS_DIR = REPO_DIR / "scenarios"
DEFAULT_SCENARIO_PATH = SCENARIOS_DIR / "proposal-2021.toml"

READINESS_LEVELS = ("operating", "emerging", "none")  # best first
PARTITION_PRESETS = {"la_aligned": 0.10, "equal_size": 0.005}
TEAM_SIZINGS = ("uniform", "need")
SEED_MAX = 2**32 - 1
# One team-year beyond this many pounds is a typing slip (a pay point of 1e308), not a plan.
TEAM_YEAR_COST_MAX = 1e12
WAVE_ONE_WITHOUT_SERVICE = ("full", "new")  # how wave-one places filled by need are costed
OPERATING_OVERFLOW = ("push", "widen")  # more operating services than wave one's places
SHARE_BY = ("teams", "population", "need")  # what each region's share of a wave follows
YEAR_PATTERN = re.compile(r"^(\d{4})/(\d{2})$")


@dataclass(frozen=True)
class Post:
    """One post in a team: Agenda for Change band and whole-time equivalent."""

    role: str
    band: str
    wte: float


@dataclass(frozen=True)
class Wave:
    """A wave of teams: how many, from which year, and whether that year is a ramp-up year.

    ramp_up=False: the teams operate fully from 1 April of `start_year` (wave 1,
    existing services scaling up). ramp_up=True: they come into operation
    during `start_year` (part-year labour, first-year training, fewer babies).
    """

    teams: int
    start_year: str
    ramp_up: bool


DEFAULT_POSTS: tuple[Post, ...] = (
    Post("cluster lead (one post across 3 teams)", "8c", 0.33),
    Post("locality lead", "8b", 1.0),
    Post("early-attachment specialist (e.g. health visitor)", "7", 1.0),
    Post("early-attachment specialist (e.g. midwife)", "7", 1.0),
    Post("social worker", "6", 1.0),
    Post("administrator", "4", 0.8),
)
DEFAULT_PAY_POINTS: tuple[tuple[str, float], ...] = (
    ("8c", 63751.0),
    ("8b", 53168.0),
    ("7", 40894.0),
    ("6", 33176.0),
    ("4", 24157.0),
)
DEFAULT_WAVES: tuple[Wave, ...] = (
    Wave(40, "2022/23", False),
    Wave(40, "2022/23", True),
    Wave(55, "2023/24", True),
    Wave(67, "2024/25", True),
)
DEFAULT_YEARS = ("2022/23", "2023/24", "2024/25", "2025/26")


@dataclass(frozen=True)
class Scenario:
    """Every parameter of a plan. Defaults = the 2021 proposal (DESIGN.md)."""

    name: str = "proposal-2021"
    description: str = (
        "Specialised parent-infant relationship teams for England: 202 teams, "
        "one per ~280,000 people, in four waves from 2022/23"
    )
    seed: int = 2021
    # coverage: teams=None means England's population / population_per_team (resolve_teams)
    population_per_team: int = 280_000
    teams: int | None = 202
    teams_from_population: bool = False
    # team and pay
    posts: tuple[Post, ...] = DEFAULT_POSTS
    # "uniform": every team the posts above; "need": WTE and capacity scale with need per head
    team_sizing: str = "uniform"
    team_sizing_min: float = 0.75
    team_sizing_max: float = 1.5
    pay_points: tuple[tuple[str, float], ...] = DEFAULT_PAY_POINTS
    # cost model
    oncost_uplift: float = 1.14
    pay_growth: float = 1.03
    starting_labour_share: float = 0.5
    training_first_year: float = 11_077.50
    training_second_year: float = 4_987.50
    development_programme: tuple[float, ...] = (500_000.0, 1_000_000.0, 1_000_000.0, 0.0)
    # capacity
    babies_full_year: int = 150
    babies_first_year: int = 50
    # timing
    years: tuple[str, ...] = DEFAULT_YEARS
    spending_review: tuple[str, ...] = DEFAULT_YEARS[:3]
    waves: tuple[Wave, ...] = DEFAULT_WAVES
    # need and phasing
    need_base_weight: float = 1.0
    need_deprived_weight: float = 1.0
    need_deprived_max_decile: int = 2
    regional_fair_shares: bool = True
    share_by: str = "teams"
    wave_one_without_service: str = "full"
    operating_overflow: str = "push"
    first_team_by_wave: int | None = None
    locks: tuple[tuple[str, int], ...] = ()
    # catchments
    partition_preset: str = "la_aligned"
    partition_tolerance: float = 0.10
    # where it was read from (not a parameter)
    source: str | None = field(default=None, compare=False)

    @property
    def wave_sizes(self) -> tuple[int, ...]:
        return tuple(w.teams for w in self.waves)

    @property
    def wte(self) -> float:
        return math.fsum(p.wte for p in self.posts)

    def pay_point(self, band: str) -> float:
        return dict(self.pay_points)[band]

    @property
    def salary_bill(self) -> float:
        """S: the annual salary bill of one team before on-costs (£208,495.43 by default)."""
        pay = dict(self.pay_points)
        return math.fsum(p.wte * pay[p.band] for p in self.posts)

    def development(self, year: str) -> float:
        """National development programme in `year` (0 beyond the listed years)."""
        i = self.years.index(year)
        return self.development_programme[i] if i < len(self.development_programme) else 0.0

    @property
    def locks_dict(self) -> dict[str, int]:
        return dict(self.locks)


def year_suffix(label: str) -> str:
    """'2022/23' -> '2022_23' (column suffix in the plan contract)."""
    return label.replace("/", "_")


def next_year(label: str) -> str:
    """'2025/26' -> '2026/27'."""
    start = int(label[:4]) + 1
    return f"{start}/{(start + 1) % 100:02d}"


def wave_dates(scenario: Scenario, wave: int) -> tuple[str, str]:
    """(operating_from, full_from) year labels of a wave (1-based)."""
    spec = scenario.waves[wave - 1]
    return spec.start_year, next_year(spec.start_year) if spec.ramp_up else spec.start_year


def with_overrides(
    scenario: Scenario, *, seed: int | None = None, preset: str | None = None
) -> Scenario:
    """Command-line overrides (--seed, --preset); a preset brings its own tolerance."""
    if seed is not None:
        if not 0 <= seed <= SEED_MAX:
            raise PlannerError(
                f"a seed must be a whole number from 0 to {SEED_MAX:,}",
                field="--seed",
                value=seed,
                fix=f"give e.g. --seed {Scenario.seed}",
            )
        scenario = replace(scenario, seed=seed)
    if preset is not None:
        if preset not in PARTITION_PRESETS:
            raise PlannerError(
                "unknown partition preset",
                field="--preset",
                value=preset,
                fix=f"use one of {', '.join(PARTITION_PRESETS)}",
            )
        scenario = replace(
            scenario, partition_preset=preset, partition_tolerance=PARTITION_PRESETS[preset]
        )
    return scenario


def default_scenario() -> Scenario:
    """The proposal's parameters (equal to scenarios/proposal-2021.toml)."""
    return Scenario()


def rescale_teams(
    scenario: Scenario, teams: int, population_per_team: int | None = None
) -> Scenario:
    """The same scenario with `teams` teams, each wave scaled by largest remainder.

    Used when population per team changes (e.g. 250,000 instead of 280,000):
    the number of teams changes and the waves keep their proportions.
    """
    sizes = largest_remainder([w.teams for w in scenario.waves], teams)
    waves = tuple(replace(w, teams=n) for w, n in zip(scenario.waves, sizes, strict=True))
    return replace(
        scenario,
        teams=teams,
        waves=waves,
        population_per_team=population_per_team or scenario.population_per_team,
    )


def largest_remainder(weights: list[float], total: int) -> list[int]:
    """Share `total` seats in proportion to `weights` (Hamilton; ties to the earlier entry)."""
    wsum = sum(Fraction(w) for w in weights)
    if total == 0 or wsum == 0:
        return [0] * len(weights)
    # Zero-padded positions as keys: the shared rule breaks ties by key, i.e. by position.
    keys = [f"{i:08d}" for i in range(len(weights))]
    quotas = {k: Fraction(total) * Fraction(w) / wsum for k, w in zip(keys, weights, strict=True)}
    seats = apportion.largest_remainder(quotas, total)
    return [seats[k] for k in keys]


def teams_for_population(population: int, population_per_team: int) -> int:
    """England's population ÷ population per team, rounded half up (exact, no float noise)."""
    return math.floor(Fraction(int(population), int(population_per_team)) + Fraction(1, 2))


def resolve_teams(scenario: Scenario, areas: pd.DataFrame) -> Scenario:
    """The scenario with its number of teams settled against the areas table.

    Called once England's population is known (after the areas are read).
    Without an explicit coverage.teams the number of teams is England's
    population ÷ population_per_team, rounded; wave sizes that then no longer
    add up are an error whose fix gives the scaled sizes. Either way the number
    must allow one team per ICB and at most one per small area.
    """
    population = int(areas["population"].sum())
    derived = scenario.teams is None
    teams = (
        teams_for_population(population, scenario.population_per_team)
        if derived
        else int(scenario.teams or 0)
    )
    icbs, small_areas = int(areas["icb24cd"].nunique()), len(areas)
    if not icbs <= teams <= small_areas:
        people = math.ceil(population / small_areas)
        raise PlannerError(
            f"{teams:,} teams cannot cover England's {icbs} ICBs (at least one team each) "
            f"and {small_areas:,} small areas (at most one team each)",
            file=scenario.source,
            field="coverage.population_per_team" if derived else "coverage.teams",
            value=scenario.population_per_team if derived else teams,
            fix=(
                f"give between {icbs} and {small_areas:,} teams "
                f"(population_per_team between {people:,} and {population // icbs:,})"
            ),
        )
    if not derived:
        return scenario
    sizes = list(scenario.wave_sizes)
    if sum(sizes) != teams:
        scaled = rescale_teams(scenario, teams).wave_sizes
        raise PlannerError(
            f"England's {population:,} people ÷ {scenario.population_per_team:,} per team "
            f"give {teams} teams, but the wave sizes sum to {sum(sizes)}",
            file=scenario.source,
            field="waves",
            value=sizes,
            fix=(
                f"set the [[waves]] teams to {', '.join(map(str, scaled))} (the same "
                f"proportions, summing to {teams}), or give coverage.teams = {sum(sizes)}"
            ),
        )
    return replace(scenario, teams=teams, teams_from_population=True)


def describe_teams(scenario: Scenario, population: int) -> str:
    """One line for the run summary: how many teams, and where the number comes from."""
    derived = teams_for_population(population, scenario.population_per_team)
    ratio = f"England's {population:,} people ÷ {scenario.population_per_team:,} per team"
    if scenario.teams_from_population:
        return f"{scenario.teams} teams: {ratio}"
    if scenario.teams == derived:
        return f"{scenario.teams} teams (coverage.teams; {ratio} gives the same)"
    return (
        f"{scenario.teams} teams, as coverage.teams says; {ratio} would give {derived} "
        "(population_per_team is not used while teams is given)"
    )

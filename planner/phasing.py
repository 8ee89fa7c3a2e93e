"""Phasing: readiness + need -> wave, start year, ranks, wave basis and a one-line rationale.

A team holds a listed service when it has at least half of the area's
population, or the area is at least half of the team's (SHARE_TO_HOLD): a
sliver of a district is not a service. Teams holding an operating service go
first, then the greatest need; planner.waves fills the waves (existing
services first, then fair shares across NHS regions). The user's knowledge of
local services is read by planner.readiness.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from planner import costs, waves
from planner.config import READINESS_LEVELS, Scenario, wave_dates
from planner.errors import PlannerError
from planner.readiness import (
    CODE_COLUMNS,
    READINESS_COLUMNS,
    known_area_codes,
    read_readiness,
    validate_readiness_file,
)

# The reader lives in planner.readiness, the wave filling in planner.waves; these names
# stay here for callers of phasing.
__all__ = [
    "NEED_SCORE_UNIT",
    "PLAN_COLUMNS",
    "READINESS_COLUMNS",
    "SHARE_TO_HOLD",
    "WAVE_BASIS",
    "area_overlaps",
    "assign_phasing",
    "first_team_years",
    "known_area_codes",
    "need_score_explanation",
    "need_scores",
    "phasing_report",
    "read_readiness",
    "service_areas",
    "share_seats",
    "team_readiness",
    "validate_readiness_file",
]
share_seats = waves.share_seats

PLAN_COLUMNS = [
    "wave",
    "operating_from",
    "full_from",
    "readiness",
    "readiness_note",
    "wave_basis",
    "to_confirm",
    "need_score",
    "priority_rank",
    "region_rank",
    "rationale",
]
# A team holds a listed area's service with this share of the area, or of itself.
SHARE_TO_HOLD = 0.5
# readiness -> teams.csv `wave_basis`; wave-one places with basis "need" are "to confirm"
WAVE_BASIS = {"operating": "existing service", "emerging": "emerging provision", "none": "need"}
_LEVEL = {name: i for i, name in enumerate(READINESS_LEVELS)}


# ----------------------------------------------------------------------------- need


def need_score_explanation(scenario: Scenario) -> str:
    """The need score's formula and unit, in words, for tables and maps to show beside it."""
    deciles = (
        "decile 1"
        if scenario.need_deprived_max_decile == 1
        else f"deciles 1–{scenario.need_deprived_max_decile}"
    )
    return (
        f"Need score = estimated children under 3 in the catchment × ({scenario.need_base_weight:g}"
        f" + {scenario.need_deprived_weight:g} × the share of them living in the most deprived "
        f"small areas, IMD 2025 {deciles}). Unit: {NEED_SCORE_UNIT}; higher means more need."
    )


NEED_SCORE_UNIT = "deprivation-weighted children under 3"


def need_scores(areas: pd.DataFrame, assignment: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
    """team_id, under3, share_deprived, need_score (see need_score_explanation).

    need = under3 × (base_weight + deprived_weight × share of the catchment's
    under-3s living in LSOAs with IMD decile <= deprived_max_decile).
    """
    lsoa = assignment[["lsoa21cd", "team_id"]].merge(
        areas[["lsoa21cd", "under3", "imd_decile"]], on="lsoa21cd", how="left", validate="1:1"
    )
    deprived = lsoa["imd_decile"] <= scenario.need_deprived_max_decile
    lsoa = lsoa.assign(u3_deprived=lsoa["under3"].where(deprived, 0.0))
    per = costs.group_fsum(lsoa, ["team_id"], ["under3", "u3_deprived"]).set_index("team_id")
    share = (per["u3_deprived"] / per["under3"]).where(per["under3"] > 0, 0.0)
    need = per["under3"] * (scenario.need_base_weight + scenario.need_deprived_weight * share)
    return pd.DataFrame(
        {
            "team_id": per.index.astype(str),
            "under3": per["under3"].to_numpy(),
            "share_deprived": share.to_numpy(),
            "need_score": need.to_numpy(),
        }
    )


# ----------------------------------------------------------------------------- readiness per team


def area_overlaps(areas: pd.DataFrame, assignment: pd.DataFrame) -> pd.DataFrame:
    """team_id, area_code, overlap, area_share, team_share: population each team holds of each area.

    Areas are every code a readiness file may use (LAD, ICB and its ODS code,
    sub-ICB location) and the team ids themselves.
    """
    cols = ["lsoa21cd", *(c for c, _ in CODE_COLUMNS if c in areas.columns)]
    lsoa = assignment[["lsoa21cd", "team_id"]].merge(
        areas[[*cols, "population"]], on="lsoa21cd", how="left", validate="1:1"
    )
    lsoa["team_id"] = lsoa["team_id"].astype(str)
    team_pop = lsoa.groupby("team_id", sort=True)["population"].sum()
    overlaps = [
        pd.DataFrame({"team_id": team_pop.index, "area_code": team_pop.index, "overlap": team_pop})
    ]
    for col in cols[1:]:
        g = lsoa.groupby(["team_id", col], sort=True)["population"].sum().reset_index()
        overlaps.append(g.rename(columns={col: "area_code", "population": "overlap"}))
    ov = pd.concat(overlaps, ignore_index=True).astype({"area_code": str, "team_id": str})
    ov = ov[ov["overlap"] > 0].reset_index(drop=True)
    area_pop = ov.groupby("area_code")["overlap"].transform("sum")
    # a team id is counted once above, but its "area" is the team itself
    area_pop = area_pop.where(ov["area_code"] != ov["team_id"], ov["overlap"])
    return ov.assign(
        area_share=ov["overlap"] / area_pop,
        team_share=ov["overlap"] / ov["team_id"].map(team_pop),
    )


def team_readiness(
    areas: pd.DataFrame, assignment: pd.DataFrame, readiness: pd.DataFrame | None
) -> pd.DataFrame:
    """team_id, readiness, readiness_note, readiness_area, readiness_code, area_share,
    team_share, holds_service.

    A catchment takes a listed area's readiness only when it holds at least
    half of that area's population, or the area is at least half of the
    catchment's (SHARE_TO_HOLD); among those, the best readiness, then the
    larger overlap, then the code. holds_service: it holds at least half of
    an area at that readiness (a service's own team, not one of several
    teams inside a larger service area).
    """
    teams = sorted(assignment["team_id"].astype(str).unique())
    base = pd.DataFrame({"team_id": teams})
    empty = base.assign(
        readiness="none",
        readiness_note="",
        readiness_area="",
        readiness_code="",
        area_share=0.0,
        team_share=0.0,
        holds_service=False,
    )
    if readiness is None or readiness.empty:
        return empty
    ov = area_overlaps(areas, assignment)
    ov = ov[(ov["area_share"] >= SHARE_TO_HOLD) | (ov["team_share"] >= SHARE_TO_HOLD)]
    ready = readiness.assign(area_code=readiness["area_code"].astype(str))
    if "note" not in ready.columns:
        ready = ready.assign(note="")
    if "area_name" not in ready.columns:
        ready = ready.assign(area_name=ready["area_code"])
    hits = ov.merge(ready[["area_code", "readiness", "note", "area_name"]], on="area_code")
    hits = hits.assign(level=hits["readiness"].map(_LEVEL))
    hits = hits.sort_values(
        ["team_id", "level", "overlap", "area_code"], ascending=[True, True, False, True]
    )
    best = hits.drop_duplicates("team_id")
    top = hits.merge(best[["team_id", "level"]], on=["team_id", "level"])
    holds = top.groupby("team_id")["area_share"].max() >= SHARE_TO_HOLD
    out = base.merge(best, on="team_id", how="left")
    out["holds_service"] = out["team_id"].map(holds).fillna(False).astype(bool)
    return pd.DataFrame(
        {
            "team_id": out["team_id"],
            "readiness": out["readiness"].fillna("none").astype(str),
            "readiness_note": out["note"].fillna("").astype(str),
            "readiness_area": out["area_name"].fillna("").astype(str),
            "readiness_code": out["area_code"].fillna("").astype(str),
            "area_share": out["area_share"].fillna(0.0).astype(float),
            "team_share": out["team_share"].fillna(0.0).astype(float),
            "holds_service": out["holds_service"],
        }
    )


def service_areas(readiness: pd.DataFrame | None, areas: pd.DataFrame) -> pd.Series:
    """For each row of `areas`: the code of the service area it lies in, NA elsewhere.

    Service areas are the districts, sub-ICB locations and ICBs the readiness
    file names operating or emerging (team ids are not areas). An LSOA in two
    listed areas (a district and its ICB) takes the smaller one. The
    partitioner keeps each service area whole.
    """
    out = pd.Series(pd.NA, index=areas.index, dtype="string", name="service_area")
    if readiness is None or readiness.empty:
        return out
    listed = readiness.loc[readiness["readiness"].isin(["operating", "emerging"]), "area_code"]
    listed = set(listed.astype(str))
    size = pd.Series(len(areas) + 1, index=areas.index)
    for col, _ in CODE_COLUMNS:
        if col not in areas.columns:
            continue
        codes = areas[col].astype(str)
        counts = codes.map(codes.value_counts())
        take = codes.isin(listed) & (
            (counts < size) | ((counts == size) & (codes < out.fillna("~")))
        )
        out = out.mask(take, codes)
        size = size.mask(take, counts)
    return out


# ----------------------------------------------------------------------------- the plan


def _percent(share: float) -> str:
    """Whole per cent, rounded down (99.7% of an area is not all of it)."""
    return f"{math.floor(share * 100 + 1e-9)}%"


def _readiness_words(r: Any) -> str:
    """e.g. "operating service in Tameside (100% of Tameside)"."""
    area = r.readiness_area
    if not area:
        return "no known service"
    words = f"no service in {area}" if r.readiness == "none" else f"{r.readiness} service in {area}"
    held = f"{_percent(r.area_share)} of {area}"
    if r.area_share < SHARE_TO_HOLD:
        held += f", {_percent(r.team_share)} of this catchment"
    return f"{words} ({held})"


def _place_words(r: Any, fill: waves.WaveFill, scenario: Scenario, locked: bool) -> str:
    """Why the team is in its wave, e.g. "wave-1 slot 2 of 6 for London"."""
    team, w = r.team_id, r.wave
    how = fill.how[team]
    if how == waves.BY_SERVICE:
        widened = w == 1 and fill.sizes[0] > scenario.waves[0].teams
        return f"wave {w}{' (widened)' if widened else ''}: existing services go first"
    if how == waves.PUSHED:
        return (
            f"wave {w}: operating services outnumber wave one's places; teams holding at "
            "least half of a service, then higher need, went first"
        )
    if how == waves.FIRST_TEAM:
        return (
            f"wave {w}: first team of {r.icb24nm} "
            f"(phasing.first_team_by_wave = {scenario.first_team_by_wave})"
        )
    slot, slots = fill.slot[team]
    where = f"for {r.nhser24nm}" if scenario.regional_fair_shares else "nationally"
    place = f"wave-{w} slot {slot} of {slots} {where}"
    return f"locked into wave {w}; {place}" if locked else place


def _share_weight(plan: pd.DataFrame, scenario: Scenario) -> pd.Series:
    if scenario.share_by == "population":
        return plan["population"].astype(float)
    if scenario.share_by == "need":
        return plan["need_score"].astype(float)
    return pd.Series(1.0, index=plan.index)


def assign_phasing(
    catchments: pd.DataFrame,
    areas: pd.DataFrame,
    assignment: pd.DataFrame,
    readiness: pd.DataFrame | None,
    scenario: Scenario,
    locks: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """The plan: catchment fields (no geometry) + PLAN_COLUMNS.

    Pure. `locks` (team_id -> wave) are added to, and override, the scenario's.
    Sorted by team_id.
    """
    cols = [c for c in catchments.columns if c != "geometry"]
    plan = pd.DataFrame(catchments[cols]).copy()
    plan["team_id"] = plan["team_id"].astype(str)
    plan = plan.sort_values("team_id", kind="stable").reset_index(drop=True)
    for code, name in (("nhser24cd", "nhser24nm"), ("icb24cd", "icb24nm")):
        if name not in plan.columns:
            names = areas[[code, name]].drop_duplicates(code)
            plan = plan.merge(names, on=code, how="left")
    teams = list(plan["team_id"])
    if len(teams) != scenario.teams:
        raise PlannerError(
            f"there are {len(teams)} catchments but the scenario has {scenario.teams} teams",
            file=scenario.source,
            field="coverage.teams",
            value=scenario.teams,
            fix="run the catchments with the same scenario",
        )
    all_locks = {**scenario.locks_dict, **dict(locks or {})}
    waves.check_locks(all_locks, teams, scenario)

    need = need_scores(areas, assignment, scenario)[["team_id", "need_score"]]
    ready = team_readiness(areas, assignment, readiness)
    plan = plan.merge(need, on="team_id", how="left").merge(ready, on="team_id", how="left")
    plan["need_score"] = plan["need_score"].fillna(0.0)
    if "population" not in plan.columns:
        pop = areas[["lsoa21cd", "population"]].merge(assignment, on="lsoa21cd")
        plan = plan.merge(pop.groupby("team_id")["population"].sum().reset_index(), on="team_id")

    ranked = plan.assign(level=plan["readiness"].map(_LEVEL), neg_need=-plan["need_score"])
    ranked = ranked.sort_values(["level", "neg_need", "team_id"], kind="stable")
    plan["priority_rank"] = 0
    plan.loc[ranked.index, "priority_rank"] = range(1, len(plan) + 1)
    plan["region_rank"] = (
        plan.groupby("nhser24cd")["priority_rank"].rank(method="first").astype("int64")
    )
    region_size = plan.groupby("nhser24cd")["team_id"].transform("size")

    group = ranked["nhser24cd"].astype(str) if scenario.regional_fair_shares else "England"
    fill = waves.fill_waves(
        pd.DataFrame(
            {
                "team_id": ranked["team_id"],
                "group": group,
                "icb24cd": ranked["icb24cd"].astype(str),
                "operating": ranked["readiness"] == "operating",
                "holds_service": ranked["holds_service"],
                "weight": _share_weight(ranked, scenario),
            }
        ),
        scenario,
        all_locks,
    )
    plan["wave"] = plan["team_id"].map(fill.wave).astype("int64")
    dates = {w: wave_dates(scenario, w) for w in range(1, len(scenario.waves) + 1)}
    plan["operating_from"] = plan["wave"].map(lambda w: dates[w][0]).astype(str)
    plan["full_from"] = plan["wave"].map(lambda w: dates[w][1]).astype(str)
    plan["wave_basis"] = plan["readiness"].map(WAVE_BASIS).astype(str)
    plan["to_confirm"] = (plan["wave"] == 1) & (plan["wave_basis"] == WAVE_BASIS["none"])

    rationale = []
    for r, n in zip(plan.itertuples(index=False), region_size, strict=True):
        rank = f"rank {r.region_rank} of {n} in {r.nhser24nm} (national rank {r.priority_rank})"
        place = _place_words(r, fill, scenario, r.team_id in all_locks)
        rationale.append(f"{_readiness_words(r)}; {rank}; {place}")
    plan["rationale"] = rationale
    plan = plan.drop(
        columns=["readiness_area", "readiness_code", "area_share", "team_share", "holds_service"]
    )
    return plan[[*(c for c in plan.columns if c not in PLAN_COLUMNS), *PLAN_COLUMNS]]


# ----------------------------------------------------------------------------- the run summary


def first_team_years(plan: pd.DataFrame) -> pd.DataFrame:
    """icb24cd, icb24nm, nhser24nm, first_wave, first_year: when each ICB's first team starts."""
    first = plan.sort_values(["wave", "team_id"]).drop_duplicates("icb24cd")
    out = first[["icb24cd", "icb24nm", "nhser24nm", "wave", "operating_from"]]
    out = out.rename(columns={"wave": "first_wave", "operating_from": "first_year"})
    return out.sort_values(["first_wave", "icb24nm"]).reset_index(drop=True)


def phasing_report(plan: pd.DataFrame, scenario: Scenario) -> list[str]:
    """Lines for the run summary: the sharing rule, wave one's basis, overflow, first teams.

    Lines that start with "Warning:" are warnings the run should also print as such.
    """
    lines = []
    places = scenario.waves[0].teams
    wave1 = plan[plan["wave"] == 1]
    rule = {
        "teams": "the number of teams each region still has waiting",
        "population": "the population of the teams each region still has waiting",
        "need": "the need score of the teams each region still has waiting",
    }[scenario.share_by]
    if scenario.regional_fair_shares:
        lines.append(
            f"Waves: existing services first; the places left are shared across NHS regions "
            f"by {rule} (phasing.share_by = {scenario.share_by!r})."
        )
    else:
        lines.append("Waves: existing services first, then one national ranking.")
    basis = wave1["wave_basis"].value_counts()
    lines.append(
        "Wave one: "
        + ", ".join(f"{basis.get(b, 0)} {b}" for b in WAVE_BASIS.values())
        + f" ({len(wave1)} places)."
    )
    confirm = wave1[wave1["to_confirm"]].sort_values("priority_rank")
    if len(confirm):
        costed = {
            "full": "costed as running fully from the start of wave one's year, as the proposal",
            "new": "costed as teams starting that year",
        }[scenario.wave_one_without_service]
        lines.append(
            f"Warning: {len(confirm)} of wave one's {len(wave1)} places go to teams with no known "
            f"service (to confirm): {', '.join(confirm['team_id'])}; {costed} "
            f"(phasing.wave_one_without_service = {scenario.wave_one_without_service!r})."
        )
    operating = plan[plan["wave_basis"] == WAVE_BASIS["operating"]]
    if len(wave1) > places:
        lines.append(
            f"Warning: {len(operating)} teams hold an operating service but wave one has "
            f"{places} places: wave one widened to {len(wave1)}, the later waves shrink "
            "(phasing.operating_overflow = 'widen')."
        )
    pushed = operating[operating["wave"] > 1].sort_values("priority_rank")
    locked = set(scenario.locks_dict)
    pushed = pushed[~pushed["team_id"].isin(locked)]
    if len(pushed):
        lines.append(
            f"Warning: {len(operating)} teams hold an operating service but wave one has "
            f"{places} places; these {len(pushed)} start later (teams holding at least half "
            "of a service go first, then higher need): "
            + ", ".join(
                f"{t} (wave {w})" for t, w in zip(pushed["team_id"], pushed["wave"], strict=True)
            )
            + " (phasing.operating_overflow = 'push'; 'widen' puts them all in wave one)."
        )
    firsts = first_team_years(plan)
    for i, (year, part) in enumerate(firsts.groupby("first_year", sort=True)):
        names = "" if i == 0 else f": {', '.join(part['icb24nm'])}"
        lines.append(f"First team in {year}: {len(part)} ICBs{names}.")
    goal = scenario.first_team_by_wave
    if goal is not None:
        late = firsts[firsts["first_wave"] > goal]
        if len(late):
            lines.append(
                f"Warning: phasing.first_team_by_wave = {goal}, but wave {goal} and earlier "
                f"have too few places for {len(late)} ICBs: {', '.join(late['icb24nm'])}."
            )
    return lines

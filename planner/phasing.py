"""Phasing: readiness + need -> wave, start year, national rank and a one-line rationale.

Teams that already have a service (or emerging provision) go first, then the
greatest need; each wave's places are shared across the NHS regions in
proportion to their teams so that every region has wave-one sites. The user's
knowledge of local services is read by planner.readiness.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction

import pandas as pd

from planner.config import READINESS_LEVELS, Scenario, wave_dates
from planner.errors import PlannerError
from planner.readiness import (
    CODE_COLUMNS,
    READINESS_COLUMNS,
    known_area_codes,
    read_readiness,
    validate_readiness_file,
)

# The reader lives in planner.readiness; these names stay here for callers of phasing.
__all__ = [
    "PLAN_COLUMNS",
    "READINESS_COLUMNS",
    "assign_phasing",
    "known_area_codes",
    "need_scores",
    "read_readiness",
    "share_seats",
    "team_readiness",
    "validate_readiness_file",
]

PLAN_COLUMNS = [
    "wave",
    "operating_from",
    "full_from",
    "readiness",
    "readiness_note",
    "need_score",
    "priority_rank",
    "rationale",
]
_LEVEL = {name: i for i, name in enumerate(READINESS_LEVELS)}
# ----------------------------------------------------------------------------- need


def need_scores(areas: pd.DataFrame, assignment: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
    """team_id, under3, share_deprived, need_score.

    need = under3 × (base_weight + deprived_weight × share of the catchment's
    under-3s living in LSOAs with IMD decile <= deprived_max_decile).
    """
    lsoa = assignment[["lsoa21cd", "team_id"]].merge(
        areas[["lsoa21cd", "under3", "imd_decile"]], on="lsoa21cd", how="left", validate="1:1"
    )
    deprived = lsoa["imd_decile"] <= scenario.need_deprived_max_decile
    lsoa = lsoa.assign(u3_deprived=lsoa["under3"].where(deprived, 0.0))
    per = lsoa.groupby("team_id", sort=True)[["under3", "u3_deprived"]].agg(math.fsum)
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


def team_readiness(
    areas: pd.DataFrame, assignment: pd.DataFrame, readiness: pd.DataFrame | None
) -> pd.DataFrame:
    """team_id, readiness, readiness_note, readiness_area (name), readiness_code.

    A catchment takes the best readiness of any listed area it overlaps by
    population (ties: the larger overlap, then the code).
    """
    teams = sorted(assignment["team_id"].astype(str).unique())
    base = pd.DataFrame({"team_id": teams})
    empty = base.assign(readiness="none", readiness_note="", readiness_area="", readiness_code="")
    if readiness is None or readiness.empty:
        return empty
    cols = ["lsoa21cd", *(c for c, _ in CODE_COLUMNS if c in areas.columns)]
    lsoa = assignment[["lsoa21cd", "team_id"]].merge(
        areas[[*cols, "population"]], on="lsoa21cd", how="left", validate="1:1"
    )
    lsoa["team_id"] = lsoa["team_id"].astype(str)
    overlaps = []
    for col in cols[1:]:
        g = lsoa.groupby(["team_id", col], sort=True)["population"].sum().reset_index()
        overlaps.append(g.rename(columns={col: "area_code", "population": "overlap"}))
    per_team = lsoa.groupby("team_id", sort=True)["population"].sum().reset_index()
    overlaps.append(
        per_team.assign(area_code=per_team["team_id"]).rename(columns={"population": "overlap"})
    )
    ov = pd.concat(overlaps, ignore_index=True)
    ov = ov[ov["overlap"] > 0].astype({"area_code": str})
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
    out = base.merge(best, on="team_id", how="left")
    return pd.DataFrame(
        {
            "team_id": out["team_id"],
            "readiness": out["readiness"].fillna("none").astype(str),
            "readiness_note": out["note"].fillna("").astype(str),
            "readiness_area": out["area_name"].fillna("").astype(str),
            "readiness_code": out["area_code"].fillna("").astype(str),
        }
    )


# ----------------------------------------------------------------------------- waves


def share_seats(
    total: int, weights: Mapping[str, int], low: Mapping[str, int], high: Mapping[str, int]
) -> dict[str, int]:
    """Largest remainder with bounds: seats ∝ weights, low[r] <= seats[r] <= high[r].

    Exact (fractions), deterministic (ties go to the earlier key in sorted order).
    """
    keys = sorted(weights)
    fixed: dict[str, int] = {}
    while True:
        free = [k for k in keys if k not in fixed]
        left = total - sum(fixed.values())
        wsum = sum(weights[k] for k in free)
        quota = {k: Fraction(left * weights[k], wsum) if wsum else Fraction(0) for k in free}
        under = [k for k in free if quota[k] < low[k]]
        over = [k for k in free if quota[k] > high[k]]
        if not under and not over:
            break
        for k in under:
            fixed[k] = low[k]
        for k in over:
            fixed[k] = high[k]
    seats = {**fixed, **{k: math.floor(quota[k]) for k in free}}
    short = total - sum(seats.values())
    order = sorted(free, key=lambda k: (-(quota[k] - math.floor(quota[k])), k))
    for k in order:
        if short <= 0:
            break
        if seats[k] < high[k]:
            seats[k] += 1
            short -= 1
    if short != 0 or any(seats[k] < low[k] or seats[k] > high[k] for k in keys):
        raise PlannerError(
            "cannot share the wave's places across regions with these locks",
            field="phasing.locks",
            fix="lock fewer teams into this wave",
        )
    return seats


def _check_locks(locks: Mapping[str, int], teams: list[str], scenario: Scenario) -> None:
    known = set(teams)
    for team, wave in sorted(locks.items()):
        if team not in known:
            raise PlannerError(
                "lock names an unknown team",
                file=scenario.source,
                field=f"phasing.locks.{team}",
                value=team,
                fix="use a team_id from exports/teams.csv",
            )
        if not 1 <= int(wave) <= len(scenario.waves):
            raise PlannerError(
                f"there are {len(scenario.waves)} waves",
                file=scenario.source,
                field=f"phasing.locks.{team}",
                value=wave,
                fix=f"lock to a wave between 1 and {len(scenario.waves)}",
            )
    for w, spec in enumerate(scenario.waves, start=1):
        n = sum(1 for v in locks.values() if int(v) == w)
        if n > spec.teams:
            raise PlannerError(
                f"{n} teams are locked into wave {w}, which has {spec.teams} places",
                file=scenario.source,
                field="phasing.locks",
                value=sorted(t for t, v in locks.items() if int(v) == w),
                fix=f"lock at most {spec.teams} teams into wave {w} (or enlarge the wave)",
            )


def _fill_waves(
    ranked: pd.DataFrame, scenario: Scenario, locks: Mapping[str, int]
) -> tuple[dict[str, int], dict[str, tuple[int, int]]]:
    """team -> wave, and team -> (slot, slots) within its group's share of the wave.

    `ranked` (team_id, group) is in priority order; group is the NHS region
    when regional fair shares are on, else one national group.
    """
    order = list(ranked["team_id"])
    group = dict(zip(ranked["team_id"], ranked["group"], strict=True))
    groups = sorted(set(group.values()))
    wave_of: dict[str, int] = {}
    slot_of: dict[str, tuple[int, int]] = {}
    for w, spec in enumerate(scenario.waves, start=1):
        remaining = [t for t in order if t not in wave_of]
        weights = {g: sum(1 for t in remaining if group[t] == g) for g in groups}
        locked = {
            g: sum(1 for t in remaining if group[t] == g and locks.get(t) == w) for g in groups
        }
        unlocked = {
            g: sum(1 for t in remaining if group[t] == g and t not in locks) for g in groups
        }
        high = {g: unlocked[g] + locked[g] for g in groups}
        seats = share_seats(spec.teams, weights, locked, high)
        for g in groups:
            chosen = [t for t in remaining if group[t] == g and locks.get(t) == w]
            chosen += [t for t in remaining if group[t] == g and t not in locks][
                : seats[g] - len(chosen)
            ]
            chosen.sort(key=order.index)
            for i, t in enumerate(chosen, start=1):
                wave_of[t] = w
                slot_of[t] = (i, seats[g])
    return wave_of, slot_of


# ----------------------------------------------------------------------------- the plan


def assign_phasing(
    catchments: pd.DataFrame,
    areas: pd.DataFrame,
    assignment: pd.DataFrame,
    readiness: pd.DataFrame | None,
    scenario: Scenario,
    locks: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """The plan: catchment fields (no geometry) + wave, dates, readiness, need, rank, rationale.

    Pure. `locks` (team_id -> wave) are added to, and override, the scenario's.
    Sorted by team_id.
    """
    cols = [c for c in catchments.columns if c != "geometry"]
    plan = pd.DataFrame(catchments[cols]).copy()
    plan["team_id"] = plan["team_id"].astype(str)
    plan = plan.sort_values("team_id", kind="stable").reset_index(drop=True)
    if "nhser24nm" not in plan.columns:
        names = areas[["nhser24cd", "nhser24nm"]].drop_duplicates("nhser24cd")
        plan = plan.merge(names, on="nhser24cd", how="left")
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
    _check_locks(all_locks, teams, scenario)

    need = need_scores(areas, assignment, scenario)[["team_id", "need_score"]]
    ready = team_readiness(areas, assignment, readiness)
    plan = plan.merge(need, on="team_id", how="left").merge(ready, on="team_id", how="left")
    plan["need_score"] = plan["need_score"].fillna(0.0)
    plan["readiness"] = plan["readiness"].fillna("none")
    for c in ("readiness_note", "readiness_area"):
        plan[c] = plan[c].fillna("")

    level = plan["readiness"].map(_LEVEL)
    ranked = plan.assign(level=level, neg_need=-plan["need_score"]).sort_values(
        ["level", "neg_need", "team_id"], kind="stable"
    )
    plan["priority_rank"] = 0
    plan.loc[ranked.index, "priority_rank"] = range(1, len(plan) + 1)
    need_order = plan.assign(neg_need=-plan["need_score"]).sort_values(["neg_need", "team_id"])
    need_rank = dict(zip(need_order["team_id"], range(1, len(plan) + 1), strict=True))

    group = ranked["nhser24cd"].astype(str) if scenario.regional_fair_shares else "England"
    wave_of, slot_of = _fill_waves(
        pd.DataFrame({"team_id": ranked["team_id"], "group": group}), scenario, all_locks
    )
    plan["wave"] = plan["team_id"].map(wave_of).astype("int64")
    dates = {w: wave_dates(scenario, w) for w in range(1, len(scenario.waves) + 1)}
    plan["operating_from"] = plan["wave"].map(lambda w: dates[w][0]).astype(str)
    plan["full_from"] = plan["wave"].map(lambda w: dates[w][1]).astype(str)

    n = len(plan)
    rationale = []
    for r in plan.itertuples(index=False):
        if r.readiness == "none":
            first = f"no service in {r.readiness_area}" if r.readiness_area else "no known service"
        else:
            first = f"{r.readiness} service in {r.readiness_area}"
        slot, slots = slot_of[r.team_id]
        where = f"for {r.nhser24nm}" if scenario.regional_fair_shares else "nationally"
        place = f"wave-{r.wave} slot {slot} of {slots} {where}"
        if r.team_id in all_locks:
            place = f"locked into wave {r.wave}; {place}"
        rationale.append(f"{first}; need rank {need_rank[r.team_id]} of {n}; {place}")
    plan["rationale"] = rationale
    plan = plan.drop(columns=["readiness_area", "readiness_code"])
    return plan[[*(c for c in plan.columns if c not in PLAN_COLUMNS), *PLAN_COLUMNS]]

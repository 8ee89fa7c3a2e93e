"""Waves: which wave each team starts in, given the priority order.

Each wave is filled in three steps (scenarios/proposal-2021.toml says the same):
1. teams holding an operating service, whatever the regional shares (existing
   services first, proposal §24). If they outnumber the places left by locks,
   `operating_overflow` decides: "push" keeps, in priority order, first the
   teams holding at least half of a service's area (a service's own team),
   then the teams that are mostly inside a larger service area (one of the
   three Leeds teams), highest need first within each, and moves the rest to
   the next wave (where they go first again); "widen" enlarges the wave and
   takes the extra places from the following waves.
2. with `first_team_by_wave` = W, in wave W the best-ranked team of every ICB
   with no team yet, as far as the places allow (best-ranked ICBs first).
3. the places left are shared across the groups (NHS regions, or one national
   group) by largest remainder in proportion to `share_by` over the teams not
   yet placed; teams locked into the wave count towards their region's share;
   each group fills its share in priority order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

import pandas as pd

from planner.config import Scenario
from planner.errors import PlannerError

# how a team got its wave
BY_SHARE = "share"
BY_SERVICE = "existing service"
PUSHED = "existing service, pushed"
FIRST_TEAM = "first team of its ICB"


def share_seats(
    total: int,
    weights: Mapping[str, float | Fraction],
    low: Mapping[str, int],
    high: Mapping[str, int],
) -> dict[str, int]:
    """Largest remainder with bounds: seats ∝ weights, low[r] <= seats[r] <= high[r].

    Exact (fractions), deterministic (ties go to the earlier key in sorted order).
    """
    keys = sorted(weights)
    exact = {k: Fraction(weights[k]) for k in keys}
    fixed: dict[str, int] = {}
    while True:
        free = [k for k in keys if k not in fixed]
        left = total - sum(fixed.values())
        wsum = sum(exact[k] for k in free)
        quota = {k: left * exact[k] / wsum if wsum else Fraction(0) for k in free}
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


def check_locks(locks: Mapping[str, int], teams: list[str], scenario: Scenario) -> None:
    """Every lock names a known team and a wave that has room for it."""
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


@dataclass(frozen=True)
class WaveFill:
    """The waves: team -> wave, how it got there, its slot in its group's share, wave sizes."""

    wave: dict[str, int]
    how: dict[str, str]
    slot: dict[str, tuple[int, int]]
    sizes: tuple[int, ...]


def _widen(sizes: list[int], w: int, extra: int) -> None:
    """Wave w (1-based) gets `extra` more places, taken from the following waves in order."""
    sizes[w - 1] += extra
    for v in range(w, len(sizes)):
        take = min(extra, sizes[v])
        sizes[v] -= take
        extra -= take


def fill_waves(ranked: pd.DataFrame, scenario: Scenario, locks: Mapping[str, int]) -> WaveFill:
    """Fill the waves from `ranked` (priority order).

    Columns: team_id, group, icb24cd, operating, holds_service (the team holds
    at least half of an operating service's area) and weight (what a group's
    share follows: 1, population or need, by `share_by`).
    """
    order = list(ranked["team_id"])
    holds = dict(zip(order, ranked["holds_service"].astype(bool), strict=True))
    group = dict(zip(order, ranked["group"], strict=True))
    icb = dict(zip(order, ranked["icb24cd"], strict=True))
    operating = dict(zip(order, ranked["operating"].astype(bool), strict=True))
    weight = dict(zip(order, ranked["weight"].astype(float), strict=True))
    groups = sorted(set(group.values()))
    sizes = list(scenario.wave_sizes)
    wave_of: dict[str, int] = {}
    how: dict[str, str] = {}
    slot_of: dict[str, tuple[int, int]] = {}
    pushed: set[str] = set()
    for w in range(1, len(sizes) + 1):
        remaining = [t for t in order if t not in wave_of]
        locked_here = [t for t in remaining if locks.get(t) == w]
        room = sizes[w - 1] - len(locked_here)
        if room < 0:
            raise PlannerError(
                f"{len(locked_here)} teams are locked into wave {w}, which has only "
                f"{sizes[w - 1]} places once wave one is widened for existing services",
                file=scenario.source,
                field="phasing.locks",
                value=sorted(locked_here),
                fix='lock fewer teams into that wave, or set phasing.operating_overflow = "push"',
            )
        services = [t for t in remaining if operating[t] and t not in locks]
        services.sort(key=lambda t: not holds[t])  # stable: priority order within each
        if len(services) > room and scenario.operating_overflow == "widen":
            _widen(sizes, w, len(services) - room)
            room = len(services)
        for t in services[:room]:
            wave_of[t], how[t] = w, (PUSHED if t in pushed else BY_SERVICE)
        pushed.update(services[room:])
        room -= min(room, len(services))
        if scenario.first_team_by_wave == w:
            served = {icb[t] for t in wave_of}
            for t in remaining:
                if room == 0:
                    break
                if t not in wave_of and t not in locks and icb[t] not in served:
                    wave_of[t], how[t] = w, FIRST_TEAM
                    served.add(icb[t])
                    room -= 1
        # step 3: the places left, shared across groups; locks count towards their group's share
        room += len(locked_here)
        waiting = [t for t in remaining if t not in wave_of]
        eligible = [t for t in waiting if locks.get(t, w) == w]
        weights = {g: math.fsum(weight[t] for t in waiting if group[t] == g) for g in groups}
        low = {g: sum(1 for t in locked_here if group[t] == g) for g in groups}
        high = {g: sum(1 for t in eligible if group[t] == g) for g in groups}
        seats = share_seats(room, weights, low, high)
        for g in groups:
            mine = [t for t in eligible if group[t] == g]
            chosen = [t for t in mine if t in locks]
            chosen += [t for t in mine if t not in locks][: seats[g] - len(chosen)]
            chosen.sort(key=order.index)
            for i, t in enumerate(chosen, start=1):
                wave_of[t], how[t] = w, BY_SHARE
                slot_of[t] = (i, seats[g])
    return WaveFill(wave_of, how, slot_of, tuple(sizes))

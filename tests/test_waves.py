"""Waves: bounded largest remainder, existing services first, overflow, first team per ICB."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from planner import waves
from planner.config import Scenario, Wave, default_scenario
from planner.errors import PlannerError


def test_share_seats_bounds() -> None:
    seats = waves.share_seats(10, {"a": 5, "b": 5}, {"a": 8, "b": 0}, {"a": 9, "b": 5})
    assert seats == {"a": 8, "b": 2}
    seats = waves.share_seats(4, {"a": 10, "b": 1}, {"a": 0, "b": 0}, {"a": 3, "b": 5})
    assert seats == {"a": 3, "b": 1}
    assert waves.share_seats(
        3, {"a": 1, "b": 1, "c": 1}, dict.fromkeys("abc", 0), dict.fromkeys("abc", 9)
    ) == {"a": 1, "b": 1, "c": 1}
    assert waves.share_seats(
        2, {"c": 1, "a": 1, "b": 1}, dict.fromkeys("abc", 0), dict.fromkeys("abc", 9)
    ) == {"a": 1, "b": 1, "c": 0}
    # float weights (population, need) are shared exactly
    assert waves.share_seats(
        3, {"a": 0.6, "b": 0.3, "c": 0.1}, dict.fromkeys("abc", 0), dict.fromkeys("abc", 9)
    ) == {"a": 2, "b": 1, "c": 0}
    with pytest.raises(PlannerError):
        waves.share_seats(5, {"a": 1}, {"a": 0}, {"a": 3})


def small(**options: object) -> Scenario:
    """A scenario of 10 teams in three waves of 2, 3 and 5."""
    return dataclasses.replace(
        default_scenario(),
        teams=10,
        waves=(Wave(2, "2022/23", False), Wave(3, "2022/23", True), Wave(5, "2023/24", True)),
        **options,
    )


def ranked(operating: int) -> pd.DataFrame:
    """Ten teams in priority order: two regions, five ICBs; the first `operating` have a service."""
    ids = [f"T{i}" for i in range(10)]
    return pd.DataFrame(
        {
            "team_id": ids,
            "group": ["A", "B"] * 5,
            "icb24cd": [f"I{i % 5}" for i in range(10)],
            "operating": [i < operating for i in range(10)],
            "holds_service": True,
            "weight": 1.0,
        }
    )


def test_existing_services_first_then_shares() -> None:
    fill = waves.fill_waves(ranked(1), small(), {})
    assert fill.wave["T0"] == 1 and fill.how["T0"] == waves.BY_SERVICE
    assert fill.wave["T1"] == 1 and fill.slot["T1"] == (1, 1)
    assert fill.sizes == (2, 3, 5)


def test_overflow_push_and_widen() -> None:
    fill = waves.fill_waves(ranked(3), small(), {})
    assert [fill.wave[t] for t in ("T0", "T1", "T2")] == [1, 1, 2]
    assert fill.how["T2"] == waves.PUSHED and fill.sizes == (2, 3, 5)
    fill = waves.fill_waves(ranked(3), small(operating_overflow="widen"), {})
    assert [fill.wave[t] for t in ("T0", "T1", "T2")] == [1, 1, 1]
    assert fill.sizes == (3, 2, 5)
    assert sorted(fill.wave.values()) == [1] * 3 + [2] * 2 + [3] * 5


def test_overflow_keeps_a_services_own_teams_first() -> None:
    """T0 is one of several teams inside a larger service area; T1 and T2 hold their services."""
    teams = ranked(3).assign(holds_service=[False] + [True] * 9)
    fill = waves.fill_waves(teams, small(), {})
    assert [fill.wave[t] for t in ("T0", "T1", "T2")] == [2, 1, 1]


def test_locks_come_before_services() -> None:
    fill = waves.fill_waves(ranked(2), small(), {"T9": 1})
    assert fill.wave["T9"] == 1 and fill.wave["T0"] == 1 and fill.wave["T1"] == 2
    fill = waves.fill_waves(ranked(2), small(operating_overflow="widen"), {"T9": 1})
    assert fill.sizes == (3, 2, 5) and {fill.wave[t] for t in ("T0", "T1", "T9")} == {1}


def test_first_team_by_wave() -> None:
    fill = waves.fill_waves(ranked(0), small(first_team_by_wave=2), {})
    by_icb: dict[str, int] = {}
    for i in range(10):
        by_icb[f"I{i % 5}"] = min(by_icb.get(f"I{i % 5}", 9), fill.wave[f"T{i}"])
    assert max(by_icb.values()) == 2
    assert [t for t, h in fill.how.items() if h == waves.FIRST_TEAM] == ["T2", "T3", "T4"]

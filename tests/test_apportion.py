"""Teams per ICB by largest remainder with a minimum: exact, deterministic, quota-respecting."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.apportion import apportion
from planner.errors import PlannerError


def test_simple_hamilton_and_columns() -> None:
    pop = pd.Series({"B": 500.0, "A": 300.0, "C": 200.0})
    out = apportion(pop, total=10)
    assert list(out.index) == ["A", "B", "C"]
    assert list(out.columns) == ["population", "quota", "teams", "mean_catchment"]
    assert out["teams"].to_dict() == {"A": 3, "B": 5, "C": 2}
    assert out.loc["A", "mean_catchment"] == pytest.approx(100.0)
    assert out["quota"].sum() == pytest.approx(10)


def test_largest_remainder_gets_the_extra_seat() -> None:
    # quotas 2.5, 2.3, 2.2 for 7 seats: floors sum to 6, the 0.5 remainder wins
    pop = pd.Series({"X": 25, "Y": 23, "Z": 22})
    assert apportion(pop, total=7)["teams"].to_dict() == {"X": 3, "Y": 2, "Z": 2}


def test_ties_broken_by_code_whatever_the_input_order() -> None:
    pop = pd.Series({"Q": 1, "P": 1, "R": 1})
    a = apportion(pop, total=4)
    b = apportion(pop.iloc[::-1], total=4)
    assert a["teams"].to_dict() == {"P": 2, "Q": 1, "R": 1}
    pd.testing.assert_frame_equal(a, b)


def test_minimum_first_for_small_areas() -> None:
    pop = pd.Series({"big": 990, "tiny": 10})
    out = apportion(pop, total=5)
    assert out["teams"].to_dict() == {"big": 4, "tiny": 1}


def test_england_default_is_about_280k_per_team() -> None:
    pop = pd.Series({f"E{i:02d}": 1_000_000 + 37_001 * i for i in range(42)})
    out = apportion(pop)
    assert out["teams"].sum() == 202
    assert (out["teams"] >= 1).all()


@pytest.mark.parametrize(
    ("pop", "total"),
    [
        (pd.Series(dtype=float), 5),
        (pd.Series({"A": 1.0, "B": 2.0}), 1),
        (pd.Series({"A": -1.0, "B": 2.0}), 4),
        (pd.Series({"A": float("nan"), "B": 2.0}), 4),
        (pd.Series({"A": 0.0, "B": 0.0}), 4),
        (pd.Series({"A": 1.0}), 0),
    ],
)
def test_invalid_input_is_a_planner_error(pop: pd.Series, total: int) -> None:
    with pytest.raises(PlannerError):
        apportion(pop, total=total)


def test_error_names_the_bad_row() -> None:
    with pytest.raises(PlannerError, match="row Bad"):
        apportion(pd.Series({"Good": 5.0, "Bad": -3.0}), total=3)


populations = st.lists(
    st.integers(min_value=0, max_value=5_000_000), min_size=1, max_size=45
).filter(lambda xs: sum(xs) > 0)


@settings(max_examples=200, deadline=None)
@given(populations, st.integers(min_value=0, max_value=300))
def test_sums_to_total_and_minimum_kept(pops: list[int], extra: int) -> None:
    pop = pd.Series({f"C{i:03d}": p for i, p in enumerate(pops)})
    total = len(pops) + extra
    out = apportion(pop, total=total)
    assert out["teams"].sum() == total
    assert (out["teams"] >= 1).all()


@settings(max_examples=200, deadline=None)
@given(populations, st.integers(min_value=0, max_value=300))
def test_quota_rule_when_every_quota_is_at_least_one(pops: list[int], extra: int) -> None:
    pop = pd.Series({f"C{i:03d}": p for i, p in enumerate(pops)})
    total = len(pops) + extra
    quotas = [p * total / sum(pops) for p in pops]
    if min(quotas) < 1:
        return
    out = apportion(pop, total=total)
    for q, t in zip(out["quota"], out["teams"], strict=True):
        assert math.floor(q + 1e-9) <= t <= math.ceil(q - 1e-9)

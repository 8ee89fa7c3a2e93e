"""Own-district starts: a district worth a whole number of catchments is held in its own."""

from __future__ import annotations

import numpy as np
import pytest
from test_partition import grid_graph

from planner.partition.graph import RegionGraph
from planner.partition.objective import OBJECTIVES
from planner.partition.own import own_district_candidates, own_district_starts
from planner.partition.starts import straight_cut

LA = OBJECTIVES["la_aligned"]


def columns(w: int, h: int, widths: list[int]) -> np.ndarray:
    """District per cell of a w x h grid: vertical bands of the given widths."""
    band = np.repeat(np.arange(len(widths)), widths)
    return np.tile(band, h)


def centres(w: int, h: int) -> np.ndarray:
    return np.column_stack([np.tile(np.arange(w), h), np.repeat(np.arange(h), w)]).astype(float)


def strips(calls: list[tuple[int, int, float]]):
    """A draw_rest that cuts the rest into vertical strips and records what it was asked."""

    def draw(sub: RegionGraph, n: int, tolerance: float) -> np.ndarray:
        calls.append((sub.n, n, tolerance))
        return straight_cut(sub.centre, sub.pop_array, n, 0.0)

    return draw


def held_alone(labels: np.ndarray, district: np.ndarray, d: int, n: int) -> bool:
    """District d lies in exactly n catchments, which hold nothing else."""
    own = np.unique(labels[district == d])
    return len(own) == n and bool((district[np.isin(labels, own)] == d).all())


def test_candidates_are_districts_worth_a_whole_number_of_catchments() -> None:
    # 12 x 4 cells, 6 catchments of 8: district 0 (16 people) makes 2; district 1 (12)
    # makes 1.5, districts 2 and 3 fit in one.
    district = columns(12, 4, [4, 3, 3, 2])
    g, _ = grid_graph(12, 4, district=district)
    assert own_district_candidates(g, 6, 0.10) == [0]


def test_each_start_holds_the_district_in_its_own_catchments() -> None:
    district = columns(12, 4, [4, 2, 2, 2, 2])
    g, _ = grid_graph(12, 4, district=district, centre=centres(12, 4))
    calls: list[tuple[int, int, float]] = []
    starts = own_district_starts(
        g, 6, tolerance=0.10, seed=0, objective=LA, draw_rest=strips(calls)
    )
    assert starts
    for labels in starts:
        assert sorted(np.unique(labels)) == list(range(6))
        assert held_alone(labels, district, 0, 2)
    # the apart drawing drew the one rest (8 columns, 32 people) into 4 catchments
    assert calls == [(32, 4, pytest.approx(0.10))]
    assert len({labels.tobytes() for labels in starts}) == len(starts)  # each once


def test_same_seed_same_starts() -> None:
    district = columns(12, 4, [4, 3, 3, 2])
    g1, _ = grid_graph(12, 4, district=district, centre=centres(12, 4))
    g2, _ = grid_graph(12, 4, district=district, centre=centres(12, 4))
    one = own_district_starts(g1, 6, tolerance=0.10, seed=3, objective=LA, draw_rest=strips([]))
    two = own_district_starts(g2, 6, tolerance=0.10, seed=3, objective=LA, draw_rest=strips([]))
    assert [a.tolist() for a in one] == [b.tolist() for b in two]


def test_a_district_in_unbalanced_pieces_is_not_drawn_apart() -> None:
    # district 0 is two bands, 4 people at the left edge and 12 at the right: 16 people
    # make 2 catchments, but neither piece makes whole ones, so nothing is drawn apart.
    district = columns(12, 4, [1, 3, 5, 3])
    district[district == 3] = 0
    g, _ = grid_graph(12, 4, district=district, centre=centres(12, 4))
    calls: list[tuple[int, int, float]] = []
    own_district_starts(g, 6, tolerance=0.10, seed=0, objective=LA, draw_rest=strips(calls))
    assert own_district_candidates(g, 6, 0.10) == [0]
    assert calls == []

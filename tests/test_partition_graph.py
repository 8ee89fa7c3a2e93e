"""RegionGraph's district helpers: pieces, sizes and piece subgraphs."""

from __future__ import annotations

import numpy as np
from test_partition import grid

from planner.partition.graph import RegionGraph, subgraph


def graph_with_districts() -> RegionGraph:
    """A 4 x 3 grid: district 0 in two pieces (columns 0 and 3), district 1 between them."""
    edges, area, perim = grid(4, 3)
    district = np.array([0, 1, 1, 0] * 3)
    pop = np.arange(12, dtype=float) + 1
    return RegionGraph(
        pop, area, perim, district, edges["a"].to_numpy(), edges["b"].to_numpy(),
        edges["shared_length"].to_numpy(float),
    )  # fmt: skip


def test_district_pieces_split_a_district_in_two_places() -> None:
    g = graph_with_districts()
    piece, piece_pop, piece_district = g.district_pieces
    assert len(piece_pop) == 3
    assert piece[0] == piece[4] == piece[8] != piece[3]
    assert set(piece[[1, 2, 5, 6, 9, 10]]) == {piece[1]}
    assert piece_pop[piece[0]] == 1 + 5 + 9
    assert piece_district[piece[3]] == 0 and piece_district[piece[1]] == 1
    assert piece[0] == 0  # numbered by lowest area


def test_districts_by_size_largest_first() -> None:
    g = graph_with_districts()
    pop = g.pop_array
    sizes = {0: pop[[0, 3, 4, 7, 8, 11]].sum(), 1: pop[[1, 2, 5, 6, 9, 10]].sum()}
    assert g.districts_by_size == sorted(sizes.items(), key=lambda t: -t[1])


def test_piece_graph_is_the_subgraph_of_the_piece_and_built_once() -> None:
    g = graph_with_districts()
    piece = g.district_pieces[0]
    rows, sub = g.piece_graph(int(piece[3]))
    np.testing.assert_array_equal(rows, [3, 7, 11])
    expected = subgraph(g, rows)
    np.testing.assert_array_equal(sub.indptr, expected.indptr)
    np.testing.assert_array_equal(sub.indices, expected.indices)
    np.testing.assert_array_equal(sub.pop_array, expected.pop_array)
    assert g.piece_graph(int(piece[3]))[1] is sub

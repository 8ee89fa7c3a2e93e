"""The compiled kernels agree with the Python objective, and warm-up compiles what runs."""

from __future__ import annotations

import numpy as np
from test_partition import grid, region

from planner.partition import kernels, partition_region
from planner.partition.graph import Labelling
from planner.partition.objective import OBJECTIVES


def test_kernel_move_delta_and_apply_match_the_python_objective() -> None:
    rng = np.random.default_rng(8)
    edges, area, perim = grid(7, 6)
    dist = np.arange(42) % 7 // 3
    g = region(rng.integers(80, 120, size=42), edges, area, perim, dist)
    for name, objective in OBJECTIVES.items():
        st = Labelling(g, np.arange(42) // 14, 3, objective)
        flat = st.flat()
        w = objective.kernel_weights()
        for _ in range(150):
            u = int(rng.integers(42))
            b = int(rng.choice([st.labels[v] for v in g.nbrs[u]]))
            if b == st.labels[u] or st.sizes[st.labels[u]] == 1:
                continue
            lab, _, parea, pperim, _, dcnt, dparts = flat
            compiled = kernels.move_delta(
                u, b, g.indptr, g.indices, g.weights, g.perim_array, g.area_array,
                g.district_array, lab, pperim, parea, dcnt, dparts, w,
            )  # fmt: skip
            assert compiled == st.move_delta(u, b), name  # the same arithmetic, bit for bit
            st.apply(u, b)
            kernels.apply_move(
                u, b, g.indptr, g.indices, g.weights, g.pop_array, g.perim_array,
                g.area_array, g.district_array, flat,
            )  # fmt: skip
            again = Labelling(g, np.asarray(st.labels), 3, objective).flat()
            for mine, fresh in zip(flat, again, strict=True):
                np.testing.assert_allclose(mine, fresh, rtol=0, atol=1e-6)


def test_warm_up_compiles_the_signatures_the_search_uses() -> None:
    kernels.warm_up()
    before = [
        len(f.signatures) for f in (kernels.improve_pass, kernels.compound_pass, kernels.shift)
    ]
    edges, area, perim = grid(8, 8)
    partition_region(
        region(np.ones(64), edges, area, perim, np.arange(64) // 16), 4, tolerance=0.05
    )
    graph = region(np.ones(64), edges, area, perim)
    partition_region(graph, 4, tolerance=0.005, preset="equal_size")
    after = [
        len(f.signatures) for f in (kernels.improve_pass, kernels.compound_pass, kernels.shift)
    ]
    assert after == before == [1, 1, 1]


def test_catchment_pieces_number_pieces_as_scipy_does() -> None:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rng = np.random.default_rng(3)
    edges, area, perim = grid(9, 7)
    g = region(np.ones(63), edges, area, perim)
    for _ in range(20):
        lab = rng.integers(0, 4, size=63)
        same = lab[g.a] == lab[g.b]
        graph = coo_matrix((np.ones(int(same.sum())), (g.a[same], g.b[same])), shape=(63, 63))
        _, expected = connected_components(graph, directed=False)
        np.testing.assert_array_equal(kernels.catchment_pieces(g.indptr, g.indices, lab), expected)
        st = Labelling(g, lab, 4, OBJECTIVES["equal_size"])
        pieces = [st.components(p) for p in range(4)]
        assert st.fragmented() == {p for p in range(4) if len(pieces[p]) > 1}
        for p in range(4):
            assert sorted(u for c in pieces[p] for u in c) == np.flatnonzero(lab == p).tolist()
            assert [c[0] for c in pieces[p]] == sorted(c[0] for c in pieces[p])

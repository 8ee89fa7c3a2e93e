"""The region graph, a labelling of it and the score the search minimises.

The score is Σ 1/Polsby-Popper over the catchments (a steep extra cost below
PP_FLOOR) plus a penalty per extra district fragment and (aligned preset) per
split district.  `Labelling` keeps each catchment's population, area, perimeter
and district counts up to date move by move:
P = Σ perimeter − 2 Σ shared length of internal edges.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from planner.partition.kernels import catchment_pieces
from planner.partition.objective import FOUR_PI, Objective


class RegionGraph:
    """The areas of one region and how they touch: what a partition is drawn on.

    Per area (0..n-1): `pop` (people), `area` (m²), `perim` (perimeter, m),
    `district` (an integer code, e.g. the local authority) and, when known,
    `centre` ((n, 2) metres).  Edges `a`–`b` join neighbouring areas, with
    `length` the shared boundary in metres (0 for a bridge to an island).
    The adjacency is kept both as lists (`nbrs`, `lens`: the Python loops)
    and in CSR form (`indptr`, `indices`, `weights`: METIS and the compiled
    kernels), each edge at both ends in edge order.
    """

    @cached_property
    def nbrs(self) -> list[list[int]]:
        """Neighbours of each area (built on first use: METIS needs only the CSR form)."""
        bounds, flat = self.indptr.tolist(), self.indices.tolist()
        return [flat[bounds[i] : bounds[i + 1]] for i in range(self.n)]

    @cached_property
    def lens(self) -> list[list[float]]:
        """Shared lengths, aligned with `nbrs`."""
        bounds, flat = self.indptr.tolist(), self.weights.tolist()
        return [flat[bounds[i] : bounds[i + 1]] for i in range(self.n)]

    @cached_property
    def district_pieces(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Connected pieces of each district: piece per area, then population and district
        per piece (pieces numbered by lowest area)."""
        same = self.district_array[self.a] == self.district_array[self.b]
        n = self.n
        m = coo_matrix((np.ones(int(same.sum())), (self.a[same], self.b[same])), shape=(n, n))
        _, piece = connected_components(m, directed=False)
        piece_pop = np.bincount(piece, weights=self.pop_array)
        piece_district = np.zeros(len(piece_pop), dtype=np.int64)
        piece_district[piece] = self.district_array
        return piece, piece_pop, piece_district

    @cached_property
    def districts_by_size(self) -> list[tuple[int, float]]:
        """(district, population) of each district, largest first (ties: lower code first)."""
        pops = pd.Series(self.pop_array).groupby(self.district_array).sum()
        order = pops.sort_values(ascending=False, kind="stable")
        return list(zip(order.index.tolist(), order.tolist(), strict=True))

    def piece_graph(self, piece: int) -> tuple[np.ndarray, RegionGraph]:
        """The areas of one district piece (see district_pieces) and their graph, built once."""
        cache = self.__dict__.setdefault("_piece_graphs", {})
        if piece not in cache:
            rows = np.flatnonzero(self.district_pieces[0] == piece)
            cache[piece] = (rows, subgraph(self, rows))
        return cache[piece]

    # The per-area arrays as lists, for the Python loops (built on first use).
    pop = cached_property(lambda self: self.pop_array.tolist())
    area = cached_property(lambda self: self.area_array.tolist())
    perim = cached_property(lambda self: self.perim_array.tolist())
    district = cached_property(lambda self: self.district_array.tolist())

    @classmethod
    def from_edges(
        cls,
        population: np.ndarray,
        edges: pd.DataFrame,
        *,
        area: np.ndarray,
        perimeter: np.ndarray,
        district: np.ndarray | None = None,
        centre: np.ndarray | None = None,
    ) -> RegionGraph:
        """From an edge table (columns a, b and, optionally, shared_length; else 1 m each)."""
        a = edges["a"].to_numpy(dtype=np.int64)
        length = (
            edges["shared_length"].to_numpy(dtype=float)
            if "shared_length" in edges
            else np.ones(len(a))
        )
        n = len(population)
        return cls(
            np.asarray(population, dtype=float),
            np.asarray(area, dtype=float),
            np.asarray(perimeter, dtype=float),
            np.zeros(n, dtype=np.int64) if district is None else np.asarray(district, np.int64),
            a,
            edges["b"].to_numpy(dtype=np.int64),
            length,
            centre,
        )

    def __init__(
        self,
        pop: np.ndarray,
        area: np.ndarray,
        perim: np.ndarray,
        district: np.ndarray,
        a: np.ndarray,
        b: np.ndarray,
        length: np.ndarray,
        centre: np.ndarray | None = None,
    ) -> None:
        self.n = len(pop)
        # (n, 2) area centres in metres, when known: straight-cut starts need them
        self.centre = None if centre is None else np.asarray(centre, dtype=float)
        # Per area, as arrays (numpy, the compiled kernels); lists for the Python loops below.
        self.pop_array = np.asarray(pop, dtype=float)
        self.area_array = np.asarray(area, dtype=float)
        self.perim_array = np.asarray(perim, dtype=float)
        self.district_array = np.asarray(district, dtype=np.int64)
        self.n_districts = int(self.district_array.max()) + 1 if self.n else 0
        # Adjacency in CSR form: each edge listed at both ends, in edge order (loops dropped).
        a = np.asarray(a, dtype=np.int64)
        b = np.asarray(b, dtype=np.int64)
        length = np.asarray(length, dtype=float)
        real = a != b
        m = int(real.sum())
        src = np.concatenate([a[real], b[real]])
        dst = np.concatenate([b[real], a[real]])
        order = np.lexsort((np.concatenate([np.arange(m), np.arange(m)]), src))
        self.indptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=self.n))])
        self.indices = dst[order]
        self.weights = np.concatenate([length[real], length[real]])[order]
        self.a, self.b, self.length = a, b, length

    @property
    def kernel_arrays(self) -> tuple[np.ndarray, ...]:
        """The graph as the compiled kernels take it: CSR adjacency, then the area attributes."""
        return (
            self.indptr,
            self.indices,
            self.weights,
            self.pop_array,
            self.perim_array,
            self.area_array,
            self.district_array,
        )


def flood(g: RegionGraph, start: int, member: Callable[[int], bool], seen: set[int]) -> list[int]:
    """The connected areas around `start` for which `member` holds (depth first); marks them seen."""
    comp = [start]
    seen.add(start)
    stack = [start]
    while stack:
        x = stack.pop()
        for y in g.nbrs[x]:
            if y not in seen and member(y):
                seen.add(y)
                comp.append(y)
                stack.append(y)
    return comp


class Labelling:
    """Catchment labels of a graph's areas, with running totals a move updates in O(degree).

    `labels[u]` is area u's catchment (0..k-1).  Per catchment: `populations`,
    `areas`, `perimeters` (Σ area perimeters − 2 Σ shared length of internal
    edges) and `sizes` (areas).  `district_counts[(d, p)]` counts the areas of
    district d in catchment p, `district_parts[d]` the catchments holding d.
    `objective` scores it; `move_delta` and `apply` are the single move.
    """

    def __init__(
        self,
        g: RegionGraph,
        labels: np.ndarray,
        k: int,
        objective: Objective,
    ) -> None:
        self.g = g
        self.k = k
        self.labels = np.asarray(labels, dtype=np.int64).tolist()
        self.objective = objective
        self.recompute()

    def recompute(self) -> None:
        """Catchment totals and district counts from the labels alone."""
        g, k = self.g, self.k
        lab = np.asarray(self.labels, dtype=np.int64)
        self.populations = np.bincount(lab, weights=g.pop_array, minlength=k).tolist()
        self.areas = np.bincount(lab, weights=g.area_array, minlength=k).tolist()
        self.sizes = np.bincount(lab, minlength=k).tolist()
        inside = lab[g.a] == lab[g.b]
        perim = np.bincount(lab, weights=g.perim_array, minlength=k)
        perim -= 2.0 * np.bincount(lab[g.a[inside]], weights=g.length[inside], minlength=k)
        self.perimeters = perim.tolist()
        district = g.district_array
        pairs, counts = np.unique(district * k + lab, return_counts=True)
        self.district_counts = {
            (d, p): c
            for d, p, c in zip(
                (pairs // k).tolist(), (pairs % k).tolist(), counts.tolist(), strict=True
            )
        }
        parts = np.unique(pairs // k, return_counts=True)
        self.district_parts = dict(zip(parts[0].tolist(), parts[1].tolist(), strict=True))

    # -- flat arrays for the compiled kernels -------------------------------------------
    def flat(self) -> tuple:
        """(labels, pop, area, perimeter, sizes, district × catchment counts, district parts)."""
        dcnt = np.zeros((self.g.n_districts, self.k), dtype=np.int64)
        for (d, p), c in self.district_counts.items():
            dcnt[d, p] = c
        dparts = np.zeros(self.g.n_districts, dtype=np.int64)
        for d, c in self.district_parts.items():
            dparts[d] = c
        return (
            np.asarray(self.labels, dtype=np.int64),
            np.asarray(self.populations, dtype=float),
            np.asarray(self.areas, dtype=float),
            np.asarray(self.perimeters, dtype=float),
            np.asarray(self.sizes, dtype=np.int64),
            dcnt,
            dparts,
        )

    def load(self, flat: tuple) -> None:
        """Take the state back from `flat` (after a kernel changed it); lists keep identity."""
        lab, ppop, parea, pperim, size, dcnt, dparts = flat
        self.labels[:] = lab.tolist()
        self.populations[:] = ppop.tolist()
        self.areas[:] = parea.tolist()
        self.perimeters[:] = pperim.tolist()
        self.sizes[:] = size.tolist()
        d, p = np.nonzero(dcnt)
        self.district_counts = dict(
            zip(zip(d.tolist(), p.tolist(), strict=True), dcnt[d, p].tolist(), strict=True)
        )
        (present,) = np.nonzero(dparts)
        self.district_parts = dict(zip(present.tolist(), dparts[present].tolist(), strict=True))

    def move_delta(self, u: int, b: int) -> float:
        """Change in the objective's cost if area u moves to catchment b."""
        return self.objective.move_delta(self, u, b)

    def apply(self, u: int, b: int) -> None:
        g, lab = self.g, self.labels
        a = lab[u]
        sa = sb = 0.0
        for v, w in zip(g.nbrs[u], g.lens[u], strict=True):
            if lab[v] == a:
                sa += w
            elif lab[v] == b:
                sb += w
        self.perimeters[a] += -g.perim[u] + 2.0 * sa
        self.perimeters[b] += g.perim[u] - 2.0 * sb
        self.areas[a] -= g.area[u]
        self.areas[b] += g.area[u]
        self.populations[a] -= g.pop[u]
        self.populations[b] += g.pop[u]
        self.sizes[a] -= 1
        self.sizes[b] += 1
        d = g.district[u]
        ca = self.district_counts[(d, a)] - 1
        self.district_counts[(d, a)] = ca
        if ca == 0:
            self.district_parts[d] -= 1
        cb = self.district_counts.get((d, b), 0)
        if cb == 0:
            self.district_parts[d] += 1
        self.district_counts[(d, b)] = cb + 1
        lab[u] = b

    # -- contiguity ----------------------------------------------------------------------
    def can_remove(self, u: int) -> bool:
        """True if catchment lab[u] stays connected (and non-empty) without u."""
        g, lab = self.g, self.labels
        a = lab[u]
        if self.sizes[a] <= 1:
            return False
        same = [v for v in g.nbrs[u] if lab[v] == a]
        if len(same) <= 1:
            return len(same) == 1
        # Local test: the neighbours inside the catchment are linked among themselves.
        ring = set(same)
        seen = {same[0]}
        stack = [same[0]]
        while stack:
            x = stack.pop()
            for y in g.nbrs[x]:
                if y in ring and y not in seen:
                    seen.add(y)
                    stack.append(y)
        if len(seen) == len(ring):
            return True
        # Full test: search the catchment without u until every neighbour is reached.
        missing = ring - seen
        seen.add(u)
        stack = list(seen - {u})
        while stack:
            x = stack.pop()
            for y in g.nbrs[x]:
                if y not in seen and lab[y] == a:
                    seen.add(y)
                    missing.discard(y)
                    if not missing:
                        return True
                    stack.append(y)
        return not missing

    def components(self, p: int) -> list[list[int]]:
        """The connected pieces of catchment p (each sorted), by lowest area first."""
        lab = np.asarray(self.labels, dtype=np.int64)
        rows = np.flatnonzero(lab == p)
        piece = catchment_pieces(self.g.indptr, self.g.indices, lab)[rows]
        _, first = np.unique(piece, return_index=True)
        return [rows[piece == piece[i]].tolist() for i in np.sort(first)]

    def fragmented(self) -> set[int]:
        """Catchments in more than one connected piece."""
        lab = np.asarray(self.labels, dtype=np.int64)
        piece = catchment_pieces(self.g.indptr, self.g.indices, lab)
        counts = np.bincount(np.unique(lab * self.g.n + piece) // self.g.n, minlength=self.k)
        return set(np.flatnonzero(counts > 1).tolist())

    def part_graph(self) -> list[set[int]]:
        """Catchment adjacency: the catchments each catchment borders."""
        return catchment_graph(np.asarray(self.labels, dtype=np.int64), self.g.a, self.g.b, self.k)

    def splits(self) -> int:
        return sum(1 for c in self.district_parts.values() if c > 1)


def catchment_graph(labels: np.ndarray, a: np.ndarray, b: np.ndarray, k: int) -> list[set[int]]:
    """For each catchment, the catchments it borders (edges a–b, labels per area)."""
    la, lb = labels[a], labels[b]
    cross = la != lb
    pairs = np.unique(np.concatenate([la[cross] * k + lb[cross], lb[cross] * k + la[cross]]))
    adj: list[set[int]] = [set() for _ in range(k)]
    for x, y in zip((pairs // k).tolist(), (pairs % k).tolist(), strict=True):
        adj[x].add(y)
    return adj


def subgraph(g: RegionGraph, rows: np.ndarray) -> RegionGraph:
    local = np.full(g.n, -1, dtype=np.int64)
    local[rows] = np.arange(len(rows))
    keep = (local[g.a] >= 0) & (local[g.b] >= 0)
    return RegionGraph(
        g.pop_array[rows],
        g.area_array[rows],
        g.perim_array[rows],
        g.district_array[rows],
        local[g.a[keep]],
        local[g.b[keep]],
        g.length[keep],
        None if g.centre is None else g.centre[rows],
    )


def contract(g: RegionGraph, node: np.ndarray) -> RegionGraph:
    """The graph whose nodes are the groups `node` (0..m-1 per area) of g's areas.

    Populations and areas add up; a group's perimeter loses twice its internal
    shared boundary; edges between two groups add their lengths; a group's
    district is that of one of its areas (groups are meant to lie in one
    district), and its centre the area-weighted mean of its areas' centres.
    """
    m_nodes = int(node.max()) + 1
    pop, area = g.pop_array, g.area_array
    cpop = np.bincount(node, weights=pop, minlength=m_nodes)
    carea = np.bincount(node, weights=area, minlength=m_nodes)
    cperim = np.bincount(node, weights=g.perim_array, minlength=m_nodes)
    na, nb = node[g.a], node[g.b]
    inside = na == nb
    cperim -= 2.0 * np.bincount(na[inside], weights=g.length[inside], minlength=m_nodes)
    cdist = np.zeros(m_nodes, dtype=np.int64)
    cdist[node] = g.district_array
    lo_, hi_ = np.minimum(na, nb)[~inside], np.maximum(na, nb)[~inside]
    pair, inverse = np.unique(lo_ * m_nodes + hi_, return_inverse=True)
    weight = np.bincount(inverse, weights=g.length[~inside], minlength=len(pair))
    centre = None
    if g.centre is not None:
        weights = np.maximum(carea, 1e-12)[:, None]
        centre = (
            np.column_stack(
                [
                    np.bincount(node, weights=area * g.centre[:, i], minlength=m_nodes)
                    for i in (0, 1)
                ]
            )
            / weights
        )
    return RegionGraph(cpop, carea, cperim, cdist, pair // m_nodes, pair % m_nodes, weight, centre)


def all_contiguous(g: RegionGraph, labels: np.ndarray, k: int) -> bool:
    same = labels[g.a] == labels[g.b]
    graph = coo_matrix((np.ones(int(same.sum())), (g.a[same], g.b[same])), shape=(g.n, g.n))
    n_comp, _ = connected_components(graph, directed=False)
    return n_comp == k and len(np.unique(labels)) == k


def min_pp(st: Labelling) -> float:
    """Polsby-Popper of the least compact catchment."""
    return min(
        FOUR_PI * st.areas[p] / st.perimeters[p] ** 2 if st.perimeters[p] > 0 else 1.0
        for p in range(st.k)
    )

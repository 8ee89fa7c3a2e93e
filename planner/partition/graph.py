"""The region graph, a labelling of it and the score the search minimises.

The score is Σ 1/Polsby-Popper over the catchments (a steep extra cost below
PP_FLOOR) plus a penalty per extra district fragment and (aligned preset) per
split district.  `_State` keeps each catchment's population, area, perimeter
and district counts up to date move by move:
P = Σ perimeter − 2 Σ shared length of internal edges.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

# Weight of one extra district split in units of 1/PP (a typical catchment scores 2-5).
SPLIT_WEIGHT = {True: 4.0, False: 1.5}
_FOUR_PI = 4.0 * math.pi
# Catchments less compact than PP_FLOOR pay FLOOR_WEIGHT extra per unit of 1/PP below it,
# so the search trades a little of a compact neighbour's shape for the worst one's
# (keyed like SPLIT_WEIGHT by keep_districts: whole districts matter more there).
PP_FLOOR = 0.155
# Equal size: 40 lifts Torbay & Teignbridge over the floor at no cost to the national
# mean PP (0.334) or splits (163); 8 left it at 0.1499 (benchmarks/partition.py).
FLOOR_WEIGHT = {True: 2.0, False: 40.0}
# Extra cost of a split district, on top of SPLIT_WEIGHT per extra fragment: without it,
# trading a Salford piece for a third piece of (already split) Manchester is neutral, and
# Greater Manchester kept five split districts where two suffice.  A small nudge is
# enough there; 4 also made Mid and South Essex give up PP 0.215 → 0.149 for two splits.
DISTRICT_WEIGHT = {True: 1.0, False: 0.0}


Weights = tuple[float, float, float]  # split, floor, district: the _State arguments


def _weights(keep_districts: bool) -> Weights:
    """The preset's weights, in one place so every _State of a run scores alike."""
    return (
        SPLIT_WEIGHT[keep_districts],
        FLOOR_WEIGHT[keep_districts],
        DISTRICT_WEIGHT[keep_districts],
    )


def _shape_cost(perim: float, area: float, floor_weight: float) -> float:
    """1/PP, plus a steep penalty once PP falls below PP_FLOOR."""
    if area <= 0:
        return 0.0
    x = perim * perim / (_FOUR_PI * area)
    excess = x - 1.0 / PP_FLOOR
    return x + floor_weight * excess if excess > 0 else x


class _Graph:
    """Plain-python adjacency lists: the local search is a loop over single areas."""

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
        self.pop = np.asarray(pop, dtype=float).tolist()
        self.area = np.asarray(area, dtype=float).tolist()
        self.perim = np.asarray(perim, dtype=float).tolist()
        self.district = np.asarray(district, dtype=np.int64).tolist()
        # The same as arrays, for the compiled local search (planner.partition.kernels).
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
        bounds = self.indptr.tolist()
        flat_n, flat_w = self.indices.tolist(), self.weights.tolist()
        self.nbrs = [flat_n[bounds[i] : bounds[i + 1]] for i in range(self.n)]
        self.lens = [flat_w[bounds[i] : bounds[i + 1]] for i in range(self.n)]
        self.a, self.b, self.length = a, b, length


def _flood(g: _Graph, start: int, member: Callable[[int], bool], seen: set[int]) -> list[int]:
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


class _State:
    """A labelling with per-catchment population, area, perimeter and district counts."""

    def __init__(
        self,
        g: _Graph,
        labels: np.ndarray,
        k: int,
        split_weight: float,
        floor_weight: float = 0.0,
        district_weight: float = 0.0,
    ) -> None:
        self.g = g
        self.k = k
        self.lab = [int(x) for x in labels]
        self.w_split = split_weight
        self.w_floor = floor_weight
        self.w_district = district_weight
        self.recompute()

    def recompute(self) -> None:
        """Catchment totals and district counts from the labels alone."""
        g, k = self.g, self.k
        lab = np.asarray(self.lab, dtype=np.int64)
        self.ppop = np.bincount(lab, weights=g.pop, minlength=k).tolist()
        self.parea = np.bincount(lab, weights=g.area, minlength=k).tolist()
        self.size = np.bincount(lab, minlength=k).tolist()
        inside = lab[g.a] == lab[g.b]
        perim = np.bincount(lab, weights=g.perim, minlength=k)
        perim -= 2.0 * np.bincount(lab[g.a[inside]], weights=g.length[inside], minlength=k)
        self.pperim = perim.tolist()
        district = np.asarray(g.district, dtype=np.int64)
        pairs, counts = np.unique(district * k + lab, return_counts=True)
        self.dcnt = {
            (d, p): c
            for d, p, c in zip(
                (pairs // k).tolist(), (pairs % k).tolist(), counts.tolist(), strict=True
            )
        }
        parts = np.unique(pairs // k, return_counts=True)
        self.dparts = dict(zip(parts[0].tolist(), parts[1].tolist(), strict=True))

    # -- flat arrays for the compiled kernels -------------------------------------------
    def flat(self) -> tuple:
        """(labels, pop, area, perimeter, sizes, district × catchment counts, district parts)."""
        dcnt = np.zeros((self.g.n_districts, self.k), dtype=np.int64)
        for (d, p), c in self.dcnt.items():
            dcnt[d, p] = c
        dparts = np.zeros(self.g.n_districts, dtype=np.int64)
        for d, c in self.dparts.items():
            dparts[d] = c
        return (
            np.asarray(self.lab, dtype=np.int64),
            np.asarray(self.ppop, dtype=float),
            np.asarray(self.parea, dtype=float),
            np.asarray(self.pperim, dtype=float),
            np.asarray(self.size, dtype=np.int64),
            dcnt,
            dparts,
        )

    def load(self, flat: tuple) -> None:
        """Take the state back from `flat` (after a kernel changed it); lists keep identity."""
        lab, ppop, parea, pperim, size, dcnt, dparts = flat
        self.lab[:] = lab.tolist()
        self.ppop[:] = ppop.tolist()
        self.parea[:] = parea.tolist()
        self.pperim[:] = pperim.tolist()
        self.size[:] = size.tolist()
        d, p = np.nonzero(dcnt)
        self.dcnt = dict(
            zip(zip(d.tolist(), p.tolist(), strict=True), dcnt[d, p].tolist(), strict=True)
        )
        (present,) = np.nonzero(dparts)
        self.dparts = dict(zip(present.tolist(), dparts[present].tolist(), strict=True))

    def kernel_weights(self) -> np.ndarray:
        return np.array([self.w_split, self.w_floor, self.w_district, 1.0 / PP_FLOOR])

    # -- scoring -------------------------------------------------------------------------
    def _f(self, perim: float, area: float) -> float:
        return _shape_cost(perim, area, self.w_floor)

    def move_delta(self, u: int, b: int) -> float:
        """Change in Σ 1/PP + split penalties if u moves to catchment b."""
        g, lab = self.g, self.lab
        a = lab[u]
        sa = sb = 0.0
        for v, w in zip(g.nbrs[u], g.lens[u], strict=True):
            lv = lab[v]
            if lv == a:
                sa += w
            elif lv == b:
                sb += w
        pa = self.pperim[a] - g.perim[u] + 2.0 * sa
        pb = self.pperim[b] + g.perim[u] - 2.0 * sb
        aa = self.parea[a] - g.area[u]
        ab = self.parea[b] + g.area[u]
        delta = (
            self._f(pa, aa)
            + self._f(pb, ab)
            - self._f(self.pperim[a], self.parea[a])
            - self._f(self.pperim[b], self.parea[b])
        )
        d = g.district[u]
        split = 0
        if self.dcnt.get((d, a), 0) == 1:
            split -= 1
        if self.dcnt.get((d, b), 0) == 0:
            split += 1
        if split:
            parts = self.dparts[d]
            delta += self.w_district * ((parts + split > 1) - (parts > 1))
        return delta + self.w_split * split

    def apply(self, u: int, b: int) -> None:
        g, lab = self.g, self.lab
        a = lab[u]
        sa = sb = 0.0
        for v, w in zip(g.nbrs[u], g.lens[u], strict=True):
            if lab[v] == a:
                sa += w
            elif lab[v] == b:
                sb += w
        self.pperim[a] += -g.perim[u] + 2.0 * sa
        self.pperim[b] += g.perim[u] - 2.0 * sb
        self.parea[a] -= g.area[u]
        self.parea[b] += g.area[u]
        self.ppop[a] -= g.pop[u]
        self.ppop[b] += g.pop[u]
        self.size[a] -= 1
        self.size[b] += 1
        d = g.district[u]
        ca = self.dcnt[(d, a)] - 1
        self.dcnt[(d, a)] = ca
        if ca == 0:
            self.dparts[d] -= 1
        cb = self.dcnt.get((d, b), 0)
        if cb == 0:
            self.dparts[d] += 1
        self.dcnt[(d, b)] = cb + 1
        lab[u] = b

    # -- contiguity ----------------------------------------------------------------------
    def can_remove(self, u: int) -> bool:
        """True if catchment lab[u] stays connected (and non-empty) without u."""
        g, lab = self.g, self.lab
        a = lab[u]
        if self.size[a] <= 1:
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
        g, lab = self.g, self.lab
        seen: set[int] = set()
        comps = []
        for s in range(g.n):
            if lab[s] != p or s in seen:
                continue
            comps.append(_flood(g, s, lambda y: lab[y] == p, seen))
        return comps

    def part_graph(self) -> list[set[int]]:
        """Catchment adjacency: the catchments each catchment borders."""
        lab = np.asarray(self.lab, dtype=np.int64)
        la, lb = lab[self.g.a], lab[self.g.b]
        cross = la != lb
        pairs = np.unique(
            np.concatenate([la[cross] * self.k + lb[cross], lb[cross] * self.k + la[cross]])
        )
        adj: list[set[int]] = [set() for _ in range(self.k)]
        for x, y in zip((pairs // self.k).tolist(), (pairs % self.k).tolist(), strict=True):
            adj[x].add(y)
        return adj

    def splits(self) -> int:
        return sum(1 for c in self.dparts.values() if c > 1)


def _subgraph(g: _Graph, rows: np.ndarray) -> _Graph:
    local = np.full(g.n, -1, dtype=np.int64)
    local[rows] = np.arange(len(rows))
    keep = (local[g.a] >= 0) & (local[g.b] >= 0)
    return _Graph(
        np.asarray(g.pop)[rows],
        np.asarray(g.area)[rows],
        np.asarray(g.perim)[rows],
        np.asarray(g.district)[rows],
        local[g.a[keep]],
        local[g.b[keep]],
        g.length[keep],
        None if g.centre is None else g.centre[rows],
    )


def contract(g: _Graph, node: np.ndarray) -> _Graph:
    """The graph whose nodes are the groups `node` (0..m-1 per area) of g's areas.

    Populations and areas add up; a group's perimeter loses twice its internal
    shared boundary; edges between two groups add their lengths; a group's
    district is that of one of its areas (groups are meant to lie in one
    district), and its centre the area-weighted mean of its areas' centres.
    """
    m_nodes = int(node.max()) + 1
    pop, area = np.asarray(g.pop), np.asarray(g.area)
    cpop = np.bincount(node, weights=pop, minlength=m_nodes)
    carea = np.bincount(node, weights=area, minlength=m_nodes)
    cperim = np.bincount(node, weights=np.asarray(g.perim), minlength=m_nodes)
    na, nb = node[g.a], node[g.b]
    inside = na == nb
    cperim -= 2.0 * np.bincount(na[inside], weights=g.length[inside], minlength=m_nodes)
    cdist = np.zeros(m_nodes, dtype=np.int64)
    cdist[node] = np.asarray(g.district)
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
    return _Graph(cpop, carea, cperim, cdist, pair // m_nodes, pair % m_nodes, weight, centre)


def _all_contiguous(g: _Graph, labels: np.ndarray, k: int) -> bool:
    same = labels[g.a] == labels[g.b]
    graph = coo_matrix((np.ones(int(same.sum())), (g.a[same], g.b[same])), shape=(g.n, g.n))
    n_comp, _ = connected_components(graph, directed=False)
    return n_comp == k and len(np.unique(labels)) == k


def _min_pp(st: _State) -> float:
    return min(
        _FOUR_PI * st.parea[p] / st.pperim[p] ** 2 if st.pperim[p] > 0 else 1.0 for p in range(st.k)
    )


def _score(st: _State, tolerance: float) -> float:
    """Lower is better: imbalance first, then Σ 1/PP plus the split penalties."""
    mean = sum(st.ppop) / st.k
    excess = sum(max(0.0, abs(p / mean - 1) - tolerance) for p in st.ppop)
    shape = sum(st._f(st.pperim[p], st.parea[p]) for p in range(st.k))
    fragments = sum(c - 1 for c in st.dparts.values())
    return 1e6 * excess + shape + st.w_split * fragments + st.w_district * st.splits()

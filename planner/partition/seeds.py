"""Every random stream of the partitioner, derived from the user's seed in one place.

A region's search uses several independent streams: one per start, per
redraw, per polish...  `stream(seed, purpose, *index)` gives the entropy of
each (an int, or a tuple of ints for numpy's SeedSequence), `rng` the numpy
generator seeded with it, and `metis_seed` what METIS takes.  `seed` is the
seed of the problem at hand: the user's seed for a region, or a derived
"start" / "redraw" seed for a start or a redraw within it, which then derives
its own streams the same way.

| purpose        | index                | entropy                                        |
|----------------|----------------------|------------------------------------------------|
| start          | attempt              | seed · 7919 + attempt (a start's seed)          |
| recombine      | round, salt          | seed · 7919 + 104 729 · (round + 1) + salt      |
| redraw         | r                    | seed + r (the r-th METIS redraw of a group)     |
| search         |                      | seed (the local search of a start)              |
| own_district   | i                    | (seed, 1000 + i) (the i-th own-district start)  |
| piece          | trial                | (seed, 3000 + trial)                           |
| polish         |                      | (seed, 5000)                                   |
| strip          | i                    | (seed, i) (the i-th straight-cut redraw)       |
| redraw_polish  | round, salt, r       | (seed, round, salt, r)                         |
| pair           | round, p, q          | seed · 7919 + 211 039 · (round + 1) + 4099p + q |

The values are those the partitioner has always used, so labels for a seed
do not change where the search is the same.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# purpose -> entropy from (seed, *index); see the table above
_ENTROPY: dict[str, Callable[..., int | tuple[int, ...]]] = {
    "start": lambda seed, attempt: seed * 7919 + attempt,
    "recombine": lambda seed, round_, salt: seed * 7919 + 104_729 * (round_ + 1) + salt,
    "redraw": lambda seed, r: seed + r,
    "search": lambda seed: seed,
    "own_district": lambda seed, i: (seed, 1000 + i),
    "piece": lambda seed, trial: (seed, 3000 + trial),
    "polish": lambda seed: (seed, 5000),
    "strip": lambda seed, i: (seed, i),
    "redraw_polish": lambda seed, round_, salt, r: (seed, round_, salt, r),
    "pair": lambda seed, round_, p, q: seed * 7919 + 211_039 * (round_ + 1) + 4099 * p + q,
}
PURPOSES = tuple(_ENTROPY)


def stream(seed: int, purpose: str, *index: int) -> int | tuple[int, ...]:
    """The entropy of the stream for `purpose` (see the module table) under `seed`."""
    try:
        entropy = _ENTROPY[purpose]
    except KeyError:
        raise ValueError(f"unknown random stream {purpose!r}; one of {PURPOSES}") from None
    return entropy(int(seed), *(int(i) for i in index))


def rng(seed: int, purpose: str, *index: int) -> np.random.Generator:
    """A numpy generator for the stream `purpose` under `seed`."""
    return np.random.default_rng(stream(seed, purpose, *index))


def metis_seed(seed: int) -> int:
    """METIS's seed for a problem seeded with `seed` (METIS takes a non-negative C int)."""
    return int(seed) % (2**31)

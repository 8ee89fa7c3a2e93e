"""Split each ICB's small areas into k contiguous, compact, balanced catchments.

The problem, per region (an ICB) drawn as a `RegionGraph` G = (areas, edges)
with populations, areas, perimeters, shared boundary lengths and districts:
find labels L: areas → {0..k-1} (a `Labelling`) that minimise the
`Objective`, Σ_catchments (6 − 9·PP) (PP = 4π·area/perimeter², Polsby-Popper:
the tangent of 1/PP at PP 1/3, so the mean PP counts; a steep `Weights.floor`
cost below PP 0.155) + `Weights.split` per extra
district fragment + `Weights.district` per split district, subject to every
catchment being connected in G and holding the region's mean population
±tolerance (presets: equal_size ±0.5%, la_aligned ±10% with heavier district
weights).  Imbalance is handled in stages: starts are balanced to a looser
window (±3%) and the window is tightened to the tolerance step by step; a
balance step pushes surplus people along paths of neighbouring catchments,
and any labelling outside the window scores 10⁶ per unit of excess, so it
never beats one inside.  Moves: single boundary areas change catchment when
that lowers the objective and keeps both catchments connected and in the
window (compiled with numba, `kernels`); compound moves pair a move that
breaks the window with one that restores it; whole district pieces move at
once (la_aligned); a catchment below the PP floor is merged with one or two
neighbours and redrawn from METIS and straight-cut starts; finally every two
neighbouring catchments are merged and redrawn from one seeded start (METIS,
or whole districts in la_aligned), and the redraw is kept when the objective
falls (`solve.pair_descent`).  Starts: METIS (population vertex weights,
shared-length edge weights), searches over groupings of whole districts
(la_aligned; compiled, `grouping`), and (la_aligned) starts that hold each
district big enough for a whole number of catchments in catchments of its
own and draw the rest around them (`own`).  The best of several seeded
starts is kept.  Existing services can be held whole (`partition_england(...,
services=...)`, see `services`).

ICBs are independent and are solved in parallel worker processes (`england`).
All randomness is derived from the user's seed by one function
(`seeds.stream`), so a seed fixes the result, and a serial run equals a
parallel one.
"""

from planner.partition.england import (
    PRESETS,
    PartitionResult,
    PartitionSettings,
    partition_england,
    service_notes,
)
from planner.partition.graph import Labelling, RegionGraph
from planner.partition.objective import OBJECTIVES, Objective, Preset, Weights
from planner.partition.solve import partition_region

__all__ = [
    "OBJECTIVES",
    "PRESETS",
    "Labelling",
    "Objective",
    "PartitionResult",
    "PartitionSettings",
    "Preset",
    "RegionGraph",
    "Weights",
    "partition_england",
    "partition_region",
    "service_notes",
]

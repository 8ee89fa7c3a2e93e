"""Split each ICB's small areas into k contiguous, compact, balanced catchments.

Teams work from one catchment each, so catchments must hold equal populations
(within a tolerance), be contiguous and compact, and (aligned preset) keep
local-authority districts whole where balance allows.  The method, per ICB:

1. Start from METIS, or from a search over groupings of whole districts (`starts`).
2. Repair stray pieces, push population along paths of neighbouring catchments
   into the window, then move single boundary areas while that lowers
   Σ 1/Polsby-Popper + a penalty per split district (`moves`, score in `graph`).
3. Keep the best of several seeded starts; redraw poor catchments with a
   neighbour, and move whole district pieces (`solve`).

ICBs are independent and are solved in parallel worker processes (`england`).
All randomness comes from one seeded generator, so a seed fixes the result.
"""

from planner.partition.england import (
    PRESETS,
    PartitionResult,
    PartitionSettings,
    Preset,
    partition_england,
    service_notes,
)
from planner.partition.solve import partition_region

__all__ = [
    "PRESETS",
    "PartitionResult",
    "PartitionSettings",
    "Preset",
    "partition_england",
    "partition_region",
    "service_notes",
]

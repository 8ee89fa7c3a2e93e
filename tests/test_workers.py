"""Worker pools: the garbage collector settings their workers run with."""

from __future__ import annotations

import gc

from planner.workers import BATCH_GC_THRESHOLDS, worker_pool


def worker_gc() -> tuple[tuple[int, int, int], int]:
    return gc.get_threshold(), gc.get_freeze_count()


def test_workers_collect_less_often_and_never_walk_the_parents_objects() -> None:
    parent_thresholds = gc.get_threshold()
    data = [[i] for i in range(10_000)]  # parent objects the workers inherit
    with worker_pool(2) as pool:
        results = [pool.apply_async(worker_gc) for _ in range(4)]
        found = [r.get(timeout=60) for r in results]
        assert gc.get_freeze_count() == 0  # the parent's own collector is as before
    for thresholds, frozen in found:
        assert thresholds == BATCH_GC_THRESHOLDS
        assert frozen >= len(data)  # inherited objects sit in the permanent generation
    assert gc.get_threshold() == parent_thresholds

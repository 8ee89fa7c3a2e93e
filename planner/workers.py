"""Worker processes that never outlive the run, and a pool that always stops.

The CLI blocks SIGTERM in the main process (see planner.cli) and turns it into
an exit between two Python instructions. Pools of forked workers (catchments,
map pages) must then (1) die with their parent whatever kills it, (2) let the
main process notice a signal while it waits, and (3) stop at once on any exit
but success — without the two ways `Pool.terminate` can hang: joining a
worker that still has SIGTERM blocked (forked before its initializer ran), or
putting on a queue whose lock a killed worker held.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Iterator
from multiprocessing.pool import AsyncResult, Pool

# Seconds between two looks at a running job: the main process answers a signal
# (SIGTERM turned into an exit by planner.cli) only between such waits.
POLL_SECONDS = 0.2
# How long a stopping pool may take to tidy its threads before it is abandoned.
STOP_SECONDS = 2.0
# The garbage collector of the planner's batch processes (the command and its workers): a
# young-generation collection every 50,000 net allocations instead of 700.  The
# partition's search and the tables allocate many small short-lived containers, which
# reference counting frees; with the default the collector ran so often that it took
# 15-25% of the partition workers' CPU (benchmarks/plan_process.py).
BATCH_GC_THRESHOLDS = (50_000, 50, 100)
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def worker_start(parent: int) -> None:
    """Worker initializer: die with the parent, whatever kills it; take SIGTERM by default.

    A forked worker inherits the parent's blocked SIGTERM, so it would outlive
    a killed parent and ignore the pool's own terminate. On Linux the kernel
    sends the worker SIGKILL when its parent dies (prctl PR_SET_PDEATHSIG); a
    parent already gone before that call is caught by comparing the pid.
    Its garbage collector runs less often (BATCH_GC_THRESHOLDS).
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    gc.set_threshold(*BATCH_GC_THRESHOLDS)


@contextlib.contextmanager
def worker_pool(workers: int) -> Iterator[Pool]:
    """A pool of forked workers (see worker_start), closed on success and stopped otherwise.

    The parent's objects are frozen (gc.freeze) while the workers fork, as the
    gc module's documentation advises for fork without exec: the workers'
    collections then never walk the parent's data (areas, tables), and its
    pages stay shared.
    """
    ctx = multiprocessing.get_context("fork")
    before = set(multiprocessing.active_children())
    gc.freeze()
    try:
        pool = ctx.Pool(workers, initializer=worker_start, initargs=(os.getpid(),))
    finally:
        gc.unfreeze()
    try:
        yield pool
        pool.close()
        pool.join()
    finally:
        stop_pool(pool, before)


def stop_pool(pool: Pool, before: set) -> None:
    """Kill the pool's workers (SIGKILL: a blocked SIGTERM cannot delay it), then tidy up.

    `Pool.terminate` runs in a daemon thread given STOP_SECONDS: if a killed
    worker held a queue lock it never returns, and the run goes on without it.
    """
    for process in set(multiprocessing.active_children()) - before:
        if process.is_alive():
            process.kill()
    stopper = threading.Thread(target=pool.terminate, name="pool-stopper", daemon=True)
    stopper.start()
    stopper.join(STOP_SECONDS)


def wait_until_ready(result: AsyncResult) -> None:
    """Wait for a job in POLL_SECONDS steps, so that a signal reaches the main thread."""
    while not result.ready():
        result.wait(POLL_SECONDS)

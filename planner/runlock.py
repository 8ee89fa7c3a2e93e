"""One run per workdir: an advisory lock on `<workdir>/.planner.lock`.

Two runs in one workdir would remove each other's staging folders and race
on the cache. The lock is an OS file lock (released by the kernel when the
process dies, however it dies); the file also holds the owner's PID so the
second run can say who holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from planner.errors import PlannerError

LOCK_NAME = ".planner.lock"


def _holder(handle) -> str:
    handle.seek(0)
    text = handle.read().strip()
    return text or "unknown"


@contextlib.contextmanager
def workdir_lock(
    workdir: Path, *, wait: bool = False, poll_seconds: float = 0.5, log=None
) -> Iterator[None]:
    """Hold the workdir's lock for the block; refuse (or, with `wait`, wait) if another run has it."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / LOCK_NAME
    handle = open(path, "a+")  # noqa: SIM115 - held open for the whole run
    try:
        announced = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(handle)
                if not wait:
                    raise PlannerError(
                        f"another planner run is using this workdir (PID {holder})",
                        file=path,
                        fix="wait for it to finish, or add --wait to queue behind it",
                    ) from None
                if not announced and log is not None:
                    log.warning("waiting for the planner run with PID %s to finish", holder)
                    announced = True
                # Polled, not a blocking flock, so SIGTERM is answered while waiting.
                time.sleep(poll_seconds)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        handle.close()

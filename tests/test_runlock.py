"""planner.runlock: one run per workdir, and the second one says who holds it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from planner.errors import PlannerError
from planner.runlock import LOCK_NAME, workdir_lock


def _holder(workdir: Path) -> subprocess.Popen[str]:
    """Another process holding the workdir's lock until its stdin closes."""
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from planner.runlock import workdir_lock
        with workdir_lock(Path({str(workdir)!r})):
            print("locked", flush=True)
            sys.stdin.read()
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "locked"
    return process


def test_a_second_run_is_refused_naming_the_first_ones_pid(tmp_path: Path) -> None:
    first = _holder(tmp_path)
    try:
        with pytest.raises(PlannerError) as caught, workdir_lock(tmp_path):
            pass
        message = str(caught.value)
        assert f"PID {first.pid}" in message and "--wait" in message and LOCK_NAME in message
    finally:
        first.communicate("")
    with workdir_lock(tmp_path):  # released when the holder ends
        assert (tmp_path / LOCK_NAME).read_text().strip() == str(os.getpid())


def test_wait_queues_behind_the_first_run(tmp_path: Path) -> None:
    first = _holder(tmp_path)
    threading.Timer(1.0, first.communicate, args=("",)).start()
    started = time.monotonic()
    with workdir_lock(tmp_path, wait=True, poll_seconds=0.1):
        waited = time.monotonic() - started
    assert first.wait(timeout=10) == 0
    assert waited >= 0.5


def test_a_killed_holder_releases_the_lock(tmp_path: Path) -> None:
    first = _holder(tmp_path)
    first.kill()
    first.wait()
    with workdir_lock(tmp_path):
        pass

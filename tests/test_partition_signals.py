"""Catchment workers and signals: workers die with `planner plan`, which answers SIGTERM quickly.

Each case runs the real CLI in a subprocess on the real mirror, in a copy of
one prepared workdir, with a fresh seed so that the catchments stage is built
in worker processes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from planner.workers import worker_start

PREPARE_TIMEOUT = 600


def _command() -> list[str]:
    script = Path(sys.executable).with_name("planner")
    return [str(script)] if script.exists() else [sys.executable, "-m", "planner.cli"]


def children(pid: int) -> set[int]:
    """Live (non-zombie) processes whose parent is `pid`, from /proc."""
    out = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.add(int(entry.name))
    return out


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].split()[0] != "Z"


@pytest.fixture(scope="module")
def prepared_workdir(mirror_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("signals")
    done = subprocess.run(
        [*_command(), "-q", "prepare", "--workdir", str(root), "--mirror", str(mirror_dir)],
        capture_output=True,
        text=True,
        timeout=PREPARE_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return root


def start_plan(prepared_workdir: Path, dest: Path, mirror_dir: Path) -> subprocess.Popen[str]:
    """`planner plan` with a fresh seed, stopped by the caller once its workers run."""
    shutil.copytree(prepared_workdir, dest, copy_function=os.link)
    return subprocess.Popen(
        [
            *_command(),
            "plan",
            "--workdir",
            str(dest),
            "--mirror",
            str(mirror_dir),
            "--seed",
            "4242",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_workers(process: subprocess.Popen[str]) -> set[int]:
    """Read the log to the catchments stage, then wait until its worker processes run."""
    assert process.stderr is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        if "catchments: building" in line:
            break
    else:
        pytest.fail("planner never reached the catchments stage: " + "".join(seen))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        workers = children(process.pid)
        if len(workers) >= 2:
            time.sleep(1.0)  # well into a catchment job
            return children(process.pid)
        time.sleep(0.05)
    process.kill()
    pytest.fail("no worker processes appeared during the catchments stage")


@pytest.mark.slow
def test_workers_die_when_the_parent_is_killed(
    prepared_workdir: Path, mirror_dir: Path, tmp_path: Path
) -> None:
    process = start_plan(prepared_workdir, tmp_path / "work", mirror_dir)
    workers = wait_for_workers(process)
    assert workers
    process.send_signal(signal.SIGKILL)
    process.wait()
    time.sleep(10)
    left = {pid for pid in workers if alive(pid)}
    for pid in left:  # do not leave them burning the cores after a failure
        os.kill(pid, signal.SIGKILL)
    assert left == set()


@pytest.mark.slow
def test_sigterm_during_catchments_exits_within_5_s(
    prepared_workdir: Path, mirror_dir: Path, tmp_path: Path
) -> None:
    process = start_plan(prepared_workdir, tmp_path / "work", mirror_dir)
    workers = wait_for_workers(process)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    took = time.monotonic() - sent
    assert process.returncode == 128 + signal.SIGTERM
    assert took <= 5.0, f"exit took {took:.1f} s"
    rest = process.stderr.read() if process.stderr else ""
    assert "Traceback" not in rest, rest
    time.sleep(1.0)
    assert {pid for pid in workers if alive(pid)} == set()


def test_worker_start_unblocks_sigterm_in_the_worker() -> None:
    """A worker forked with SIGTERM blocked (as the CLI blocks it) takes SIGTERM by default."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        pid = os.fork()
        if pid == 0:  # child: the initializer, then wait to be terminated
            try:
                worker_start(os.getppid())
                time.sleep(30)
            finally:
                os._exit(3)
        time.sleep(0.5)
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM


def test_worker_start_exits_when_the_parent_is_already_gone() -> None:
    pid = os.fork()
    if pid == 0:
        try:
            worker_start(-1)  # not our parent: as if it had died before the call
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 1

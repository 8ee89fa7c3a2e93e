"""planner.fsutil: outputs appear whole or not at all, even when the process is killed."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from planner.fsutil import (
    atomic_directories,
    atomic_directory,
    atomic_file,
    atomic_path,
    recover_commit,
    sha256_file,
    signals_deferred,
)


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _fill(folder: Path, text: str) -> None:
    (folder / "a.csv").write_text(text)
    (folder / "sub").mkdir()
    (folder / "sub" / "b.csv").write_text(text * 2)


def test_atomic_directory_swaps_in_the_new_content(tmp_path: Path) -> None:
    target = tmp_path / "exports"
    with atomic_directory(target) as staging:
        assert staging.parent == tmp_path and staging.name.startswith(".exports.new-")
        _fill(staging, "old")
    with atomic_directory(target) as staging:
        assert (target / "a.csv").read_text() == "old"  # still there while building
        _fill(staging, "new")
    assert (target / "a.csv").read_text() == "new"
    assert (target / "sub" / "b.csv").read_text() == "newnew"
    assert _names(tmp_path) == ["exports"]


def test_atomic_directory_failure_keeps_the_previous_directory(tmp_path: Path) -> None:
    target = tmp_path / "maps"
    with atomic_directory(target) as staging:
        _fill(staging, "old")
    with pytest.raises(RuntimeError), atomic_directory(target) as staging:
        _fill(staging, "half")
        raise RuntimeError("stage failed")
    assert (target / "a.csv").read_text() == "old"
    assert _names(tmp_path) == ["maps"]


def test_atomic_directory_failure_without_a_previous_directory_leaves_nothing(
    tmp_path: Path,
) -> None:
    with pytest.raises(KeyboardInterrupt), atomic_directory(tmp_path / "maps") as staging:
        _fill(staging, "half")
        raise KeyboardInterrupt
    assert _names(tmp_path) == []


def test_swap_interrupted_between_the_renames_is_restored(tmp_path: Path) -> None:
    """Killed after moving the old directory aside but before moving the new one in."""
    target = tmp_path / "exports"
    aside = tmp_path / ".exports.old-abc123"
    aside.mkdir()
    (aside / "a.csv").write_text("previous")
    stale = tmp_path / ".exports.new-def456"
    stale.mkdir()
    (stale / "a.csv").write_text("half")
    with pytest.raises(RuntimeError), atomic_directory(target):
        assert (target / "a.csv").read_text() == "previous"
        raise RuntimeError("fail again")
    assert (target / "a.csv").read_text() == "previous"
    assert _names(tmp_path) == ["exports"]


def test_old_copy_beside_a_complete_directory_is_removed(tmp_path: Path) -> None:
    target = tmp_path / "exports"
    target.mkdir()
    (target / "a.csv").write_text("current")
    (tmp_path / ".exports.old-x").mkdir()
    with atomic_directory(target) as staging:
        (staging / "a.csv").write_text("next")
    assert (target / "a.csv").read_text() == "next"
    assert _names(tmp_path) == ["exports"]


def test_atomic_file_failure_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "teams.csv"
    path.write_text("old\n")
    with pytest.raises(ValueError), atomic_file(path, "w") as handle:
        handle.write("half")
        raise ValueError("no")
    assert path.read_text() == "old\n"
    assert _names(tmp_path) == ["teams.csv"]
    with atomic_file(path, "w") as handle:
        handle.write("new\n")
    assert path.read_text() == "new\n"
    assert _names(tmp_path) == ["teams.csv"]


def test_atomic_path_keeps_the_suffix_and_cleans_up(tmp_path: Path) -> None:
    path = tmp_path / "catchments.gpkg"
    with atomic_path(path) as tmp:
        assert tmp.suffix == ".gpkg" and tmp.parent == tmp_path and not tmp.exists()
        tmp.write_bytes(b"data")
    assert path.read_bytes() == b"data"
    with pytest.raises(OSError), atomic_path(path) as tmp:
        tmp.write_bytes(b"half")
        raise OSError("disk full")
    assert path.read_bytes() == b"data"
    assert _names(tmp_path) == ["catchments.gpkg"]


def test_sha256_file_reads_in_chunks(tmp_path: Path) -> None:
    data = os.urandom(3000)
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f", chunk=1024) == hashlib.sha256(data).hexdigest()


def test_sigterm_inside_atomic_directory_keeps_the_previous_one(tmp_path: Path) -> None:
    """A real process killed mid-write, with the CLI's SIGTERM handler."""
    target = tmp_path / "exports"
    target.mkdir()
    (target / "a.csv").write_text("previous")
    script = textwrap.dedent(
        f"""
        import signal, sys, time
        from pathlib import Path
        from planner.cli import _terminate
        from planner.fsutil import atomic_directory
        signal.signal(signal.SIGTERM, _terminate)
        with atomic_directory(Path({str(target)!r})) as staging:
            (staging / "a.csv").write_text("half")
            print("writing", flush=True)
            time.sleep(60)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "writing"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 128 + signal.SIGTERM
    assert (target / "a.csv").read_text() == "previous"
    assert _names(tmp_path) == ["exports"]


# ----------------------------------------------------------------------------- modes and links


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.mark.parametrize(
    ("umask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)]
)
def test_outputs_follow_the_umask(
    tmp_path: Path, umask: int, file_mode: int, dir_mode: int
) -> None:
    previous = os.umask(umask)
    try:
        with atomic_directory(tmp_path / "maps") as staging:
            with atomic_file(staging / "index.html", "w") as handle:
                handle.write("<html>")
            with atomic_path(staging / "catchments.gpkg") as tmp:
                tmp.write_bytes(b"gpkg")
            (staging / "icb").mkdir()
        with atomic_file(tmp_path / "manifest.json", "w") as handle:
            handle.write("{}")
    finally:
        os.umask(previous)
    assert _mode(tmp_path / "maps") == dir_mode
    assert _mode(tmp_path / "maps" / "index.html") == file_mode
    assert _mode(tmp_path / "maps" / "catchments.gpkg") == file_mode
    assert _mode(tmp_path / "manifest.json") == file_mode


def test_a_symlinked_output_folder_has_its_target_replaced(tmp_path: Path) -> None:
    web_root = tmp_path / "www" / "planner-maps"
    web_root.mkdir(parents=True)
    (web_root / "index.html").write_text("old")
    link = tmp_path / "work" / "maps"
    link.parent.mkdir()
    link.symlink_to(web_root)
    with atomic_directory(link) as staging:
        assert staging.parent == web_root.parent
        (staging / "index.html").write_text("new")
    assert link.is_symlink() and link.resolve() == web_root
    assert (web_root / "index.html").read_text() == "new"
    assert _names(web_root.parent) == ["planner-maps"]


# ----------------------------------------------------------------------------- committed together


def test_directories_are_committed_together(tmp_path: Path) -> None:
    journal = tmp_path / ".commit.json"
    with atomic_directories(tmp_path / "exports", tmp_path / "maps", journal=journal) as (e, m):
        _fill(e, "one")
        _fill(m, "one")
    with (
        pytest.raises(OSError),
        atomic_directories(tmp_path / "exports", tmp_path / "maps", journal=journal) as (e, m),
    ):
        _fill(e, "two")
        raise OSError(28, "No space left on device")
    assert (tmp_path / "exports" / "a.csv").read_text() == "one"
    assert (tmp_path / "maps" / "a.csv").read_text() == "one"
    assert _names(tmp_path) == ["exports", "maps"]


def test_a_commit_killed_half_way_is_rolled_forward(tmp_path: Path) -> None:
    """The journal says both folders were complete: the next call finishes the renames."""
    for name in ("exports", "maps"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "a.csv").write_text("old")
    new_exports = tmp_path / ".exports.new-1"
    new_maps = tmp_path / ".maps.new-1"
    for folder in (new_exports, new_maps):
        folder.mkdir()
        (folder / "a.csv").write_text("new")
    # killed after exports was swapped in, before maps was
    os.replace(tmp_path / "exports", tmp_path / ".exports.old-1")
    os.replace(new_exports, tmp_path / "exports")
    journal = tmp_path / ".commit.json"
    journal.write_text(
        json.dumps(
            {
                "commit": [
                    {
                        "target": str(tmp_path / "exports"),
                        "staging": str(new_exports),
                        "old": str(tmp_path / ".exports.old-1"),
                    },
                    {
                        "target": str(tmp_path / "maps"),
                        "staging": str(new_maps),
                        "old": str(tmp_path / ".maps.old-1"),
                    },
                ]
            }
        )
    )
    recover_commit(journal)
    assert (tmp_path / "exports" / "a.csv").read_text() == "new"
    assert (tmp_path / "maps" / "a.csv").read_text() == "new"
    with atomic_directories(tmp_path / "exports", tmp_path / "maps", journal=journal) as (e, m):
        _fill(e, "next")
        _fill(m, "next")
    assert _names(tmp_path) == ["exports", "maps"]


def test_a_rename_refused_mid_commit_undoes_the_others(tmp_path: Path) -> None:
    """An immutable maps/ (chattr +i): exports/ must not be left new beside old maps."""
    journal = tmp_path / ".commit.json"
    with atomic_directories(tmp_path / "exports", tmp_path / "maps", journal=journal) as (e, m):
        _fill(e, "one")
        _fill(m, "one")
    made = subprocess.run(["chattr", "+i", str(tmp_path / "maps")], capture_output=True)
    if made.returncode != 0:
        pytest.skip("chattr +i is not available on this file system")
    try:
        with (
            pytest.raises(OSError),
            atomic_directories(tmp_path / "exports", tmp_path / "maps", journal=journal) as (e, m),
        ):
            _fill(e, "two")
            _fill(m, "two")
    finally:
        subprocess.run(["chattr", "-i", str(tmp_path / "maps")], check=True)
    assert (tmp_path / "exports" / "a.csv").read_text() == "one"
    assert (tmp_path / "maps" / "a.csv").read_text() == "one"
    assert _names(tmp_path) == ["exports", "maps"]


def test_sigterm_during_the_commit_waits_for_the_renames(tmp_path: Path) -> None:
    """A SIGTERM that lands mid-commit is acted on once every folder is in place."""
    received: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, _frame: received.append(signum))
    try:
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            assert received == []
        assert received == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)

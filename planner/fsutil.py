"""Atomic, umask-respecting file and directory writes.

A failed or killed run must never leave a half-written file or directory where
a user (or the cache) would take it for a finished one, so every output is
written beside its destination and renamed into place at the end.

Outputs go on shared drives and web servers, so what is renamed into place
carries the modes a plain `open()` / `mkdir()` would have given under the
user's umask (0644 / 0755 under umask 022), not the private 0600 / 0700 of
`mkstemp` / `mkdtemp`. An output folder that is a symlink (e.g. `maps/` linked
into a web root) keeps its link: the folder it points to is replaced.

Several folders that describe one thing (a plan's exports and its maps) are
committed together by `atomic_directories`: each is built in staging, then all
are renamed into place under a journal, so a run killed in between is rolled
forward by the next one, and signals wait until the renames are done.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

FILE_MODE = 0o666
DIRECTORY_MODE = 0o777


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (/proc), else set and reset."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def give_default_mode(path: str | Path) -> None:
    """chmod a file or folder to the mode `open()` / `mkdir()` would give it under the umask."""
    base = DIRECTORY_MODE if Path(path).is_dir() else FILE_MODE
    os.chmod(path, base & ~current_umask())


def output_path(path: str | Path) -> Path:
    """Where an output really goes: the target of a symlink, else the path itself."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "wb") -> Iterator:
    """Open a temporary sibling of `path`; rename it onto `path` only on success."""
    target = output_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        give_default_mode(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling path for writers that need a file name (GeoPackage, parquet)."""
    target = output_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=target.suffix, dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        yield tmp
        give_default_mode(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _staging_for(target: Path) -> Path:
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
    give_default_mode(staging)
    return staging


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Build a whole directory beside `path` and swap it in only when complete.

    The previous directory survives until the new one is ready; if the process
    dies in between, the previous one is still in place (or, in the tiny window
    of the swap, kept as `<name>.old-*` and restored on the next call).
    """
    target = output_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _restore_interrupted_swap(target)
    staging = _staging_for(target)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    with signals_deferred():
        _swap_in(target, staging)


def _swap_in(target: Path, staging: Path) -> None:
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        old.rmdir()
        os.replace(target, old)
    os.replace(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_directories(*paths: str | Path, journal: str | Path) -> Iterator[tuple[Path, ...]]:
    """Build several directories in staging and commit them together, or not at all.

    Any exception while building removes every staging folder and leaves every
    previous directory as it was. The commit is a handful of renames, recorded
    in `journal` first; if one of them fails (a folder made immutable, a
    permission) the renames already done are undone before the error is
    raised. A run killed during them is completed by the next call
    (`recover_commit`), since every staging folder was complete.
    """
    journal = Path(journal)
    recover_commit(journal)
    targets = [output_path(p) for p in paths]
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        _restore_interrupted_swap(target)
    stagings: list[Path] = []
    try:
        for target in targets:
            stagings.append(_staging_for(target))
        yield tuple(stagings)
    except BaseException:
        for staging in stagings:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    entries = [
        {
            "target": str(target),
            "staging": str(staging),
            "old": str(staging.with_name(staging.name.replace(".new-", ".old-", 1))),
        }
        for target, staging in zip(targets, stagings, strict=True)
    ]
    with signals_deferred():
        with atomic_file(journal, "w") as handle:
            json.dump({"commit": entries}, handle, indent=2)
        try:
            _commit(entries)
        except OSError:
            for staging in stagings:
                shutil.rmtree(staging, ignore_errors=True)
            raise
        finally:
            journal.unlink(missing_ok=True)


def _commit(entries: list[dict[str, str]]) -> None:
    """Swap every staging folder in; on a failed rename, undo the renames done, then raise.

    Written to be re-run from any point (after a crash): each step checks
    what is already done.
    """
    done: list[tuple[Path, Path, Path]] = []
    try:
        for entry in entries:
            target, staging, old = (Path(entry[k]) for k in ("target", "staging", "old"))
            if not staging.is_dir():
                continue  # swapped in before a crash
            if target.exists() and not old.exists():
                os.replace(target, old)
            done.append((target, staging, old))
            os.replace(staging, target)
    except OSError:
        for target, staging, old in reversed(done):
            if not staging.exists() and target.exists():
                os.replace(target, staging)
            if old.exists() and not target.exists():
                os.replace(old, target)
        raise
    for entry in entries:
        shutil.rmtree(entry["old"], ignore_errors=True)


def recover_commit(journal: str | Path) -> None:
    """Finish a commit that a killed run left in `journal` (roll forward), then remove it."""
    journal = Path(journal)
    try:
        entries = json.loads(journal.read_text())["commit"]
    except FileNotFoundError:
        return
    except (ValueError, KeyError, TypeError):
        # A journal is written atomically, so a broken one is not ours to act on.
        journal.unlink()
        return
    with signals_deferred():
        _commit(entries)
        journal.unlink()


def _restore_interrupted_swap(target: Path) -> None:
    """Clean up after a run killed between the two renames of atomic_directory."""
    for leftover in sorted(target.parent.glob(f".{target.name}.old-*")):
        if not target.exists():
            os.replace(leftover, target)
        else:
            shutil.rmtree(leftover, ignore_errors=True)
    for leftover in target.parent.glob(f".{target.name}.new-*"):
        shutil.rmtree(leftover, ignore_errors=True)


@contextlib.contextmanager
def signals_deferred(signums: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)) -> Iterator[None]:
    """Hold SIGTERM / SIGINT until the block is done, then act on them as before.

    Used around renames that must all happen or none. Outside the main thread
    (where handlers cannot be set) the block simply runs.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {s: signal.getsignal(s) for s in signums}
    for s in signums:
        signal.signal(s, lambda signum, _frame: received.append(signum))
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for signum in received[:1]:
            handler = previous[signum]
            if callable(handler):
                handler(signum, None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks so large boundary files stay out of memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()

"""The cache of intermediate products in data/processed/.

Each cached product is a directory written atomically (built beside its final
place, swapped in when complete) with a `stage.json` holding the key of the
inputs it was made from: the sha256 of every raw file it read, the settings
that shape it and a hash of the code of the stages involved. A product whose
key differs is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

import planner
from planner import download, sources
from planner.errors import PlannerError
from planner.fsutil import atomic_directory, sha256_file

log = logging.getLogger("planner")

STAGE_FILE = "stage.json"
PACKAGE_DIR = Path(planner.__file__).resolve().parent


def code_hash(*modules: str) -> str:
    """Hash of the named stage modules' source, so a code change invalidates their products.

    A name may be a package directory: every .py file in it counts, sorted by name.
    """
    digest = hashlib.sha256(planner.__version__.encode())
    for module in sorted(modules):
        package = PACKAGE_DIR / module
        files = sorted(package.glob("*.py")) if package.is_dir() else [package.with_suffix(".py")]
        for file in files:
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def package_hash() -> str:
    """Hash of the whole planner package's code: a plan made by other code is another plan."""
    names = [p.stem for p in PACKAGE_DIR.glob("*.py")] + [
        p.name for p in PACKAGE_DIR.iterdir() if (p / "__init__.py").exists()
    ]
    return code_hash(*names)


def stage_key(parts: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _product_files(directory: Path) -> dict[str, str]:
    """sha256 of every file of a product (relative POSIX path -> hex), stage.json excluded."""
    return {
        path.relative_to(directory).as_posix(): sha256_file(path)
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.name != STAGE_FILE
    }


def verified(directory: Path, key: str, label: str) -> bool:
    """True if `directory` holds the product of `key` with every file as it was written.

    A product whose files were deleted, truncated or altered since is reported
    (a warning naming the file) and rebuilt, never used as it is.
    """
    marker = directory / STAGE_FILE
    if not marker.exists():
        return False
    try:
        record = json.loads(marker.read_text())
        if record["key"] != key:
            return False
        files: dict[str, str] = record["files"]
    except (ValueError, KeyError, TypeError):
        log.warning("%s: cache record %s is unreadable; rebuilding", label, marker)
        return False
    for rel, want in files.items():
        path = directory / rel
        if not path.is_file():
            log.warning("%s: cached file %s is missing; rebuilding", label, path)
            return False
        if sha256_file(path) != want:
            log.warning(
                "%s: cached file %s has changed since it was written; rebuilding", label, path
            )
            return False
    return True


def cached_stage(directory: Path, key: str, build: Callable[[Path], None], label: str) -> bool:
    """Build `directory` with `build(staging)` unless it verifiably holds the product of `key`.

    stage.json records the key and the sha256 of every file. Returns True when
    the product was rebuilt.
    """
    if verified(directory, key, label):
        log.info("%s: up to date (%s)", label, directory)
        return False
    log.info("%s: building", label)
    with atomic_directory(directory) as staging:
        build(staging)
        record = {"key": key, "files": _product_files(staging)}
        (staging / STAGE_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return True


def stage_key_of(directory: Path) -> str:
    """The key a cached product was built from (part of the key of products made from it)."""
    return json.loads((directory / STAGE_FILE).read_text())["key"]


def raw_files(raw_dir: Path, names: Iterable[str]) -> dict[str, tuple[str, str]]:
    """dataset name -> (path under raw_dir, sha256) of each raw input present.

    The sha256 comes from the fetch manifest, which fetch keeps current, else
    from reading the file.
    """
    recorded = {
        rel: str(entry.get("sha256"))
        for rel, entry in download.load_manifest(raw_dir)["files"].items()
        if isinstance(entry, dict) and entry.get("sha256")
    }
    found: dict[str, tuple[str, str]] = {}
    for name in names:
        try:
            path = sources.locate(name, raw_dir)
        except PlannerError:
            continue
        rel = path.relative_to(raw_dir).as_posix()
        found[name] = (rel, recorded.get(rel) or sha256_file(path))
    return found


def raw_checksums(raw_dir: Path, names: Iterable[str]) -> dict[str, str]:
    """sha256 of each raw input present, by its path under raw_dir."""
    return dict(raw_files(raw_dir, names).values())

"""The compiled kernels' decorator, with numba's on-disk cache keyed by this package's source.

numba checks a cached kernel against its own file's time stamp only (a known
limitation: "changes in symbols defined in a different file" are not seen).
A kernel that calls one from another module, as the grouping search calls
`kernels.shape_cost`, therefore kept the old callee's machine code after
that module changed: the search went on scoring with the old shape cost,
and gave other groupings than the objective it was meant to follow. Here
the cache folder is named by a hash of every module of the package, so any
change to any of them starts a fresh cache.

The folder is $NUMBA_CACHE_DIR (when set) or the user cache folder
($XDG_CACHE_HOME or ~/.cache) under planner/numba/, then the hash.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numba

PACKAGE = Path(__file__).resolve().parent


def source_hash(folder: Path = PACKAGE) -> str:
    """sha256 (first 16 hex digits) of the package's modules: names and bytes, in name order."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cache_folder(environ: dict[str, str] | None = None, folder: Path = PACKAGE) -> Path:
    """Where the compiled kernels of this version of the package are cached."""
    env = os.environ if environ is None else environ
    if env.get("NUMBA_CACHE_DIR"):
        base = Path(env["NUMBA_CACHE_DIR"])
    else:
        base = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "planner" / "numba"
    return base / source_hash(folder)


numba.config.CACHE_DIR = str(cache_folder())


def compiled(func: Callable[..., Any]) -> Callable[..., Any]:
    """numba.njit with the on-disk cache (in cache_folder())."""
    return numba.njit(cache=True)(func)

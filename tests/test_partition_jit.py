"""The compiled kernels' cache: keyed by the whole package's source, honouring the user's folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numba

from planner.partition import jit

REPO = Path(__file__).resolve().parents[1]


def test_any_module_changed_gives_another_cache_folder(tmp_path: Path) -> None:
    copy = tmp_path / "partition"
    shutil.copytree(jit.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = jit.source_hash(copy)
    assert before == jit.source_hash(jit.PACKAGE)
    # a change in a module the kernels only call into (the stale-cache case) counts too
    kernels = copy / "kernels.py"
    kernels.write_text(kernels.read_text() + "\n# changed\n")
    assert jit.source_hash(copy) != before
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "nc")}
    assert jit.cache_folder(env, copy) != jit.cache_folder(env, jit.PACKAGE)


def test_cache_folder_follows_the_environment(tmp_path: Path) -> None:
    digest = jit.source_hash()
    given = {"NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    assert jit.cache_folder(given) == tmp_path / "numba" / digest
    xdg = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert jit.cache_folder(xdg) == tmp_path / "xdg" / "planner" / "numba" / digest
    assert jit.cache_folder({}) == Path.home() / ".cache" / "planner" / "numba" / digest


def test_kernels_are_cached_in_the_folder_of_this_source(tmp_path: Path) -> None:
    from planner.partition import kernels

    assert str(jit.cache_folder()) == numba.config.CACHE_DIR
    code = "from planner.partition import kernels\nprint(kernels.shape_cost(4.0, 1.0, 2.0, 6.0))\n"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert float(done.stdout) == kernels.shape_cost.py_func(4.0, 1.0, 2.0, 6.0)
    index = list((tmp_path / jit.source_hash()).rglob("kernels.shape_cost-*.nbi"))
    assert len(index) == 1

"""Shared fixtures: where the real ONS mirror lives, and the national areas table built once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MIRROR = REPO.parent / "shared" / "open-data"


def _mirror_path() -> Path:
    return Path(os.environ.get("PLANNER_MIRROR", DEFAULT_MIRROR)).resolve()


@pytest.fixture(scope="session")
def mirror_dir() -> Path:
    """The offline mirror of the ONS files; CI must have it, elsewhere tests skip without it."""
    path = _mirror_path()
    if not (path / "MANIFEST.md").exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but the open-data mirror is missing at {path} (set PLANNER_MIRROR)")
        pytest.skip(f"open-data mirror not found at {path}")
    return path

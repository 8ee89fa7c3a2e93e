"""Shared fixtures: where the real ONS mirror lives, and the national areas table built once."""

from __future__ import annotations

import os
from collections.abc import Iterator
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
            pytest.fail(
                f"CI is set but the open-data mirror is missing at {path} (set PLANNER_MIRROR)"
            )
        pytest.skip(f"open-data mirror not found at {path}")
    return path


def link_mirror(mirror: Path, raw: Path) -> Path:
    """A data/raw folder whose files are symlinks into the mirror (cheap to corrupt one by one)."""
    for source in mirror.rglob("*"):
        if source.is_file():
            target = raw / source.relative_to(mirror)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(source)
    return raw


@pytest.fixture(scope="session")
def prepared(mirror_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The real national areas table and adjacency graph, built once per test session."""
    from planner import pipeline

    root = tmp_path_factory.mktemp("prepared")
    workspace = pipeline.Workspace(root)
    link_mirror(mirror_dir, workspace.raw)
    directory = pipeline.prepare(workspace)
    areas, adjacency = pipeline.load_areas(directory)
    return workspace, areas, adjacency


@pytest.fixture(scope="session")
def national_plan(prepared, mirror_dir: Path):
    """The real plan for England (default scenario, example readiness), built once per session."""
    from planner import pipeline

    workspace, _, _ = prepared
    options = pipeline.PlanOptions(readiness=mirror_dir / "readiness" / "known_services_2019.csv")
    return pipeline.make_plan(workspace, options)


@pytest.fixture(scope="session", autouse=True)
def local_web_assets() -> Iterator[None]:
    """`planner` in tests (in process or a subprocess) takes the maps' web files locally.

    scripts/fetch_browser_assets.sh fills .cache/browser-assets/web-assets; with
    PLANNER_WEB_ASSETS pointing there, no fetch or run goes to the npm registry.
    """
    from browser_assets import asset_dir

    with pytest.MonkeyPatch.context() as patch:
        if not os.environ.get("PLANNER_WEB_ASSETS"):
            patch.setenv("PLANNER_WEB_ASSETS", str(asset_dir() / "web-assets"))
        yield


@pytest.fixture(scope="session")
def web_assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pinned web files for write_maps (Leaflet and plugins), from local copies only."""
    from browser_assets import asset_dir, missing_assets
    from browser_assets import web_assets as fill

    from planner.maps import assets

    missing = missing_assets(packages=assets.PACKAGES)
    if missing:
        msg = (f"web assets missing under {asset_dir()} ({len(missing)} files); run "
               "scripts/fetch_browser_assets.sh")  # fmt: skip
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return fill(tmp_path_factory.mktemp("web-assets"))

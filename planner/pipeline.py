"""Runs the stages in order and caches each product in data/processed/.

Each cached product is a directory written atomically (built beside its final
place, swapped in when complete) with a `stage.json` holding the key of the
inputs it was made from: the sha256 of every raw file it read, the settings
that shape it and a hash of the code of the stages involved. A product whose
key differs is rebuilt; a run killed half-way leaves the previous product, so
the cache is never half-written.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

import planner
from planner import adjacency as adjacency_stage
from planner import areas as areas_stage
from planner import download, sources
from planner.adjacency import Adjacency
from planner.errors import PlannerError
from planner.fsutil import atomic_directory, sha256_file

log = logging.getLogger("planner")

STAGE_FILE = "stage.json"
PACKAGE_DIR = Path(planner.__file__).resolve().parent
AREA_SOURCES = ("lsoa_boundaries", "lookup", "population", "imd", "under3_msoa")


@dataclass(frozen=True)
class Workspace:
    """Where a run reads and writes: data/raw, data/processed, exports/, maps/."""

    root: Path

    @property
    def raw(self) -> Path:
        return self.root / "data" / "raw"

    @property
    def processed(self) -> Path:
        return self.root / "data" / "processed"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    @property
    def maps(self) -> Path:
        return self.root / "maps"


def code_hash(*modules: str) -> str:
    """Hash of the named stage modules' source, so a code change invalidates their products."""
    digest = hashlib.sha256(planner.__version__.encode())
    for module in sorted(modules):
        digest.update((PACKAGE_DIR / f"{module}.py").read_bytes())
    return digest.hexdigest()[:16]


def stage_key(parts: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _cached(directory: Path, key: str) -> bool:
    marker = directory / STAGE_FILE
    if not marker.exists():
        return False
    try:
        return json.loads(marker.read_text())["key"] == key
    except (ValueError, KeyError):
        return False


def cached_stage(directory: Path, key: str, build: Callable[[Path], None], label: str) -> bool:
    """Build `directory` with `build(staging)` unless its stage.json already has `key`.

    Returns True when the product was rebuilt.
    """
    if _cached(directory, key):
        log.info("%s: up to date (%s)", label, directory)
        return False
    log.info("%s: building", label)
    with atomic_directory(directory) as staging:
        build(staging)
        (staging / STAGE_FILE).write_text(json.dumps({"key": key}, indent=2) + "\n")
    return True


def raw_checksums(raw_dir: Path, names: Iterable[str]) -> dict[str, str]:
    """sha256 of each raw input present (from the fetch manifest when it is current)."""
    manifest_path = raw_dir / "manifest.json"
    recorded: dict[str, str] = {}
    if manifest_path.exists():
        try:
            manifest = json.loads(manifest_path.read_text())
        except ValueError:
            manifest = {}
        for entry in _manifest_entries(manifest):
            recorded[str(entry.get("path"))] = str(entry.get("sha256"))
    sums: dict[str, str] = {}
    for name in names:
        try:
            path = sources.locate(name, raw_dir)
        except PlannerError:
            continue
        paths = sorted(path.iterdir()) if path.is_dir() else [path]
        for file in paths:
            rel = file.relative_to(raw_dir).as_posix()
            sums[rel] = recorded.get(rel) or sha256_file(file)
    return sums


def _manifest_entries(manifest: object) -> list[dict]:
    """Manifest files may list entries under `files` as a list or a mapping."""
    if not isinstance(manifest, dict):
        return []
    files = manifest.get("files", manifest)
    if isinstance(files, dict):
        return [dict(v, path=v.get("path", k)) for k, v in files.items() if isinstance(v, dict)]
    if isinstance(files, list):
        return [f for f in files if isinstance(f, dict)]
    return []


# ---------------------------------------------------------------- areas + adjacency


def prepare(workspace: Workspace) -> Path:
    """Areas table and adjacency graph, cached in data/processed/areas/."""
    directory = workspace.processed / "areas"
    key = stage_key(
        {
            "raw": raw_checksums(workspace.raw, AREA_SOURCES),
            "code": code_hash("areas", "adjacency", "sources"),
        }
    )

    def build(staging: Path) -> None:
        areas = areas_stage.build_areas(workspace.raw)
        adjacency = adjacency_stage.build_adjacency(areas)
        adjacency_stage.check_connected(areas, adjacency)
        write_areas(staging, areas, adjacency)

    cached_stage(directory, key, build, "areas and adjacency")
    return directory


def write_areas(directory: Path, areas: gpd.GeoDataFrame, adjacency: Adjacency) -> None:
    areas.to_parquet(directory / "areas.parquet", index=False)
    adjacency.edges.to_parquet(directory / "adjacency_edges.parquet", index=False)
    pd.DataFrame({"area_m2": adjacency.area, "perimeter_m": adjacency.perimeter}).to_parquet(
        directory / "area_metrics.parquet", index=False
    )
    adjacency.bridges.to_csv(directory / "bridges.csv", index=False, lineterminator="\n")


def load_areas(directory: Path) -> tuple[gpd.GeoDataFrame, Adjacency]:
    """Read the cached areas table and adjacency graph."""
    try:
        areas = gpd.read_parquet(directory / "areas.parquet")
        edges = pd.read_parquet(directory / "adjacency_edges.parquet")
        metrics = pd.read_parquet(directory / "area_metrics.parquet")
        bridges = pd.read_csv(directory / "bridges.csv", dtype={"distance_m": float})
    except (OSError, ValueError) as exc:
        raise PlannerError(
            f"cached areas are unreadable ({exc})",
            file=directory,
            fix="delete data/processed and run `planner prepare` again",
        ) from exc
    adjacency = Adjacency(
        edges=edges,
        bridges=bridges,
        area=metrics["area_m2"].to_numpy(dtype=np.float64),
        perimeter=metrics["perimeter_m"].to_numpy(dtype=np.float64),
    )
    return areas, adjacency


# ---------------------------------------------------------------- fetch and validate


def fetch(
    workspace: Workspace,
    mirror: Path | None = None,
    names: Iterable[str] | None = None,
    progress: bool = True,
) -> dict:
    """Bring the inputs into data/raw (from ONS, or from a mirror folder)."""
    if mirror is not None and not Path(mirror).is_dir():
        raise PlannerError(
            "the mirror folder does not exist",
            file=mirror,
            fix="give the folder laid out like shared/open-data (with MANIFEST.md)",
        )
    return download.fetch(workspace.raw, mirror=mirror, names=names, progress=progress)

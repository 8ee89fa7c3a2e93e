"""Settings and the national run: every ICB solved on its own, in parallel worker processes."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from multiprocessing.pool import AsyncResult

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planner.config import PARTITION_PRESETS  # preset name -> tolerance (one source)
from planner.errors import PlannerError
from planner.partition import grouping, kernels
from planner.partition.graph import RegionGraph
from planner.partition.objective import OBJECTIVES, Preset
from planner.partition.services import (
    ServiceNote,
    partition_with_services,
    standalone_islands,
)
from planner.partition.solve import partition_region
from planner.workers import wait_until_ready, worker_pool


@dataclass(frozen=True)
class PartitionSettings:
    """How catchments are drawn: preset (district alignment or equal size), tolerance, seed."""

    preset: Preset = "la_aligned"
    tolerance: float = 0.10
    seed: int = 0

    def __post_init__(self) -> None:
        if self.preset not in PARTITION_PRESETS:
            raise PlannerError(
                f"unknown partition preset {self.preset!r}",
                field="preset",
                value=self.preset,
                fix=f"use one of {sorted(PARTITION_PRESETS)}",
            )
        if not (0 < self.tolerance < 1):
            raise PlannerError(
                "partition tolerance must be a fraction between 0 and 1 (e.g. 0.1 for ±10%)",
                field="tolerance",
                value=self.tolerance,
            )


PRESETS = {name: PartitionSettings(name, tol, 0) for name, tol in PARTITION_PRESETS.items()}


def _default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


# labels, a note per service area, and the islands standing alone (rows of each)
RegionResult = tuple[np.ndarray, list[ServiceNote], list[np.ndarray]]


def _region_job(job: tuple) -> RegionResult:
    """One ICB from plain numpy arrays (cheap to send to a worker process)."""
    (
        pop,
        district,
        a,
        b,
        length,
        bridge,
        area,
        perim,
        k,
        tolerance,
        seed,
        preset,
        centre,
        service,
    ) = job
    graph = RegionGraph(pop, area, perim, district, a, b, length, centre)
    alone = (
        standalone_islands(graph, bridge, k, tolerance) if OBJECTIVES[preset].keep_districts else []
    )
    if alone or (service >= 0).any():
        labels, notes = partition_with_services(
            graph, service, k, tolerance=tolerance, seed=seed, preset=preset, alone=alone
        )
        return labels, notes, alone
    return partition_region(graph, k, tolerance=tolerance, seed=seed, preset=preset), [], []


@dataclass(frozen=True)
class PartitionResult:
    """The catchments of England, the islands standing alone, and the service areas.

    `labels`: catchment number (0..k-1 within its ICB) per area, indexed like
    the areas.  `services`: one row per service area and ICB it lies in, with
    columns service, icb24cd, population, catchments (population / the ICB's
    mean catchment), wanted ("one catchment", "n catchments inside it", or ""
    when it cannot be held), kept_whole and reason (why not, or "").
    `islands`: one row per island standing as a catchment of its own
    (la_aligned preset, see planner.partition.services.standalone_islands),
    with columns icb24cd, catchment, areas, population and share (of the
    ICB's mean catchment); such a catchment is exempt from the tolerance.
    """

    labels: pd.Series
    services: pd.DataFrame
    islands: pd.DataFrame

    @property
    def notes(self) -> list[str]:
        """One line per service area that is not kept whole, or crosses an ICB boundary."""
        return service_notes(self.services)


def service_notes(services: pd.DataFrame, *, names: Mapping[str, str] | None = None) -> list[str]:
    """One line per service area that is not kept whole, or crosses an ICB boundary.

    `names` (code -> name, e.g. the readiness codes) makes the line readable.
    """
    names = names or {}
    rows = services.loc[services["reason"] != ""]
    return [
        f"{names.get(r.service, 'service')} ({r.service}) in {names.get(r.icb24cd, r.icb24cd)} "
        f"({r.catchments:.2f} catchments' worth): {r.reason}"
        for r in rows.itertuples()
    ]


SERVICE_COLUMNS = [
    "service",
    "icb24cd",
    "population",
    "catchments",
    "wanted",
    "kept_whole",
    "reason",
]


def _service_codes(areas: pd.DataFrame, services: pd.Series | None) -> tuple[np.ndarray, pd.Index]:
    """A code per area (−1: none) and the service keys the codes stand for."""
    if services is None:
        return np.full(len(areas), -1, dtype=np.int64), pd.Index([])
    if not services.index.equals(areas.index):
        raise PlannerError(
            "the services series is not aligned with the areas table",
            field="services",
            fix="build it with phasing.service_areas(readiness, areas)",
        )
    codes, keys = pd.factorize(services.astype("string"), sort=True)
    return codes.astype(np.int64), pd.Index(keys.astype(str))


def area_centres(areas: pd.DataFrame) -> np.ndarray | None:
    """(n, 2) polygon centroids in the areas' CRS (metres), or None without geometry."""
    if not isinstance(areas, gpd.GeoDataFrame):
        return None
    points = shapely.centroid(areas.geometry.to_numpy())
    return np.column_stack([shapely.get_x(points), shapely.get_y(points)])


def _run_region(code: str, job: tuple | None, future: AsyncResult | None) -> RegionResult:
    """One ICB's labels, serially or from a worker; user errors name the ICB."""
    try:
        return _region_job(job) if future is None else future.get()
    except PlannerError as err:
        raise PlannerError(f"ICB {code}: {err.detail}", row=code, fix=err.fix) from err


def _solve_in_workers(
    jobs: dict[str, tuple], order: list[str], workers: int
) -> dict[str, RegionResult]:
    """Each ICB in a forked worker (planner.workers: they die with this process).

    On any exit other than success (an error, or SIGTERM turned into SystemExit)
    the workers are killed at once rather than left to finish their ICB.
    """
    kernels.warm_up()  # compiled kernels, inherited by the forked workers
    grouping.warm_up()
    with worker_pool(workers) as pool:
        pending = {code: pool.apply_async(_region_job, (jobs[code],)) for code in order}
        results = {}
        for code in jobs:
            wait_until_ready(pending[code])
            results[code] = _run_region(code, None, pending[code])
        return results


def partition_england(
    areas: pd.DataFrame,
    adjacency,  # planner.adjacency.Adjacency
    teams_per_icb: pd.Series,
    settings: PartitionSettings = PRESETS["la_aligned"],
    workers: int | None = None,
    *,
    services: pd.Series | None = None,
) -> PartitionResult:
    """Catchment number (0..k-1 within its ICB) for every area, islands alone, service notes.

    `services` (aligned with the areas' rows) holds a key per area of an
    existing service (e.g. its district code) or NA.  Within each ICB, a
    service area that fits in one catchment lies wholly inside one; a bigger
    one is covered by catchments wholly inside it (see
    planner.partition.services); one that cannot be held is reported in the
    result's `services` table with the reason, as is one that crosses an ICB
    boundary (each part is held on its own).  In the la_aligned preset an
    island big enough may be a catchment of its own (result's `islands`).

    ICBs are independent, so with workers > 1 they are solved in a pool of
    forked processes (which die with this one), largest first for load
    balance.  Each ICB's result depends only on its own arrays and the seed,
    and results are merged in ICB order, so the labels equal a serial run
    (workers=1: no pool).
    Default: min(2, CPU count).
    """
    icb = areas["icb24cd"].astype(str).to_numpy()
    missing = sorted(set(pd.unique(icb)) - {str(c) for c in teams_per_icb.index})
    if missing:
        raise PlannerError(
            "ICB has no number of teams", row=missing[0], field="teams", fix="apportion teams first"
        )
    workers = _default_workers() if workers is None else int(workers)
    if workers < 1:
        raise PlannerError("workers must be at least 1", field="workers", value=workers)
    district_codes, _ = pd.factorize(areas["lad24cd"].astype(str), sort=True)
    ea = adjacency.edges["a"].to_numpy()
    eb = adjacency.edges["b"].to_numpy()
    elen = adjacency.edges["shared_length"].to_numpy(dtype=float)
    kind = (
        adjacency.edges["kind"]
        if "kind" in adjacency.edges
        else pd.Series("", index=range(len(ea)))
    )
    ebridge = (kind == "bridge").to_numpy()
    population = areas["population"].to_numpy(dtype=float)
    centre = area_centres(areas)
    service, service_keys = _service_codes(areas, services)
    local = np.full(len(areas), -1, dtype=np.int64)
    jobs: dict[str, tuple] = {}
    region_rows: dict[str, np.ndarray] = {}
    for code in sorted(pd.unique(icb)):
        rows = np.flatnonzero(icb == code)
        local[rows] = np.arange(len(rows))
        keep = (local[ea] >= 0) & (local[eb] >= 0)
        region_rows[code] = rows
        jobs[code] = (
            population[rows],
            district_codes[rows],
            local[ea[keep]],
            local[eb[keep]],
            elen[keep],
            ebridge[keep],
            np.asarray(adjacency.area)[rows],
            np.asarray(adjacency.perimeter)[rows],
            int(teams_per_icb[code]),
            settings.tolerance,
            settings.seed,
            settings.preset,
            None if centre is None else centre[rows],
            service[rows],
        )
        local[rows] = -1
    fork = "fork" in multiprocessing.get_all_start_methods()
    if workers == 1 or len(jobs) == 1 or not fork:
        results = {code: _run_region(code, job, None) for code, job in jobs.items()}
    else:
        # Largest first: big ICBs dominate the wall time, so they start early.
        order = sorted(jobs, key=lambda c: (-len(region_rows[c]), c))
        results = _solve_in_workers(jobs, order, min(workers, len(jobs)))
    out = np.full(len(areas), -1, dtype=np.int64)
    notes = []
    islands = []
    for code in jobs:  # merged in ICB order
        labels, region_notes, alone = results[code]
        out[region_rows[code]] = labels
        mean = population[region_rows[code]].sum() / int(teams_per_icb[code])
        for rows in alone:
            people = float(population[region_rows[code][rows]].sum())
            islands.append((code, int(labels[rows[0]]), len(rows), people, people / mean))
        for note in region_notes:
            row = asdict(note)
            row.update(service=service_keys[note.service], icb24cd=code)
            notes.append(row)
    table = pd.DataFrame(notes, columns=SERVICE_COLUMNS)
    crossing = table.groupby("service")["icb24cd"].transform("nunique") > 1
    if crossing.any():
        icbs = table.groupby("service")["icb24cd"].agg(", ".join)
        prefix = "crosses an ICB boundary (" + table["service"].map(icbs) + "); part held alone"
        table.loc[crossing, "reason"] = (
            prefix + table["reason"].where(table["reason"] == "", "; " + table["reason"])
        )[crossing]
    labels = pd.Series(out, index=areas.index, name="catchment")
    island_table = pd.DataFrame(
        islands, columns=["icb24cd", "catchment", "areas", "population", "share"]
    )
    return PartitionResult(labels, table.reset_index(drop=True), island_table)

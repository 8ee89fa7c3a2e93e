"""Runs the stages in order and caches each product in data/processed/.

Each cached product is a directory written atomically (built beside its final
place, swapped in when complete) with a `stage.json` holding the key of the
inputs it was made from: the sha256 of every raw file it read, the settings
that shape it and a hash of the code of the stages involved. A product whose
key differs is rebuilt; a run killed half-way leaves the previous product, so
the cache is never half-written.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from planner import adjacency as adjacency_stage
from planner import (
    apportion,
    catchments,
    clusters,
    config,
    costs,
    download,
    matching,
    partition,
    phasing,
    provenance,
    readiness,
    scenario_file,
    sources,
    tables,
)
from planner import areas as areas_stage
from planner import maps as map_pages
from planner.adjacency import Adjacency
from planner.cache import (
    STAGE_FILE,
    cached_stage,
    code_hash,
    raw_checksums,
    stage_key,
    stage_key_of,
)
from planner.errors import PlannerError
from planner.fsutil import atomic_directories, atomic_directory, recover_commit
from planner.maps import assets as map_assets
from planner.plan import Plan
from planner.provenance import MANIFEST_NAME

log = logging.getLogger("planner")
logging.getLogger("pyogrio").setLevel(logging.WARNING)  # "Created N records" is noise to users

COMMIT_JOURNAL = ".planner-commit.json"
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

    @property
    def web_assets(self) -> Path:
        """Leaflet and its plugins for the maps (planner.maps.assets), fetched with the data."""
        return self.raw / "web-assets"


# ---------------------------------------------------------------- areas + adjacency


def prepare(workspace: Workspace) -> Path:
    """Areas table and adjacency graph, cached in data/processed/areas/."""
    directory = workspace.processed / "areas"
    key = stage_key(
        {
            "raw": raw_checksums(workspace.raw, AREA_SOURCES),
            "code": code_hash("areas", "adjacency", "sources", "inputs", "lookup"),
        }
    )

    def build(staging: Path) -> None:
        areas = areas_stage.build_areas(workspace.raw)
        adjacency = adjacency_stage.build_adjacency(areas)
        adjacency_stage.check_connected(areas, adjacency)
        for bridge in adjacency.bridges.itertuples(index=False):
            log.info(
                "bridge (%s) %s – %s, %.0f m, in %s",
                bridge.reason,
                bridge.lsoa_a_name,
                bridge.lsoa_b_name,
                bridge.distance_m,
                bridge.icb24nm,
            )
        write_areas(staging, areas, adjacency)

    cached_stage(directory, key, build, "areas and adjacency")
    return directory


def write_areas(directory: Path, areas: gpd.GeoDataFrame, adjacency: Adjacency) -> None:
    areas.to_parquet(directory / "areas.parquet", index=False)
    adjacency.edges.to_parquet(directory / "adjacency_edges.parquet", index=False)
    pd.DataFrame(
        {
            "area_m2": adjacency.area,
            "perimeter_m": adjacency.perimeter,
            "offshore_m2": adjacency.offshore,
        }
    ).to_parquet(directory / "area_metrics.parquet", index=False)
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
        offshore=metrics["offshore_m2"].to_numpy(dtype=np.float64),
    )
    return areas, adjacency


# ---------------------------------------------------------------- fetch and validate


def finish_interrupted_commit(workspace: Workspace) -> None:
    """Complete outputs a killed run was swapping in, before anything else touches them."""
    recover_commit(workspace.root / COMMIT_JOURNAL)


def fetch(
    workspace: Workspace,
    mirror: Path | None = None,
    names: Iterable[str] | None = None,
    progress: bool = True,
    *,
    force: bool = False,
    verify: bool = True,
) -> dict:
    """Bring the inputs into data/raw (from ONS, or from a mirror folder).

    Fetching everything (no `names`) also brings the maps' pinned web files
    (from the mirror's web-assets/, $PLANNER_WEB_ASSETS, else the npm registry).
    """
    if mirror is not None and not Path(mirror).is_dir():
        raise PlannerError(
            "the mirror folder does not exist",
            file=mirror,
            fix="give the folder laid out like shared/open-data (with MANIFEST.md)",
        )
    fetched = download.fetch(
        workspace.raw, mirror=mirror, names=names, progress=progress, force=force, verify=verify
    )
    if names is None:
        map_assets.ensure_assets(workspace.web_assets, sources=map_assets.default_sources(mirror))
    return fetched


# ---------------------------------------------------------------- catchments


@dataclass(frozen=True)
class PlanOptions:
    """What the user chose on the command line (None: the scenario's own value)."""

    scenario: Path | None = None
    readiness: Path | None = None
    seed: int | None = None
    preset: str | None = None
    previous: Path | None = None

    def load_scenario(self) -> config.Scenario:
        return config.with_overrides(
            scenario_file.load_scenario(self.scenario), seed=self.seed, preset=self.preset
        )


@dataclass(frozen=True)
class Catchments:
    """The catchments stage's products, as cached in data/processed/catchments/."""

    table: gpd.GeoDataFrame
    assignment: pd.DataFrame
    icb_quality: pd.DataFrame
    apportionment: pd.DataFrame
    services: pd.DataFrame  # what became of each existing service area
    islands: pd.DataFrame  # islands that stand as catchments of their own, with their team ids

    @staticmethod
    def files() -> dict[str, str]:
        return {
            "table": "catchments.parquet",
            "assignment": "assignment.parquet",
            "icb_quality": "icb_quality.parquet",
            "apportionment": "apportionment.parquet",
            "services": "services.parquet",
            "islands": "islands.parquet",
        }

    def write(self, directory: Path) -> None:
        for name, file in self.files().items():
            getattr(self, name).to_parquet(directory / file)

    @classmethod
    def read(cls, directory: Path) -> Catchments:
        files = cls.files()
        frames = {name: pd.read_parquet(directory / file) for name, file in files.items()}
        frames["table"] = gpd.read_parquet(directory / files["table"])
        return cls(**frames)


def build_catchments(
    areas: gpd.GeoDataFrame,
    adjacency: Adjacency,
    scenario: config.Scenario,
    *,
    services: pd.Series | None = None,
) -> Catchments:
    """Apportion the teams to ICBs and split every ICB, keeping existing services whole."""
    teams = apportion.apportion(areas.groupby("icb24cd")["population"].sum(), scenario.teams)
    settings = partition.PartitionSettings(
        scenario.partition_preset, scenario.partition_tolerance, scenario.seed
    )
    result = partition.partition_england(
        areas, adjacency, teams["teams"], settings, services=services
    )
    team = catchments.team_ids(areas, result.labels)
    table, assignment = catchments.catchment_table(areas, adjacency, team)
    icb_quality = catchments.quality_report(
        table, areas, team, tolerance=scenario.partition_tolerance
    )
    key = pd.DataFrame(
        {"icb24cd": areas["icb24cd"], "catchment": result.labels, "team_id": team}
    ).drop_duplicates(["icb24cd", "catchment"])
    islands = result.islands.merge(key, on=["icb24cd", "catchment"], how="left")
    return Catchments(table, assignment, icb_quality, teams, result.services, islands)


def catchments_stage(
    workspace: Workspace,
    areas_dir: Path,
    scenario: config.Scenario,
    services: pd.Series | None = None,
    *,
    loaded: tuple[gpd.GeoDataFrame, Adjacency] | None = None,
) -> Path:
    """Catchments cached in data/processed/catchments/ (rebuilt when areas or settings change).

    `loaded`: the areas and adjacency already read from `areas_dir` (load_areas),
    so a rebuild does not read them a second time.
    """
    directory = workspace.processed / "catchments"
    held = None if services is None else sorted(services.dropna().astype(str).unique())
    key = stage_key(
        {
            "areas": stage_key_of(areas_dir),
            "teams": scenario.teams,
            "preset": scenario.partition_preset,
            "tolerance": scenario.partition_tolerance,
            "seed": scenario.seed,
            "services": held,
            "code": code_hash("apportion", "partition", "catchments"),
        }
    )

    def build(staging: Path) -> None:
        areas, adjacency = loaded or load_areas(areas_dir)
        build_catchments(areas, adjacency, scenario, services=services).write(staging)

    cached_stage(directory, key, build, "catchments")
    return directory


# ---------------------------------------------------------------- the plan


def expected_codes(areas: pd.DataFrame, scenario: config.Scenario) -> dict[str, str]:
    """Codes a readiness file may use, known before partitioning: areas plus the team ids to come."""
    known = phasing.known_area_codes(areas)
    teams = apportion.apportion(areas.groupby("icb24cd")["population"].sum(), scenario.teams)
    short = areas.drop_duplicates("icb24cd").set_index("icb24cd")["icb24cdh"]
    for icb, k in teams["teams"].items():
        for n in range(1, int(k) + 1):
            known.setdefault(f"{short[icb]}-{n}", f"team {n} of {icb}")
    return known


def make_plan(workspace: Workspace, options: PlanOptions) -> Plan:
    """Read the user's files first (so their mistakes surface before any long stage), then build."""
    scenario = options.load_scenario()
    areas_dir = prepare(workspace)
    areas, adjacency = load_areas(areas_dir)
    scenario = config.resolve_teams(scenario, areas)
    services = None
    codes = expected_codes(areas, scenario)
    if options.readiness is not None:
        # Check the user's file before any stage writes to the cache.
        early = phasing.read_readiness(options.readiness, codes)
        services = phasing.service_areas(early, areas)
    record = provenance.record(
        scenario=scenario,
        scenario_path=options.scenario,
        readiness_path=options.readiness,
        previous_path=options.previous,
        seed_given=options.seed is not None,
        preset_given=options.preset is not None,
        raw_dir=workspace.raw,
        dataset_names=AREA_SOURCES,
    )
    catchment_dir = catchments_stage(
        workspace, areas_dir, scenario, services, loaded=(areas, adjacency)
    )
    drawn = Catchments.read(catchment_dir)
    table, assignment, icb_quality = drawn.table, drawn.assignment, drawn.icb_quality
    for note in partition.service_notes(drawn.services, names=codes):
        log.warning("existing service not kept whole: %s", note)
    islands = drawn.islands
    if options.previous is not None:
        before = assignment["team_id"].astype(str)  # carry_over_ids keeps the row order
        table, assignment = matching.carry_over_ids(table, assignment, areas, options.previous)
        renamed = dict(zip(before, assignment["team_id"].astype(str), strict=True))
        islands = islands.assign(team_id=islands["team_id"].astype(str).map(renamed))
    warn_outside_tolerance(
        table, scenario.partition_tolerance, exempt=set(islands["team_id"].astype(str))
    )
    services_known = None
    if options.readiness is not None:
        known = phasing.known_area_codes(areas, table)
        services_known = phasing.read_readiness(options.readiness, known)
    plan = phasing.assign_phasing(table, areas, assignment, services_known, scenario)
    team_clusters = clusters.assign_clusters(table, assignment, adjacency.edges)
    plan = plan.merge(team_clusters, on="team_id", how="left", validate="1:1")
    cluster_leads = clusters.cluster_table(
        table, team_clusters, lead_wte_per_team=clusters.lead_wte_per_team(scenario)
    )
    plan, team_costs = costs.cost_plan(plan, scenario)
    national = costs.national_table(team_costs, scenario)
    return Plan(
        scenario,
        areas,
        adjacency,
        table,
        assignment,
        icb_quality,
        plan,
        team_costs,
        national,
        cluster_leads,
        record,
        islands,
    )


def warn_outside_tolerance(
    table: pd.DataFrame, tolerance: float, *, exempt: set[str] | frozenset[str] = frozenset()
) -> list[str]:
    """Catchments the partition could not bring within the tolerance, each named in a warning.

    `exempt`: islands standing as catchments of their own, outside the tolerance by design.
    """
    outside = table.loc[
        (table["deviation_pct"].abs() > tolerance * 100 + 1e-9)
        & ~table["team_id"].astype(str).isin(exempt)
    ]
    names = [
        f"{row.team_id} {row.name} ({row.deviation_pct:+.2f}%)"
        for row in outside.sort_values("team_id").itertuples(index=False)
    ]
    if names:
        log.warning(
            "%d catchment(s) are outside the tolerance of ±%s%%: %s",
            len(names),
            f"{tolerance * 100:g}",
            ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else ""),
        )
    return names


# ---------------------------------------------------------------- the recorded plan

RECORD_FILES = ("plan.parquet", "assignment.parquet", "team_figures.parquet", MANIFEST_NAME)


def record_dir(workspace: Workspace) -> Path:
    """data/processed/plan: the plan the current exports show, which `planner maps` draws."""
    return workspace.processed / "plan"


def write_record(
    directory: Path, result: Plan, manifest: dict, *, team_figures: pd.DataFrame
) -> None:
    """What the maps need of a plan, so that `planner maps` never has to re-plan.

    `team_figures`: tables.shown_tables(result)["team"], the figures as shown.
    """
    plan = pd.DataFrame(result.plan.drop(columns="geometry", errors="ignore"))
    plan.to_parquet(directory / "plan.parquet", index=False)
    result.assignment.to_parquet(directory / "assignment.parquet", index=False)
    team_figures.to_parquet(directory / "team_figures.parquet")
    (directory / MANIFEST_NAME).write_text(provenance.manifest_text(manifest))


@dataclass(frozen=True)
class RecordedPlan:
    """What the maps are drawn from: the recorded plan, its provenance and the areas."""

    plan: pd.DataFrame
    assignment: pd.DataFrame
    team_figures: pd.DataFrame
    areas: gpd.GeoDataFrame
    provenance: provenance.Provenance


def load_record(
    directory: Path, areas_dir: Path, *, areas: gpd.GeoDataFrame | None = None
) -> RecordedPlan:
    """The recorded plan, checked to be whole and made from the areas now cached.

    `areas`: the table already read from `areas_dir` (by the run that made the
    plan), so it is not read again.
    """
    fix = "run `planner plan` (or `planner run`) to make the plan first"
    if not all((directory / name).is_file() for name in RECORD_FILES):
        raise PlannerError("no recorded plan to draw", file=directory, fix=fix)
    try:
        manifest = json.loads((directory / MANIFEST_NAME).read_text())
        plan = pd.read_parquet(directory / "plan.parquet")
        assignment = pd.read_parquet(directory / "assignment.parquet")
        team_figures = pd.read_parquet(directory / "team_figures.parquet")
    except (OSError, ValueError) as exc:
        raise PlannerError(
            f"the recorded plan is unreadable ({exc})", file=directory, fix=fix
        ) from exc
    cached = stage_key_of(areas_dir) if (areas_dir / STAGE_FILE).exists() else None
    if manifest.get("areas_key") != cached:
        raise PlannerError(
            "the recorded plan was made from other small-area data than data/processed holds",
            file=directory,
            fix=fix,
        )
    if areas is None:
        areas, _ = load_areas(areas_dir)
    manifest.pop("created", None)
    manifest.pop("areas_key", None)
    return RecordedPlan(plan, assignment, team_figures, areas, provenance.Provenance(manifest))


def draw_maps(directory: Path, recorded: RecordedPlan, *, web_assets: Path) -> None:
    """The HTML maps of one recorded plan, its provenance in every footer and in manifest.json.

    `web_assets` is the cache of the maps' web files (checked, fetched if missing).
    """
    record = recorded.provenance
    assets_dir = map_assets.ensure_assets(web_assets, sources=map_assets.default_sources())
    map_pages.write_maps(
        directory,
        recorded.plan,
        recorded.areas,
        recorded.assignment,
        record.manifest["years"],
        record.line(),
        team_figures=recorded.team_figures,
        assets_dir=assets_dir,
    )
    (directory / MANIFEST_NAME).write_text(provenance.manifest_text(record.manifest))


def run(workspace: Workspace, options: PlanOptions, *, maps: bool = True) -> str:
    """Make the plan, then commit its record, exports and (optionally) maps together.

    Everything is built in staging first; the folders are swapped in together
    at the end, so a failure at any point leaves the previous outputs whole.
    """
    result = make_plan(workspace, options)
    record = result.provenance
    manifest = {**record.with_time(), "areas_key": stage_key_of(workspace.processed / "areas")}
    folders = [record_dir(workspace), workspace.exports] + ([workspace.maps] if maps else [])
    with atomic_directories(*folders, journal=workspace.root / COMMIT_JOURNAL) as staging:
        shown = tables.shown_tables(result)
        write_record(staging[0], result, manifest, team_figures=shown["team"])
        log.info("exports: writing %s", workspace.exports)
        tables.write_plan_exports(staging[1], result, provenance=record.line(), shown=shown)
        exported = {k: v for k, v in manifest.items() if k != "areas_key"}
        (staging[1] / MANIFEST_NAME).write_text(provenance.manifest_text(exported))
        if maps:
            log.info("maps: writing %s", workspace.maps)
            # Drawn from the record just written, exactly as `planner maps` would draw it.
            recorded = load_record(staging[0], workspace.processed / "areas", areas=result.areas)
            draw_maps(staging[2], recorded, web_assets=workspace.web_assets)
    lines = [*record.summary_lines(), *plan_report(result)]
    lines.append(tables.summary_text(result.plan, result.national, result.scenario).rstrip("\n"))
    lines.append(
        f"Exports for planners: {workspace.exports}/ (teams.csv, lsoa_to_team.csv, "
        "catchments.gpkg, manifest.json, …)"
    )
    if maps:
        lines.append(f"Maps for commissioners: {workspace.maps / 'index.html'}")
    else:
        lines.extend(stale_maps_warning(workspace, record.plan_id))
    return "\n".join(lines)


def plan_report(result: Plan) -> list[str]:
    """Summary lines on how the plan was made: teams, waves' basis, sizing and coverage.

    Lines the stages mark "Warning:" are also logged as warnings.
    """
    scenario, plan = result.scenario, result.plan
    lines = [config.describe_teams(scenario, int(result.areas["population"].sum()))]
    names = result.plan.set_index(result.plan["team_id"].astype(str))["name"]
    for island in result.islands.itertuples(index=False):
        lines.append(
            f"Island standing alone: {names.get(str(island.team_id), island.team_id)} "
            f"({island.team_id}, {int(island.population):,} people, {island.share:.0%} of a mean "
            "catchment; outside the tolerance by design)"
        )
    lines.extend(phasing.phasing_report(plan, scenario))
    lines.append(costs.wave_one_change(plan, scenario).describe())
    lines.extend(spread.describe() for spread in costs.coverage_spreads(plan, scenario))
    for line in lines:
        if line.startswith("Warning:"):
            log.warning("%s", line.removeprefix("Warning:").strip())
    return lines


def stale_maps_warning(workspace: Workspace, plan_id: str) -> list[str]:
    """Say so when maps/ shows another plan than the exports (after `plan` or `run --no-maps`)."""
    shown = provenance.recorded_plan_id(workspace.maps)
    if not workspace.maps.exists() or shown == plan_id:
        return []
    message = (
        f"maps/ still show {'plan ' + shown if shown else 'an earlier plan'}, not plan {plan_id}: "
        "run `planner maps` to draw this one"
    )
    log.warning(message)
    return [f"Warning: {message}"]


def compare_plans(workspace: Workspace, old: Path, new: Path, out: Path) -> list[str]:
    """`planner compare`: the change report between two exports folders, in `out`."""
    assets_dir = map_assets.ensure_assets(
        workspace.web_assets, sources=map_assets.default_sources()
    )
    # Imported here: the report's page modules (folium) cost every other command ~0.5 s.
    from planner import compare

    return [path.name for path in compare.write_report(old, new, out, assets_dir=assets_dir)]


def maps_only(workspace: Workspace) -> str:
    """Draw the recorded plan (never re-plan): the maps then show exactly what exports/ shows."""
    recorded = load_record(record_dir(workspace), workspace.processed / "areas")
    log.info("maps: writing %s for plan %s", workspace.maps, recorded.provenance.plan_id)
    with atomic_directory(workspace.maps) as staging:
        draw_maps(staging, recorded, web_assets=workspace.web_assets)
    return (
        f"Maps of plan {recorded.provenance.plan_id} for commissioners: "
        f"{workspace.maps / 'index.html'}"
    )


def areas_at_hand(workspace: Workspace, mirror: Path | None) -> gpd.GeoDataFrame | bool:
    """The areas table if it can be had without the internet (a mirror, or data/raw), else False.

    `validate` must work on a laptop with no data and no network: it then
    checks what needs no data and says what it could not check.
    """
    if mirror is not None:
        fetch(workspace, mirror=mirror, progress=False)
    else:
        for name in AREA_SOURCES:
            try:
                sources.locate(name, workspace.raw)
            except PlannerError:
                return False
    return load_areas(prepare(workspace))[0]


def validate_files(
    workspace: Workspace, files: Iterable[Path], mirror: Path | None = None
) -> list[str]:
    """Every problem in the given scenario (.toml) and readiness (.csv) files, without a run."""
    problems: list[str] = []
    areas: gpd.GeoDataFrame | bool | None = None
    scenario = config.default_scenario()
    for file in files:
        if file.suffix.lower() == ".toml":
            errors = scenario_file.validate_scenario_file(file)
            problems.extend(str(e) for e in errors)
            if not errors:
                scenario = scenario_file.load_scenario(file)
    for file in files:
        suffix = file.suffix.lower()
        if suffix == ".toml":
            continue
        if suffix not in {".csv", ".txt"}:
            problems.append(
                str(
                    PlannerError(
                        "not a scenario (.toml) or readiness (.csv) file",
                        file=file,
                        fix="give a .toml scenario or a .csv readiness file",
                    )
                )
            )
            continue
        if areas is None:
            areas = areas_at_hand(workspace, mirror)
        if areas is False:
            found = readiness.validate_readiness_file(file, readiness.KnownCodes())
            problems.extend(str(e) for e in found if e.detail != "unknown area code")
            log.warning(
                "%s: area codes not checked, as this workdir has no small-area data yet; "
                "run `planner fetch` (or give --mirror DIR) and validate again to check them",
                file,
            )
            continue
        known = expected_codes(areas, scenario)
        problems.extend(str(e) for e in phasing.validate_readiness_file(file, known))
    return problems

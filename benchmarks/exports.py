"""Measure the exports, stable ids and `compare` on the real plan for England.

Usage: python benchmarks/exports.py [--mirror ../shared/open-data] [--repeat 3] [--seed 7]

Builds the plan twice in one work folder (default seed, then `--seed` with the
ids carried over from the first plan's exports), then reports: the median time
of `tables.write_plan_exports` and of `compare.write_report`; how many teams
share at least half of their population with an old team and how many of those
kept its id (counted from the two lsoa_to_team.csv files, not from the
planner's own matching); and the figure checks — every catchment valid, each
year's ICB cells summing to England's row.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import shapely

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from conftest import link_mirror  # noqa: E402

from planner import compare, costs, matching, phasing, pipeline, tables  # noqa: E402


def kept_ids(old_csv: Path, new_csv: Path, areas: pd.DataFrame) -> tuple[int, int]:
    """(teams sharing ≥ half their population with an old team, those carrying its id)."""
    old = pd.read_csv(old_csv, dtype=str)[["lsoa21cd", "team_id"]]
    new = pd.read_csv(new_csv, dtype=str)[["lsoa21cd", "team_id"]]
    both = new.merge(old, on="lsoa21cd", suffixes=("_new", "_old")).merge(
        areas[["lsoa21cd", "population"]], on="lsoa21cd"
    )
    shared = both.groupby(["team_id_new", "team_id_old"])["population"].sum().reset_index()
    size = both.groupby("team_id_new")["population"].sum()
    best = shared.sort_values("population", ascending=False).drop_duplicates("team_id_new")
    half = best[best["population"] >= 0.5 * best["team_id_new"].map(size)]
    return len(half), int((half["team_id_new"] == half["team_id_old"]).sum())


def plan_for(first, table, assignment, scenario, readiness: Path):
    """The whole plan for other catchments (phasing and costs as the pipeline does them)."""
    known = phasing.known_area_codes(first.areas, table)
    ready = phasing.read_readiness(readiness, known)
    plan = phasing.assign_phasing(table, first.areas, assignment, ready, scenario)
    team_costs = costs.team_year_costs(plan.set_index("team_id")["wave"], scenario)
    plan = costs.attach_costs(plan, team_costs, scenario)
    national = costs.national_table(team_costs, scenario)
    return dataclasses.replace(
        first, scenario=scenario, catchments=table, assignment=assignment, plan=plan,
        team_costs=team_costs, national=national,
    )  # fmt: skip


def timed(func, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, default=REPO.parent / "shared" / "open-data")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    readiness = args.mirror / "readiness" / "known_services_2019.csv"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        workspace = pipeline.Workspace(root / "work")
        link_mirror(args.mirror.resolve(), workspace.raw)
        first = pipeline.make_plan(workspace, pipeline.PlanOptions(readiness=readiness))
        old = root / "old"
        write_s = timed(
            lambda: tables.write_plan_exports(old, first, provenance="benchmark"), args.repeat
        )
        seven = dataclasses.replace(first.scenario, seed=args.seed)
        drawn = pipeline.build_catchments(first.areas, first.adjacency, seven)
        table, assignment = matching.carry_over_ids(drawn.table, drawn.assignment, first.areas, old)
        second = plan_for(first, table, assignment, seven, readiness)
        new = root / "new"
        tables.write_plan_exports(new, second, provenance=f"benchmark, seed {args.seed}")
        half, kept = kept_ids(old / "lsoa_to_team.csv", new / "lsoa_to_team.csv", first.areas)
        compare_s = timed(lambda: compare.write_report(old, new, root / "report"), args.repeat)
        changes = pd.read_csv(root / "report" / "changes_teams.csv", keep_default_na=False)
        status = changes["status"].value_counts().to_dict()
        moved = len(pd.read_csv(root / "report" / "changes_areas.csv"))
        waves = int((changes["wave_change"] != "").sum())
        icb = pd.read_csv(old / "costs_by_icb.csv")
        region = pd.read_csv(old / "costs_by_region.csv")
        england = region[region["area_code"] == tables.ENGLAND[0]].set_index("year")
        sums = icb.groupby("year")[["cost", "babies"]].sum()
        adds_up = bool((sums == england[["cost", "babies"]]).all().all())
        valid = int(shapely.is_valid(first.catchments.geometry.to_numpy()).sum())
    print(f"write_plan_exports: median {write_s:.2f} s over {args.repeat}")
    print(f"compare.write_report: median {compare_s:.2f} s; teams {status}; "
          f"{moved} small areas changed team; {waves} teams changed wave")  # fmt: skip
    print(f"seed {args.seed} vs {first.scenario.seed}: {half} teams share ≥ half their "
          f"population with an old team; {kept} of them carry its id")  # fmt: skip
    print(f"valid catchments: {valid} of {len(first.catchments)}; ICB cells add up to "
          f"England's row each year: {adds_up}")  # fmt: skip


if __name__ == "__main__":
    main()

"""Measure coverage, need sizing, wave-one costing and clusters on the full real plan.

Usage: python benchmarks/plan_coverage.py [--mirror ../shared/open-data]
                                     [--readiness ../shared/open-data/readiness/known_services_2019.csv]
                                     [--workdir DIR] [--repeats 3]

Builds the plan from the mirror (default scenario, the readiness file given),
then reports, for team.sizing "uniform" and "need": coverage (babies seen a
year per 1,000 under-1s; under-1s = under-3s ÷ 3) min / median / max and its
Spearman rank correlation with need per head (over all teams once every team
operates fully, and within the teams that start together during the rollout),
the range of team WTE (settled and during the rollout), the WTE total and whether
national.csv still holds every published figure; what
wave_one_without_service = "new" would change in wave one's year; the cluster
sizes, ICB-crossing clusters and extents. Times are medians of --repeats runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from planner import clusters, costs, pipeline  # noqa: E402
from tests.conftest import link_mirror  # noqa: E402


def median_time(func: Callable[[], object], repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, default=REPO.parent / "shared" / "open-data")
    parser.add_argument("--readiness", type=Path, default=None)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    readiness = args.readiness or args.mirror / "readiness" / "known_services_2019.csv"
    root = args.workdir or Path(tempfile.mkdtemp(prefix="coverage-bench-"))
    workspace = pipeline.Workspace(root)
    if not workspace.raw.exists():
        link_mirror(args.mirror.resolve(), workspace.raw)
    plan = pipeline.make_plan(workspace, pipeline.PlanOptions(readiness=readiness.resolve()))
    base = plan.scenario
    print(f"readiness: {readiness}")
    for sizing in ("uniform", "need"):
        scenario = dataclasses.replace(base, team_sizing=sizing)
        seconds, (table, team_costs) = median_time(
            lambda s=scenario: costs.cost_plan(plan.plan, s), args.repeats
        )
        national = costs.national_table(team_costs, scenario)
        spread = costs.coverage_spread(plan.plan, base, sizing=sizing)
        mismatches = costs.proposal_mismatches(national, scenario)
        print(
            f"{sizing:8s} coverage min {spread.minimum:.1f} median {spread.median:.1f} "
            f"max {spread.maximum:.1f}; Spearman vs need per head {spread.rank_correlation:+.3f} "
            f"(within cohorts {spread.rank_correlation_in_cohorts:+.3f}); "
            f"WTE {table['wte'].min():.2f}-{table['wte'].max():.2f} (rollout "
            f"{table['wte_rollout'].min():.2f}-{table['wte_rollout'].max():.2f}), "
            f"total {math.fsum(table['wte']):.2f}; national.csv mismatches {len(mismatches)}; "
            f"cost_plan {seconds * 1000:.0f} ms"
        )
    print(costs.wave_one_change(plan.plan, base).describe())
    seconds, found = median_time(
        lambda: clusters.assign_clusters(plan.catchments, plan.assignment, plan.adjacency.edges),
        args.repeats,
    )
    table = clusters.cluster_table(
        plan.catchments, found, lead_wte_per_team=clusters.lead_wte_per_team(base)
    )
    sizes = table["teams"].value_counts().sort_index().to_dict()
    print(
        f"clusters: {len(table)} ({', '.join(f'{n} of {k}' for k, n in sizes.items())} teams); "
        f"crossing an ICB {int(table['icbs'].str.contains(';').sum())}; extent km median "
        f"{table['extent_km'].median():.1f} max {table['extent_km'].max():.1f}; lead WTE "
        f"{math.fsum(table['lead_wte']):.2f}; assign_clusters {seconds * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()

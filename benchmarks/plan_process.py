"""Time `planner plan` with a fresh seed as a whole process, against GerryChain on the same graph.

Usage: python benchmarks/plan_process.py [--mirror ../shared/open-data] [--runs 3]
                                         [--first-seed 1000] [--gerrychain-repeats 3]
                                         [--workdir W]

The issue's acceptance: `planner plan` with a fresh seed (so the catchments
are rebuilt, while the areas table and adjacency graph are cached), timed as
a whole process, takes at most 0.3× GerryChain's recursive_tree_part
(ε = 0.005, one call per ICB) on the same graph, each preset on its own.

A work folder is prepared once (`planner prepare --mirror`, or the one given
with --workdir), and one untimed `plan` fills numba's and the planner's
caches.  Then, per preset, --runs processes of
`python -m planner.cli -q --workdir W plan --seed S --preset P` are timed
wall to wall, each with a seed not used before.  GerryChain runs in its own
process on the areas and adjacency that `plan` reads (benchmarks/partition.py's
routine, the same 202 teams), timed around the call (its imports and the
loading are left out, which favours it).  Printed: each run's seconds, the
medians and the ratios of the plan medians to GerryChain's.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRESETS = ("la_aligned", "equal_size")


def planner(workdir: Path, *args: str) -> float:
    """Seconds of one `python -m planner.cli -q --workdir W ...` process; fails loudly."""
    command = [sys.executable, "-m", "planner.cli", "-q", "--workdir", str(workdir), *args]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    return seconds


def gerrychain_seconds(workdir: Path, seed: int, repeats: int) -> list[float]:
    """GerryChain on the prepared graph, in a child process; seconds of each call."""
    command = [
        sys.executable,
        __file__,
        "--gerrychain-child",
        str(workdir),
        str(seed),
        str(repeats),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"GerryChain child failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def gerrychain_child(workdir: Path, seed: int, repeats: int) -> None:
    """Run in the child: load the areas `plan` reads, time benchmarks/partition.py's routine."""
    sys.path.insert(0, str(REPO))
    from planner import pipeline
    from planner.apportion import apportion

    spec = importlib.util.spec_from_file_location(
        "benchmark_partition", REPO / "benchmarks" / "partition.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    directory = pipeline.prepare(pipeline.Workspace(workdir))  # cached: only reads
    areas, adjacency = pipeline.load_areas(directory)
    teams = apportion(areas.groupby("icb24cd")["population"].sum(), 202)["teams"]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        bench.gerrychain_run(areas, adjacency, teams, seed)
        times.append(time.perf_counter() - start)
    print(json.dumps(times))


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--gerrychain-child":
        gerrychain_child(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mirror", type=Path, default=REPO.parent / "shared" / "open-data")
    parser.add_argument("--runs", type=int, default=3, help="timed plan runs per preset")
    parser.add_argument("--first-seed", type=int, default=1000, help="seeds first-seed, +1, ...")
    parser.add_argument("--gerrychain-repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, help="a prepared work folder (default: a new one)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="plan-process-") as temp:
        workdir = args.workdir or Path(temp)
        if args.workdir is None:
            seconds = planner(workdir, "prepare", "--mirror", str(args.mirror))
            print(f"prepare: {seconds:.1f} s (once)")
        seconds = planner(workdir, "plan", "--seed", str(args.first_seed - 1))
        print(f"warm-up plan: {seconds:.1f} s (not counted)")
        seed = args.first_seed
        medians = {}
        for preset in PRESETS:
            times = []
            for _ in range(args.runs):
                times.append(planner(workdir, "plan", "--seed", str(seed), "--preset", preset))
                seed += 1
            medians[preset] = statistics.median(times)
            runs = ", ".join(f"{t:.1f}" for t in times)
            print(f"plan {preset}: median {medians[preset]:.1f} s ({runs})", flush=True)
        gerry = gerrychain_seconds(workdir, 0, args.gerrychain_repeats)
        gerry_median = statistics.median(gerry)
        runs = ", ".join(f"{t:.1f}" for t in gerry)
        print(f"GerryChain recursive_tree_part ε=0.005: median {gerry_median:.1f} s ({runs})")
        print("\nwhole plan process / GerryChain (medians):")
        for preset in PRESETS:
            print(f"  {preset}: {medians[preset]:.1f} s / {gerry_median:.1f} s = "
                  f"{medians[preset] / gerry_median:.2f}×")  # fmt: skip


if __name__ == "__main__":
    main()

"""Time `planner plan` with a fresh seed as a whole process, against GerryChain on the same graph.

Usage: python benchmarks/plan_process.py [--mirror ../shared/open-data] [--runs 3]
                                         [--first-seed 1000] [--gerrychain-repeats 1]
                                         [--workdir W]

The issue's acceptance: `planner plan` with a fresh seed (so the catchments
are rebuilt, while the areas table and adjacency graph are cached), timed as
a whole process, takes at most 0.3× GerryChain's recursive_tree_part
(ε = 0.005, one call per ICB) on the same graph, each preset on its own.

The planner's modules are byte-compiled first (compileall), as a regular
`pip install` does and as Python does on any first run unless
PYTHONDONTWRITEBYTECODE is set (it is on these machines): otherwise every
timed process would compile the package's source again (~0.3 s), which no
user's second run does.  A work folder is prepared once (`planner prepare --mirror`, or the one given
with --workdir), and one untimed `plan` fills numba's and the planner's
caches.  Then --runs rounds: in each, one process of
`python -m planner.cli -q --workdir W plan --seed S --preset P` per preset is
timed wall to wall, each with a seed not used before, and GerryChain runs in
its own process on the areas and adjacency that `plan` reads
(benchmarks/partition.py's routine, the same 202 teams), timed around the call
(its imports and the loading are left out, which favours it).  Rounds keep a
change in the machine's load on both sides of a ratio.  Printed: each run's
seconds, the medians, the ratio of the plan medians to GerryChain's, and the
ratio within each round with its median.
"""

from __future__ import annotations

import argparse
import compileall
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
    parser.add_argument(
        "--runs", type=int, default=3, help="rounds: one timed plan per preset, then GerryChain"
    )
    parser.add_argument("--first-seed", type=int, default=1000, help="seeds first-seed, +1, ...")
    parser.add_argument(
        "--gerrychain-repeats", type=int, default=1, help="GerryChain calls per round"
    )
    parser.add_argument("--workdir", type=Path, help="a prepared work folder (default: a new one)")
    args = parser.parse_args()

    compileall.compile_dir(REPO / "planner", quiet=1)
    with tempfile.TemporaryDirectory(prefix="plan-process-") as temp:
        workdir = args.workdir or Path(temp)
        if args.workdir is None:
            seconds = planner(workdir, "prepare", "--mirror", str(args.mirror))
            print(f"prepare: {seconds:.1f} s (once)")
        seconds = planner(workdir, "plan", "--seed", str(args.first_seed - 1))
        print(f"warm-up plan: {seconds:.1f} s (not counted)")
        seed = args.first_seed
        times: dict[str, list[float]] = {preset: [] for preset in PRESETS}
        gerry: list[float] = []
        # Rounds: each preset once, then GerryChain once, so that a change in the
        # machine's load falls on both sides of a ratio alike.
        for _ in range(args.runs):
            for preset in PRESETS:
                times[preset].append(
                    planner(workdir, "plan", "--seed", str(seed), "--preset", preset)
                )
                seed += 1
            gerry += gerrychain_seconds(workdir, 0, args.gerrychain_repeats)
            print(
                "round: "
                + ", ".join(f"{p} {times[p][-1]:.1f} s" for p in PRESETS)
                + f", GerryChain {gerry[-1]:.1f} s",
                flush=True,
            )
        gerry_median = statistics.median(gerry)
        print(f"GerryChain recursive_tree_part ε=0.005: median {gerry_median:.1f} s "
              f"({', '.join(f'{t:.1f}' for t in gerry)})")  # fmt: skip
        for preset in PRESETS:
            runs = ", ".join(f"{t:.1f}" for t in times[preset])
            print(f"plan {preset}: median {statistics.median(times[preset]):.1f} s ({runs})")
        print("\nwhole plan process / GerryChain:")
        per_round = args.gerrychain_repeats
        for preset in PRESETS:
            median = statistics.median(times[preset])
            paired = [
                t / statistics.median(gerry[i * per_round : (i + 1) * per_round])
                for i, t in enumerate(times[preset])
            ]
            print(f"  {preset}: medians {median:.1f} s / {gerry_median:.1f} s = "
                  f"{median / gerry_median:.2f}×; per round "
                  f"{', '.join(f'{r:.2f}' for r in paired)} (median "
                  f"{statistics.median(paired):.2f}×)")  # fmt: skip


if __name__ == "__main__":
    main()

"""Measure `prepare` on the real mirror: mirror → areas table + adjacency graph.

Usage: python benchmarks/prepare.py [--mirror ../shared/open-data] [--repeat 3]

Each repeat runs in a fresh process and a fresh work folder (so nothing is
cached) and reports wall time and peak resident memory; the median is printed
with the spread, because these machines are shared and noisy. Aim: ≤ 60 s and
≤ 3 GB on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys, time
from pathlib import Path
from planner import download, pipeline
root, mirror = Path(sys.argv[1]), Path(sys.argv[2])
ws = pipeline.Workspace(root)
t0 = time.perf_counter()
download.fetch(ws.raw, mirror=mirror, progress=False)
t1 = time.perf_counter()
directory = pipeline.prepare(ws)
t2 = time.perf_counter()
areas, adjacency = pipeline.load_areas(directory)
print(json.dumps({
    "copy_s": t1 - t0, "prepare_s": t2 - t1, "total_s": t2 - t0,
    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "areas": len(areas), "edges": len(adjacency.edges), "bridges": len(adjacency.bridges),
}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, default=REPO.parent / "shared" / "open-data")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as root:
            started = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", CHILD, root, str(args.mirror.resolve())],
                check=True,
                capture_output=True,
                text=True,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            result["process_s"] = time.perf_counter() - started
            runs.append(result)
    print(f"{'run':>4} {'copy s':>8} {'prepare s':>10} {'process s':>10} {'peak MB':>8}")
    for i, r in enumerate(runs, 1):
        print(
            f"{i:>4} {r['copy_s']:>8.2f} {r['prepare_s']:>10.2f} {r['process_s']:>10.2f} {r['peak_mb']:>8.0f}"
        )
    for key in ("prepare_s", "process_s", "peak_mb"):
        values = [r[key] for r in runs]
        print(
            f"median {key}: {statistics.median(values):.2f} (min {min(values):.2f}, max {max(values):.2f})"
        )
    last = runs[-1]
    print("targets: prepare ≤ 60 s, peak ≤ 3,072 MB")
    print(f"areas {last['areas']:,}; adjacency edges {last['edges']:,}; bridges {last['bridges']}")


if __name__ == "__main__":
    main()

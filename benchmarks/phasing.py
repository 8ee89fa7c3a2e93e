"""Measure readiness reading and phasing on the whole of England, and report the plan's figures.

Usage: python benchmarks/phasing.py [--mirror ../shared/open-data] [--workdir DIR] [--repeat 5]

The catchments come from planner.pipeline (a workspace whose data/raw links to
the mirror; give --workdir to reuse one between runs). Reports medians of
--repeat runs: known_area_codes, read_readiness of each example file, a file
of 100,000 unknown codes (time and length of the one-line error), and
assign_phasing; then, per example file, the teams holding at least half of an
operating area, the operating teams, wave one's basis, the overflow and the
year each ICB's first team starts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing
sys.path.insert(0, str(REPO / "tests"))

from conftest import link_mirror  # noqa: E402

from planner import phasing, pipeline  # noqa: E402
from planner.config import default_scenario  # noqa: E402
from planner.errors import PlannerError  # noqa: E402

EXAMPLES = ("known_services_2019.csv", "known_services_2025.csv")


def median_seconds(func: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, default=REPO.parent / "shared" / "open-data")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    root = args.workdir or Path(tempfile.mkdtemp(prefix="phasing-bench-"))
    workspace = pipeline.Workspace(root)
    if not workspace.raw.exists():
        link_mirror(args.mirror.resolve(), workspace.raw)
    built = pipeline.make_plan(workspace, pipeline.PlanOptions())
    catch, areas, assignment = built.catchments, built.areas, built.assignment
    scenario = default_scenario()

    seconds = median_seconds(lambda: phasing.known_area_codes(areas, catch), args.repeat)
    print(f"known_area_codes: {seconds:.3f} s")
    known = phasing.known_area_codes(areas, catch)
    with tempfile.TemporaryDirectory() as tmp:
        many = Path(tmp) / "many.csv"
        many.write_text(
            "area_code,readiness\n" + "".join(f"X{i:07d},operating\n" for i in range(100_000))
        )

        def read_many() -> PlannerError:
            try:
                phasing.read_readiness(many, known)
            except PlannerError as exc:
                return exc
            raise AssertionError("100,000 unknown codes were accepted")

        seconds = median_seconds(read_many, args.repeat)
        print(
            f"read_readiness, 100,000 unknown codes: {seconds:.3f} s, "
            f"error of {len(str(read_many()))} characters"
        )
        problems = phasing.validate_readiness_file(many, known)
        print(f"validate_readiness_file, 100,000 unknown codes: {len(problems)} lines")

    for name in EXAMPLES:
        path = args.mirror / "readiness" / name
        seconds = median_seconds(lambda path=path: phasing.read_readiness(path, known), args.repeat)
        ready = phasing.read_readiness(path, known)
        seconds_plan = median_seconds(
            lambda ready=ready: phasing.assign_phasing(catch, areas, assignment, ready, scenario),
            args.repeat,
        )
        plan = phasing.assign_phasing(catch, areas, assignment, ready, scenario)
        held = phasing.area_overlaps(areas, assignment)
        listed = ready.loc[ready["readiness"] == "operating", "area_code"]
        holders = set(
            held.loc[held["area_code"].isin(listed) & (held["area_share"] >= 0.5), "team_id"]
        )
        waves = plan.set_index("team_id")["wave"]
        print(f"\n{name}: read {seconds * 1000:.1f} ms, assign_phasing {seconds_plan:.3f} s")
        print(
            f"  teams holding >= half an operating area: {len(holders)}, "
            f"of which in wave one: {int((waves[sorted(holders)] == 1).sum())}"
        )
        print(
            f"  operating teams: {int((plan['readiness'] == 'operating').sum())}, "
            f"emerging: {int((plan['readiness'] == 'emerging').sum())}"
        )
        for line in phasing.phasing_report(plan, scenario):
            print(f"  {line}")


if __name__ == "__main__":
    main()

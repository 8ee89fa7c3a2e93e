"""Measure the map pages on the whole of England: write time, page sizes, first render.

Usage: python benchmarks/maps.py [--mirror ../shared/open-data] [--writes 3] [--workers 0]
                                [--renders 5] [--out DIR]

The plan is built with planner.pipeline from the mirror (fetch into a
temporary workspace, then make_plan with the default scenario).
Reports: the median time of --writes write_maps calls (1 + 7 + 42 pages,
--workers processes, 0: MapSettings' default; the load average is printed
since the machine is shared and the time depends on it), the size of
index.html and the largest / median region and ICB pages against the budgets
(index ≤ 5 MB, ICB ≤ 2 MB), and the time from navigation start to the last
catchment path drawn in index.html in headless Chromium (median of --renders
runs; every request but file:// refused, so tiles fail), and the size of the
shared assets/ folder (Leaflet, plugins, context.js).  First it prints how far
apart the rollout states are as drawn (CAM02-UCS ΔE, normal vision and
simulated deuteranopia, protanopia, tritanopia; tests/colour_vision.py).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing
sys.path.insert(0, str(REPO / "tests"))

from planner import maps  # noqa: E402

FIRST_RENDER_JS = """(n) => new Promise(resolve => {
    const check = () => {
        if (window.plannerMap && document.querySelectorAll('path.planner-catchment').length === n) {
            requestAnimationFrame(() => resolve(performance.now()));
        } else {
            setTimeout(check, 5);
        }
    };
    check();
})"""


def real_inputs(mirror: Path, work: Path):
    from planner import pipeline

    ws = pipeline.Workspace(work)
    pipeline.fetch(ws, mirror=mirror, progress=False)
    result = pipeline.make_plan(ws, pipeline.PlanOptions())
    return (result.plan, result.areas, result.assignment, list(result.scenario.years),
            result.provenance.line())  # fmt: skip


def first_render(index: Path, teams: int, runs: int) -> list[float]:
    from browser_assets import CHROMIUM_ARGS, route_assets
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for _ in range(runs):
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            unexpected: list[str] = []
            route_assets(page, unexpected)
            page.goto(index.as_uri(), wait_until="commit")
            times.append(page.evaluate(FIRST_RENDER_JS, teams) / 1000)
            page.close()
            if unexpected:
                raise RuntimeError(f"unexpected requests: {unexpected}")
        browser.close()
    return times


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the page workers)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, default=REPO.parent / "shared" / "open-data")
    parser.add_argument("--writes", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--renders", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import colour_vision

    from planner.config import default_scenario

    found = colour_vision.pairs(default_scenario())
    print(f"rollout states drawn together, ΔE CAM02-UCS (worst basemap grey; "
          f"required ≥ {colour_vision.THRESHOLD:g}):")  # fmt: skip
    print(colour_vision.table(found))

    with tempfile.TemporaryDirectory(prefix="maps-bench-") as tmp:
        t0 = time.perf_counter()
        plan, areas, assignment, years, vintage = real_inputs(args.mirror, Path(tmp) / "ws")
        print(f"inputs: {len(plan)} teams, {len(areas)} LSOAs, "
              f"{time.perf_counter() - t0:.1f} s")  # fmt: skip

        out = args.out or Path(tmp) / "maps"
        settings = maps.MapSettings(workers=args.workers)
        from browser_assets import web_assets  # pinned web files, from local copies

        assets_dir = web_assets(Path(tmp) / "web-assets")
        took, cpu = [], []
        for _ in range(args.writes):
            c0 = _cpu_seconds()
            t0 = time.perf_counter()
            written = maps.write_maps(out, plan, areas, assignment, years, vintage,
                                      settings=settings, assets_dir=assets_dir)  # fmt: skip
            took.append(time.perf_counter() - t0)
            cpu.append(_cpu_seconds() - c0)
        sizes = written.sizes
        regions = [v for k, v in sizes.items() if k.startswith("region/")]
        icbs = [v for k, v in sizes.items() if k.startswith("icb/")]
        print(f"write_maps: {len(sizes)} pages (1 + {len(regions)} + {len(icbs)}) in median "
              f"{statistics.median(took):.1f} s (runs: {', '.join(f'{t:.1f}' for t in took)}; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}); CPU time "
              f"(main + workers) median {statistics.median(cpu):.1f} s")  # fmt: skip
        print(f"index.html: {sizes['index.html'] / 1e6:.2f} MB (budget 5 MB)")
        print(f"region pages: max {max(regions) / 1e6:.2f} MB, "
              f"median {statistics.median(regions) / 1e6:.2f} MB")  # fmt: skip
        print(f"ICB pages: max {max(icbs) / 1e6:.2f} MB (budget 2 MB), "
              f"median {statistics.median(icbs) / 1e6:.2f} MB")  # fmt: skip
        print(f"all pages: {sum(sizes.values()) / 1e6:.1f} MB")
        shared = sum(p.stat().st_size for p in (out / "assets").rglob("*") if p.is_file())
        context_js = (out / "assets" / "context.js").stat().st_size
        print(f"assets/ (shared by all pages): {shared / 1e6:.2f} MB, of which context.js "
              f"{context_js / 1e6:.2f} MB")  # fmt: skip

        times = first_render(out / "index.html", len(plan), args.renders)
        print(f"index.html first render in headless Chromium: median {statistics.median(times):.2f} s "
              f"(runs: {', '.join(f'{t:.2f}' for t in times)})")  # fmt: skip


if __name__ == "__main__":
    main()

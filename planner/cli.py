"""The `planner` command: thin wrappers over the pipeline.

User errors (PlannerError) are printed as one line without a traceback and
exit with status 2; SIGTERM is turned into a normal exit so that every atomic
writer can remove its temporary files on the way out.

SIGTERM is blocked in every thread and taken by a small watcher thread, which
raises the exit in the main thread between two Python instructions. Letting it
interrupt native code is not safe: METIS (pymetis) installs its own SIGTERM
handler while it partitions and longjmps out of it, which can leave the malloc
lock held and hang the process forever. The stage modules (and numpy's thread
pool) are therefore imported only after the signal is blocked.
"""

from __future__ import annotations

import _thread
import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from planner import __version__
from planner.errors import PlannerError

log = logging.getLogger("planner")


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


_watcher: threading.Thread | None = None


def _watch_sigterm() -> None:
    """Turn SIGTERM into a Python-level exit in the main thread, never inside native code."""
    global _watcher
    signal.signal(signal.SIGTERM, _terminate)
    if _watcher is not None or threading.current_thread() is not threading.main_thread():
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})

    def wait() -> None:
        while True:
            signal.sigwait({signal.SIGTERM})
            _thread.interrupt_main(signal.SIGTERM)

    _watcher = threading.Thread(target=wait, name="sigterm-watcher", daemon=True)
    _watcher.start()


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path.cwd(),
        help="folder holding data/, exports/ and maps/ (default: the current folder)",
    )


def _add_mirror(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mirror",
        type=Path,
        help="take the input files from a local folder laid out like shared/open-data instead of downloading",
    )


def _add_plan_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenario",
        type=Path,
        help="scenario TOML (default: the proposal's, scenarios/proposal-2021.toml)",
    )
    parser.add_argument(
        "--readiness",
        type=Path,
        help="CSV of local readiness: area_code, readiness (operating/emerging/none), optional "
        "note; comma-separated (Excel's BOM, CRLF and Windows-1252 are fine; a "
        "semicolon-separated file is refused with a message)",
    )
    parser.add_argument("--seed", type=int, help="override the scenario's random seed")
    parser.add_argument(
        "--preset",
        choices=["la_aligned", "equal_size"],
        help="catchment preset: la_aligned (±10%%, whole districts) or equal_size (±0.5%%)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="planner",
        description="Coverage planner for specialised parent-infant relationship teams in England.",
    )
    parser.add_argument("--version", action="version", version=f"planner {__version__}")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="only print errors and the summary"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    fetch = sub.add_parser("fetch", help="download the ONS inputs (or copy them from a mirror)")
    _add_common(fetch)
    _add_mirror(fetch)
    fetch.add_argument("--only", nargs="+", metavar="DATASET", help="fetch only these datasets")

    prepare = sub.add_parser("prepare", help="build the validated areas table and adjacency graph")
    _add_common(prepare)
    _add_mirror(prepare)

    plan = sub.add_parser("plan", help="catchments, phasing, costs and exports (no maps)")
    _add_common(plan)
    _add_mirror(plan)
    _add_plan_options(plan)

    maps = sub.add_parser("maps", help="write the HTML maps from the current plan")
    _add_common(maps)
    _add_mirror(maps)
    _add_plan_options(maps)

    run = sub.add_parser(
        "run", help="the whole plan: fetch, prepare, catchments, phasing, costs, exports, maps"
    )
    _add_common(run)
    _add_mirror(run)
    _add_plan_options(run)
    run.add_argument("--no-maps", action="store_true", help="skip the HTML maps")

    validate = sub.add_parser("validate", help="check scenario (.toml) and readiness (.csv) files")
    _add_common(validate)
    _add_mirror(validate)
    validate.add_argument("files", nargs="+", type=Path)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    _watch_sigterm()
    try:
        return _dispatch(args)
    except PlannerError as exc:
        print(f"planner: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("planner: interrupted; previous outputs kept", file=sys.stderr)
        return 130
    except SystemExit as exc:
        if exc.code == 128 + signal.SIGTERM:
            print("planner: terminated (SIGTERM); previous outputs kept", file=sys.stderr)
        raise


def _dispatch(args: argparse.Namespace) -> int:
    from planner import pipeline  # after _watch_sigterm: see the module docstring

    workspace = pipeline.Workspace(args.workdir.resolve())
    if args.command == "fetch":
        pipeline.fetch(workspace, mirror=args.mirror, names=args.only, progress=not args.quiet)
        return 0
    if args.command == "validate":
        problems = pipeline.validate_files(workspace, args.files, mirror=args.mirror)
        for problem in problems:
            print(f"planner: {problem}", file=sys.stderr)
        if problems:
            print(f"planner: {len(problems)} problem(s) found", file=sys.stderr)
            return 2
        print("planner: no problems found")
        return 0
    pipeline.fetch(workspace, mirror=args.mirror, progress=not args.quiet)
    if args.command == "prepare":
        pipeline.prepare(workspace)
        return 0
    options = pipeline.PlanOptions(
        scenario=args.scenario, readiness=args.readiness, seed=args.seed, preset=args.preset
    )
    if args.command == "maps":
        pipeline.run(workspace, options, exports=False, maps=True)
        return 0
    summary = pipeline.run(
        workspace, options, exports=True, maps=args.command == "run" and not args.no_maps
    )
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
import errno
import gc
import logging
import signal
import sys
import threading
from pathlib import Path

from planner import __version__, sources
from planner.errors import PlannerError
from planner.workers import BATCH_GC_THRESHOLDS

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


def _existing_folder_or_new(text: str) -> Path:
    """--workdir: a folder (made if missing), resolved against the current folder."""
    path = Path(text).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder")
    return path


def _input_file(text: str) -> Path:
    """A path given on the command line, resolved against the current folder (not --workdir)."""
    return Path(text).expanduser().resolve()


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; use a whole number 0 or more")
    return value


def _global_options() -> argparse.ArgumentParser:
    """Options every command takes, before or after its name (`planner -q run`, `planner run -q`)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="only print warnings, errors and the summary",
    )
    parent.add_argument(
        "--workdir",
        type=_existing_folder_or_new,
        default=argparse.SUPPRESS,
        help="folder holding data/, exports/ and maps/ (default: the current folder)",
    )
    parent.add_argument(
        "--wait",
        action="store_true",
        default=argparse.SUPPRESS,
        help="if another planner run is using the workdir, wait for it instead of stopping",
    )
    return parent


def _add_mirror(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mirror",
        type=_input_file,
        help="take the input files from a local folder laid out like shared/open-data (with its "
        "MANIFEST.md) instead of downloading them (default: download from the publishers)",
    )
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help="copy from a mirror without checking it against its MANIFEST.md (a warning says so)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="fetch every input again, replacing what data/raw holds (e.g. a damaged file)",
    )


def _add_plan_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenario",
        type=_input_file,
        help="scenario TOML (default: the proposal's, scenarios/proposal-2021.toml)",
    )
    parser.add_argument(
        "--readiness",
        type=_input_file,
        help="CSV of local readiness: area_code, readiness (operating/emerging/none), optional "
        "note (default: none, so no existing services are known and wave one is filled by need)",
    )
    parser.add_argument(
        "--previous",
        type=_input_file,
        metavar="EXPORTS_DIR",
        help="an earlier plan's exports folder: teams sharing at least half their population "
        "with one of its teams keep that team's id and name (default: number teams afresh)",
    )
    parser.add_argument(
        "--seed", type=_seed, help="random seed of the catchments (default: the scenario's, 2021)"
    )
    parser.add_argument(
        "--preset",
        choices=["la_aligned", "equal_size"],
        help="catchment preset: la_aligned (±10%%, whole districts) or equal_size (±0.5%%) "
        "(default: the scenario's, la_aligned)",
    )


_COMMANDS = {
    "fetch": (
        "download the ONS inputs (or copy them from a mirror)",
        "Download every input from its publisher into data/raw/ (or copy it from --mirror), "
        "checking counts and recording the sha256 of every file in data/raw/manifest.json.",
    ),
    "prepare": (
        "build the validated areas table and adjacency graph",
        "Build the validated table of LSOA 2021 small areas and their contiguity graph "
        "(data/processed/areas/), fetching the inputs first if needed.",
    ),
    "plan": (
        "catchments, phasing, costs and exports (no maps)",
        "Make the plan (catchments, waves, costs) and write exports/ with its manifest. "
        "Maps are not redrawn: `planner maps` draws this plan afterwards.",
    ),
    "maps": (
        "draw the HTML maps of the recorded plan",
        "Draw maps/ from the plan that `planner plan` or `planner run` recorded (never "
        "re-plans), so the maps show exactly what exports/ shows.",
    ),
    "run": (
        "the whole plan: fetch, prepare, catchments, phasing, costs, exports, maps",
        "Everything: inputs, small areas, catchments, phasing, costs, exports and maps, "
        "committed together so exports/ and maps/ always show the same plan.",
    ),
    "compare": (
        "report what changed between two plans' exports folders",
        "Compare two exports folders (e.g. last quarter's and this one's): teams kept, renamed, "
        "new or gone, small areas that changed team, wave changes, and cost and babies by ICB, "
        "as CSV files and a map of the changed catchments (changes.html).",
    ),
    "validate": (
        "check scenario (.toml) and readiness (.csv) files",
        "Check scenario (.toml) and readiness (.csv) files and list every problem, without "
        "making a plan.",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    common = _global_options()
    parser = argparse.ArgumentParser(
        prog="planner",
        description="Coverage planner for specialised parent-infant relationship teams in England.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"planner {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str) -> argparse.ArgumentParser:
        summary, description = _COMMANDS[name]
        return sub.add_parser(
            name,
            help=summary,
            description=description,
            parents=[common],
        )

    fetch = command("fetch")
    _add_mirror(fetch)
    fetch.add_argument(
        "--only",
        nargs="+",
        metavar="DATASET",
        choices=sorted(sources.DATASETS),
        help=f"fetch only these datasets, from: {', '.join(sorted(sources.DATASETS))}",
    )
    _add_mirror(command("prepare"))
    for name in ("plan", "run"):
        planning = command(name)
        _add_mirror(planning)
        _add_plan_options(planning)
        if name == "run":
            planning.add_argument("--no-maps", action="store_true", help="skip the HTML maps")
    command("maps")
    compare = command("compare")
    compare.add_argument("old", type=_input_file, metavar="OLD_EXPORTS")
    compare.add_argument("new", type=_input_file, metavar="NEW_EXPORTS")
    compare.add_argument(
        "--out",
        type=_input_file,
        help="folder for the change report (default: changes/ in the workdir)",
    )
    validate = command("validate")
    _add_mirror(validate)
    validate.add_argument("files", nargs="+", type=_input_file, metavar="FILE")
    return parser


_OS_FIXES = {
    errno.ENOSPC: "free some disk space (or give --workdir on a disk with room) and run again",
    errno.EDQUOT: "free some of your disk quota and run again",
    errno.EACCES: "check you may write there (or give --workdir a folder of your own)",
    errno.EPERM: "check you may write there (or give --workdir a folder of your own)",
    errno.EROFS: "the disk is read-only: give --workdir a writable folder",
    errno.EISDIR: "give a file, not a folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder: check the path",
    errno.ENOENT: "check the path exists",
}


def os_error_line(exc: OSError) -> str:
    """One line for an operating-system error: what failed, on which file, and a fix."""
    where = f" {exc.filename}" if exc.filename else ""
    reason = exc.strerror or str(exc)
    fix = _OS_FIXES.get(exc.errno or 0, "check the path and the disk, then run again")
    return f"cannot write or read{where}: {reason}. Fix: {fix}; previous outputs kept"


def main(argv: list[str] | None = None) -> int:
    _watch_sigterm()
    args = build_parser().parse_args(argv)
    quiet = getattr(args, "quiet", False)
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    try:
        return _dispatch(args, quiet=quiet)
    except PlannerError as exc:
        print(f"planner: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"planner: error: {os_error_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("planner: interrupted; previous outputs kept", file=sys.stderr)
        return 130
    except SystemExit as exc:
        if exc.code == 128 + signal.SIGTERM:
            print("planner: terminated (SIGTERM); previous outputs kept", file=sys.stderr)
        raise


def _dispatch(args: argparse.Namespace, *, quiet: bool) -> int:
    from planner import pipeline, runlock  # after _watch_sigterm: see the module docstring

    workdir = getattr(args, "workdir", None) or Path.cwd().resolve()
    workspace = pipeline.Workspace(workdir)
    with runlock.workdir_lock(workdir, wait=getattr(args, "wait", False), log=log):
        pipeline.finish_interrupted_commit(workspace)
        return _command(pipeline, workspace, args, quiet=quiet)


def _command(pipeline, workspace, args: argparse.Namespace, *, quiet: bool) -> int:
    fetching = {"force": args.force, "verify": not args.no_verify} if "force" in args else {}
    if args.command == "fetch":
        pipeline.fetch(
            workspace, mirror=args.mirror, names=args.only, progress=not quiet, **fetching
        )
        return 0
    if args.command == "compare":
        out = args.out or workspace.root / "changes"
        written = pipeline.compare_plans(workspace, args.old, args.new, out)
        print(f"Changes from {args.old} to {args.new}: {out}/ ({', '.join(written)})")
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
    if args.command == "maps":
        print(pipeline.maps_only(workspace))
        return 0
    pipeline.fetch(workspace, mirror=args.mirror, progress=not quiet, **fetching)
    if args.command == "prepare":
        pipeline.prepare(workspace)
        return 0
    options = pipeline.PlanOptions(
        scenario=args.scenario,
        readiness=args.readiness,
        seed=args.seed,
        preset=args.preset,
        previous=args.previous,
    )
    summary = pipeline.run(workspace, options, maps=args.command == "run" and not args.no_maps)
    print(summary)
    return 0


def command() -> int:
    """The `planner` command (and `python -m planner.cli`): `main` as a batch process.

    The collector runs less often (workers.BATCH_GC_THRESHOLDS), and before the
    process exits every object left is frozen (gc.freeze), so the interpreter's
    final collection does not walk them all: that took about 0.4 s after a plan.
    Files are closed and logs flushed before then, by `main` and atexit alike.
    """
    gc.set_threshold(*BATCH_GC_THRESHOLDS)
    code = main()
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(command())

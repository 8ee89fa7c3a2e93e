"""Provenance: which inputs made a plan, recorded with every output.

A plan is a decision document, so the exports, the maps and the run summary
all say what made it: the scenario and readiness files (with their sha256),
the catchment preset and seed, every raw input's sha256 and vintage, and the
planner version. The plan id is a hash of exactly those, so two outputs
carrying the same id describe the same plan. Defaults that change the plan
(no readiness file, the bundled scenario, the scenario's own seed) are named
rather than left silent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import planner
from planner import config, sources
from planner.cache import package_hash, raw_files
from planner.errors import PlannerError
from planner.fsutil import sha256_file

MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class Provenance:
    """The inputs of one plan (`manifest`) and the defaults that shaped it (`defaults`)."""

    manifest: dict[str, Any]

    @property
    def plan_id(self) -> str:
        return str(self.manifest["plan_id"])

    @property
    def defaults(self) -> list[str]:
        return list(self.manifest["defaults"])

    def line(self) -> str:
        """One line for page footers and README.txt: the plan id and what made it."""
        m = self.manifest
        readiness = m["readiness"]
        ready = (
            "no readiness file"
            if readiness == "none"
            else f"readiness {Path(readiness['file']).name} (sha256 {readiness['sha256'][:12]})"
        )
        vintages = "; ".join(
            f"{name} {entry['vintage']}" for name, entry in sorted(m["inputs"].items())
        )
        return (
            f"Plan {self.plan_id} · scenario {m['scenario']['name']} "
            f"(sha256 {m['scenario']['sha256'][:12]}) · {ready} · "
            f"catchments {m['preset']} ±{m['tolerance']:.1%}, seed {m['seed']} · "
            f"data: {vintages} · planner {m['planner_version']}"
        )

    def summary_lines(self) -> list[str]:
        """The first lines of the run summary: the inputs, then every default that applied."""
        m = self.manifest
        readiness = m["readiness"]
        lines = [
            f"Plan {self.plan_id}",
            f"  scenario:   {m['scenario']['file']} (sha256 {m['scenario']['sha256'][:12]})",
            "  readiness:  "
            + (
                "none"
                if readiness == "none"
                else f"{readiness['file']} (sha256 {readiness['sha256'][:12]})"
            ),
            f"  catchments: preset {m['preset']} (±{m['tolerance']:.1%}), seed {m['seed']}",
            "  data:       "
            + "; ".join(f"{n} {e['vintage']}" for n, e in sorted(m["inputs"].items())),
        ]
        lines.extend(f"  default:    {d}" for d in m["defaults"])
        return lines

    def with_time(self) -> dict[str, Any]:
        """The manifest as written to exports/: with the time the plan was made."""
        return {**self.manifest, "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}


def _file_record(path: Path, what: str) -> dict[str, str]:
    try:
        return {"file": str(path), "sha256": sha256_file(path)}
    except OSError as exc:
        raise PlannerError(
            f"cannot read the {what} file ({exc.strerror})",
            file=path,
            fix=f"give the path of a readable {what} file",
        ) from exc


def record(
    *,
    scenario: config.Scenario,
    scenario_path: Path | None,
    readiness_path: Path | None,
    previous_path: Path | None = None,
    seed_given: bool,
    preset_given: bool,
    raw_dir: Path,
    dataset_names: Iterable[str],
) -> Provenance:
    """The provenance of a plan about to be made from these inputs."""
    path = Path(scenario_path) if scenario_path is not None else config.DEFAULT_SCENARIO_PATH
    scenario_record = {**_file_record(path, "scenario"), "name": scenario.name}
    defaults: list[str] = []
    if scenario_path is None:
        defaults.append(
            f"scenario: the proposal's ({path.name}); give --scenario FILE to change it"
        )
    if readiness_path is None:
        readiness: dict[str, str] | str = "none"
        defaults.append(
            "no readiness file: no existing or emerging services are known, so wave one is "
            "filled by need alone; give --readiness FILE"
        )
    else:
        readiness = _file_record(Path(readiness_path), "readiness")
    previous: dict[str, str] | str = "none"
    if previous_path is not None:
        previous = _file_record(Path(previous_path) / "lsoa_to_team.csv", "earlier plan's")
    if not seed_given:
        defaults.append(f"seed {scenario.seed} from the scenario (--seed N to change it)")
    if not preset_given:
        defaults.append(
            f"catchment preset {scenario.partition_preset} from the scenario (--preset to change it)"
        )
    inputs = {
        name: {"file": rel, "sha256": sha, "vintage": sources.DATASETS[name].vintage}
        for name, (rel, sha) in raw_files(raw_dir, dataset_names).items()
    }
    manifest: dict[str, Any] = {
        "planner_version": planner.__version__,
        "planner_code": package_hash(),
        "scenario": scenario_record,
        "readiness": readiness,
        "previous": previous,
        "preset": scenario.partition_preset,
        "tolerance": scenario.partition_tolerance,
        "seed": scenario.seed,
        "teams": scenario.teams,
        "years": list(scenario.years),
        "inputs": inputs,
        "defaults": defaults,
    }
    # The id follows the contents, not where the files lie: a moved file is the same plan.
    content = {
        **manifest,
        "scenario": scenario_record["sha256"],
        "readiness": readiness if readiness == "none" else readiness["sha256"],
        "previous": previous if previous == "none" else previous["sha256"],
        "inputs": {name: entry["sha256"] for name, entry in inputs.items()},
        "defaults": None,
    }
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
    return Provenance({"plan_id": digest[:12], **manifest})


def manifest_text(manifest: dict[str, Any]) -> str:
    """Deterministic JSON for manifest files."""
    return json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def recorded_plan_id(folder: Path) -> str | None:
    """The plan id an output folder says it shows, or None when it records none."""
    try:
        return str(json.loads((folder / MANIFEST_NAME).read_text())["plan_id"])
    except (OSError, ValueError, KeyError, TypeError):
        return None

"""planner.provenance: the plan id follows the inputs' contents, and defaults are named."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import link_mirror

from planner import config, pipeline, provenance


def _record(raw: Path, readiness: Path | None, **given: bool):
    return provenance.record(
        scenario=config.default_scenario(),
        scenario_path=None,
        readiness_path=readiness,
        seed_given=given.get("seed", False),
        preset_given=given.get("preset", False),
        raw_dir=raw,
        dataset_names=pipeline.AREA_SOURCES,
    )


def test_the_plan_id_follows_contents_not_paths(mirror_dir: Path, tmp_path: Path) -> None:
    raw = link_mirror(mirror_dir, tmp_path / "raw")
    a = tmp_path / "a" / "ready.csv"
    b = tmp_path / "b" / "other-name.csv"
    for path in (a, b):
        path.parent.mkdir()
        shutil.copy(mirror_dir / "readiness" / "known_services_2019.csv", path)
    first, moved = _record(raw, a), _record(raw, b)
    assert first.plan_id == moved.plan_id
    assert first.manifest["readiness"]["file"] != moved.manifest["readiness"]["file"]
    b.write_text(b.read_text() + "E08000035,operating,\n")
    assert _record(raw, b).plan_id != first.plan_id
    assert _record(raw, None).plan_id != first.plan_id


def test_defaults_that_shape_the_plan_are_named(mirror_dir: Path, tmp_path: Path) -> None:
    raw = link_mirror(mirror_dir, tmp_path / "raw")
    record = _record(raw, None)
    text = "\n".join(record.summary_lines())
    assert "no readiness file" in text
    assert "seed 2021 from the scenario" in text
    assert "preset la_aligned from the scenario" in text
    assert record.manifest["readiness"] == "none"
    assert len(record.manifest["scenario"]["sha256"]) == 64
    for entry in record.manifest["inputs"].values():
        assert len(entry["sha256"]) == 64 and entry["vintage"]
    line = record.line()
    assert record.plan_id in line and "no readiness file" in line and "seed 2021" in line
    given = _record(raw, None, seed=True, preset=True)
    assert not any("seed" in d or "preset" in d for d in given.defaults)

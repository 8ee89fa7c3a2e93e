"""planner.pipeline: stage caching follows the inputs, and products are swapped in whole."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import link_mirror

from planner import cache, config, pipeline
from planner.errors import PlannerError

POPULATION = "population/census2021_ts001_usual_residents_lsoa21_england.csv"


def _key(directory: Path) -> str:
    return cache.stage_key_of(directory)


def test_fetch_refuses_a_missing_mirror_folder(tmp_path: Path) -> None:
    with pytest.raises(PlannerError, match=r"mirror folder does not exist.*Fix:"):
        pipeline.fetch(pipeline.Workspace(tmp_path), mirror=tmp_path / "nowhere")


def test_prepare_reuses_its_cache_until_a_raw_file_changes(prepared, mirror_dir, tmp_path):
    workspace = pipeline.Workspace(tmp_path)
    link_mirror(mirror_dir, workspace.raw)
    cached = prepared[0].processed / "areas"
    # Start from the session's product instead of rebuilding it from scratch.
    target = workspace.processed / "areas"
    target.mkdir(parents=True)
    for file in cached.iterdir():
        (target / file.name).symlink_to(file)
    assert pipeline.prepare(workspace) == target
    assert (target / "areas.parquet").is_symlink(), "an unchanged input must not rebuild"

    key_before = cache.stage_key({"raw": cache.raw_checksums(workspace.raw, pipeline.AREA_SOURCES)})
    population = workspace.raw / POPULATION
    text = population.read_text()
    population.unlink()
    population.write_text(
        text.replace("E01000001,City of London 001A,1475", "E01000001,City of London 001A,1476")
    )
    key_after = cache.stage_key({"raw": cache.raw_checksums(workspace.raw, pipeline.AREA_SOURCES)})
    assert key_before != key_after


def test_catchment_key_follows_the_settings(prepared):
    workspace, _, _ = prepared
    areas_dir = workspace.processed / "areas"
    base = config.default_scenario()
    keys = set()
    for scenario in (
        base,
        config.with_overrides(base, seed=7),
        config.with_overrides(base, preset="equal_size"),
    ):
        keys.add(
            cache.stage_key(
                {
                    "areas": _key(areas_dir),
                    "teams": scenario.teams,
                    "preset": scenario.partition_preset,
                    "tolerance": scenario.partition_tolerance,
                    "seed": scenario.seed,
                }
            )
        )
    assert len(keys) == 3


def test_expected_codes_include_future_team_ids(prepared):
    _, areas, _ = prepared
    known = pipeline.expected_codes(areas, config.default_scenario())
    assert known["E08000035"] == "Leeds"
    team_ids = [code for code in known if "-" in code]
    assert len(team_ids) == 202
    assert "QWO-1" in known

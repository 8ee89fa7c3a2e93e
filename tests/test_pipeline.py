"""planner.pipeline: fetch without --mirror uses what is in data/raw; the stage cache follows it.

A raw folder filled from the mirror (by `planner fetch --mirror`, by hand, or
by symlinks as here) must work offline with a plain `planner run`: nothing is
downloaded for a dataset whose mirror-layout file is present, and only the
missing datasets go to the network (a real HTTP server on 127.0.0.1 here).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest
from arcgis_server import FakeServer, FakeService, Fault
from conftest import link_mirror

from planner import download, pipeline
from planner.errors import PlannerError
from planner.fsutil import sha256_file
from planner.sources import DATASETS

FAST = {"progress": False, "backoff_factor": 0.001, "timeout": 5, "retries": 1}
POPULATION = DATASETS["population"].mirror_path
NHSER = DATASETS["nhser_boundaries"]


def _raw(mirror_dir: Path, tmp_path: Path) -> Path:
    return link_mirror(mirror_dir, tmp_path / "data" / "raw")


def test_fetch_without_mirror_keeps_the_files_already_there(
    mirror_dir: Path, tmp_path: Path
) -> None:
    raw = _raw(mirror_dir, tmp_path)
    with FakeServer() as srv:
        manifest = download.fetch(raw, base_url=srv.base_url, **FAST)
        assert srv.total_hits() == 0
    files = manifest["files"]
    assert sorted(files) == sorted(d.mirror_path for d in DATASETS.values())
    for rel, record in files.items():
        assert record["sha256"] == sha256_file(raw / rel)
        assert record["source"] == "found in the raw folder"
    first = (raw / "manifest.json").read_bytes()
    with FakeServer() as srv:
        download.fetch(raw, base_url=srv.base_url, **FAST)
        assert srv.total_hits() == 0
    assert (raw / "manifest.json").read_bytes() == first


def test_a_file_changed_by_hand_is_used_and_recorded(
    mirror_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    raw = _raw(mirror_dir, tmp_path)
    with FakeServer() as srv:
        download.fetch(raw, base_url=srv.base_url, **FAST)
        before = pipeline.raw_checksums(raw, pipeline.AREA_SOURCES)
        path = raw / POPULATION
        text = path.read_text()
        path.unlink()
        path.write_text(text.replace("\n", "\n", 1) + "\n")  # one more (blank) line
        with caplog.at_level(logging.WARNING):
            manifest = download.fetch(raw, base_url=srv.base_url, **FAST)
        assert srv.total_hits() == 0
    assert "changed since it was fetched" in caplog.text
    assert manifest["files"][POPULATION]["sha256"] == sha256_file(path)
    assert manifest["files"][POPULATION]["source"].startswith("changed in place")
    after = pipeline.raw_checksums(raw, pipeline.AREA_SOURCES)
    assert after[POPULATION] != before[POPULATION]
    assert {k: v for k, v in after.items() if k != POPULATION} == {
        k: v for k, v in before.items() if k != POPULATION
    }


def test_only_the_missing_dataset_is_downloaded(mirror_dir: Path, tmp_path: Path) -> None:
    raw = _raw(mirror_dir, tmp_path)
    (raw / NHSER.mirror_path).unlink()
    part = NHSER.online[0]
    rows = [{"FID": i + 1, "NHSER24CD": f"E4000000{i}", "NHSER24NM": f"R{i}"} for i in range(7)]
    with FakeServer(services={str(part.service): FakeService(rows)}) as srv:
        manifest = download.fetch(raw, base_url=srv.base_url, **FAST)
        asked = {path for path, _ in srv.log}
    assert asked and all(str(part.service) in path for path in asked)
    saved = raw / part.download_path
    assert len(json.loads(saved.read_text())["features"]) == 7
    assert manifest["files"][part.download_path]["sha256"] == sha256_file(saved)


def test_pipeline_fetch_refuses_a_missing_mirror_folder(tmp_path: Path) -> None:
    with pytest.raises(PlannerError, match=r"mirror folder does not exist.*Fix:"):
        pipeline.fetch(pipeline.Workspace(tmp_path), mirror=tmp_path / "nowhere")


# ----------------------------------------------------------------------------- download faults
# tests/test_download.py covers these faults on plain files; here they hit the ArcGIS
# query answers (JSON pages) of a real registry dataset, inside a raw folder that
# already holds the other datasets, whose manifest records must survive the failure.


def _nhser_rows(n: int = 7) -> list[dict[str, str | int]]:
    return [{"FID": i + 1, "NHSER24CD": f"E4000000{i}", "NHSER24NM": f"R{i}"} for i in range(n)]


def _without_nhser(mirror_dir: Path, tmp_path: Path) -> Path:
    raw = _raw(mirror_dir, tmp_path)
    (raw / NHSER.mirror_path).unlink()
    return raw


def test_connection_reset_on_an_arcgis_query_keeps_nothing(
    mirror_dir: Path, tmp_path: Path
) -> None:
    raw = _without_nhser(mirror_dir, tmp_path)
    part = NHSER.online[0]
    service = FakeService(_nhser_rows(), max_record_count=3)
    with FakeServer(services={str(part.service): service}) as srv:
        srv.add_fault(srv.query_path(str(part.service)), Fault("reset"))
        with pytest.raises(PlannerError, match=r"NHS_England_Regions.*Fix: retry later"):
            download.fetch(raw, base_url=srv.base_url, **FAST)
    assert not (raw / part.download_path).exists()
    assert not (raw / "ons").exists() or list((raw / "ons").iterdir()) == []
    recorded = download.load_manifest(raw)["files"]
    # datasets are fetched in name order: those checked before the failure stay recorded
    assert DATASETS["icb_boundaries"].mirror_path in recorded
    assert POPULATION not in recorded


def test_arcgis_429_with_retry_after_is_waited_for(mirror_dir: Path, tmp_path: Path) -> None:
    raw = _without_nhser(mirror_dir, tmp_path)
    part = NHSER.online[0]
    with FakeServer(services={str(part.service): FakeService(_nhser_rows())}) as srv:
        query = srv.query_path(str(part.service))
        srv.add_fault(query, Fault("status", 429, (("Retry-After", "1"),)))
        start = time.monotonic()
        download.fetch(raw, base_url=srv.base_url, **FAST)
        assert time.monotonic() - start >= 0.9
        assert srv.hits[query] == 3  # the 429, then the count and one page
    assert len(json.loads((raw / part.download_path).read_text())["features"]) == 7


def test_arcgis_service_that_never_answers_times_out(mirror_dir: Path, tmp_path: Path) -> None:
    raw = _without_nhser(mirror_dir, tmp_path)
    part = NHSER.online[0]
    with FakeServer(services={str(part.service): FakeService(_nhser_rows())}) as srv:
        srv.hang.add(srv.query_path(str(part.service)))
        start = time.monotonic()
        with pytest.raises(PlannerError, match=r"timeout.*Fix: retry later"):
            download.fetch(raw, base_url=srv.base_url, **{**FAST, "timeout": 0.3, "retries": 0})
        assert time.monotonic() - start < 10
    assert not (raw / part.download_path).exists()

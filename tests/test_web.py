"""planner.web: retries, deadlines, offline detection and ArcGIS error bodies, over real sockets."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from arcgis_server import FakeServer, FakeService, Fault
from fetch_helpers import (
    CSV_BODY,
    FAST,
    file_part,
    layer_part,
    leftovers,
    numbered_rows,
    registry_of,
)

from planner.download import fetch
from planner.errors import PlannerError

# --------------------------------------------------------------------------- retries and timeouts


def test_503_is_retried_then_succeeds(tmp_path: Path) -> None:
    with FakeServer(services={"Things_EN_BSC": FakeService(numbered_rows(5))}) as srv:
        srv.add_fault(srv.query_path("Things_EN_BSC"), Fault("status", 503), times=2)
        fetch(tmp_path, base_url=srv.base_url, datasets=registry_of(layer_part()), **FAST)
        assert srv.hits[srv.query_path("Things_EN_BSC")] == 2 + 2  # two 503s, count, one page
    assert len(json.loads((tmp_path / "ons/things.geojson").read_text())["features"]) == 5


def test_429_waits_for_retry_after(tmp_path: Path) -> None:
    with FakeServer(files={"data.csv": CSV_BODY}) as srv:
        srv.add_fault("/files/data.csv", Fault("status", 429, (("Retry-After", "1"),)))
        start = time.monotonic()
        fetch(tmp_path, datasets=registry_of(file_part(srv.file_url("data.csv"))), **FAST)
        assert time.monotonic() - start >= 0.9
        assert srv.hits["/files/data.csv"] == 2
    assert (tmp_path / "files/data.csv").read_bytes() == CSV_BODY


def test_server_that_keeps_failing_gives_a_clear_error(tmp_path: Path) -> None:
    with FakeServer(files={"data.csv": CSV_BODY}) as srv:
        srv.add_fault("/files/data.csv", Fault("status", 503), times=10)
        with pytest.raises(PlannerError, match=r"after 2 retries.*Fix: retry later"):
            fetch(
                tmp_path,
                datasets=registry_of(file_part(srv.file_url("data.csv"))),
                retries=2,
                **FAST,
            )
        assert srv.hits["/files/data.csv"] == 3


def test_server_that_never_answers_times_out(tmp_path: Path) -> None:
    with FakeServer(files={"data.csv": CSV_BODY}) as srv:
        srv.hang.add("/files/data.csv")
        start = time.monotonic()
        opts = {**FAST, "timeout": 0.3}
        with pytest.raises(PlannerError, match=r"timeout.*Fix: retry later"):
            fetch(
                tmp_path,
                datasets=registry_of(file_part(srv.file_url("data.csv"))),
                retries=1,
                **opts,
            )
        assert time.monotonic() - start < 5
    assert not (tmp_path / "files/data.csv").exists()


# ---------------------------------------------------------------- issue 10/11: clear failures


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_offline_is_said_plainly_and_quickly(tmp_path: Path) -> None:
    host = f"127.0.0.1:{_closed_port()}"
    registry = {
        **registry_of(layer_part(), name="things"),
        **registry_of(file_part(f"http://{host}/files/data.csv"), name="table"),
    }
    start = time.monotonic()
    with pytest.raises(PlannerError) as info:
        fetch(tmp_path, base_url=f"http://{host}/arcgis/rest/services", datasets=registry, **FAST)
    assert time.monotonic() - start < 3
    text = str(info.value)
    assert text.count(f"no internet connection to {host}") == 2  # both datasets, one line each
    assert "Connection refused" in text  # the cause, not cut off
    assert "Retrying" not in text and "--mirror" in text


def test_a_stalled_server_fails_within_the_deadline(tmp_path: Path) -> None:
    with FakeServer(services={"Things_EN_BSC": FakeService(numbered_rows(5))}) as srv:
        srv.add_fault(srv.query_path("Things_EN_BSC"), Fault("trickle"), times=5)
        start = time.monotonic()
        opts = {**FAST, "timeout": 1, "deadline": 1.5}
        with pytest.raises(PlannerError, match=r"no complete answer within 1.5 s.*stalled"):
            fetch(tmp_path, base_url=srv.base_url, datasets=registry_of(layer_part()), **opts)
        assert time.monotonic() - start < 4


def test_a_trickling_file_fails_within_the_file_deadline(tmp_path: Path) -> None:
    with FakeServer(files={"data.csv": CSV_BODY * 10}) as srv:
        srv.add_fault("/files/data.csv", Fault("trickle"))
        start = time.monotonic()
        opts = {**FAST, "timeout": 1, "file_deadline": 1.5}
        with pytest.raises(PlannerError, match=r"no complete answer within 1.5 s"):
            fetch(tmp_path, datasets=registry_of(file_part(srv.file_url("data.csv"))), **opts)
        assert time.monotonic() - start < 4
    assert leftovers(tmp_path / "files") == []


def test_transient_arcgis_error_bodies_are_retried(tmp_path: Path) -> None:
    with FakeServer(services={"Things_EN_BSC": FakeService(numbered_rows(5))}) as srv:
        query = srv.query_path("Things_EN_BSC")
        for code in (429, 500, 503, 504):
            srv.add_fault(query, Fault("arcgis", code))
        fetch(tmp_path, base_url=srv.base_url, datasets=registry_of(layer_part()), **FAST)
        assert srv.hits[query] == 4 + 2  # four error bodies, then the count and one page
    assert len(json.loads((tmp_path / "ons/things.geojson").read_text())["features"]) == 5


def test_a_missing_service_names_the_service_and_its_entry(tmp_path: Path) -> None:
    with FakeServer(services={"Things_EN_BSC": FakeService(numbered_rows(5))}) as srv:
        layer = srv.query_path("Things_EN_BSC").removesuffix("/query")
        srv.add_fault(layer, Fault("arcgis", 400))
        with pytest.raises(PlannerError) as info:
            fetch(tmp_path, base_url=srv.base_url, datasets=registry_of(layer_part()), **FAST)
        assert srv.hits[layer] == 1  # not retried
    text = str(info.value)
    assert "ArcGIS service Things_EN_BSC: ArcGIS error 400: Invalid URL" in text
    assert "renamed or moved" in text and "planner/sources.py, dataset 'things'" in text
    assert "retry later" not in text


def test_requests_name_planner_and_its_version(tmp_path: Path) -> None:
    import planner

    with FakeServer(files={"data.csv": CSV_BODY}) as srv:
        fetch(tmp_path, datasets=registry_of(file_part(srv.file_url("data.csv"))), **FAST)
    assert srv.agents and all(a.startswith(f"planner/{planner.__version__} ") for a in srv.agents)

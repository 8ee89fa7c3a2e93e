"""planner.download against a real HTTP server on 127.0.0.1 and real mirror files."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import time
from pathlib import Path

import online_data
import pytest
from arcgis_server import FakeServer, FakeService, Fault
from conftest import link_mirror
from fetch_helpers import (
    CSV_BODY,
    FAST,
    file_part,
    layer_part,
    leftovers,
    numbered_rows,
    registry_of,
    sha_of,
)

from planner import cache, download, pipeline
from planner.download import fetch, load_manifest, parse_mirror_manifest
from planner.errors import PlannerError
from planner.fsutil import sha256_file
from planner.sources import (
    DATASETS,
    LOOKUP_COLUMNS,
    PLAN_INPUTS,
    Dataset,
    OnlinePart,
    check_columns,
    locate,
)

# --------------------------------------------------------------------------- ArcGIS paging


def test_paging_gets_every_feature_exactly_once(tmp_path: Path) -> None:
    with FakeServer(
        services={"Things_EN_BSC": FakeService(numbered_rows(25), max_record_count=10)}
    ) as srv:
        manifest = fetch(
            tmp_path, base_url=srv.base_url, datasets=registry_of(layer_part()), **FAST
        )
        queries = [p for path, p in srv.log if path.endswith("/query")]
    out = tmp_path / "ons/things.geojson"
    data = json.loads(out.read_text())
    ids = [f["properties"]["FID"] for f in data["features"]]
    assert ids == list(range(1, 26))
    pages = [q for q in queries if q.get("returnCountOnly") != "true"]
    assert [int(q["resultOffset"]) for q in pages] == [0, 10, 20]
    assert all(q["orderByFields"] == "FID ASC" and q["f"] == "geojson" for q in pages)
    assert any(q.get("returnCountOnly") == "true" for q in queries)
    rec = manifest["files"]["ons/things.geojson"]
    assert rec["sha256"] == sha_of(out.read_bytes())
    assert rec["source"].endswith("/Things_EN_BSC/FeatureServer/0/query")


def test_table_service_is_written_as_csv_in_object_id_order(tmp_path: Path) -> None:
    part = OnlinePart(
        name="lu", download_path="ons/lu.csv", kind="table", service="LU", columns=("CODE",)
    )
    rows = numbered_rows(7, oid="ObjectId")[::-1]
    with FakeServer(
        services={"LU": FakeService(rows, geometry=False, oid_field="ObjectId")}
    ) as srv:
        fetch(tmp_path, base_url=srv.base_url, datasets=registry_of(part), page_size=3, **FAST)
        assert all(p.get("f") == "json" for path, p in srv.log if path.endswith("/query"))
    table = list(csv.DictReader((tmp_path / "ons/lu.csv").open()))
    assert [r["ObjectId"] for r in table] == [str(i) for i in range(1, 8)]
    assert table[0]["CODE"] == "E00000001"


def test_fewer_features_than_count_is_an_error(tmp_path: Path) -> None:
    service = FakeService(numbered_rows(25), max_record_count=10, count_override=26)
    with (
        FakeServer(services={"Things_EN_BSC": service}) as srv,
        pytest.raises(PlannerError, match=r"Things_EN_BSC.*got 25 features.*said 26"),
    ):
        fetch(tmp_path, base_url=srv.base_url, datasets=registry_of(layer_part()), **FAST)
    assert not (tmp_path / "ons/things.geojson").exists()


def test_paging_that_stops_early_is_an_error(tmp_path: Path) -> None:
    service = FakeService(numbered_rows(25), max_record_count=10, serve_only=20)
    with (
        FakeServer(services={"Things_EN_BSC": service}) as srv,
        pytest.raises(PlannerError, match="got 20 features but returnCountOnly said 25"),
    ):
        fetch(tmp_path, base_url=srv.base_url, datasets=registry_of(layer_part()), **FAST)


def test_repeated_feature_is_an_error_not_deduplicated(tmp_path: Path) -> None:
    service = FakeService(numbered_rows(25), max_record_count=10, repeat_on_later_pages=True)
    with (
        FakeServer(services={"Things_EN_BSC": service}) as srv,
        pytest.raises(PlannerError, match=r"Things_EN_BSC: feature FID=10 arrived twice"),
    ):
        fetch(tmp_path, base_url=srv.base_url, datasets=registry_of(layer_part()), **FAST)
    assert not (tmp_path / "ons/things.geojson").exists()


def test_arcgis_error_json_is_reported(tmp_path: Path) -> None:
    with (
        FakeServer(services={}) as srv,
        pytest.raises(
            PlannerError, match=r"Gone: HTTP 404.*renamed or moved.*sources.py, dataset 'things'"
        ),
    ):
        fetch(tmp_path, base_url=srv.base_url, datasets=registry_of(layer_part("Gone")), **FAST)


# --------------------------------------------------------------------------- bad bodies


def _with_old_file(tmp_path: Path, rel: str = "files/data.csv") -> bytes:
    old = b"CODE,NAME\nE00000009,Old\n"
    (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / rel).write_bytes(old)
    return old


def test_truncated_body_leaves_no_file_and_keeps_the_old_one(tmp_path: Path) -> None:
    old = _with_old_file(tmp_path)
    with FakeServer(files={"data.csv": CSV_BODY}) as srv:
        srv.add_fault("/files/data.csv", Fault("truncate"))
        with pytest.raises(PlannerError, match=r"data\.csv.*(transfer broke off|truncated)"):
            fetch(tmp_path, datasets=registry_of(file_part(srv.file_url("data.csv"))), **FAST)
    assert (tmp_path / "files/data.csv").read_bytes() == old
    assert leftovers(tmp_path / "files") == []


def test_connection_reset_mid_file_keeps_nothing(tmp_path: Path) -> None:
    with FakeServer(files={"data.csv": CSV_BODY * 500}) as srv:
        srv.add_fault("/files/data.csv", Fault("reset"))
        with pytest.raises(PlannerError, match="transfer broke off"):
            fetch(tmp_path, datasets=registry_of(file_part(srv.file_url("data.csv"))), **FAST)
    assert not (tmp_path / "files/data.csv").exists()
    assert leftovers(tmp_path / "files") == []


def test_a_revised_file_is_a_warning_naming_it_not_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    released = sha_of(b"what the publisher released\n")
    with FakeServer(files={"data.csv": CSV_BODY}) as srv:
        part = file_part(srv.file_url("data.csv"), expected_sha256=released, expected_size=29)
        with caplog.at_level(logging.WARNING):
            manifest = fetch(tmp_path, datasets=registry_of(part), **FAST)
    assert (tmp_path / "files/data.csv").read_bytes() == CSV_BODY
    assert manifest["files"]["files/data.csv"]["sha256"] == sha_of(CSV_BODY)
    warning = caplog.text
    assert "data.csv" in warning and "revised" in warning
    assert f"size {len(CSV_BODY)} bytes, recorded 29" in warning
    assert "dataset 'things'" in warning
    assert leftovers(tmp_path / "files") == []


def test_zero_byte_file_is_an_error(tmp_path: Path) -> None:
    with (
        FakeServer(files={"data.csv": b""}) as srv,
        pytest.raises(PlannerError, match="empty"),
    ):
        fetch(tmp_path, datasets=registry_of(file_part(srv.file_url("data.csv"))), **FAST)
    assert not (tmp_path / "files/data.csv").exists()


def test_html_error_page_is_not_taken_for_data(tmp_path: Path) -> None:
    old = _with_old_file(tmp_path)
    page = b"<!DOCTYPE html><html><body>Service unavailable</body></html>"
    with (
        FakeServer(files={"data.csv": page}) as srv,
        pytest.raises(PlannerError, match="HTML page"),
    ):
        fetch(tmp_path, datasets=registry_of(file_part(srv.file_url("data.csv"))), **FAST)
    assert (tmp_path / "files/data.csv").read_bytes() == old


def test_csv_without_expected_columns_is_refused(tmp_path: Path) -> None:
    with FakeServer(files={"data.csv": CSV_BODY}) as srv:
        part = file_part(srv.file_url("data.csv"), columns=("CODE", "POPULATION"))
        with pytest.raises(PlannerError, match="POPULATION"):
            fetch(tmp_path, datasets=registry_of(part), **FAST)


# --------------------------------------------------------------------------- manifest


def test_manifest_records_files_and_second_fetch_skips(tmp_path: Path) -> None:
    services = {"Things_EN_BSC": FakeService(numbered_rows(12), max_record_count=5)}
    with FakeServer(services=services, files={"data.csv": CSV_BODY}) as srv:
        registry = {
            **registry_of(layer_part(), name="things"),
            **registry_of(file_part(srv.file_url("data.csv")), name="table"),
        }
        fetch(tmp_path, base_url=srv.base_url, datasets=registry, **FAST)
        first = (tmp_path / "manifest.json").read_bytes()
        hits = srv.total_hits()
        manifest = fetch(tmp_path, base_url=srv.base_url, datasets=registry, **FAST)
        assert srv.total_hits() == hits
    assert (tmp_path / "manifest.json").read_bytes() == first
    files = manifest["files"]
    assert sorted(files) == ["files/data.csv", "ons/things.geojson"]
    rec = files["files/data.csv"]
    assert rec["sha256"] == sha_of(CSV_BODY)
    assert rec["size"] == len(CSV_BODY)
    assert rec["source"] == srv.file_url("data.csv")
    assert rec["fetched_at"].endswith("Z")
    assert json.loads(first) == manifest
    assert first.decode() == json.dumps(manifest, indent=2, sort_keys=True) + "\n"


def test_changed_file_is_fetched_again(tmp_path: Path) -> None:
    with FakeServer(files={"data.csv": CSV_BODY}) as srv:
        registry = registry_of(file_part(srv.file_url("data.csv")))
        fetch(tmp_path, datasets=registry, **FAST)
        (tmp_path / "files/data.csv").write_bytes(b"tampered\n")
        fetch(tmp_path, datasets=registry, **FAST)
        assert srv.hits["/files/data.csv"] == 2
    assert (tmp_path / "files/data.csv").read_bytes() == CSV_BODY


# --------------------------------------------------------------------------- real registry online


def _lookup_services() -> dict[str, FakeService]:
    lsoas = ["E01000001", "E01000002", "E01000003"]

    def table(rows: list[dict]) -> FakeService:
        return FakeService(
            [{"ObjectId": i + 1, **r} for i, r in enumerate(rows)],
            geometry=False,
            oid_field="ObjectId",
            max_record_count=2,
        )

    icb = [
        {
            "LSOA21CD": c,
            "LSOA21NM": f"City {c[-1]}A",
            "SICBL24CD": "E38000255",
            "SICBL24CDH": "A3A8R",
            "SICBL24NM": "NHS NEL ICB - A3A8R",
            "ICB24CD": "E54000029",
            "ICB24CDH": "QMF",
            "ICB24NM": "NHS North East London ICB",
            "CAL24CD": "E56000001",
            "LAD24CD": "E09000001",
        }
        for c in lsoas
    ]
    ward = [
        {"LSOA21CD": c, "WD24CD": "E05009288", "WD24NM": "Aldersgate", "LAD24CD": "E09000001"}
        | {"LAD24NM": "City of London"}
        for c in lsoas
    ]
    oas = [
        {"OA21CD": f"E0000{i}", "LSOA21CD": c, "MSOA21CD": "E02000001", "MSOA21NM": "City 001"}
        for i, c in enumerate(lsoas + lsoas)
    ]
    rgn = [{"LAD24CD": "E09000001", "LAD24NM": "City", "RGN24CD": "E12000007", "RGN24NM": "London"}]
    nhser = [
        {"SICBL23CD": "E38000255", "ICB23CD": "E54000029", "NHSER23CD": "E40000003"}
        | {"NHSER23NM": "London"}
    ]
    parts = DATASETS["lookup"].online
    rows = dict(zip([p.name for p in parts], [icb, ward, oas, rgn, nhser], strict=True))
    return {p.service: table(rows[p.name]) for p in parts if p.service}


def test_lookup_parts_are_assembled_into_the_mirror_layout(tmp_path: Path) -> None:
    with FakeServer(services=_lookup_services()) as srv:
        manifest = fetch(tmp_path, names=["lookup"], base_url=srv.base_url, **FAST)
    path = locate("lookup", tmp_path)
    assert path == tmp_path / DATASETS["lookup"].mirror_path
    rows = list(csv.DictReader(path.open()))
    assert tuple(rows[0]) == LOOKUP_COLUMNS
    check_columns(list(rows[0]), "lookup", path)
    assert [r["LSOA21CD"] for r in rows] == ["E01000001", "E01000002", "E01000003"]
    assert {r["NHSER24NM"] for r in rows} == {"London"}
    assert {r["MSOA21CD"] for r in rows} == {"E02000001"}
    assert DATASETS["lookup"].mirror_path in manifest["files"]
    assert len(manifest["files"]) == 6


def test_real_registry_boundary_layer_online(tmp_path: Path) -> None:
    rows = [{"FID": i + 1, "ICB23CD": f"E5400{i:04d}", "ICB23NM": f"ICB {i}"} for i in range(42)]
    service = DATASETS["icb_boundaries"].online[0].service
    with FakeServer(services={service: FakeService(rows, max_record_count=20)}) as srv:
        fetch(tmp_path, names=["icb_boundaries"], base_url=srv.base_url, **FAST)
    path = locate("icb_boundaries", tmp_path)
    assert path.name == "icb23_bsc.geojson"
    assert len(json.loads(path.read_text())["features"]) == 42


# --------------------------------------------------------------------------- mirror mode


def _fake_mirror(root: Path, files: dict[str, bytes], listed: dict[str, bytes]) -> Path:
    lines = ["# Mirror", "", "## Files", ""]
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    for rel, data in listed.items():
        lines += [
            f"### `{rel}`",
            "Some text; upstream sha256 `" + "0" * 64 + "`.",
            "",
            f"- size: {len(data):,} bytes; rows/features: 1; sha256: `{sha_of(data)}`",
            "",
        ]
    (root / "MANIFEST.md").write_text("\n".join(lines))
    return root


def _mirror_registry() -> dict[str, Dataset]:
    def ds(name: str, rel: str, required: bool = True) -> Dataset:
        return Dataset(name, "t", "t", rel, "csv", ("CODE",), required=required)

    return {
        "a": ds("a", "population/a.csv"),
        "b": ds("b", "lookups/b.csv"),
        "c": ds("c", "readiness/c.csv", required=False),
    }


def test_mirror_copy_then_skip(tmp_path: Path) -> None:
    files = {"population/a.csv": b"CODE\nE1\n", "lookups/b.csv": b"CODE\nE2\n"}
    mirror = _fake_mirror(tmp_path / "mirror", files, files)
    raw = tmp_path / "raw"
    manifest = fetch(raw, mirror=mirror, datasets=_mirror_registry(), progress=False)
    for rel, data in files.items():
        assert (raw / rel).read_bytes() == data
        assert manifest["files"][rel]["sha256"] == sha_of(data)
        assert manifest["files"][rel]["source"] == str(mirror / rel)
    assert "readiness/c.csv" not in manifest["files"]  # optional and absent from the mirror
    inodes = {rel: os.stat(raw / rel).st_ino for rel in files}
    first = (raw / "manifest.json").read_bytes()
    fetch(raw, mirror=mirror, datasets=_mirror_registry(), progress=False)
    assert {rel: os.stat(raw / rel).st_ino for rel in files} == inodes  # not rewritten
    assert (raw / "manifest.json").read_bytes() == first


def test_mirror_file_disagreeing_with_manifest_is_refused(tmp_path: Path) -> None:
    listed = {"population/a.csv": b"CODE\nE1\n", "lookups/b.csv": b"CODE\nE2\n"}
    files = {**listed, "lookups/b.csv": b"CODE\nE2 damaged\n"}
    mirror = _fake_mirror(tmp_path / "mirror", files, listed)
    raw = tmp_path / "raw"
    with pytest.raises(PlannerError, match=r"lookups/b\.csv.*differs from MANIFEST\.md"):
        fetch(raw, mirror=mirror, datasets=_mirror_registry(), progress=False)
    assert not (raw / "lookups/b.csv").exists()
    assert leftovers(raw / "lookups") == []
    assert "population/a.csv" in load_manifest(raw)["files"]  # earlier good copy recorded


def test_missing_required_mirror_file(tmp_path: Path) -> None:
    mirror = _fake_mirror(tmp_path / "mirror", {"population/a.csv": b"CODE\n"}, {})
    with pytest.raises(PlannerError, match=r"lookups/b\.csv.*required dataset 'b'"):
        fetch(tmp_path / "raw", mirror=mirror, datasets=_mirror_registry(), progress=False)


def test_parse_mirror_manifest_takes_the_size_line(tmp_path: Path) -> None:
    mirror = _fake_mirror(tmp_path, {}, {"x/y.csv": b"abc"})
    assert parse_mirror_manifest(mirror / "MANIFEST.md") == {"x/y.csv": sha_of(b"abc")}


def test_real_mirror_small_dataset(tmp_path: Path, mirror_dir: Path) -> None:
    listed = parse_mirror_manifest(mirror_dir / "MANIFEST.md")
    rel = DATASETS["icb_boundaries"].mirror_path
    assert rel in listed
    manifest = fetch(tmp_path, mirror=mirror_dir, names=["icb_boundaries"], progress=False)
    assert manifest["files"][rel]["sha256"] == listed[rel]
    assert hashlib.sha256((tmp_path / rel).read_bytes()).hexdigest() == listed[rel]
    assert locate("icb_boundaries", tmp_path) == tmp_path / rel


# ---------------------------------------------------------------- offline reuse of data/raw
# Without --mirror, datasets already in data/raw (mirror layout) are used, not
# downloaded; only missing ones go to the network.

ONE_TRY = {**FAST, "retries": 1}
ALL = list(DATASETS)  # the NHS region boundaries are fetched only when named
POPULATION = DATASETS["population"].mirror_path
NHSER = DATASETS["nhser_boundaries"]


def _raw(mirror_dir: Path, tmp_path: Path) -> Path:
    return link_mirror(mirror_dir, tmp_path / "data" / "raw")


def test_fetch_without_mirror_keeps_the_files_already_there(
    mirror_dir: Path, tmp_path: Path
) -> None:
    raw = _raw(mirror_dir, tmp_path)
    with FakeServer() as srv:
        manifest = download.fetch(raw, base_url=srv.base_url, **ONE_TRY)
        assert srv.total_hits() == 0
    files = manifest["files"]
    assert sorted(files) == sorted(DATASETS[n].mirror_path for n in PLAN_INPUTS)
    for rel, record in files.items():
        assert record["sha256"] == sha256_file(raw / rel)
        assert record["source"] == "found in the raw folder"
    first = (raw / "manifest.json").read_bytes()
    with FakeServer() as srv:
        download.fetch(raw, base_url=srv.base_url, **ONE_TRY)
        assert srv.total_hits() == 0
    assert (raw / "manifest.json").read_bytes() == first


def test_a_file_changed_by_hand_is_used_and_recorded(
    mirror_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    raw = _raw(mirror_dir, tmp_path)
    with FakeServer() as srv:
        download.fetch(raw, base_url=srv.base_url, **ONE_TRY)
        before = cache.raw_checksums(raw, pipeline.AREA_SOURCES)
        path = raw / POPULATION
        text = path.read_text()
        path.unlink()
        path.write_text(text.replace("\n", "\n", 1) + "\n")  # one more (blank) line
        with caplog.at_level(logging.WARNING):
            manifest = download.fetch(raw, base_url=srv.base_url, **ONE_TRY)
        assert srv.total_hits() == 0
    assert "changed since it was fetched" in caplog.text
    assert manifest["files"][POPULATION]["sha256"] == sha256_file(path)
    assert manifest["files"][POPULATION]["source"].startswith("changed in place")
    after = cache.raw_checksums(raw, pipeline.AREA_SOURCES)
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
        manifest = download.fetch(raw, names=ALL, base_url=srv.base_url, **ONE_TRY)
        asked = {path for path, _ in srv.log}
    assert asked and all(str(part.service) in path for path in asked)
    saved = raw / part.download_path
    assert len(json.loads(saved.read_text())["features"]) == 7
    assert manifest["files"][part.download_path]["sha256"] == sha256_file(saved)


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
        srv.add_fault(srv.query_path(str(part.service)), Fault("reset"), times=2)
        with pytest.raises(
            PlannerError,
            match=r"(?s)1 of 9 .*NHS_England_Regions.*after 1 retries.*reset.*retry later",
        ):
            download.fetch(raw, names=ALL, base_url=srv.base_url, **ONE_TRY)
    assert not (raw / part.download_path).exists()
    assert not (raw / "ons").exists() or list((raw / "ons").iterdir()) == []
    recorded = download.load_manifest(raw)["files"]
    # one failure does not stop the others: every other dataset is recorded
    assert sorted(recorded) == sorted(d.mirror_path for d in DATASETS.values() if d != NHSER)


def test_a_reset_arcgis_answer_is_retried(mirror_dir: Path, tmp_path: Path) -> None:
    raw = _without_nhser(mirror_dir, tmp_path)
    part = NHSER.online[0]
    with FakeServer(
        services={str(part.service): FakeService(_nhser_rows(), max_record_count=3)}
    ) as srv:
        srv.add_fault(srv.query_path(str(part.service)), Fault("reset"))
        download.fetch(raw, names=["nhser_boundaries"], base_url=srv.base_url, **ONE_TRY)
    assert len(json.loads((raw / part.download_path).read_text())["features"]) == 7


def test_arcgis_429_with_retry_after_is_waited_for(mirror_dir: Path, tmp_path: Path) -> None:
    raw = _without_nhser(mirror_dir, tmp_path)
    part = NHSER.online[0]
    with FakeServer(services={str(part.service): FakeService(_nhser_rows())}) as srv:
        query = srv.query_path(str(part.service))
        srv.add_fault(query, Fault("status", 429, (("Retry-After", "1"),)))
        start = time.monotonic()
        download.fetch(raw, names=ALL, base_url=srv.base_url, **ONE_TRY)
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
            download.fetch(
                raw, names=ALL, base_url=srv.base_url, **{**ONE_TRY, "timeout": 0.3, "retries": 0}
            )
        assert time.monotonic() - start < 10
    assert not (raw / part.download_path).exists()


# ---------------------------------------------------------------- a changed layout


def test_layer_without_a_registered_field_is_refused(tmp_path: Path) -> None:
    part = layer_part(columns=("CODE", "NAME", "POPULATION"))
    with (
        FakeServer(services={"Things_EN_BSC": FakeService(numbered_rows(5))}) as srv,
        pytest.raises(
            PlannerError,
            match=r"lacks expected column\(s\) POPULATION; found FID, CODE.*edit planner/sources",
        ),
    ):
        fetch(tmp_path, base_url=srv.base_url, datasets=registry_of(part), **FAST)
    assert not (tmp_path / "ons/things.geojson").exists()


def test_file_without_a_registered_column_is_refused(tmp_path: Path) -> None:
    with FakeServer(files={"data.csv": CSV_BODY}) as srv:
        part = file_part(srv.file_url("data.csv"), columns=("CODE", "NAME", "TOTAL"))
        with pytest.raises(
            PlannerError, match=r"data.csv, field 'TOTAL'.*edit planner/sources.py, dataset"
        ):
            fetch(tmp_path, datasets=registry_of(part), **FAST)
    assert not (tmp_path / "files/data.csv").exists()


def test_every_dataset_is_tried_then_each_failure_is_listed(tmp_path: Path) -> None:
    with FakeServer(files={"good.csv": CSV_BODY}) as srv:
        registry = {
            **registry_of(file_part(srv.file_url("gone.csv"), "files/a.csv"), name="a_gone"),
            **registry_of(file_part(srv.file_url("good.csv"), "files/b.csv"), name="b_good"),
            **registry_of(layer_part("Missing_Service"), name="c_missing"),
        }
        with pytest.raises(PlannerError) as info:
            fetch(tmp_path, base_url=srv.base_url, datasets=registry, **FAST)
    assert (tmp_path / "files/b.csv").read_bytes() == CSV_BODY
    lines = str(info.value).splitlines()
    assert lines[0] == "2 of 3 datasets could not be fetched (files already fetched are kept):"
    assert lines[1].startswith("  - a_gone [planner/sources.py, dataset 'a_gone', part 'things']")
    assert "HTTP 404" in lines[1]
    assert lines[2].startswith("  - c_missing [planner/sources.py, dataset 'c_missing'")
    assert "files/b.csv" in load_manifest(tmp_path)["files"]


def test_an_html_page_in_raw_is_reported_and_force_replaces_it(
    mirror_dir: Path, tmp_path: Path
) -> None:
    raw = _raw(mirror_dir, tmp_path)
    (raw / POPULATION).unlink()
    (raw / POPULATION).write_bytes(b"<!DOCTYPE html><html><body>Sign in</body></html>")
    with FakeServer() as srv, pytest.raises(PlannerError) as info:
        download.fetch(raw, base_url=srv.base_url, **ONE_TRY)
    text = str(info.value)
    assert "1 of 5 datasets" in text and str(raw / POPULATION) in text
    assert "HTML page" in text and "planner fetch --force" in text
    download.fetch(raw, mirror=mirror_dir, names=["population"], force=True, progress=False)
    assert sha256_file(raw / POPULATION) == sha256_file(mirror_dir / POPULATION)


def test_a_mirror_without_manifest_is_refused_unless_verify_is_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = {"population/a.csv": b"CODE\nE1\n", "lookups/b.csv": b"CODE\nE2\n"}
    mirror = _fake_mirror(tmp_path / "mirror", files, files)
    (mirror / "MANIFEST.md").unlink()
    with pytest.raises(PlannerError, match=r"MANIFEST.md.*refused.*--no-verify"):
        fetch(tmp_path / "raw", mirror=mirror, datasets=_mirror_registry(), progress=False)
    assert not (tmp_path / "raw" / "population").exists()
    with caplog.at_level(logging.WARNING):
        fetch(
            tmp_path / "raw",
            mirror=mirror,
            datasets=_mirror_registry(),
            progress=False,
            verify=False,
        )
    assert "NOT verified" in caplog.text
    assert (tmp_path / "raw/lookups/b.csv").read_bytes() == files["lookups/b.csv"]


def test_a_mirror_file_missing_from_the_manifest_is_refused(tmp_path: Path) -> None:
    files = {"population/a.csv": b"CODE\nE1\n", "lookups/b.csv": b"CODE\nE2\n"}
    mirror = _fake_mirror(
        tmp_path / "mirror", files, {"population/a.csv": files["population/a.csv"]}
    )
    with pytest.raises(PlannerError, match=r"lookups/b.csv.*not listed with a sha256"):
        fetch(tmp_path / "raw", mirror=mirror, datasets=_mirror_registry(), progress=False)
    assert (tmp_path / "raw/population/a.csv").exists()


# ---------------------------------------------------------------- the online path end to end


def _online_run(tmp_path: Path, drop: tuple[str, ...] = (), **kw) -> tuple[Path, FakeServer]:
    raw = tmp_path / "raw"
    with FakeServer() as srv:
        online_data.serve(srv)
        for service in drop:
            del srv.services[service]
        fetch(raw, base_url=srv.base_url, datasets=online_data.registry(srv), **FAST, **kw)
    return raw, srv


def _asked_services(srv: FakeServer) -> set[str]:
    prefix = "/arcgis/rest/services/"
    return {path[len(prefix) :].split("/")[0] for path, _ in srv.log if path.startswith(prefix)}


def _check_areas(raw: Path) -> None:
    from planner import adjacency as adjacency_stage
    from planner import areas as areas_stage

    areas = areas_stage.build_areas(raw, expected_rows=online_data.ENGLISH)
    adjacency = adjacency_stage.build_adjacency(areas)
    adjacency_stage.check_connected(areas, adjacency)
    expected = [a for a in online_data.areas() if a.icb is not None]
    assert areas["lsoa21cd"].tolist() == [a.code for a in expected]
    icbs = [online_data.ICBS[a.icb][0] for a in expected]
    assert areas["icb24cd"].tolist() == icbs
    regions = [online_data.REGIONS[online_data.ICB_REGION[c]][0] for c in icbs]
    assert areas["nhser24cd"].tolist() == regions
    assert areas["msoa21cd"].tolist() == [a.msoa for a in expected]
    assert areas["lad24cd"].tolist() == [a.lad for a in expected]
    ages = [online_data.ages(a.code) for a in expected]
    assert areas["population"].tolist() == [sum(x.values()) for x in ages]
    under3 = [sum(x[k] for k in ("F0", "F1", "F2", "M0", "M1", "M2")) for x in ages]
    assert areas["under3"].tolist() == under3
    assert areas["imd_decile"].tolist() == [online_data.deciles()[a.code] for a in expected]
    assert areas.crs.to_epsg() == 27700


def test_online_fetch_then_prepare_on_england_and_wales_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        raw, srv = _online_run(tmp_path)
        _check_areas(raw)
    asked = _asked_services(srv)
    lookup_parts = {str(p.service) for p in DATASETS["lookup"].online}
    assert asked == {str(DATASETS["lsoa_boundaries"].online[0].service)} | lookup_parts
    oa_service = DATASETS["lookup"].part("lookup_lsoa_msoa").service
    offsets = [
        int(q["resultOffset"])
        for path, q in srv.log
        if f"/{oa_service}/" in path and "resultOffset" in q
    ]
    assert offsets == [0, 1000]  # 1,440 Output Areas behind maxRecordCount 1000
    log = caplog.text
    lsoa_service = DATASETS["lsoa_boundaries"].online[0].service
    assert f"ArcGIS service {lsoa_service}: 72 rows; 12 Welsh rows dropped" in log
    assert "sapelsoasyoa20222024.xlsx: 72 rows; 12 Welsh rows dropped" in log
    assert "File_7_IoD2025" in log and "12 Welsh rows dropped" in log
    lookup_file = raw / DATASETS["lookup"].mirror_path
    assert not lookup_file.read_text().count("\nW")  # the assembled lookup is England only


def test_icb_regions_are_derived_from_the_region_boundaries_when_the_service_fails(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    service = str(DATASETS["lookup"].part("lookup_icb_nhser").service)
    with caplog.at_level(logging.WARNING):
        raw, srv = _online_run(tmp_path, drop=(service,))
    assert str(DATASETS["nhser_boundaries"].online[0].service) in _asked_services(srv)
    assert "derived instead" in caplog.text and service in caplog.text
    manifest = load_manifest(raw)
    assert (
        "nhser24_bsc.geojson (spatial)"
        in manifest["files"][DATASETS["lookup"].mirror_path]["source"]
    )
    _check_areas(raw)


def test_online_force_fetches_again_and_gives_the_same_files(tmp_path: Path) -> None:
    raw, _ = _online_run(tmp_path)
    before = {
        p: sha256_file(p) for p in raw.rglob("*") if p.is_file() and p.name != "manifest.json"
    }
    with FakeServer() as srv:
        online_data.serve(srv)
        fetch(raw, base_url=srv.base_url, datasets=online_data.registry(srv), **FAST)
        assert srv.total_hits() == 0  # everything is up to date
        fetch(raw, base_url=srv.base_url, datasets=online_data.registry(srv), force=True, **FAST)
        assert srv.total_hits() > 0
    after = {p: sha256_file(p) for p in raw.rglob("*") if p.is_file() and p.name != "manifest.json"}
    assert after == before

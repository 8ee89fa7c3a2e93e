"""planner.cache: a product is reused only when its key matches and its files are intact."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from planner import cache
from planner.errors import PlannerError


def _key(directory: Path) -> str:
    return cache.stage_key_of(directory)


def test_cached_stage_builds_once_per_key(tmp_path: Path) -> None:
    calls = []

    def build(staging: Path) -> None:
        calls.append(staging)
        (staging / "product.txt").write_text(str(len(calls)))

    target = tmp_path / "stage"
    assert cache.cached_stage(target, "k1", build, "test") is True
    assert cache.cached_stage(target, "k1", build, "test") is False
    assert cache.cached_stage(target, "k2", build, "test") is True
    assert (target / "product.txt").read_text() == "2"
    assert len(calls) == 2


def test_failed_build_keeps_the_previous_product(tmp_path: Path) -> None:
    target = tmp_path / "stage"
    cache.cached_stage(target, "good", lambda s: (s / "a.txt").write_text("old"), "test")

    def broken(staging: Path) -> None:
        (staging / "a.txt").write_text("half")
        raise PlannerError("bad input")

    with pytest.raises(PlannerError):
        cache.cached_stage(target, "new", broken, "test")
    assert (target / "a.txt").read_text() == "old"
    assert _key(target) == "good"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stage"]


def _product(tmp_path: Path) -> tuple[Path, list[int]]:
    calls: list[int] = []

    def build(staging: Path) -> None:
        calls.append(1)
        (staging / "assignment.parquet").write_bytes(bytes(range(256)) * 4)
        (staging / "sub").mkdir()
        (staging / "sub" / "catchments.parquet").write_bytes(b"polygons" * 100)

    target = tmp_path / "catchments"
    cache.cached_stage(target, "k", build, "catchments")
    return target, calls


def _rebuild(target: Path, calls: list[int]) -> bool:
    def build(staging: Path) -> None:
        calls.append(1)
        (staging / "assignment.parquet").write_bytes(b"rebuilt")

    return cache.cached_stage(target, "k", build, "catchments")


def test_a_deleted_cache_file_is_rebuilt_with_a_warning(tmp_path: Path, caplog) -> None:
    target, calls = _product(tmp_path)
    (target / "assignment.parquet").unlink()
    with caplog.at_level(logging.WARNING, logger="planner"):
        assert _rebuild(target, calls) is True
    assert "assignment.parquet is missing; rebuilding" in caplog.text
    assert (target / "assignment.parquet").read_bytes() == b"rebuilt"


def test_a_flipped_bit_in_a_cache_file_is_rebuilt_with_a_warning(tmp_path: Path, caplog) -> None:
    target, calls = _product(tmp_path)
    path = target / "sub" / "catchments.parquet"
    data = bytearray(path.read_bytes())
    data[37] ^= 0x01
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="planner"):
        assert _rebuild(target, calls) is True
    assert "catchments.parquet has changed since it was written" in caplog.text


def test_an_intact_product_is_reused_without_a_warning(tmp_path: Path, caplog) -> None:
    target, calls = _product(tmp_path)
    with caplog.at_level(logging.WARNING, logger="planner"):
        assert _rebuild(target, calls) is False
    assert caplog.text == ""
    assert len(calls) == 1


def test_a_record_without_checksums_is_rebuilt(tmp_path: Path) -> None:
    target, calls = _product(tmp_path)
    (target / cache.STAGE_FILE).write_text('{"key": "k"}')
    assert _rebuild(target, calls) is True

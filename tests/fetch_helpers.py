"""Small registries, parts and rows for driving planner.download against the fake server."""

from __future__ import annotations

import hashlib
from pathlib import Path

from planner.sources import Dataset, OnlinePart

FAST = {"progress": False, "backoff_factor": 0.001, "timeout": 5}


def sha_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def registry_of(*parts: OnlinePart, name: str = "things") -> dict[str, Dataset]:
    ds = Dataset(
        name=name,
        description="test data",
        vintage="test",
        mirror_path=f"mirror/{name}.csv",
        format="csv",
        columns=(),
        online=parts,
    )
    return {name: ds}


def layer_part(service: str = "Things_EN_BSC", **kw) -> OnlinePart:
    return OnlinePart(
        name="things", download_path="ons/things.geojson", kind="layer", service=service, **kw
    )


def file_part(url: str, path: str = "files/data.csv", **kw) -> OnlinePart:
    return OnlinePart(name="things", download_path=path, kind="file", url=url, **kw)


def numbered_rows(n: int, oid: str = "FID") -> list[dict]:
    return [{oid: i + 1, "CODE": f"E{i + 1:08d}", "NAME": f"Area {i + 1}"} for i in range(n)]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


CSV_BODY = b"CODE,NAME\nE00000001,One\nE00000002,Two\n"

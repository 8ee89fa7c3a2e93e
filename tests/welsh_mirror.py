"""Build a copy of the open-data mirror with Welsh rows added to every data file.

The real ONS files cover England and Wales; the mirror holds England only. This
copy puts the shape of the real files back: every CSV and GeoPackage under
boundaries/, lookups/, population/ and deprivation/ gains rows whose codes are
Welsh (each English code `E…` of a copied row becomes `W…`), and boundary
copies are moved west into Wales. MANIFEST.md is rewritten with the new sizes
and sha256s, so the copy verifies like the real mirror.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

WELSH_FOLDERS = ("boundaries", "lookups", "population", "deprivation")
ENGLISH_CODE = re.compile(r"^E(\d{8})$")
WALES_SHIFT = (-120_000.0, 0.0)  # metres west in British National Grid


def welsh(value: object) -> object:
    """The Welsh twin of an English code; anything else unchanged."""
    if isinstance(value, str) and ENGLISH_CODE.match(value):
        return "W" + value[1:]
    return value


def _welsh_rows(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
    extra = frame.head(rows).copy()
    for column in extra.columns:
        if column != "geometry":
            extra[column] = extra[column].map(welsh)
    return extra


def add_welsh_csv(path: Path, rows: int) -> int:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    extra = _welsh_rows(frame, rows)
    # Welsh rows go first, as in the ONS England-and-Wales files sorted by name
    pd.concat([extra, frame]).to_csv(path, index=False, lineterminator="\n")
    return len(extra)


def add_welsh_gpkg(path: Path, rows: int) -> int:
    layer = pyogrio.list_layers(path)[0][0]
    frame = gpd.read_file(path, layer=layer)
    extra = _welsh_rows(frame, rows)
    extra["geometry"] = extra.geometry.translate(*WALES_SHIFT)
    merged = gpd.GeoDataFrame(pd.concat([extra, frame]), crs=frame.crs)
    path.unlink()
    merged.to_file(path, driver="GPKG", layer=layer)
    return len(extra)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rewrite_manifest(manifest: Path, root: Path) -> None:
    """Replace each file's size and sha256 on its '- size:' line with the copy's."""
    heading = re.compile(r"^###\s+`([^`]+)`")
    size_line = re.compile(r"^(\s*-\s*size:\s*)[\d,]+( bytes;.*?sha256:\s*`)[0-9a-f]{64}(`.*)$")
    current = None
    out = []
    for line in manifest.read_text(encoding="utf-8").splitlines():
        if m := heading.match(line):
            current = m.group(1)
        elif current and (m := size_line.match(line)) and (root / current).is_file():
            path = root / current
            line = f"{m.group(1)}{path.stat().st_size:,}{m.group(2)}{_sha(path)}{m.group(3)}"
        out.append(line)
    manifest.write_text("\n".join(out) + "\n", encoding="utf-8")


def build_welsh_mirror(mirror: Path, dest: Path, rows: int = 40) -> dict[str, int]:
    """Copy `mirror` to `dest` with `rows` Welsh rows added to each data file; rows added by file."""
    shutil.copytree(mirror, dest)
    for path in dest.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    dest.chmod(0o755)
    added = {}
    for folder in WELSH_FOLDERS:
        for path in sorted((dest / folder).glob("*")):
            rel = path.relative_to(dest).as_posix()
            if path.suffix == ".csv":
                added[rel] = add_welsh_csv(path, rows)
            elif path.suffix == ".gpkg":
                added[rel] = add_welsh_gpkg(path, rows)
    rewrite_manifest(dest / "MANIFEST.md", dest)
    return added

"""How export files are written: CSV text, the GeoPackage, the README, atomically.

Everything a planner opens in a spreadsheet goes through `to_csv_text`, so
the rules hold in every file: rows as given, fixed decimals rounded half-up,
"\\n" line endings, no index, and no text cell that a spreadsheet would run as
a formula. Writing is atomic per file (a failure leaves the previous file).
"""

from __future__ import annotations

import csv
import errno
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyogrio.errors

from planner.errors import PlannerError
from planner.fsutil import atomic_file, atomic_path

LICENCE = (
    "Contains public sector information licensed under the Open Government Licence v3.0. "
    "Contains OS data © Crown copyright and database right."
)
# First characters that make a spreadsheet treat a cell as a formula (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Decimals for float columns; anything not listed: 2.
DECIMALS = {
    "team_shares_total": 1,
    "team_shares_operating": 1,
    "team_shares_starting": 1,
    "teams_total": 4,
    "teams_operating": 4,
    "teams_starting": 4,
    "babies": 2,
    "under3": 1,
    "babies_per_1000_under3": 1,
    "population_per_team": 0,
    "need_score": 3,
    "polsby_popper": 4,
    "island_km2": 1,
    "mean_polsby_popper": 4,
    "min_polsby_popper": 4,
    "deviation_pct": 2,
    "max_abs_deviation_pct": 2,
    "mean_catchment": 0,
    "distance_m": 1,
    "shared_population": 0,
}
# GDAL stamps the write time into GeoPackage metadata; a fixed date keeps
# two writes of the same plan byte-identical.
# Below this much free space a failed GeoPackage write is a full disk.
FULL_DISK_BYTES = 16 * 1024 * 1024
GPKG_DATE = "2000-01-01T00:00:00.000Z"


def neutralise(cell: object) -> object:
    """A text cell a spreadsheet would run as a formula, made inert (OWASP CSV injection).

    Text starting with = + - @, tab or carriage return gets a leading single
    quote, which spreadsheets show as text; anything else (and every
    non-string, so a negative number stays a number) is returned unchanged.
    """
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell


def restore(cell: object) -> object:
    """The text `neutralise` was given (for reading an earlier export back)."""
    if isinstance(cell, str) and cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS):
        return cell[1:]
    return cell


def fixed(value: float, decimals: int) -> str:
    """Half-up fixed-decimal text; NaN -> empty; never '-0'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    q = Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    if q == 0:
        q = abs(q)
    return f"{q:f}"


def to_csv_text(frame: pd.DataFrame) -> str:
    """Deterministic CSV: fixed decimals per column (DECIMALS), no index, '\\n' endings.

    Numeric columns are written as numbers; every text cell goes through
    `neutralise`, so user text (notes, names, codes) can never be a formula.
    Cells are handled as plain Python objects (NumPy object arrays): iterating
    pandas' Arrow-backed strings cell by cell cost every plan a quarter second.
    """
    columns: dict[str, object] = {}
    for col in frame.columns:
        series = frame[col]
        if pd.api.types.is_float_dtype(series):
            text = fixed_cells(series.to_numpy(dtype="float64"), DECIMALS.get(col, 2))
            columns[col] = pd.Series(text, index=frame.index, dtype=object)
        elif pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            columns[col] = series
        else:
            cells = [neutralise(v) for v in series.to_numpy(dtype=object)]
            # object dtype: pandas would read ints beside blanks as floats ("12.0")
            columns[col] = pd.Series(cells, index=frame.index, dtype=object)
    out = pd.DataFrame(columns, index=frame.index, columns=frame.columns)
    return out.to_csv(index=False, lineterminator="\n")


def fixed_cells(values: np.ndarray, decimals: int) -> np.ndarray:
    """`fixed` for every value of a float column (each distinct value formatted once)."""
    distinct, where = np.unique(values, return_inverse=True)
    text = np.array([fixed(float(v), decimals) for v in distinct], dtype=object)
    return text[where]


def write_text_files(directory: Path, files: Mapping[str, str]) -> list[Path]:
    """Write each file name -> text atomically into `directory` as UTF-8; returns the paths.

    Encoded here, not by the locale, so the same plan gives the same bytes anywhere.
    """
    written = []
    for name, text in files.items():
        path = directory / name
        with atomic_file(path, "wb") as handle:
            handle.write(text.encode("utf-8"))
        written.append(path)
    return written


def write_geopackage(path: Path, frame: gpd.GeoDataFrame, *, layer: str) -> Path:
    """One GeoPackage layer, written beside `path` and renamed into place; byte-stable.

    Text is stored as it is (GIS software does not evaluate formulas).
    """
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": GPKG_DATE})
    try:
        with atomic_path(path) as tmp:
            frame.to_file(tmp, driver="GPKG", layer=layer)
    except pyogrio.errors.DataSourceError as exc:
        raise gdal_write_error(path, exc) from exc
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})
    return path


def gdal_write_error(path: Path, exc: Exception) -> OSError:
    """GDAL's write failure as the OSError it stands for, so the CLI says it in one line.

    GDAL reports a full disk only as "Failed to commit transaction"; the free
    space left on the disk tells that case from the others.
    """
    free = shutil.disk_usage(path.parent).free
    if free < FULL_DISK_BYTES:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    return OSError(errno.EIO, f"GDAL could not write the GeoPackage ({exc})", str(path))


def read_csv_export(path: Path, required: Sequence[str], *, fix: str) -> pd.DataFrame:
    """An earlier export read back as text, strictly: every cell as written, un-neutralised.

    A missing file or column, or a row with more or fewer fields than the
    header, is a PlannerError naming the file and row (spreadsheet numbering:
    header = row 1); `fix` says what to give instead.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.reader(handle, strict=True))
    except FileNotFoundError as exc:
        raise PlannerError("file not found", file=path, fix=fix) from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise PlannerError(f"cannot read this CSV ({exc})", file=path, fix=fix) from exc
    if not rows:
        raise PlannerError("the file is empty", file=path, fix=fix)
    header = rows[0]
    missing = [c for c in required if c not in header]
    if missing:
        raise PlannerError(
            "a column is missing",
            file=path,
            row=1,
            field=missing[0],
            value=",".join(header),
            fix=fix,
        )
    if len(set(header)) != len(header):
        raise PlannerError(
            "a column appears twice", file=path, row=1, value=",".join(header), fix=fix
        )
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise PlannerError(
                f"the row has {len(row)} fields but the header has {len(header)}",
                file=path,
                row=n,
                fix=fix,
            )
    frame = pd.DataFrame(rows[1:], columns=header, dtype=object)
    return frame.map(restore) if len(frame) else frame

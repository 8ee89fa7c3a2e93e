"""Read any registered input exactly as planner/sources.py describes it, England only.

Readers never restate a file's layout: the registry says which columns, sheet
and header row to expect and how to rename them, so one function reads every
input (mirror CSV/GeoPackage, or the online GeoJSON/CSV/workbook), checks its
columns once, and keeps England's rows. Rows of Wales, Scotland and Northern
Ireland are dropped and counted by country in the log; anything else (an empty
or malformed code) is kept, so the stage's own checks report it by row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd

from planner import sources
from planner.errors import PlannerError

log = logging.getLogger(__name__)

FORCE_FIX = sources.FORCE_FIX
_GEO_SUFFIXES = {".gpkg", ".geojson", ".json"}
_WORKBOOK_SUFFIXES = {".xlsx", ".xls"}
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body")


@dataclass(frozen=True)
class Table:
    """One input's rows for England, with the readers' column names.

    The index is each row's 0-based position among the file's data rows, so
    errors can name the row a user sees even after other countries' rows are gone.
    """

    frame: pd.DataFrame
    file: Path
    header_row: int  # 1-based spreadsheet row of the header; 0 for features numbered from 1
    dropped: dict[str, int] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # reader's name → the file's own

    def source_name(self, column: str) -> str:
        """The file's own name for a column, for messages a user can match to the file."""
        return self.names.get(column, column)

    def row_number(self, index: int) -> int:
        """The row a user sees for a data index (a feature number for geographic files)."""
        return int(index) + self.header_row + 1


def looks_like_html(head: bytes) -> bool:
    """A web page saved in place of data (a login or error page, or a moved link)."""
    return head.lstrip()[:64].lower().startswith(_HTML_STARTS)


def check_not_html(path: Path, what: str) -> None:
    """Refuse a file that is an HTML page instead of the data it should hold."""
    with open(path, "rb") as handle:
        head = handle.read(512)
    if looks_like_html(head):
        raise PlannerError(
            f"{what} is an HTML page, not data (a failed download saved in its place?)",
            file=path,
            fix=FORCE_FIX,
        )


def read_table(
    name: str, raw_dir: Path, datasets: dict[str, sources.Dataset] | None = None
) -> Table:
    """Find dataset `name` in raw_dir and read it as registered, keeping England's rows."""
    dataset = sources.get(name, datasets)
    path = sources.locate(name, Path(raw_dir), datasets)
    return read_file(dataset, path)


def read_file(dataset: sources.Dataset, path: Path) -> Table:
    """Read `path` (a file of `dataset`, in either layout) as registered, England only."""
    layout = sources.layout_for(dataset, path)
    check_not_html(path, f"input dataset '{dataset.name}'")
    frame, header_row = _read_raw(path, layout)
    matched = sources.check_columns(frame, dataset, path)
    keep = {actual: layout.renamed(registered) for actual, registered in matched.items()}
    columns = list(keep) + (["geometry"] if isinstance(frame, gpd.GeoDataFrame) else [])
    frame = frame[columns].rename(columns=keep)
    frame, dropped = keep_england(frame, layout.code_column, path)
    names = {reader: actual for actual, reader in keep.items()}
    return Table(frame=frame, file=path, header_row=header_row, dropped=dropped, names=names)


def keep_england(
    frame: pd.DataFrame, code_column: str | None, path: Path | str
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop other countries' rows (by code), log them by country; refuse a file with none left."""
    if code_column is None or code_column not in frame.columns:
        return frame, {}
    codes = frame[code_column].astype("string").str.strip().fillna("")
    other = codes.str.match(sources.OTHER_COUNTRY_CODE.pattern).to_numpy(dtype=bool)
    dropped = sources.other_countries(codes[other])
    if dropped:
        log.info("%s: %s", Path(path).name, sources.describe_dropped(len(frame), dropped))
    if dropped and not (~other).any():
        countries = ", ".join(f"{n:,} {c}" for c, n in sorted(dropped.items()))
        raise PlannerError(
            f"no English rows: all {len(frame):,} rows are of another country ({countries}); "
            "this file covers another country, not England",
            file=path,
            field=code_column,
            fix="use the England (or England and Wales) file named in the README",
        )
    return frame[~other], dropped


def _read_raw(path: Path, layout: sources.Layout) -> tuple[pd.DataFrame, int]:
    suffix = path.suffix.lower()
    if suffix in _GEO_SUFFIXES:
        layer = layout.layer if suffix == ".gpkg" else None
        try:
            frame = gpd.read_file(path, engine="pyogrio", layer=layer)
        except Exception as exc:  # pyogrio raises several driver-specific errors
            raise PlannerError(
                f"cannot read the geographic file ({exc})", file=path, fix=FORCE_FIX
            ) from exc
        return frame.reset_index(drop=True), 0
    if suffix in _WORKBOOK_SUFFIXES:
        try:
            frame = pd.read_excel(
                path, sheet_name=layout.sheet or 0, header=layout.header_row - 1, dtype=object
            )
        except (ValueError, OSError, KeyError) as exc:
            raise PlannerError(
                f"cannot read sheet '{layout.sheet}' ({exc})", file=path, fix=FORCE_FIX
            ) from exc
        # blank rows (notes, spacing) are not data; the index keeps each row's place
        return frame.dropna(how="all"), layout.header_row
    try:
        frame = pd.read_csv(
            path, dtype=str, encoding="utf-8-sig", keep_default_na=False, na_values=[""]
        )
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise PlannerError(
            f"cannot read as a UTF-8 CSV ({exc.__class__.__name__}: {str(exc).splitlines()[0]})",
            file=path,
            fix="save it as CSV UTF-8, or " + FORCE_FIX,
        ) from exc
    return frame, 1

"""One validated table of small areas: LSOA 2021 geometry, codes, population, under-3s, IMD.

Everything downstream (catchments, phasing, costs, maps) trusts this table, so
each source is checked on its own (columns, duplicates, codes, geometry, CRS)
and then against the others (same LSOA set everywhere, ICB totals add up to
England) before anything is written. Messages name the file, row and field.

Under-3s: when the population source gives single years of age by LSOA (the
ONS mid-year workbook) they are used directly; otherwise each MSOA's Census
2021 count of children aged 0–2 is shared across its LSOAs in proportion to
LSOA population, so `under3` is an estimate (a float) and outputs say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planner import sources
from planner.errors import PlannerError

ENGLAND_LSOA21_COUNT = 33_755
BNG = 27700
# England's extent in British National Grid metres, generously padded: a file
# whose coordinates fall outside it carries the wrong CRS label.
ENGLAND_BOUNDS = (-10_000.0, -10_000.0, 700_000.0, 700_000.0)
MIN_MEDIAN_AREA_M2 = 100.0

AREA_COLUMNS = [
    "lsoa21cd",
    "lsoa21nm",
    "msoa21cd",
    "lad24cd",
    "lad24nm",
    "sicbl24cd",
    "icb24cd",
    "icb24cdh",
    "icb24nm",
    "nhser24cd",
    "nhser24nm",
    "population",
    "under3",
    "imd_decile",
    "geometry",
]

LOOKUP_COLUMNS = {
    "LSOA21CD": "lsoa21cd",
    "MSOA21CD": "msoa21cd",
    "LAD24CD": "lad24cd",
    "LAD24NM": "lad24nm",
    "SICBL24CD": "sicbl24cd",
    "ICB24CD": "icb24cd",
    "ICB24CDH": "icb24cdh",
    "ICB24NM": "icb24nm",
    "NHSER24CD": "nhser24cd",
    "NHSER24NM": "nhser24nm",
}

# The mid-year workbook and File 7 use long human headings; the mirror uses ONS codes.
POPULATION_CODE_COLUMNS = ("LSOA21CD", "LSOA 2021 Code")
POPULATION_TOTAL_COLUMNS = ("usual_residents_total", "Total")
IMD_CODE_COLUMNS = ("LSOA21CD", "LSOA code (2021)")
IMD_DECILE_COLUMNS = (
    "IMD_decile",
    "Index of Multiple Deprivation (IMD) Decile (where 1 is most deprived 10% of LSOAs)",
)
UNDER3_AGE_COLUMNS = ("F0", "F1", "F2", "M0", "M1", "M2")
WORKBOOK_SHEET = "Mid-2022 LSOA 2021"
WORKBOOK_HEADER_ROW = 4  # 1-based row of the column headings in the ONS workbook


@dataclass(frozen=True)
class Population:
    """LSOA population, and under-3s when the source has ages by LSOA."""

    table: pd.DataFrame  # lsoa21cd, population[, under3]
    file: Path

    @property
    def has_ages(self) -> bool:
        return "under3" in self.table.columns


def _pick_column(columns: pd.Index, candidates: tuple[str, ...], file: Path, what: str) -> str:
    for name in candidates:
        if name in columns:
            return name
    raise PlannerError(
        f"no {what} column (expected one of {', '.join(candidates)}; found {', '.join(map(str, columns[:8]))}…)",
        file=file,
        field=candidates[0],
        fix="check the file is the ONS release named in the README, or run `planner fetch` again",
    )


def _spreadsheet_row(position: int, header_row: int = 1) -> int:
    """The row number a user sees in a spreadsheet for a 0-based data position."""
    return position + header_row + 1


def _fail_at(
    mask: pd.Series | np.ndarray,
    message: str,
    file: Path,
    field: str,
    fix: str,
    values: pd.Series | None = None,
    header_row: int = 1,
) -> None:
    """Raise for the first row where `mask` holds, numbered as a spreadsheet shows it."""
    flags = np.asarray(mask, dtype=bool)
    if not flags.any():
        return
    pos = int(np.flatnonzero(flags)[0])
    raise PlannerError(
        message,
        file=file,
        row=_spreadsheet_row(pos, header_row),
        field=field,
        value=None if values is None else values.iat[pos],
        fix=fix,
    )


def _check_codes(codes: pd.Series, file: Path, field: str, header_row: int = 1) -> None:
    """Missing and duplicated codes are errors that point at the spreadsheet row."""
    missing = codes.isna() | (codes.astype(str).str.strip() == "")
    _fail_at(
        missing, "empty area code", file, field, "fill in or delete the row", header_row=header_row
    )
    duplicated = codes.duplicated(keep="first")
    if duplicated.any():
        pos = int(np.flatnonzero(duplicated.to_numpy())[0])
        first = int(np.flatnonzero((codes == codes.iat[pos]).to_numpy())[0])
        raise PlannerError(
            f"duplicated code (first seen on row {_spreadsheet_row(first, header_row)}; "
            f"{int(duplicated.sum())} duplicates in all)",
            file=file,
            row=_spreadsheet_row(pos, header_row),
            field=field,
            value=codes.iat[pos],
            fix="keep one row per area",
        )


def _numeric(frame: pd.DataFrame, column: str, file: Path, header_row: int = 1) -> pd.Series:
    values = pd.to_numeric(frame[column], errors="coerce")
    _fail_at(
        values.isna() | (values < 0),
        "not a non-negative number",
        file,
        column,
        "correct the value or download the file again",
        frame[column],
        header_row,
    )
    return values


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(
            path, dtype=str, encoding="utf-8-sig", keep_default_na=False, na_values=[""]
        )
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise PlannerError(
            f"cannot read as a UTF-8 CSV ({exc.__class__.__name__}: {str(exc).splitlines()[0]})",
            file=path,
            fix="save it as CSV UTF-8 or run `planner fetch` again",
        ) from exc


def read_boundaries(path: Path) -> gpd.GeoDataFrame:
    """LSOA polygons in EPSG:27700, valid and non-empty.

    A file that declares another CRS (ArcGIS GeoJSON is always EPSG:4326) is
    reprojected; a file with no CRS, or whose coordinates do not fall in
    England once projected (a wrong CRS label), is refused.
    """
    try:
        frame = gpd.read_file(path, engine="pyogrio")
    except Exception as exc:  # pyogrio raises several driver-specific errors
        raise PlannerError(
            f"cannot read boundaries ({exc})", file=path, fix="run `planner fetch` again"
        ) from exc
    code = _pick_column(frame.columns, ("LSOA21CD", "lsoa21cd"), path, "LSOA 2021 code")
    name = _pick_column(frame.columns, ("LSOA21NM", "lsoa21nm"), path, "LSOA 2021 name")
    if frame.crs is None:
        raise PlannerError(
            "the boundary file has no coordinate reference system",
            file=path,
            field="geometry",
            fix="set its CRS (EPSG:27700 for British National Grid) or download it again",
        )
    frame = frame.rename(columns={code: "lsoa21cd", name: "lsoa21nm"})[
        ["lsoa21cd", "lsoa21nm", "geometry"]
    ]
    _check_codes(frame["lsoa21cd"], path, "LSOA21CD", header_row=0)
    _check_geometry(frame, path)
    if frame.crs.to_epsg() != BNG:
        frame = frame.to_crs(BNG)
    xmin, ymin, xmax, ymax = frame.total_bounds
    lo_x, lo_y, hi_x, hi_y = ENGLAND_BOUNDS
    # Degrees mislabelled as metres still fall inside the box, but give polygons
    # of a fraction of a square metre; real LSOAs are thousands of m² at least.
    tiny = float(np.median(frame.geometry.area)) < MIN_MEDIAN_AREA_M2
    if tiny or not (xmin >= lo_x and ymin >= lo_y and xmax <= hi_x and ymax <= hi_y):
        raise PlannerError(
            f"coordinates ({xmin:.0f}, {ymin:.0f}) – ({xmax:.0f}, {ymax:.0f}) are not in England "
            f"for the declared CRS {frame.crs.to_string()}",
            file=path,
            field="geometry",
            fix="the CRS label is wrong: re-export the file with its true CRS (EPSG:27700 or EPSG:4326)",
        )
    frame["geometry"] = shapely.force_2d(frame.geometry.to_numpy())
    return frame


def _check_geometry(frame: gpd.GeoDataFrame, path: Path) -> None:
    geoms = frame.geometry.to_numpy()
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    polygonal = np.isin(shapely.get_type_id(geoms), [3, 6])  # Polygon, MultiPolygon
    invalid = ~shapely.is_valid(geoms)
    for problem, mask in (("empty geometry", empty), ("not a polygon", ~empty & ~polygonal)):
        if mask.any():
            pos = int(np.flatnonzero(mask)[0])
            raise PlannerError(
                problem,
                file=path,
                row=f"feature {pos + 1} ({frame['lsoa21cd'].iat[pos]})",
                field="geometry",
                fix="download the boundary file again",
            )
    if invalid.any():
        pos = int(np.flatnonzero(invalid)[0])
        reason = shapely.is_valid_reason(geoms[pos])
        raise PlannerError(
            f"invalid polygon: {reason}; {int(invalid.sum())} invalid in all",
            file=path,
            row=f"feature {pos + 1} ({frame['lsoa21cd'].iat[pos]})",
            field="geometry",
            fix="repair it (e.g. `ogr2ogr -makevalid`) or download the boundary file again",
        )


def read_lookup(path: Path) -> pd.DataFrame:
    """The LSOA → MSOA, LAD, Sub-ICB, ICB, NHS region lookup, one row per LSOA."""
    frame = _read_csv(path)
    missing = [c for c in LOOKUP_COLUMNS if c not in frame.columns]
    if missing:
        raise PlannerError(
            f"missing column {missing[0]}"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
            file=path,
            field=missing[0],
            fix="use the ONS LSOA 2021 → SICBL/ICB/NHSER 2024 lookup named in the README",
        )
    frame = frame[list(LOOKUP_COLUMNS)].rename(columns=LOOKUP_COLUMNS)
    _check_codes(frame["lsoa21cd"], path, "LSOA21CD")
    for column in frame.columns:
        _fail_at(
            frame[column].isna(), "empty value", path, column.upper(), "download the lookup again"
        )
    return frame


def read_population(path: Path) -> Population:
    """LSOA population from the Census CSV or the ONS mid-year single-year-of-age workbook."""
    header_row = 1
    if path.suffix.lower() in {".xlsx", ".xls"}:
        header_row = WORKBOOK_HEADER_ROW
        try:
            frame = pd.read_excel(
                path, sheet_name=WORKBOOK_SHEET, header=header_row - 1, dtype=object
            )
        except ValueError as exc:
            raise PlannerError(
                f"cannot read sheet '{WORKBOOK_SHEET}' ({exc})",
                file=path,
                fix="use the ONS workbook sapelsoasyoa20222024.xlsx",
            ) from exc
        frame = frame.dropna(how="all")
    else:
        frame = _read_csv(path)
    code = _pick_column(frame.columns, POPULATION_CODE_COLUMNS, path, "LSOA 2021 code")
    total = _pick_column(frame.columns, POPULATION_TOTAL_COLUMNS, path, "total population")
    frame = frame.reset_index(drop=True)
    codes = frame[code].astype("string").str.strip()
    _check_codes(codes, path, code, header_row)
    table = pd.DataFrame(
        {"lsoa21cd": codes, "population": _numeric(frame, total, path, header_row)}
    )
    if all(c in frame.columns for c in UNDER3_AGE_COLUMNS):
        ages = [_numeric(frame, c, path, header_row) for c in UNDER3_AGE_COLUMNS]
        table["under3"] = np.sum(ages, axis=0).astype(float)
    table["population"] = table["population"].round().astype(np.int64)
    table.attrs["header_row"] = header_row
    return Population(table=table, file=path)


def read_under3_msoa(path: Path) -> pd.DataFrame:
    """Census 2021 children aged 0–2 by MSOA (msoa21cd, under3_msoa)."""
    frame = _read_csv(path)
    code = _pick_column(frame.columns, ("MSOA21CD",), path, "MSOA 2021 code")
    _check_codes(frame[code], path, code)
    if "age_0_2" in frame.columns:
        counts = _numeric(frame, "age_0_2", path)
    else:
        for column in ("age_0", "age_1", "age_2"):
            _pick_column(frame.columns, (column,), path, f"children {column}")
        counts = sum(_numeric(frame, c, path) for c in ("age_0", "age_1", "age_2"))
    return pd.DataFrame({"msoa21cd": frame[code], "under3_msoa": counts.astype(float)})


def read_imd(path: Path) -> pd.DataFrame:
    """IMD 2025 decile by LSOA 2021 (1 = most deprived 10%)."""
    frame = _read_csv(path)
    code = _pick_column(frame.columns, IMD_CODE_COLUMNS, path, "LSOA 2021 code")
    decile = _pick_column(frame.columns, IMD_DECILE_COLUMNS, path, "IMD decile")
    _check_codes(frame[code], path, code)
    values = _numeric(frame, decile, path)
    _fail_at(
        ~values.between(1, 10),
        "IMD decile must be 1–10",
        path,
        decile,
        "use English Indices of Deprivation File 7",
        frame[decile],
    )
    return pd.DataFrame({"lsoa21cd": frame[code], "imd_decile": values.astype(np.int64)})


def _require_same_codes(
    reference: pd.Series, other: pd.Series, file: Path, field: str, header_row: int = 1
) -> None:
    """Every LSOA must be in every source: name the first unknown and the first missing code."""
    known = pd.Index(reference)
    unknown = ~other.isin(known)
    hint = ""
    if unknown.mean() > 0.01:
        hint = " — many codes differ, so this looks like another vintage (e.g. LSOA 2011)"
    _fail_at(
        unknown,
        f"{int(unknown.sum())} area codes are not LSOA 2021 codes in England{hint}",
        file,
        field,
        "use a file on LSOA 2021 geography for England",
        other,
        header_row,
    )
    absent = ~known.isin(pd.Index(other))
    if absent.any():
        first = known[np.flatnonzero(absent)[0]]
        raise PlannerError(
            f"{int(absent.sum())} LSOAs of the boundary file are missing here, e.g. {first}",
            file=file,
            field=field,
            value=first,
            fix="use the complete England file (33,755 LSOA 2021 rows)",
        )


def share_under3(
    lookup: pd.DataFrame, population: pd.DataFrame, under3_msoa: pd.DataFrame
) -> pd.Series:
    """Each MSOA's children aged 0–2 shared across its LSOAs in proportion to population."""
    frame = lookup[["lsoa21cd", "msoa21cd"]].merge(population, on="lsoa21cd", how="left")
    msoa_population = frame.groupby("msoa21cd")["population"].transform("sum")
    frame = frame.merge(under3_msoa, on="msoa21cd", how="left")
    weight = np.where(
        msoa_population > 0, frame["population"] / msoa_population.where(msoa_population > 0, 1), 0
    )
    return pd.Series(frame["under3_msoa"].to_numpy() * weight, index=frame["lsoa21cd"].to_numpy())


def assemble_areas(
    boundaries: gpd.GeoDataFrame,
    lookup: pd.DataFrame,
    population: Population,
    imd: pd.DataFrame,
    under3_msoa: pd.DataFrame | None,
    files: dict[str, Path],
    expected_rows: int | None = ENGLAND_LSOA21_COUNT,
) -> gpd.GeoDataFrame:
    """Join the sources on LSOA code after checking they describe the same areas."""
    codes = boundaries["lsoa21cd"]
    if expected_rows is not None and len(boundaries) != expected_rows:
        raise PlannerError(
            f"{len(boundaries):,} LSOAs, expected {expected_rows:,} for England",
            file=files["lsoa_boundaries"],
            fix="use the England and Wales LSOA 2021 file (Welsh W01 codes are dropped) or download it again",
        )
    _require_same_codes(codes, lookup["lsoa21cd"], files["lookup"], "LSOA21CD")
    _require_same_codes(
        codes,
        population.table["lsoa21cd"],
        files["population"],
        population.table.columns[0],
        population.table.attrs.get("header_row", 1),
    )
    _require_same_codes(codes, imd["lsoa21cd"], files["imd"], "LSOA21CD")

    table = lookup.merge(population.table, on="lsoa21cd").merge(imd, on="lsoa21cd")
    if not population.has_ages:
        if under3_msoa is None:
            raise PlannerError(
                "no children aged 0–2: the population file has no ages by LSOA and the MSOA file is absent",
                file=files["population"],
                fix="run `planner fetch` to get the Census 2021 TS007 MSOA file",
            )
        _require_same_codes(
            pd.Series(pd.unique(lookup["msoa21cd"])),
            under3_msoa["msoa21cd"],
            files["under3_msoa"],
            "MSOA21CD",
        )
        table["under3"] = (
            share_under3(lookup, population.table, under3_msoa)
            .reindex(table["lsoa21cd"])
            .to_numpy()
        )
    areas = boundaries.merge(table, on="lsoa21cd", how="inner", validate="one_to_one")
    areas = areas.sort_values("lsoa21cd", kind="stable").reset_index(drop=True)
    areas = areas[AREA_COLUMNS]
    text = [c for c in AREA_COLUMNS if c.endswith(("cd", "cdh", "nm"))]
    areas[text] = areas[text].astype("str")
    check_totals(areas, files["population"])
    return areas


def check_totals(areas: pd.DataFrame, population_file: Path) -> None:
    """Each level of geography must add up to the same England total."""
    england = int(areas["population"].sum())
    for level in ("lad24cd", "icb24cd", "nhser24cd"):
        total = int(areas.groupby(level)["population"].sum().sum())
        if total != england:
            raise PlannerError(
                f"{level} totals add up to {total:,}, not England's {england:,}",
                file=population_file,
                fix="download the lookup and population files again",
            )
    for child, parent in (("sicbl24cd", "icb24cd"), ("icb24cd", "nhser24cd")):
        parents = areas.groupby(child)[parent].nunique()
        if (parents > 1).any():
            raise PlannerError(
                f"{child} {parents.idxmax()} lies in more than one {parent}",
                field=child.upper(),
                fix="download the lookup again",
            )


def build_areas(
    raw_dir: Path, expected_rows: int | None = ENGLAND_LSOA21_COUNT
) -> gpd.GeoDataFrame:
    """Read every source from `raw_dir` (mirror layout or downloads) and assemble the areas table."""
    raw_dir = Path(raw_dir)
    files = {
        name: sources.locate(name, raw_dir) for name in ("lsoa_boundaries", "population", "imd")
    }
    files["lookup"] = sources.locate("lookup", raw_dir)
    population = read_population(files["population"])
    under3_msoa = None
    if not population.has_ages:
        files["under3_msoa"] = sources.locate("under3_msoa", raw_dir)
        under3_msoa = read_under3_msoa(files["under3_msoa"])
    return assemble_areas(
        read_boundaries(files["lsoa_boundaries"]),
        read_lookup(files["lookup"]),
        population,
        read_imd(files["imd"]),
        under3_msoa,
        files,
        expected_rows,
    )

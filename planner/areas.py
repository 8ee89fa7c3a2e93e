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

from planner import inputs, sources
from planner.errors import PlannerError
from planner.inputs import Table

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
UNDER3_AGE_COLUMNS = ("F0", "F1", "F2", "M0", "M1", "M2")


@dataclass(frozen=True)
class Population:
    """LSOA population, and under-3s when the source has ages by LSOA."""

    table: pd.DataFrame  # lsoa21cd, population[, under3]
    source: Table

    @property
    def file(self) -> Path:
        return self.source.file

    @property
    def has_ages(self) -> bool:
        return "under3" in self.table.columns


def _fail_at(
    mask: pd.Series,
    message: str,
    table: Table,
    field: str,
    fix: str,
    values: pd.Series | None = None,
) -> None:
    """Raise for the first row where `mask` holds, numbered as the user sees it in the file."""
    flags = mask.to_numpy(dtype=bool)
    if not flags.any():
        return
    pos = int(np.flatnonzero(flags)[0])
    raise PlannerError(
        message,
        file=table.file,
        row=table.row_number(mask.index[pos]),
        field=table.source_name(field),
        value=None if values is None else values.iat[pos],
        fix=fix,
    )


def _check_codes(codes: pd.Series, table: Table, field: str) -> None:
    """Missing and duplicated codes are errors that point at the file's row."""
    missing = codes.isna() | (codes.astype(str).str.strip() == "")
    _fail_at(missing, "empty area code", table, field, "fill in or delete the row")
    duplicated = codes.duplicated(keep="first")
    if duplicated.any():
        pos = int(np.flatnonzero(duplicated.to_numpy())[0])
        first = codes.index[int(np.flatnonzero((codes == codes.iat[pos]).to_numpy())[0])]
        raise PlannerError(
            f"duplicated code (first seen on row {table.row_number(first)}; "
            f"{int(duplicated.sum())} duplicates in all)",
            file=table.file,
            row=table.row_number(codes.index[pos]),
            field=table.source_name(field),
            value=codes.iat[pos],
            fix="keep one row per area",
        )


def _numeric(table: Table, column: str) -> pd.Series:
    raw = table.frame[column]
    values = pd.to_numeric(raw, errors="coerce")
    _fail_at(
        values.isna() | (values < 0),
        "not a non-negative number",
        table,
        column,
        "correct the value or download the file again",
        raw,
    )
    return values


def read_boundaries(path: Path) -> gpd.GeoDataFrame:
    """LSOA polygons in EPSG:27700, valid and non-empty, England only.

    A file that declares another CRS (ArcGIS GeoJSON is always EPSG:4326) is
    reprojected; a file with no CRS, or whose coordinates do not fall in
    England once projected (a wrong CRS label), is refused.
    """
    table = inputs.read_file(sources.get("lsoa_boundaries"), path)
    frame = table.frame
    if frame.crs is None:
        raise PlannerError(
            "the boundary file has no coordinate reference system",
            file=path,
            field="geometry",
            fix="set its CRS (EPSG:27700 for British National Grid) or download it again",
        )
    frame = frame.rename(columns={"LSOA21CD": "lsoa21cd", "LSOA21NM": "lsoa21nm"})
    _check_codes(frame["lsoa21cd"], table, "LSOA21CD")
    _check_geometry(frame, path)
    frame = frame.reset_index(drop=True)
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
                row=f"feature {frame.index[pos] + 1} ({frame['lsoa21cd'].iat[pos]})",
                field="geometry",
                fix="download the boundary file again",
            )
    if invalid.any():
        pos = int(np.flatnonzero(invalid)[0])
        reason = shapely.is_valid_reason(geoms[pos])
        raise PlannerError(
            f"invalid polygon: {reason}; {int(invalid.sum())} invalid in all",
            file=path,
            row=f"feature {frame.index[pos] + 1} ({frame['lsoa21cd'].iat[pos]})",
            field="geometry",
            fix="repair it (e.g. `ogr2ogr -makevalid`) or download the boundary file again",
        )


def read_lookup(path: Path) -> tuple[pd.DataFrame, Table]:
    """The LSOA → MSOA, LAD, Sub-ICB, ICB, NHS region lookup, one row per LSOA."""
    table = inputs.read_file(sources.get("lookup"), path)
    frame = table.frame[list(LOOKUP_COLUMNS)].rename(columns=LOOKUP_COLUMNS)
    _check_codes(frame["lsoa21cd"], table, "LSOA21CD")
    for column in frame.columns:
        _fail_at(
            frame[column].isna(), "empty value", table, column.upper(), "download the lookup again"
        )
    return frame, table


def read_population(path: Path) -> Population:
    """LSOA population from the Census CSV or the ONS mid-year single-year-of-age workbook."""
    table = inputs.read_file(sources.get("population"), path)
    codes = table.frame["LSOA21CD"].astype("string").str.strip()
    _check_codes(codes, table, "LSOA21CD")
    frame = pd.DataFrame({"lsoa21cd": codes, "population": _numeric(table, "population")})
    if all(c in table.frame.columns for c in UNDER3_AGE_COLUMNS):
        ages = [_numeric(table, c) for c in UNDER3_AGE_COLUMNS]
        frame["under3"] = np.sum(ages, axis=0).astype(float)
    frame["population"] = frame["population"].round().astype(np.int64)
    return Population(table=frame, source=table)


def read_under3_msoa(path: Path) -> tuple[pd.DataFrame, Table]:
    """Census 2021 children aged 0–2 by MSOA (msoa21cd, under3_msoa)."""
    table = inputs.read_file(sources.get("under3_msoa"), path)
    _check_codes(table.frame["MSOA21CD"], table, "MSOA21CD")
    counts = _numeric(table, "age_0_2")
    frame = pd.DataFrame({"msoa21cd": table.frame["MSOA21CD"], "under3_msoa": counts.astype(float)})
    return frame, table


def read_imd(path: Path) -> tuple[pd.DataFrame, Table]:
    """IMD 2025 decile by LSOA 2021 (1 = most deprived 10%)."""
    table = inputs.read_file(sources.get("imd"), path)
    _check_codes(table.frame["LSOA21CD"], table, "LSOA21CD")
    values = _numeric(table, "IMD_decile")
    _fail_at(
        ~values.between(1, 10),
        "IMD decile must be 1–10",
        table,
        "IMD_decile",
        "use English Indices of Deprivation File 7",
        table.frame["IMD_decile"],
    )
    frame = pd.DataFrame(
        {"lsoa21cd": table.frame["LSOA21CD"], "imd_decile": values.astype(np.int64)}
    )
    return frame, table


def _require_same_codes(reference: pd.Series, other: pd.Series, table: Table, field: str) -> None:
    """Every LSOA must be in every source: name the first unknown and the first missing code.

    Other countries' rows were dropped when the file was read, so an unknown
    English code here means another vintage, and a shortfall with many rows of
    another country means a file for the wrong country.
    """
    known = pd.Index(reference)
    unknown = ~other.isin(known)
    hint = ""
    if unknown.mean() > 0.01:
        hint = " — many codes differ, so this looks like another vintage (e.g. LSOA 2011)"
    _fail_at(
        unknown,
        f"{int(unknown.sum())} area codes are not LSOA 2021 codes in England{hint}",
        table,
        field,
        "use a file on LSOA 2021 geography for England",
        other,
    )
    absent = ~known.isin(pd.Index(other))
    if absent.any():
        first = known[np.flatnonzero(absent)[0]]
        country = ""
        if sum(table.dropped.values()) > len(other):
            shown = ", ".join(f"{n:,} {c}" for c, n in sorted(table.dropped.items()))
            country = f" (it holds more rows of another country: {shown}, dropped)"
        raise PlannerError(
            f"{int(absent.sum())} LSOAs of the boundary file are missing here, e.g. {first}"
            + country,
            file=table.file,
            field=table.source_name(field),
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
    read: dict[str, Table],
    boundaries_file: Path,
    expected_rows: int | None = ENGLAND_LSOA21_COUNT,
) -> gpd.GeoDataFrame:
    """Join the sources on LSOA code after checking they describe the same areas.

    `read` maps dataset name → the Table each frame came from (file, row numbers,
    rows dropped by country), so errors name the file and row.
    """
    codes = boundaries["lsoa21cd"]
    if expected_rows is not None and len(boundaries) != expected_rows:
        raise PlannerError(
            f"{len(boundaries):,} English LSOAs, expected {expected_rows:,}",
            file=boundaries_file,
            fix="use the complete LSOA 2021 boundary file for England (or England and Wales) "
            "or download it again",
        )
    _require_same_codes(codes, lookup["lsoa21cd"], read["lookup"], "LSOA21CD")
    _require_same_codes(codes, population.table["lsoa21cd"], population.source, "LSOA21CD")
    _require_same_codes(codes, imd["lsoa21cd"], read["imd"], "LSOA21CD")

    table = lookup.merge(population.table, on="lsoa21cd").merge(imd, on="lsoa21cd")
    if not population.has_ages:
        if under3_msoa is None:
            raise PlannerError(
                "no children aged 0–2: the population file has no ages by LSOA and the MSOA file is absent",
                file=population.file,
                fix="run `planner fetch` to get the Census 2021 TS007 MSOA file",
            )
        _require_same_codes(
            pd.Series(pd.unique(lookup["msoa21cd"])),
            under3_msoa["msoa21cd"],
            read["under3_msoa"],
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
    check_totals(areas, population.file)
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
    boundaries_file = sources.locate("lsoa_boundaries", raw_dir)
    population = read_population(sources.locate("population", raw_dir))
    lookup, lookup_read = read_lookup(sources.locate("lookup", raw_dir))
    imd, imd_read = read_imd(sources.locate("imd", raw_dir))
    read = {"lookup": lookup_read, "imd": imd_read}
    under3_msoa = None
    if not population.has_ages:
        under3_msoa, read["under3_msoa"] = read_under3_msoa(sources.locate("under3_msoa", raw_dir))
    return assemble_areas(
        read_boundaries(boundaries_file),
        lookup,
        population,
        imd,
        under3_msoa,
        read,
        boundaries_file,
        expected_rows,
    )

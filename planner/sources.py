"""Registry of every input dataset: where it lives in the offline mirror and online.

Each dataset has one canonical file in the mirror layout (`mirror_path`, relative
to the mirror root and, after `planner fetch --mirror`, to the raw directory) and
zero or more online parts (ArcGIS FeatureServer services or plain files) that a
user with internet downloads instead. This module is the one description of
each input: its columns, how they are renamed for the readers, the workbook
sheet and header row, the area-code column and the vintage. Readers call
`planner.inputs.read_table`, which finds the file, reads it as described, checks its columns
(the one missing-column check), renames them and keeps England's rows, logging
what it dropped by country. A missing or wrongly shaped input fails with one
line that names the file and the fix, instead of a KeyError deep inside a stage.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

from planner.errors import PlannerError

ARCGIS_BASE = "https://services1.arcgis.com/ESMARspQHYMw9BZ9/arcgis/rest/services"
SOURCES_FILE = "planner/sources.py"

OGL = (
    "Contains public sector information licensed under the Open Government Licence v3.0. "
    "Contains OS data © Crown copyright and database right."
)

FETCH_FIX = "run `planner fetch` (or `planner fetch --mirror <dir>` without internet)"
FORCE_FIX = (
    "run `planner fetch --force` to replace it (or `planner fetch --mirror <dir>` without internet)"
)

PartKind = Literal["layer", "table", "file"]
# plan: read by every plan; derivation: downloaded only when a derivation needs it;
# reference: fetched only on request (`fetch --only`); example: mirror-only sample input.
Purpose = Literal["plan", "derivation", "reference", "example"]

# ONS/GSS codes start with a letter for the country; the planner covers England only.
COUNTRIES = {"E": "English", "W": "Welsh", "S": "Scottish", "N": "Northern Irish"}
OTHER_COUNTRY_CODE = re.compile(r"^[WSN]\d{8}$")


@dataclass(frozen=True)
class Layout:
    """How one file is laid out: what a reader needs to read it and name its columns.

    `columns` are the file's own names (matched ignoring case, as ArcGIS services
    differ); `rename` maps them to the names readers use; `code_column` (a
    reader's name) holds the area code whose first letter gives the country;
    `sheet` and `header_row` (1-based) locate the table in a workbook.
    """

    columns: tuple[str, ...]
    rename: tuple[tuple[str, str], ...] = ()
    code_column: str | None = None
    sheet: str | None = None
    header_row: int = 1
    layer: str | None = None

    def renamed(self, column: str) -> str:
        return dict(self.rename).get(column, column)


@dataclass(frozen=True)
class OnlinePart:
    """One file a user downloads: an ArcGIS layer/table service or a plain URL.

    `kind` decides the download: "layer" → paged f=geojson (EPSG:4326) written as
    GeoJSON; "table" → paged f=json attributes written as CSV; "file" → streamed
    as is from `url`. `columns` are the source's own names (an ArcGIS download is
    written with exactly these spellings); `rename` maps them to the readers'
    names. ArcGIS downloads keep only England's rows (by `code_column`, a
    source name); plain files are kept as published and filtered when read.
    `expected_sha256`/`expected_size` record the published file where known:
    a file that differs is a revision, reported as a warning.
    """

    name: str
    download_path: str
    kind: PartKind
    service: str | None = None
    url: str | None = None
    columns: tuple[str, ...] = ()
    rename: tuple[tuple[str, str], ...] = ()
    code_column: str | None = None
    sheet: str | None = None
    header_row: int = 1  # 1-based row of the header in a workbook sheet
    expected_sha256: str | None = None
    expected_size: int | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind == "file" and not self.url:
            raise ValueError(f"online part {self.name}: kind 'file' needs a url")
        if self.kind != "file" and not self.service:
            raise ValueError(f"online part {self.name}: kind {self.kind!r} needs a service")

    @property
    def format(self) -> str:
        """File format of the downloaded file, from its extension."""
        return PurePosixPath(self.download_path).suffix.lstrip(".")

    @property
    def layout(self) -> Layout:
        code = self.renamed(self.code_column) if self.code_column else None
        return Layout(self.columns, self.rename, code, self.sheet, self.header_row)

    def layer_url(self, base_url: str = ARCGIS_BASE) -> str:
        """The FeatureServer layer endpoint (its `?f=json` gives the object-id field)."""
        return f"{base_url.rstrip('/')}/{self.service}/FeatureServer/0"

    def query_url(self, base_url: str = ARCGIS_BASE) -> str:
        """The FeatureServer query endpoint for ArcGIS parts."""
        return f"{self.layer_url(base_url)}/query"

    def source(self, base_url: str = ARCGIS_BASE) -> str:
        """Where this part comes from, for messages and manifest records."""
        if self.kind == "file":
            return str(self.url)
        return self.query_url(base_url)

    def renamed(self, column: str) -> str:
        return dict(self.rename).get(column, column)


@dataclass(frozen=True)
class Dataset:
    """An input dataset: one mirror-layout file, or its online part(s).

    `columns`, `rename`, `code_column` and `layer` describe the mirror-layout
    file. When a dataset has several online parts (the lookup), `planner fetch`
    assembles them into the mirror layout, so readers only ever see one file
    per dataset.
    """

    name: str
    description: str
    vintage: str
    mirror_path: str
    format: Literal["gpkg", "csv"]
    columns: tuple[str, ...]
    required: bool = True
    layer: str | None = None
    online: tuple[OnlinePart, ...] = ()
    licence: str = OGL
    note: str = ""
    assembled_online: bool = field(default=False)
    rename: tuple[tuple[str, str], ...] = ()
    code_column: str | None = None
    purpose: Purpose = "plan"

    @property
    def download_path(self) -> str | None:
        """Download location of a single-part dataset (None when 0 or several parts)."""
        return self.online[0].download_path if len(self.online) == 1 else None

    @property
    def layout(self) -> Layout:
        return Layout(self.columns, self.rename, self.code_column, layer=self.layer)

    def part(self, name: str) -> OnlinePart:
        for part in self.online:
            if part.name == name:
                return part
        raise KeyError(name)

    def entry(self, part: OnlinePart | None = None) -> str:
        """Where to edit this input's description, for messages."""
        where = f"{SOURCES_FILE}, dataset '{self.name}'"
        return where + (f", part '{part.name}'" if part is not None else "")


def _pairs(**kw: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(kw.items()))


_SAPE_URL = (
    # ONS's published location of "Lower layer Super Output Area population estimates"
    # (mid-2022 revised Nov 2025 to mid-2024, LSOA 2021, single year of age). ONS moves
    # these files when it revises them; if this 404s, take the current link from the
    # dataset page .../populationestimates/datasets/lowersuperoutputareamidyearpopulationestimates
    "https://www.ons.gov.uk/file?uri=/peoplepopulationandcommunity/populationandmigration/"
    "populationestimates/datasets/lowersuperoutputareamidyearpopulationestimates/"
    "mid2022revisednov2025tomid2024/sapelsoasyoa20222024.xlsx"
)

_IMD_URL = (
    # MHCLG, English Indices of Deprivation 2025, File 7 (gov.uk asset link).
    "https://assets.publishing.service.gov.uk/media/691ded56d140bbbaa59a2a7d/"
    "File_7_IoD2025_All_Ranks_Scores_Deciles_Population_Denominators.csv"
)
IMD_ONLINE_DECILE = (
    "Index of Multiple Deprivation (IMD) Decile (where 1 is most deprived 10% of LSOAs)"
)

SAPE_AGES = tuple(f"{sex}{age}" for sex in ("F", "M") for age in range(91))

LOOKUP_COLUMNS = (
    "LSOA21CD",
    "LSOA21NM",
    "MSOA21CD",
    "MSOA21NM",
    "WD24CD",
    "WD24NM",
    "LAD24CD",
    "LAD24NM",
    "RGN24CD",
    "RGN24NM",
    "SICBL24CD",
    "SICBL24CDH",
    "SICBL24NM",
    "ICB24CD",
    "ICB24CDH",
    "ICB24NM",
    "NHSER24CD",
    "NHSER24NM",
)


def _boundaries(
    name: str,
    description: str,
    vintage: str,
    layer: str,
    service: str,
    download_note: str = "",
    purpose: Purpose = "plan",
) -> Dataset:
    """An ONS boundary layer: mirror GeoPackage `boundaries/<layer>_bsc_england.gpkg`, online GeoJSON.

    `layer` is also the ONS code prefix (lsoa21 → LSOA21CD, LSOA21NM).
    """
    columns = (f"{layer.upper()}CD", f"{layer.upper()}NM")
    return Dataset(
        name=name,
        description=description,
        vintage=vintage,
        mirror_path=f"boundaries/{layer}_bsc_england.gpkg",
        format="gpkg",
        layer=layer,
        columns=columns,
        code_column=columns[0],
        purpose=purpose,
        online=(
            OnlinePart(
                name=name,
                download_path=f"ons/{layer}_bsc.geojson",
                kind="layer",
                service=service,
                columns=columns,
                code_column=columns[0],
                description=download_note,
            ),
        ),
    )


_DATASETS: tuple[Dataset, ...] = (
    _boundaries(
        "lsoa_boundaries",
        "LSOA 2021 boundaries, England, super generalised (BSC), 33,755 areas",
        "December 2021",
        "lsoa21",
        "Lower_layer_Super_Output_Areas_December_2021_Boundaries_EW_BSC_V4",
        "England and Wales (35,672), EPSG:4326; England's 33,755 kept",
    ),
    Dataset(
        name="lookup",
        description=(
            "LSOA 2021 → MSOA 2021 → ward 2024 → LAD 2024 → region 2024, "
            "and → Sub-ICB location → ICB → NHS England region (April 2024)"
        ),
        vintage="April 2024",
        mirror_path="lookups/lsoa21_msoa21_wd24_lad24_rgn24_sicbl24_icb24_nhser24_england.csv",
        format="csv",
        columns=LOOKUP_COLUMNS,
        code_column="LSOA21CD",
        assembled_online=True,
        note="Online, fetch joins the parts on their codes into the mirror layout.",
        online=(
            OnlinePart(
                name="lookup_lsoa_icb",
                download_path="ons/lsoa21_sicbl24_icb24_cal24_lad24_en_lu.csv",
                kind="table",
                service="LSOA21_SICBL24_ICB24_CAL24_LAD24_EN_LU",
                columns=(
                    "LSOA21CD",
                    "LSOA21NM",
                    "SICBL24CD",
                    "SICBL24CDH",
                    "SICBL24NM",
                    "ICB24CD",
                    "ICB24CDH",
                    "ICB24NM",
                ),
                code_column="LSOA21CD",
            ),
            OnlinePart(
                name="lookup_lsoa_ward_lad",
                download_path="ons/lsoa21_wd24_lad24_ew_lu.csv",
                kind="table",
                service="LSOA21_WD24_LAD24_EW_LU",
                columns=("LSOA21CD", "WD24CD", "WD24NM", "LAD24CD", "LAD24NM"),
                code_column="LSOA21CD",
                description="best-fit lookup (ward/LAD holding most of the LSOA's population); "
                "England and Wales",
            ),
            OnlinePart(
                name="lookup_lsoa_msoa",
                download_path="ons/oa_lsoa_msoa_ew_dec_2021_lu.csv",
                kind="table",
                service="OA_LSOA_MSOA_EW_DEC_2021_LU_v3",
                columns=("LSOA21CD", "MSOA21CD", "MSOA21NM"),
                code_column="LSOA21CD",
                description="one row per Output Area (England and Wales); LSOA→MSOA is the "
                "distinct pairs",
            ),
            OnlinePart(
                name="lookup_lad_rgn",
                download_path="ons/lad24_rgn24_en_lu.csv",
                kind="table",
                service="LAD24_RGN24_EN_LU",
                columns=("LAD24CD", "RGN24CD", "RGN24NM"),
                code_column="LAD24CD",
            ),
            OnlinePart(
                # The April 2024 SICBL→ICB→NHSER service name is not confirmed by any public
                # source; the April 2023 one is queried by public code. ICB April 2023 codes
                # equal April 2024's (42, checked in the mirror). When this service fails or
                # misses an ICB, fetch derives each ICB's region spatially from the NHS
                # region boundaries ('nhser_boundaries'), as the mirror was built.
                name="lookup_icb_nhser",
                download_path="ons/sicbl23_icb23_nhser23_en_lu.csv",
                kind="table",
                service="SICBL23_ICB23_NHSER23_EN_LU",
                columns=("ICB23CD", "NHSER23CD", "NHSER23NM"),
                rename=_pairs(ICB23CD="ICB24CD", NHSER23CD="NHSER24CD", NHSER23NM="NHSER24NM"),
                code_column="ICB23CD",
                description="ICB → NHS England region (April 2023 = 2024 codes); "
                "fallback: derived spatially from nhser_boundaries",
            ),
        ),
    ),
    Dataset(
        name="population",
        description=(
            "Population by LSOA 2021. Mirror: Census 2021 TS001 usual residents (no ages). "
            "Online: ONS mid-2022 estimates by single year of age (F0…F90, M0…M90)."
        ),
        vintage="Census 2021 (mirror) / mid-2022 (online)",
        mirror_path="population/census2021_ts001_usual_residents_lsoa21_england.csv",
        format="csv",
        columns=("LSOA21CD", "usual_residents_total"),
        rename=_pairs(usual_residents_total="population"),
        code_column="LSOA21CD",
        online=(
            OnlinePart(
                name="population",
                download_path="ons/sapelsoasyoa20222024.xlsx",
                kind="file",
                url=_SAPE_URL,
                sheet="Mid-2022 LSOA 2021",
                header_row=4,
                columns=("LSOA 2021 Code", "Total", *SAPE_AGES),
                rename=_pairs(**{"LSOA 2021 Code": "LSOA21CD", "Total": "population"}),
                code_column="LSOA 2021 Code",
                description="England and Wales; England's rows are kept when read",
            ),
        ),
    ),
    Dataset(
        name="under3_msoa",
        description="Census 2021 TS007 usual residents aged 0, 1, 2 by MSOA 2021",
        vintage="Census 2021",
        mirror_path="population/census2021_ts007_age_0_to_4_by_single_year_msoa21_england.csv",
        format="csv",
        columns=("MSOA21CD", "age_0_2"),
        code_column="MSOA21CD",
        required=False,
        note=(
            "Needed only with the Census population (no ages by LSOA); the online "
            "mid-year workbook gives ages 0, 1, 2 by LSOA directly."
        ),
    ),
    Dataset(
        name="imd",
        description="English Indices of Deprivation 2025, IMD decile by LSOA 2021 (1 = most deprived)",
        vintage="2025",
        mirror_path="deprivation/imd2025_lsoa21_england.csv",
        format="csv",
        columns=("LSOA21CD", "IMD_decile"),
        code_column="LSOA21CD",
        online=(
            OnlinePart(
                name="imd",
                download_path="mhclg/File_7_IoD2025_All_Ranks_Scores_Deciles_Population_Denominators.csv",
                kind="file",
                url=_IMD_URL,
                columns=("LSOA code (2021)", IMD_ONLINE_DECILE),
                rename=_pairs(**{"LSOA code (2021)": "LSOA21CD", IMD_ONLINE_DECILE: "IMD_decile"}),
                code_column="LSOA code (2021)",
            ),
        ),
    ),
    _boundaries(
        "icb_boundaries",
        "Integrated Care Boards (April 2023 = 2024 codes), super generalised, 42 areas",
        "April 2023",
        "icb23",
        "Integrated_Care_Boards_April_2023_EN_BSC",
        purpose="reference",
    ),
    _boundaries(
        "lad_boundaries",
        "Local Authority Districts (May 2024), super generalised",
        "May 2024",
        "lad24",
        "Local_Authority_Districts_May_2024_Boundaries_UK_BSC",
        "UK; England's rows kept",
        purpose="reference",
    ),
    _boundaries(
        "nhser_boundaries",
        "NHS England Regions (January 2024), super generalised, 7 regions",
        "January 2024",
        "nhser24",
        "NHS_England_Regions_January_2024_EN_BSC",
        purpose="derivation",
    ),
    Dataset(
        name="readiness_example",
        description="Example readiness input (2019 public reports); users supply their own",
        vintage="2019",
        mirror_path="readiness/known_services_2019.csv",
        format="csv",
        columns=("area_code", "readiness", "note"),
        required=False,
        purpose="example",
        licence="Compiled from public web pages listed in its `source` column",
    ),
)

DATASETS: dict[str, Dataset] = {d.name: d for d in _DATASETS}
PLAN_INPUTS = tuple(d.name for d in _DATASETS if d.purpose == "plan")


def get(name: str, datasets: dict[str, Dataset] | None = None) -> Dataset:
    """The dataset called `name`, or a PlannerError listing the known names."""
    registry = DATASETS if datasets is None else datasets
    try:
        return registry[name]
    except KeyError:
        raise PlannerError(
            f"unknown dataset {name!r}",
            value=name,
            fix=f"use one of: {', '.join(sorted(registry))}",
        ) from None


def candidates(dataset: Dataset, raw_dir: Path) -> list[Path]:
    """Files that can stand for `dataset` in raw_dir, most preferred first."""
    paths = [raw_dir / dataset.mirror_path]
    if dataset.download_path and not dataset.assembled_online:
        paths.append(raw_dir / dataset.download_path)
    return paths


def locate(name: str, raw_dir: Path, datasets: dict[str, Dataset] | None = None) -> Path:
    """Path of the dataset's file in raw_dir: the mirror layout, else its online download.

    Readers tell the two layouts apart by suffix (.gpkg/.csv mirror vs .geojson/.xlsx/
    File 7 CSV online; see `columns_for`).
    """
    dataset = get(name, datasets)
    raw_dir = Path(raw_dir)
    found = [p for p in candidates(dataset, raw_dir) if p.is_file()]
    if found:
        return found[0]
    looked = ", ".join(str(p) for p in candidates(dataset, raw_dir))
    raise PlannerError(
        f"input dataset '{name}' ({dataset.description}) is missing; looked for {looked}",
        file=raw_dir / dataset.mirror_path,
        fix=FETCH_FIX,
    )


def layout_for(dataset: Dataset, file: str | Path) -> Layout:
    """How `file` is laid out: the online part's layout if it is a download, else the mirror's.

    Files are told apart by name, so a download kept elsewhere still reads as one.
    """
    for part in dataset.online:
        if Path(file).name == PurePosixPath(part.download_path).name:
            return part.layout
    return dataset.layout


def columns_for(dataset: Dataset, file: str | Path) -> tuple[str, ...]:
    """Expected columns of `file`: the online part's own names if it is a download."""
    return layout_for(dataset, file).columns


def check_columns(
    df: object,
    dataset: str | Dataset | OnlinePart,
    file: str | Path,
    *,
    fix: str | None = None,
) -> dict[str, str]:
    """Match the expected columns (ignoring case); map each present name to its registered one.

    The one missing-column check: a PlannerError naming `file`, the first
    missing column, what was found, and `fix` (default: fetch the file again).
    """
    if isinstance(dataset, str):
        dataset = get(dataset)
    expected = dataset.columns if isinstance(dataset, OnlinePart) else columns_for(dataset, file)
    present = _column_names(df)
    by_fold: dict[str, str] = {}
    for name in present:
        by_fold.setdefault(name.casefold(), name)
    matched = {by_fold[c.casefold()]: c for c in expected if c.casefold() in by_fold}
    missing = [c for c in expected if c.casefold() not in by_fold]
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""
        )
        hint = other_vintage(missing, present)
        if hint and isinstance(dataset, Dataset):
            hint += f" (expected: {dataset.vintage})"
        raise PlannerError(
            f"dataset '{dataset.name}' lacks expected column(s) {shown}; "
            f"found {', '.join(list(present)[:12])}{hint}",
            file=file,
            field=missing[0],
            fix=fix or "the file is not the expected product or version: " + FORCE_FIX,
        )
    return matched


CODE_COLUMN = re.compile(r"^([A-Za-z]+?)(\d{2})(CDH?|NM)$")


def other_vintage(missing: Iterable[str], present: Iterable[str]) -> str:
    """' — LSOA11CD is another vintage of LSOA21CD' when a column differs only by its year."""
    present = list(present)
    for column in missing:
        want = CODE_COLUMN.match(column)
        if not want:
            continue
        for name in present:
            have = CODE_COLUMN.match(name)
            if (
                have
                and have.group(1).casefold() == want.group(1).casefold()
                and have.group(3).casefold() == want.group(3).casefold()
                and have.group(2) != want.group(2)
            ):
                return f" — {name} is another vintage of {column}: this is another vintage's file"
    return ""


def other_countries(codes: Iterable[object]) -> dict[str, int]:
    """Count the codes of Wales, Scotland and Northern Ireland, by country adjective."""
    counts: dict[str, int] = {}
    for code in codes:
        text = str(code).strip()
        if OTHER_COUNTRY_CODE.match(text):
            country = COUNTRIES[text[0]]
            counts[country] = counts.get(country, 0) + 1
    return counts


def describe_dropped(total: int, dropped: dict[str, int]) -> str:
    """ "35,672 rows; 1,917 Welsh rows dropped" (the log line for an England filter)."""
    parts = [f"{n:,} {country} rows" for country, n in sorted(dropped.items())]
    return f"{total:,} rows; " + (", ".join(parts) + " dropped" if parts else "none dropped")


def _column_names(df: object) -> list[str]:
    columns = getattr(df, "columns", df)
    if not isinstance(columns, Iterable):
        raise TypeError(f"cannot read column names from {type(df).__name__}")
    return [str(c) for c in columns]

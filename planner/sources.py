"""Registry of every input dataset: where it lives in the offline mirror and online.

Each dataset has one canonical file in the mirror layout (`mirror_path`, relative
to the mirror root and, after `planner fetch --mirror`, to the raw directory) and
zero or more online parts (ArcGIS FeatureServer services or plain files) that a
user with internet downloads instead. Readers call `locate` and then
`check_columns`, so a missing or wrongly shaped input fails with one line that
names the file and the fix, instead of a KeyError deep inside a stage.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

from planner.errors import PlannerError

ARCGIS_BASE = "https://services1.arcgis.com/ESMARspQHYMw9BZ9/arcgis/rest/services"

OGL = (
    "Contains public sector information licensed under the Open Government Licence v3.0. "
    "Contains OS data © Crown copyright and database right."
)

FETCH_FIX = "run `planner fetch` (or `planner fetch --mirror <dir>` without internet)"

PartKind = Literal["layer", "table", "file"]


@dataclass(frozen=True)
class OnlinePart:
    """One file a user downloads: an ArcGIS layer/table service or a plain URL.

    `kind` decides the download: "layer" → paged f=geojson (EPSG:4326) written as
    GeoJSON; "table" → paged f=json attributes written as CSV; "file" → streamed
    as is from `url`. `columns` are the source's own names; `rename` maps them to
    the mirror's names so readers can normalise either layout.
    """

    name: str
    download_path: str
    kind: PartKind
    service: str | None = None
    url: str | None = None
    columns: tuple[str, ...] = ()
    rename: tuple[tuple[str, str], ...] = ()
    sheet: str | None = None
    header_row: int | None = None  # 1-based row of the header in a workbook sheet
    expected_sha256: str | None = None
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

    `columns` and `layer` describe the mirror-layout file. When a dataset has
    several online parts (the lookup), `planner fetch` assembles them into the
    mirror layout, so readers only ever see one file per dataset.
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

    @property
    def download_path(self) -> str | None:
        """Download location of a single-part dataset (None when 0 or several parts)."""
        return self.online[0].download_path if len(self.online) == 1 else None

    def part(self, name: str) -> OnlinePart:
        for part in self.online:
            if part.name == name:
                return part
        raise KeyError(name)


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
        online=(
            OnlinePart(
                name=name,
                download_path=f"ons/{layer}_bsc.geojson",
                kind="layer",
                service=service,
                columns=columns,
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
        "England and Wales, EPSG:4326; keep codes starting E",
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
            ),
            OnlinePart(
                name="lookup_lsoa_ward_lad",
                download_path="ons/lsoa21_wd24_lad24_ew_lu.csv",
                kind="table",
                service="LSOA21_WD24_LAD24_EW_LU",
                columns=("LSOA21CD", "WD24CD", "WD24NM", "LAD24CD", "LAD24NM"),
                description="best-fit lookup (ward/LAD holding most of the LSOA's population)",
            ),
            OnlinePart(
                name="lookup_lsoa_msoa",
                download_path="ons/oa_lsoa_msoa_ew_dec_2021_lu.csv",
                kind="table",
                service="OA_LSOA_MSOA_EW_DEC_2021_LU_v3",
                columns=("LSOA21CD", "MSOA21CD", "MSOA21NM"),
                description="one row per Output Area; LSOA→MSOA is the distinct pairs",
            ),
            OnlinePart(
                name="lookup_lad_rgn",
                download_path="ons/lad24_rgn24_en_lu.csv",
                kind="table",
                service="LAD24_RGN24_EN_LU",
                columns=("LAD24CD", "RGN24CD", "RGN24NM"),
            ),
            OnlinePart(
                name="lookup_icb_nhser",
                download_path="ons/sicbl24_icb24_nhser24_en_lu.csv",
                kind="table",
                service="SICBL24_ICB24_NHSER24_EN_LU",
                columns=("SICBL24CD", "ICB24CD", "NHSER24CD", "NHSER24NM"),
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
        online=(
            OnlinePart(
                name="population",
                download_path="ons/sapelsoasyoa20222024.xlsx",
                kind="file",
                url=_SAPE_URL,
                sheet="Mid-2022 LSOA 2021",
                header_row=4,
                columns=("LSOA 2021 Code", "Total", *SAPE_AGES),
                rename=_pairs(**{"LSOA 2021 Code": "LSOA21CD"}),
                description="England and Wales; keep codes starting E",
            ),
        ),
    ),
    Dataset(
        name="under3_msoa",
        description="Census 2021 TS007 usual residents aged 0, 1, 2 by MSOA 2021",
        vintage="Census 2021",
        mirror_path="population/census2021_ts007_age_0_to_4_by_single_year_msoa21_england.csv",
        format="csv",
        columns=("MSOA21CD", "age_0", "age_1", "age_2", "age_0_2"),
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
        online=(
            OnlinePart(
                name="imd",
                download_path="mhclg/File_7_IoD2025_All_Ranks_Scores_Deciles_Population_Denominators.csv",
                kind="file",
                url=_IMD_URL,
                columns=("LSOA code (2021)", IMD_ONLINE_DECILE),
                rename=_pairs(**{"LSOA code (2021)": "LSOA21CD", IMD_ONLINE_DECILE: "IMD_decile"}),
            ),
        ),
    ),
    _boundaries(
        "icb_boundaries",
        "Integrated Care Boards (April 2023 = 2024 codes), super generalised, 42 areas",
        "April 2023",
        "icb23",
        "Integrated_Care_Boards_April_2023_EN_BSC",
    ),
    _boundaries(
        "lad_boundaries",
        "Local Authority Districts (May 2024), super generalised",
        "May 2024",
        "lad24",
        "Local_Authority_Districts_May_2024_Boundaries_UK_BSC",
        "UK; keep codes starting E",
    ),
    _boundaries(
        "nhser_boundaries",
        "NHS England Regions (January 2024), super generalised, 7 regions",
        "January 2024",
        "nhser24",
        "NHS_England_Regions_January_2024_EN_BSC",
    ),
    Dataset(
        name="readiness_example",
        description="Example readiness input (2019 public reports); users supply their own",
        vintage="2019",
        mirror_path="readiness/known_services_2019.csv",
        format="csv",
        columns=("area_code", "readiness", "note"),
        required=False,
        licence="Compiled from public web pages listed in its `source` column",
    ),
)

DATASETS: dict[str, Dataset] = {d.name: d for d in _DATASETS}


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


def columns_for(dataset: Dataset, file: str | Path) -> tuple[str, ...]:
    """Expected columns of `file`: the online part's own names if it is a download."""
    posix = Path(file).as_posix()
    for part in dataset.online:
        if posix.endswith(part.download_path):
            return part.columns
    return dataset.columns


def check_columns(df: object, dataset: str | Dataset | OnlinePart, file: str | Path) -> None:
    """Raise a PlannerError naming `file` and the first missing expected column."""
    if isinstance(dataset, str):
        dataset = get(dataset)
    expected = dataset.columns if isinstance(dataset, OnlinePart) else columns_for(dataset, file)
    present = _column_names(df)
    missing = [c for c in expected if c not in present]
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""
        )
        raise PlannerError(
            f"dataset '{dataset.name}' lacks expected column(s) {shown}; "
            f"found {', '.join(list(present)[:12])}",
            file=file,
            field=missing[0],
            fix="the file is not the expected product or version: delete it and " + FETCH_FIX,
        )


def _column_names(df: object) -> list[str]:
    columns = getattr(df, "columns", df)
    if not isinstance(columns, Iterable):
        raise TypeError(f"cannot read column names from {type(df).__name__}")
    return [str(c) for c in columns]

"""The online lookup: join its ONS parts into the mirror's one-row-per-LSOA layout.

Each part is read as sources.py describes it (England's rows only) and each
join must be one-to-one and leave no gaps; otherwise the error names the part
file and the first code. ICB → NHS England region comes from an ONS lookup
service when it answers and covers every ICB; otherwise it is derived
spatially, as the mirror was built: each ICB's LSOAs are placed in the NHS
region polygons and the ICB goes to the region holding (nearly) all its area.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

import geopandas as gpd
import pandas as pd

from planner import inputs, sources
from planner.errors import PlannerError

log = logging.getLogger(__name__)

BNG = 27700
MIN_REGION_SHARE = 0.95  # an ICB must lie (almost) wholly in one NHS region
REGION_COLUMNS = ("ICB24CD", "NHSER24CD", "NHSER24NM")


def read_parts(raw_dir: Path, dataset: sources.Dataset) -> dict[str, tuple[Path, pd.DataFrame]]:
    """Each downloaded part present in raw_dir, read as registered (reader names, England)."""
    frames = {}
    for part in dataset.online:
        path = Path(raw_dir) / part.download_path
        if path.is_file():
            frames[part.name] = (path, inputs.read_file(dataset, path).frame)
    return frames


def uncovered_icbs(regions: pd.DataFrame, lsoa_icb: pd.DataFrame) -> list[str]:
    """ICB codes of the LSOA lookup that `regions` does not place in a region."""
    known = set(regions.loc[regions["NHSER24CD"].fillna("") != "", "ICB24CD"])
    return sorted(set(lsoa_icb["ICB24CD"]) - known)


def derive_icb_regions(
    lsoa_icb: pd.DataFrame, lsoa_boundaries: gpd.GeoDataFrame, regions: gpd.GeoDataFrame
) -> pd.DataFrame:
    """ICB24CD → NHSER24CD, NHSER24NM from where each ICB's LSOAs lie among the region polygons.

    Each LSOA's representative point is placed in a region and weighted by its
    area; an ICB whose area is not at least MIN_REGION_SHARE in one region is an
    error (the boundaries do not fit the lookup).
    """
    areas = lsoa_boundaries[["LSOA21CD", "geometry"]].to_crs(BNG)
    areas = areas.merge(lsoa_icb[["LSOA21CD", "ICB24CD"]], on="LSOA21CD", how="inner")
    points = gpd.GeoDataFrame(
        {"ICB24CD": areas["ICB24CD"], "weight": areas.geometry.area},
        geometry=areas.geometry.representative_point(),
        crs=BNG,
    )
    polygons = regions[["NHSER24CD", "NHSER24NM", "geometry"]].to_crs(BNG)
    placed = gpd.sjoin(points, polygons, how="inner", predicate="within")
    shares = placed.groupby(["ICB24CD", "NHSER24CD", "NHSER24NM"])["weight"].sum().reset_index()
    shares["share"] = shares["weight"] / shares.groupby("ICB24CD")["weight"].transform("sum")
    best = shares.sort_values(["ICB24CD", "share"], ascending=[True, False]).drop_duplicates(
        "ICB24CD"
    )
    loose = best[best["share"] < MIN_REGION_SHARE]
    if len(loose):
        row = loose.iloc[0]
        raise PlannerError(
            f"ICB {row['ICB24CD']} lies only {row['share']:.0%} in NHS region "
            f"{row['NHSER24CD']}; cannot derive its region",
            field="ICB24CD",
            value=row["ICB24CD"],
            fix="use the ONS ICB → NHS region lookup, or --mirror",
        )
    missing = sorted(set(lsoa_icb["ICB24CD"]) - set(best["ICB24CD"]))
    if missing:
        raise PlannerError(
            f"{len(missing)} ICB(s) lie outside every NHS region polygon, e.g. {missing[0]}",
            field="ICB24CD",
            value=missing[0],
            fix="check the NHS region boundaries are for England (NHSER 2024), or use --mirror",
        )
    log.info(
        "ICB → NHS region derived spatially for %d ICBs (smallest share %.4f)",
        len(best),
        float(best["share"].min()) if len(best) else 1.0,
    )
    return best[list(REGION_COLUMNS)].reset_index(drop=True)


def assemble_lookup(frames: Mapping[str, tuple[Path, pd.DataFrame]]) -> pd.DataFrame:
    """Join the online lookup parts into the mirror's one-row-per-LSOA layout.

    `frames` maps part name → (file, table with the readers' column names).
    """
    lookup = sources.DATASETS["lookup"]

    def pick(name: str, key: str, present: Iterable[str] = ()) -> pd.DataFrame:
        """The part's columns (less those already joined), one row per `key`."""
        path, df = frames[name]
        wanted = [lookup.part(name).renamed(c) for c in lookup.part(name).columns]
        cols = [c for c in wanted if c == key or c not in set(present)]
        out = df[cols].drop_duplicates()
        dup = out[key][out[key].duplicated()]
        if len(dup):
            raise PlannerError(
                f"lookup part '{name}' maps {key} {dup.iloc[0]} to more than one row",
                file=path,
                field=key,
                value=dup.iloc[0],
                fix="ONS changed the lookup: check it and " + lookup.entry(lookup.part(name)),
            )
        return out

    table = pick("lookup_lsoa_icb", "LSOA21CD")
    joins = [
        ("lookup_lsoa_msoa", "LSOA21CD"),
        ("lookup_lsoa_ward_lad", "LSOA21CD"),
        ("lookup_lad_rgn", "LAD24CD"),
        ("lookup_icb_nhser", "ICB24CD"),
    ]
    for name, key in joins:
        right = pick(name, key, present=table.columns)
        table = table.merge(right, on=key, how="left", validate="many_to_one")
        first_value = next(c for c in right.columns if c != key)
        gap = table[first_value].isna() | (table[first_value] == "")
        if gap.any():
            code = table.loc[gap, key].iloc[0]
            raise PlannerError(
                f"lookup part '{name}' has no row for {key} {code} ({int(gap.sum())} missing)",
                file=frames[name][0],
                field=key,
                value=code,
                fix="the lookups are of different vintages: re-fetch them, or use --mirror",
            )
    return table[list(sources.LOOKUP_COLUMNS)].sort_values("LSOA21CD", ignore_index=True)

"""Turn a partition into named teams, a catchment table and a quality report.

Team ids are `<ICB short code>-<n>`, numbered north to south (then west to
east) by each catchment's population-weighted centre, so they do not change
when an unrelated ICB is redrawn.  Names are for people: the local authority
that dominates the catchment, with a compass direction when that authority
holds several catchments ("Leeds North"), or the two largest authorities when
a catchment joins districts ("Rutland & Melton").
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from planner.errors import PlannerError

CATCHMENT_COLUMNS = [
    "team_id",
    "name",
    "icb24cd",
    "icb24nm",
    "nhser24cd",
    "nhser24nm",
    "lads",
    "population",
    "under3",
    "lsoa_count",
    "deviation_pct",
    "polsby_popper",
    "island_km2",
    "contiguous",
    "geometry",
]
QUALITY_COLUMNS = [
    "icb24cd",
    "icb24nm",
    "teams",
    "population",
    "mean_catchment",
    "max_abs_deviation_pct",
    "mean_polsby_popper",
    "min_polsby_popper",
    "split_districts",
    "fragments",
    "excess_fragments",
    "non_contiguous",
]
# An area is on an island when at least this share of it lies off the mainland
# (Adjacency.offshore): Sheppey, Walney, Canvey, Scilly.  An islet belonging to a mainland
# area (Looe Island, Lundy) does not make its catchment an island catchment.
ISLAND_SHARE = 0.5
# A catchment is named after one authority when it has at least this share of its people.
DOMINANT_SHARE = 0.8
COMPASS = ["East", "North-East", "North", "North-West", "West", "South-West", "South", "South-East"]


def team_sort_key(team_id: str) -> tuple[str, int, str]:
    """Sort key putting team ids in numeric order within their ICB (QOP-2 before QOP-10)."""
    prefix, _, number = str(team_id).rpartition("-")
    return (prefix, int(number), "") if number.isdigit() else (str(team_id), -1, str(team_id))


def _centres(areas: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pts = shapely.point_on_surface(areas.geometry.to_numpy())
    weight = areas["population"].to_numpy(dtype=float)
    return shapely.get_x(pts), shapely.get_y(pts), np.where(weight > 0, weight, 1.0)


def team_ids(areas: gpd.GeoDataFrame, labels: pd.Series | np.ndarray) -> pd.Series:
    """`<icb24cdh>-<n>` per area; n counts north to south, then west to east, within the ICB."""
    labels = np.asarray(labels)
    if len(labels) != len(areas) or (labels < 0).any():
        raise PlannerError("every area needs a catchment label", field="catchment")
    x, y, w = _centres(areas)
    frame = pd.DataFrame(
        {
            "icb": areas["icb24cd"].astype(str).to_numpy(),
            "short": areas["icb24cdh"].astype(str).to_numpy(),
            "label": labels,
            "wx": x * w,
            "wy": y * w,
            "w": w,
        }
    )
    g = frame.groupby(["icb", "label"], sort=True).agg(
        short=("short", "first"), wx=("wx", "sum"), wy=("wy", "sum"), w=("w", "sum")
    )
    # Round to the metre so the order does not hang on float noise.
    g["north"] = -(g["wy"] / g["w"]).round(0)
    g["east"] = (g["wx"] / g["w"]).round(0)
    g = g.reset_index().sort_values(["icb", "north", "east", "label"], kind="stable")
    g["n"] = g.groupby("icb").cumcount() + 1
    g["team_id"] = g["short"] + "-" + g["n"].astype(str)
    lookup = g.set_index(["icb", "label"])["team_id"]
    ids = lookup.reindex(pd.MultiIndex.from_arrays([frame["icb"], frame["label"]])).to_numpy()
    return pd.Series(ids, index=areas.index, name="team_id", dtype=str)


def _direction(dx: float, dy: float, scale: float) -> str:
    if math.hypot(dx, dy) < 0.1 * scale:
        return "Central"
    angle = math.degrees(math.atan2(dy, dx)) % 360
    return COMPASS[int(((angle + 22.5) % 360) // 45)]


def _lad_shares(areas: pd.DataFrame, team: pd.Series) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "team_id": team.to_numpy(),
            "lad": areas["lad24nm"].astype(str).to_numpy(),
            "pop": areas["population"].to_numpy(dtype=float),
        }
    )
    shares = frame.groupby(["team_id", "lad"], sort=True)["pop"].sum().reset_index()
    total = shares.groupby("team_id")["pop"].transform("sum")
    shares["share"] = np.where(total > 0, shares["pop"] / total.where(total > 0, 1), 0.0)
    return shares.sort_values(["team_id", "share", "lad"], ascending=[True, False, True])


def lads_text(shares: pd.DataFrame) -> pd.Series:
    """'Rutland 27%; Melton 73%'-style text per team, largest share first."""
    parts = shares.assign(
        text=shares["lad"] + " " + (shares["share"] * 100).round(0).astype(int).astype(str) + "%"
    )
    return parts.groupby("team_id", sort=True)["text"].agg("; ".join)


def team_names(areas: gpd.GeoDataFrame, team: pd.Series) -> pd.Series:
    """A readable, nationally unique name per team id."""
    shares = _lad_shares(areas, team)
    x, y, w = _centres(areas)
    frame = pd.DataFrame(
        {
            "team_id": team.to_numpy(),
            "lad": areas["lad24nm"].astype(str).to_numpy(),
            "wx": x * w,
            "wy": y * w,
            "w": w,
            "area": shapely.area(areas.geometry.to_numpy()),
        }
    )
    by_team = frame.groupby("team_id", sort=True)[["wx", "wy", "w"]].sum()
    by_lad = frame.groupby("lad", sort=True)[["wx", "wy", "w", "area"]].sum()
    # Teams holding a real part (≥ 15%) of a district, so slivers do not count.
    holders = pd.DataFrame({"team_id": team.to_numpy(), "lad": frame["lad"], "pop": w})
    holders = holders.groupby(["lad", "team_id"])["pop"].sum()
    big_holders = (holders / holders.groupby("lad").transform("sum") >= 0.15).groupby("lad").sum()
    names = {}
    for tid, rows in shares.groupby("team_id", sort=True):
        top = rows.iloc[0]
        lad = top["lad"]
        if top["share"] < DOMINANT_SHARE and len(rows) > 1:
            names[tid] = f"{lad} & {rows.iloc[1]['lad']}"
        elif big_holders.get(lad, 0) > 1:
            t, c = by_team.loc[tid], by_lad.loc[lad]
            dx = t["wx"] / t["w"] - c["wx"] / c["w"]
            dy = t["wy"] / t["w"] - c["wy"] / c["w"]
            names[tid] = f"{lad} {_direction(dx, dy, math.sqrt(c['area'] / math.pi))}"
        else:
            names[tid] = lad
    out = pd.Series(names, name="name").sort_index()
    # Unique nationally: repeated names get " 2", " 3" in team id order.
    rank = out.groupby(out).cumcount() + 1
    dup = out.groupby(out).transform("size") > 1
    out = out.where(~dup | (rank == 1), out + " " + rank.astype(str))
    return out


def _contiguous(areas: pd.DataFrame, adjacency, team: pd.Series) -> pd.Series:
    codes, uniques = pd.factorize(team.to_numpy(), sort=True)
    a = adjacency.edges["a"].to_numpy()
    b = adjacency.edges["b"].to_numpy()
    same = codes[a] == codes[b]
    n = len(codes)
    graph = coo_matrix((np.ones(int(same.sum())), (a[same], b[same])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    pieces = pd.Series(comp).groupby(codes).nunique()
    return pd.Series((pieces.to_numpy() == 1), index=pd.Index(uniques, name="team_id"))


def catchment_table(
    areas: gpd.GeoDataFrame, adjacency, team: pd.Series
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """The catchments GeoDataFrame (one row per team) and the lsoa21cd → team_id assignment."""
    team = pd.Series(np.asarray(team), index=areas.index, name="team_id")
    if team.isna().any():
        raise PlannerError(
            "every area needs a team", row=str(areas["lsoa21cd"][team.isna()].iloc[0])
        )
    frame = pd.DataFrame(
        {
            "team_id": team.to_numpy(),
            "icb24cd": areas["icb24cd"].to_numpy(),
            "population": areas["population"].to_numpy(dtype=float),
            "under3": areas["under3"].to_numpy(dtype=float),
        }
    )
    grouped = frame.groupby("team_id", sort=True)
    table = grouped.agg(
        icb24cd=("icb24cd", "first"),
        population=("population", "sum"),
        under3=("under3", "sum"),
        lsoa_count=("population", "size"),
    )
    table["population"] = table["population"].round().astype(np.int64)
    icb_info = (
        areas[["icb24cd", "icb24nm", "nhser24cd", "nhser24nm"]]
        .drop_duplicates("icb24cd")
        .set_index("icb24cd")
    )
    table = table.join(icb_info, on="icb24cd")
    icb_mean = table.groupby("icb24cd")["population"].transform("mean")
    table["deviation_pct"] = (table["population"] / icb_mean - 1.0) * 100.0
    table["lads"] = lads_text(_lad_shares(areas, team))
    table["name"] = team_names(areas, team)

    geoms = areas.geometry.to_numpy()
    order = np.argsort(team.to_numpy(), kind="stable")
    sorted_ids = team.to_numpy()[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    ends = np.r_[starts[1:], len(order)]
    dissolved = []
    for s, e in zip(starts, ends, strict=True):
        part = geoms[order[s:e]]
        try:
            geom = shapely.coverage_union_all(part)
        except shapely.errors.GEOSException:  # not a clean coverage: fall back to a full union
            geom = shapely.union_all(part)
        dissolved.append(geom)
    geom_series = pd.Series(dissolved, index=pd.Index(sorted_ids[starts], name="team_id"))
    table["polsby_popper"] = [
        4 * math.pi * shapely.area(g) / shapely.length(g) ** 2 if shapely.length(g) > 0 else 0.0
        for g in geom_series.reindex(table.index)
    ]
    offshore = np.asarray(adjacency.offshore, dtype=float)
    island_m2 = pd.Series(np.where(on_island(adjacency), offshore, 0.0))
    island_m2 = island_m2.groupby(team.to_numpy()).sum()
    table["island_km2"] = (island_m2.reindex(table.index).to_numpy() / 1e6).round(1)
    table["contiguous"] = _contiguous(areas, adjacency, team).reindex(table.index).to_numpy()
    table = table.reset_index()
    out = gpd.GeoDataFrame(
        table, geometry=list(geom_series.reindex(table["team_id"]).to_numpy()), crs=areas.crs
    )
    out = out[CATCHMENT_COLUMNS].sort_values("team_id", kind="stable").reset_index(drop=True)
    assignment = (
        pd.DataFrame({"lsoa21cd": areas["lsoa21cd"].to_numpy(), "team_id": team.to_numpy()})
        .sort_values("lsoa21cd", kind="stable")
        .reset_index(drop=True)
    )
    return out, assignment


def on_island(adjacency) -> np.ndarray:
    """True for areas lying mostly (ISLAND_SHARE) off the mainland (Adjacency.offshore)."""
    area = np.maximum(np.asarray(adjacency.area, dtype=float), 1e-9)
    return np.asarray(adjacency.offshore, dtype=float) >= ISLAND_SHARE * area


def split_districts(areas: pd.DataFrame, team: pd.Series) -> pd.Series:
    """Number of teams per local authority district, for districts with more than one."""
    counts = (
        pd.DataFrame({"lad24cd": areas["lad24cd"].to_numpy(), "team_id": np.asarray(team)})
        .groupby("lad24cd", sort=True)["team_id"]
        .nunique()
    )
    return counts[counts > 1]


def district_fragments(
    areas: pd.DataFrame, team: pd.Series | np.ndarray, tolerance: float = 0.10
) -> pd.DataFrame:
    """Per ICB part of each district: catchments holding part of it, and the fewest it needs.

    fragments = number of catchments that hold part of the district (each ICB
    part of a cross-ICB district counted on its own); minimum = ceil(population
    / upper limit of a catchment in that ICB); excess = fragments − minimum.
    Commissioners read catchment names, so a district in more pieces than its
    size needs ("Leeds & Wakefield") is worth counting, not only split districts.
    """
    frame = pd.DataFrame(
        {
            "icb24cd": areas["icb24cd"].astype(str).to_numpy(),
            "lad24cd": areas["lad24cd"].astype(str).to_numpy(),
            "team_id": np.asarray(team),
            "population": areas["population"].to_numpy(dtype=float),
        }
    )
    teams = frame.groupby("icb24cd")["team_id"].nunique()
    upper = (1 + tolerance) * frame.groupby("icb24cd")["population"].sum() / teams
    out = (
        frame.groupby(["icb24cd", "lad24cd"], sort=True)
        .agg(fragments=("team_id", "nunique"), population=("population", "sum"))
        .reset_index()
    )
    limit = upper.reindex(out["icb24cd"]).to_numpy()
    out["minimum"] = np.maximum(1, np.ceil(out["population"] / limit - 1e-9)).astype(int)
    out["excess"] = (out["fragments"] - out["minimum"]).clip(lower=0)
    return out


def quality_report(
    catchments: pd.DataFrame, areas: pd.DataFrame, team: pd.Series, tolerance: float = 0.10
) -> pd.DataFrame:
    """One row per ICB: teams, mean catchment, worst deviation, compactness, split districts.

    `fragments` and `excess_fragments` are sums of `district_fragments` (with the
    partition's tolerance) over the ICB's districts.
    """
    frame = pd.DataFrame(
        {
            "icb24cd": areas["icb24cd"].to_numpy(),
            "lad24cd": areas["lad24cd"].to_numpy(),
            "team_id": np.asarray(team),
        }
    )
    per_lad = frame.groupby(["icb24cd", "lad24cd"])["team_id"].nunique()
    splits = (per_lad > 1).groupby("icb24cd").sum()
    frag = district_fragments(areas, team, tolerance).groupby("icb24cd")[["fragments", "excess"]]
    frag = frag.sum()
    g = catchments.groupby("icb24cd", sort=True)
    report = pd.DataFrame(
        {
            "icb24nm": g["icb24nm"].first(),
            "teams": g.size(),
            "population": g["population"].sum(),
            "mean_catchment": g["population"].mean(),
            "max_abs_deviation_pct": g["deviation_pct"].apply(lambda s: s.abs().max()),
            "mean_polsby_popper": g["polsby_popper"].mean(),
            "min_polsby_popper": g["polsby_popper"].min(),
            "split_districts": splits.reindex(g.size().index).fillna(0).astype(int),
            "fragments": frag["fragments"].reindex(g.size().index).fillna(0).astype(int),
            "excess_fragments": frag["excess"].reindex(g.size().index).fillna(0).astype(int),
            "non_contiguous": g["contiguous"].apply(lambda s: int((~s.astype(bool)).sum())),
        }
    )
    return report.reset_index()[QUALITY_COLUMNS]

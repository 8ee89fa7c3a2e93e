"""Turn a partition into named teams, a catchment table and a quality report.

Team ids are `<ICB short code>-<n>`, numbered north to south (then west to
east) by each catchment's population-weighted centre, so they do not change
when an unrelated ICB is redrawn (and `matching.carry_over_ids` keeps an
earlier plan's ids for catchments that are mostly the same).  Names are for
people: every district holding a fifth of the catchment's people, largest
first, in the form people use ("Bristol", not "Bristol, City of"), as in
"Rutland & Melton", with a compass label when several catchments share a
district ("Leeds North").
"""

from __future__ import annotations

import math
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix, csr_array
from scipy.sparse.csgraph import connected_components, min_weight_full_bipartite_matching

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
# Every district holding at least this share of a catchment's people is in its name.
NAMED_SHARE = 0.2
# A team holding at least this share of a district's people is one of its "holders".
HOLDER_SHARE = 0.15
# ONS's inverted names ("Bristol, City of", "Herefordshire, County of").
ONS_SUFFIX = re.compile(r",\s*(City|County) of$")
# Compass labels: (name, bearing in degrees anticlockwise from east, extra cost). The
# sixteen-wind ones cost more, so they are used only when a district leads more teams
# than the eight main points (and "Central") can label.
LABELS = [
    (name, 22.5 * i, 0.0 if i % 2 == 0 else 30.0)
    for i, name in enumerate(
        ["East", "East-North-East", "North-East", "North-North-East", "North",
         "North-North-West", "North-West", "West-North-West", "West", "West-South-West",
         "South-West", "South-South-West", "South", "South-South-East", "South-East",
         "East-South-East"]
    )
]  # fmt: skip
# "Central" costs this many degrees per district radius between the team's and district's centre.
CENTRAL_COST = 180.0


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
    grouped = frame.groupby(["icb", "label"], sort=True)
    g = grouped.agg(
        short=("short", "first"), wx=("wx", "sum"), wy=("wy", "sum"), w=("w", "sum")
    ).reset_index()  # row i: group i
    # Round to the metre so the order does not hang on float noise.
    g["north"] = -(g["wy"] / g["w"]).round(0)
    g["east"] = (g["wx"] / g["w"]).round(0)
    g = g.sort_values(["icb", "north", "east", "label"], kind="stable")
    g["n"] = g.groupby("icb").cumcount() + 1
    g["team_id"] = g["short"] + "-" + g["n"].astype(str)
    ids = g["team_id"].sort_index().to_numpy()[grouped.ngroup().to_numpy()]
    return pd.Series(ids, index=areas.index, name="team_id", dtype=str)


def place_name(lad24nm: str) -> str:
    """The name people use for a district: ONS's "Bristol, City of" -> "Bristol"."""
    return ONS_SUFFIX.sub("", str(lad24nm)).strip()


def _bearing_costs(dx: np.ndarray, dy: np.ndarray, scale: float) -> np.ndarray:
    """Cost of calling each team (offset dx, dy from its district's centre) by each label."""
    angle = np.degrees(np.arctan2(dy, dx)) % 360
    diff = np.abs((angle[:, None] - np.array([a for _, a, _ in LABELS])[None, :] + 180) % 360 - 180)
    cost = diff + np.array([penalty for _, _, penalty in LABELS])[None, :]
    distance = np.hypot(dx, dy) / max(scale, 1e-9)
    central = CENTRAL_COST * distance
    return np.column_stack([cost, central])


def best_pairs(matrix: np.ndarray, *, maximize: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of an optimal assignment, as scipy's linear_sum_assignment gives.

    scipy.sparse's solver, which spares every plan loading scipy.optimize: each
    pair is made an edge (+1, since a sparse zero is no edge), which adds the
    same to every full assignment, so the best pairs are unchanged.
    """
    return min_weight_full_bipartite_matching(csr_array(matrix + 1), maximize=maximize)


def directions(dx: np.ndarray, dy: np.ndarray, scale: float) -> list[str]:
    """A different compass label (or "Central") for each team around one district's centre.

    The labels go to the teams by an optimal assignment on the angle between
    each team's bearing and the label's; "Central" costs more the further a
    team's centre is from the district's, so it goes to the team nearest it.
    """
    names = [name for name, _, _ in LABELS] + ["Central"]
    rows, cols = best_pairs(_bearing_costs(np.asarray(dx), np.asarray(dy), scale))
    out = [""] * len(dx)
    for r, c in zip(rows, cols, strict=True):
        out[r] = names[c]
    return out


def _lad_shares(areas: pd.DataFrame, team: pd.Series) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "team_id": np.asarray(team),
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
        text=shares["lad"].map(place_name)
        + " "
        + (shares["share"] * 100).round(0).astype(int).astype(str)
        + "%"
    )
    return parts.groupby("team_id", sort=True)["text"].agg("; ".join)


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " & " + names[-1]


def team_names(
    areas: gpd.GeoDataFrame, team: pd.Series, *, shares: pd.DataFrame | None = None
) -> pd.Series:
    """A readable, nationally unique name per team id, with no numbers in it.

    Every district holding at least NAMED_SHARE of the team's people is named,
    largest first ("Chesterfield, North East Derbyshire & Bolsover"). The first
    district gets a compass label when several teams are named after it, or
    when other teams hold a real part (HOLDER_SHARE) of it ("Leeds North").
    `shares`: the teams' district shares when the caller has them already.
    """
    team = pd.Series(np.asarray(team), index=areas.index)
    shares = _lad_shares(areas, team) if shares is None else shares
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
    holders = frame.groupby(["lad", "team_id"])["w"].sum()
    big_holders = (
        (holders / holders.groupby("lad").transform("sum") >= HOLDER_SHARE).groupby("lad").sum()
    )
    # plain arrays and dicts from here: ~200 teams, and pandas per team cost 0.2 s a plan
    team_row = {tid: i for i, tid in enumerate(by_team.index)}
    team_centre = np.column_stack([by_team["wx"] / by_team["w"], by_team["wy"] / by_team["w"]])
    lad_centre = dict(
        zip(
            by_lad.index,
            zip(by_lad["wx"] / by_lad["w"], by_lad["wy"] / by_lad["w"], strict=True),
            strict=True,
        )
    )
    lad_area = by_lad["area"].to_dict()
    first: dict[str, str] = {}
    big: dict[str, list[str]] = {}
    for tid, lad, share in shares[["team_id", "lad", "share"]].itertuples(index=False):
        first.setdefault(tid, lad)  # shares: by team, largest first
        if share >= NAMED_SHARE:
            big.setdefault(tid, []).append(lad)
    named = {tid: big.get(tid, [lad]) for tid, lad in sorted(first.items())}
    teams_led: dict[str, list[str]] = {}
    for tid, parts in named.items():
        teams_led.setdefault(parts[0], []).append(tid)
    label = dict.fromkeys(named, "")
    for lad, members in sorted(teams_led.items()):
        if len(members) == 1 and big_holders.get(lad, 0) <= 1:
            continue
        t = team_centre[[team_row[m] for m in members]]
        c = lad_centre[lad]
        dx, dy = t[:, 0] - c[0], t[:, 1] - c[1]
        scale = math.sqrt(lad_area[lad] / math.pi)
        label.update(zip(members, directions(dx, dy, scale), strict=True))
    names = {}
    for tid, parts in named.items():
        first = f"{place_name(parts[0])} {label[tid]}".strip()
        names[tid] = _join([first, *(place_name(p) for p in parts[1:])])
    out = pd.Series(names, name="name").sort_index()
    repeated = out[out.duplicated(keep=False)]
    if len(repeated):
        raise PlannerError(
            f"two teams would share the name {repeated.iloc[0]!r}",
            field="name",
            value=", ".join(repeated.index),
            fix="report this: team names are meant to be unique",
        )
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
    shares = _lad_shares(areas, team)
    table["lads"] = lads_text(shares)
    table["name"] = team_names(areas, team, shares=shares)

    geoms = areas.geometry.to_numpy()
    order = np.argsort(team.to_numpy(), kind="stable")
    sorted_ids = team.to_numpy()[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    ends = np.r_[starts[1:], len(order)]
    dissolved = []
    for s, e in zip(starts, ends, strict=True):
        dissolved.append(dissolve(geoms[order[s:e]]))
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
    out = out[CATCHMENT_COLUMNS].sort_values("team_id", key=lambda s: s.map(team_sort_key))
    out = out.reset_index(drop=True)
    assignment = (
        pd.DataFrame({"lsoa21cd": areas["lsoa21cd"].to_numpy(), "team_id": team.to_numpy()})
        .sort_values("lsoa21cd", kind="stable")
        .reset_index(drop=True)
    )
    return out, assignment


def dissolve(parts: np.ndarray) -> shapely.Geometry:
    """One valid (multi)polygon from a catchment's small areas.

    The fast coverage union assumes the parts only touch; generalised (BSC)
    boundaries sometimes overlap by slivers, and then it returns shells nested
    in shells. Those catchments get a full overlay union instead.
    """
    try:
        geom = shapely.coverage_union_all(parts)
    except shapely.errors.GEOSException:
        geom = None
    if geom is None or not shapely.is_valid(geom):
        geom = shapely.union_all(parts)
    return geom


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

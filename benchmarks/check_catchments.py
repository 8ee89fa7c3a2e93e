"""Check a plan's catchments against the partition quality bars, independently of the planner.

Usage: python benchmarks/check_catchments.py EXPORTS_DIR --preset la_aligned|equal_size
                                            [--mirror ../shared/open-data]

Reads only `EXPORTS_DIR/lsoa_to_team.csv` and the raw mirror files (LSOA 2021
boundaries, Census 2021 population, the ONS LSOA lookup), with geopandas and
shapely; nothing is imported from `planner`, so a fault in the planner's own
bookkeeping cannot hide here. Reports, and checks against issue 15's bars:

- every LSOA in England assigned to exactly one team, and the team count;
- deviation: |team population / its ICB's mean team population − 1|;
- Polsby-Popper 4πA/P² of each team's dissolved polygon (mean and min);
- split districts: LAD 2024 districts whose LSOAs go to more than one team;
- contiguity: LSOAs are linked where their polygons touch (within 1 m); a
  landmass is a connected set of all LSOAs so linked (Great Britain, the
  Isle of Wight, Scilly...). A team is contiguous when its LSOAs on each
  landmass form one piece: pieces on different landmasses are separated by
  water, which the planner joins with its bridges;
- catchments below PP 0.15, with whether they reach beyond one landmass.

With --readiness FILE (issue 13), each listed district is checked too: one
that fits in a catchment (population ≤ its ICB's mean × (1 + tolerance))
must lie in one team; a bigger one whose whole number of catchments fits the
tolerance must be covered only by teams lying wholly inside it; others may
be cut (reported). And every team that teams.csv marks operating or emerging
must hold at least half of a listed district's people, or a listed district
must make up at least half of the team's.

An "island standing alone" (a team whose land touches no other team's) is
exempt from the deviation bar in the la_aligned preset, as the issue allows
(the Isle of Wight). Exit status 1 when a bar fails.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

REPO = Path(__file__).resolve().parents[1]
TOLERANCE = {"equal_size": 0.005, "la_aligned": 0.10}
BARS = {
    "equal_size": {"max_dev_pct": 0.5, "mean_pp": 0.337, "split_districts": 163},
    "la_aligned": {"max_dev_pct": 10.0, "mean_pp": 0.323, "split_districts": 82},
}
LOOKUP = "lookups/lsoa21_msoa21_wd24_lad24_rgn24_sicbl24_icb24_nhser24_england.csv"
POPULATION = "population/census2021_ts001_usual_residents_lsoa21_england.csv"
BOUNDARIES = "boundaries/lsoa21_bsc_england.gpkg"
TOUCH_M = 1.0
PP_LOW = 0.15


def load(exports: Path, mirror: Path) -> gpd.GeoDataFrame:
    """LSOA polygons with team, population, district and ICB; the assignment checked whole."""
    teams = pd.read_csv(exports / "lsoa_to_team.csv", dtype=str)
    lookup = pd.read_csv(mirror / LOOKUP, dtype=str, usecols=["LSOA21CD", "LAD24CD", "ICB24CD"])
    people = pd.read_csv(mirror / POPULATION, usecols=["LSOA21CD", "usual_residents_total"])
    shapes = gpd.read_file(mirror / BOUNDARIES)[["LSOA21CD", "geometry"]]
    doubled = teams["lsoa21cd"].duplicated().sum()
    missing = set(lookup["LSOA21CD"]) - set(teams["lsoa21cd"])
    extra = set(teams["lsoa21cd"]) - set(lookup["LSOA21CD"])
    if doubled or missing or extra:
        sys.exit(
            f"lsoa_to_team.csv: {doubled} LSOAs listed twice, {len(missing)} of England's "
            f"missing, {len(extra)} not in England"
        )
    frame = (
        shapes.merge(lookup, on="LSOA21CD", validate="one_to_one")
        .merge(people, on="LSOA21CD", validate="one_to_one")
        .merge(teams, left_on="LSOA21CD", right_on="lsoa21cd", validate="one_to_one")
    )
    return frame.sort_values("LSOA21CD", kind="stable").reset_index(drop=True)


def touching_pairs(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i < j) of polygons within TOUCH_M of each other."""
    left, right = shapely.STRtree(geoms).query(geoms, predicate="dwithin", distance=TOUCH_M)
    keep = left < right
    return left[keep], right[keep]


def team_metrics(frame: gpd.GeoDataFrame) -> pd.DataFrame:
    """One row per team: ICB, population, deviation, PP, pieces, landmasses, contiguity."""
    geoms = frame.geometry.to_numpy()
    team = frame["team_id"].to_numpy()
    people = frame["usual_residents_total"].to_numpy()
    a, b = touching_pairs(geoms)
    n = len(frame)
    _, land = connected_components(coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n)))
    same = team[a] == team[b]
    graph = coo_matrix((np.ones(int(same.sum())), (a[same], b[same])), shape=(n, n))
    _, piece = connected_components(graph, directed=False)
    other = np.zeros(int(piece.max()) + 1, dtype=bool)  # piece touches another team's LSOA
    other[piece[a[~same]]] = True
    other[piece[b[~same]]] = True
    rows = []
    for tid, idx in frame.groupby("team_id", sort=True).indices.items():
        shape = shapely.union_all(geoms[idx])
        pieces = pd.unique(piece[idx])
        lands = pd.unique(land[idx])
        rows.append(
            {
                "team_id": tid,
                "icb": frame["ICB24CD"].iloc[idx[0]],
                "population": int(people[idx].sum()),
                "pp": 4 * math.pi * shape.area / shape.length**2,
                "pieces": len(pieces),
                "landmasses": len(lands),
                "contiguous": len(pieces) == len(lands),
                "alone": not other[pieces].any(),
            }
        )
    out = pd.DataFrame(rows)
    mean = out.groupby("icb")["population"].transform("mean")
    out["deviation_pct"] = (out["population"] / mean - 1) * 100
    return out


def service_checks(
    frame: gpd.GeoDataFrame, teams: pd.DataFrame, exports: Path, readiness: Path, tolerance: float
) -> list[str]:
    """Issue 13's acceptance for the districts listed in a readiness file; failures as lines."""
    listed = pd.read_csv(readiness, dtype=str)
    listed = listed[listed["readiness"].isin(["operating", "emerging"])]
    people = frame["usual_residents_total"].astype(float)
    mean = teams.groupby("icb")["population"].mean()
    share = frame.assign(p=people).groupby(["LAD24CD", "team_id"])["p"].sum()
    team_pop = people.groupby(frame["team_id"]).sum()
    lad_pop = people.groupby(frame["LAD24CD"]).sum()
    failures = []
    for row in listed.itertuples():
        code = row.area_code
        if code not in lad_pop.index:
            print(f"  {code} {row.area_name}: not a district code; not checked")
            continue
        inside = share.loc[code]
        icb = frame.loc[frame["LAD24CD"] == code, "ICB24CD"].mode().iloc[0]
        worth = lad_pop[code] / mean[icb]
        n = max(1, round(worth))
        whole_teams = [t for t in inside.index if inside[t] >= team_pop[t] - 0.5]
        if worth <= 1 + tolerance:
            ok, want = len(inside) == 1, "in one team"
        elif abs(worth / n - 1) <= tolerance:
            ok, want = len(whole_teams) == len(inside), f"only in teams wholly inside it ({n})"
        else:
            ok, want = True, f"may be cut ({worth:.2f} catchments' worth)"
        state = "ok" if ok else "FAIL"
        print(
            f"  {code} {row.area_name}: {worth:.2f} catchments' worth, {len(inside)} teams, {len(whole_teams)} wholly inside; {want}: {state}"
        )
        if not ok:
            failures.append(f"{row.area_name} not held")
    plan = pd.read_csv(exports / "teams.csv", dtype={"team_id": str})
    ready = plan.loc[plan["readiness"].isin(["operating", "emerging"]), "team_id"]
    codes = [c for c in listed["area_code"] if c in lad_pop.index]
    thin = [
        tid
        for tid in ready
        if not any(share.get((c, tid), 0.0) >= 0.5 * min(lad_pop[c], team_pop[tid]) for c in codes)
    ]
    state = "ok" if not thin else f"FAIL ({', '.join(thin)})"
    print(f"  {len(ready)} teams operating or emerging, each on at least half: {state}")
    failures += [f"{tid} marked ready on less than half" for tid in thin]
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("exports", type=Path)
    parser.add_argument("--preset", choices=sorted(BARS), required=True)
    parser.add_argument("--mirror", type=Path, default=REPO.parent / "shared" / "open-data")
    parser.add_argument("--readiness", type=Path, default=None)
    args = parser.parse_args()
    frame = load(args.exports, args.mirror)
    teams = team_metrics(frame)
    split = int((frame.groupby("LAD24CD")["team_id"].nunique() > 1).sum())
    exempt = teams["alone"] if args.preset == "la_aligned" else pd.Series(False, index=teams.index)
    figures = {
        "max_dev_pct": float(teams.loc[~exempt, "deviation_pct"].abs().max()),
        "mean_pp": float(teams["pp"].mean()),
        "split_districts": split,
    }
    bars = BARS[args.preset]
    failed = []
    print(f"{args.exports}/lsoa_to_team.csv, preset {args.preset}: {len(teams)} teams")
    for name, value in figures.items():
        limit = bars[name]
        ok = value >= limit if name == "mean_pp" else value <= limit
        failed += [] if ok else [name]
        sign = "≥" if name == "mean_pp" else "≤"
        print(f"  {name:16s} {value:10.5g}  bar {sign} {limit:<8g} {'ok' if ok else 'FAIL'}")
    contiguous = int(teams["contiguous"].sum())
    across = int((teams["landmasses"] > 1).sum())
    print(f"  contiguous       {contiguous}/{len(teams)}  ({across} teams reach across water)")
    if contiguous != len(teams) or len(teams) != 202:
        failed.append("contiguous")
    for row in teams[teams["alone"]].itertuples():
        print(f"  alone (exempt from the deviation bar): {row.team_id} {row.deviation_pct:+.1f}%")
    low = teams[teams["pp"] < PP_LOW].sort_values("pp")
    for row in low.itertuples():
        island = "across water" if row.landmasses > 1 else "one landmass"
        print(f"  PP below {PP_LOW}: {row.team_id} {row.pp:.3f} ({island})")
    if args.readiness:
        print(f"services in {args.readiness}:")
        failed += service_checks(frame, teams, args.exports, args.readiness, TOLERANCE[args.preset])
    print("all bars hold" if not failed else f"FAILED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

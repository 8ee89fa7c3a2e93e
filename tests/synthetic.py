"""Small made-up country for unit tests of phasing and tables (not real data).

Seven regions with the proposal's real team counts, two ICBs each; districts of
four LSOAs and teams of three, so many teams straddle two districts.
"""

from __future__ import annotations

import pandas as pd

REGIONS = {  # code -> (name, teams)
    "E40000003": ("London", 33),
    "E40000005": ("South East", 35),
    "E40000006": ("South West", 22),
    "E40000011": ("Midlands", 37),
    "E40000012": ("North East and Yorkshire", 30),
    "E40000013": ("East of England", 23),
    "E40000014": ("North West", 22),
}


def synthetic_country(
    regions: dict[str, tuple[str, int]] = REGIONS, lsoas_per_team: int = 3, lsoas_per_lad: int = 4
):
    """(catchments, areas, assignment) for 202 teams in 7 regions, 2 ICBs each.

    Districts are 4 LSOAs and teams 3, so many teams straddle two districts.
    """
    areas, teams = [], []
    n = 0
    for r, (code, (rname, k)) in enumerate(regions.items()):
        for j, size in enumerate((k // 2, k - k // 2)):
            icb, short = f"E540000{r}{j}", f"Q{r}{j}"
            for t in range(1, size + 1):
                tid = f"{short}-{t}"
                teams.append((tid, f"Team {tid}", icb, f"ICB {short}", code, rname))
                for _ in range(lsoas_per_team):
                    i_icb = sum(1 for a in areas if a["icb24cd"] == icb)
                    lad = f"E0600{r}{j}{i_icb // lsoas_per_lad:02d}"
                    pop = 1_500 + (n * 37) % 500
                    areas.append(
                        {
                            "lsoa21cd": f"E01{n:06d}",
                            "lad24cd": lad,
                            "lad24nm": f"District {lad[-5:]}",
                            "sicbl24cd": f"E380000{r}{j}",
                            "icb24cd": icb,
                            "icb24nm": f"ICB {short}",
                            "nhser24cd": code,
                            "nhser24nm": rname,
                            "population": pop,
                            "under3": pop * (0.03 + (n % 7) / 1000),
                            "imd_decile": (n * 7) % 10 + 1,
                            "team_id": tid,
                        }
                    )
                    n += 1
    areas_df = pd.DataFrame(areas)
    assignment = areas_df[["lsoa21cd", "team_id"]].sort_values("lsoa21cd").reset_index(drop=True)
    areas_df = areas_df.drop(columns="team_id")
    catch = pd.DataFrame(
        teams, columns=["team_id", "name", "icb24cd", "icb24nm", "nhser24cd", "nhser24nm"]
    )
    sums = areas_df.merge(assignment, on="lsoa21cd").groupby("team_id")[["population", "under3"]]
    catch = catch.merge(sums.sum().reset_index(), on="team_id")
    return catch, areas_df, assignment

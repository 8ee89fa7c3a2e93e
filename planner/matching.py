"""Stable team ids across reruns: match new catchments to an earlier plan's teams.

People learn team ids and names ("QWO-3, Leeds North"), so a rerun with new
data or another seed must not relabel teams at will. New and old teams are
matched by the population they share (the new areas' population on the old
`lsoa_to_team.csv`), as one optimal assignment per ICB. A new team keeps the
old team's id and name when at least half of its population is that team's;
every other team gets a number never used in its ICB before.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from planner import exports
from planner.catchments import best_pairs, team_sort_key
from planner.errors import PlannerError

# A team keeps an old id when at least this share of its population was that team's.
KEEP_SHARE = 0.5
PREVIOUS_FIX = "give the exports folder of an earlier run (it holds lsoa_to_team.csv and teams.csv)"


@dataclass(frozen=True)
class PreviousTeams:
    """An earlier plan's teams: which team each LSOA was in, and each team's name."""

    assignment: pd.DataFrame  # lsoa21cd, team_id
    names: pd.Series  # team_id -> name


def read_previous(directory: Path) -> PreviousTeams:
    """lsoa_to_team.csv and teams.csv of an earlier exports folder, checked."""
    directory = Path(directory)
    if not directory.is_dir():
        raise PlannerError("the previous exports folder does not exist", file=directory,
                           fix=PREVIOUS_FIX)  # fmt: skip
    lsoa_path = directory / "lsoa_to_team.csv"
    lsoa = exports.read_csv_export(lsoa_path, ["lsoa21cd", "team_id"], fix=PREVIOUS_FIX)
    teams_path = directory / "teams.csv"
    teams = exports.read_csv_export(teams_path, ["team_id", "name"], fix=PREVIOUS_FIX)
    for path, frame, key in ((lsoa_path, lsoa, "lsoa21cd"), (teams_path, teams, "team_id")):
        empty = frame[frame[key].str.strip() == ""]
        if len(empty):
            raise PlannerError("the cell is empty", file=path, row=int(empty.index[0]) + 2,
                               field=key, fix=PREVIOUS_FIX)  # fmt: skip
        twice = frame[frame[key].duplicated()]
        if len(twice):
            raise PlannerError("the code appears twice", file=path, row=int(twice.index[0]) + 2,
                               field=key, value=twice[key].iloc[0], fix=PREVIOUS_FIX)  # fmt: skip
    unknown = lsoa[~lsoa["team_id"].isin(teams["team_id"])]
    if len(unknown):
        raise PlannerError(
            "the team is not in teams.csv",
            file=lsoa_path,
            row=int(unknown.index[0]) + 2,
            field="team_id",
            value=unknown["team_id"].iloc[0],
            fix="give lsoa_to_team.csv and teams.csv from the same run",
        )
    return PreviousTeams(
        assignment=lsoa[["lsoa21cd", "team_id"]].reset_index(drop=True),
        names=teams.set_index("team_id")["name"],
    )


def shared_population(new: pd.DataFrame, old: pd.DataFrame, areas: pd.DataFrame) -> pd.DataFrame:
    """new_id, old_id, shared: the population (of `areas`) each pair of teams has in common."""
    frame = (
        new[["lsoa21cd", "team_id"]]
        .rename(columns={"team_id": "new_id"})
        .merge(old[["lsoa21cd", "team_id"]].rename(columns={"team_id": "old_id"}), on="lsoa21cd")
        .merge(areas[["lsoa21cd", "population"]], on="lsoa21cd")
    )
    shared = frame.groupby(["new_id", "old_id"], sort=True)["population"].sum()
    return shared.rename("shared").reset_index().astype({"new_id": str, "old_id": str})


def match_teams(
    shared: pd.DataFrame, population: pd.Series, *, keep_share: float = KEEP_SHARE
) -> pd.DataFrame:
    """new_id, old_id ("" when none), shared, share: the old team each new team continues.

    One optimal assignment per ICB (the part of the id before the last "-")
    over the pairs that reach `keep_share` of the new team's population,
    maximising the population they share: when an old team is split into two
    new teams that each take over half their people from it, the one sharing
    more keeps the id.
    """
    icb = [team_sort_key(t)[0] for t in shared["new_id"]]
    old_icb = [team_sort_key(t)[0] for t in shared["old_id"]]
    shared = shared.assign(
        icb=icb, share=shared["shared"] / shared["new_id"].map(population).clip(lower=1)
    )
    shared = shared[(shared["icb"] == old_icb) & (shared["share"] >= keep_share)]
    chosen = {}
    for _, part in shared.groupby("icb", sort=True):
        rows = sorted(part["new_id"].unique(), key=team_sort_key)
        cols = sorted(part["old_id"].unique(), key=team_sort_key)
        gain = np.zeros((len(rows), len(cols)))
        r = part["new_id"].map({t: i for i, t in enumerate(rows)}).to_numpy()
        c = part["old_id"].map({t: i for i, t in enumerate(cols)}).to_numpy()
        gain[r, c] = part["shared"].to_numpy()
        for i, j in zip(*best_pairs(gain, maximize=True), strict=True):
            if gain[i, j] > 0:
                chosen[rows[i]] = cols[j]
    out = pd.DataFrame({"new_id": sorted(population.index.astype(str), key=team_sort_key)})
    out["old_id"] = [chosen.get(t, "") for t in out["new_id"]]
    pairs = shared.set_index(["new_id", "old_id"])  # the kept pairs
    keys = list(zip(out["new_id"], out["old_id"], strict=True))
    out["shared"] = [pairs["shared"].get(k, 0.0) for k in keys]
    out["share"] = [pairs["share"].get(k, 0.0) for k in keys]
    return out


def new_ids(match: pd.DataFrame, old_ids: pd.Index) -> dict[str, str]:
    """new id -> final id: the matched old id, or the next number never used in the ICB."""
    used: dict[str, int] = {}
    for tid in old_ids.astype(str):
        prefix, _, n = tid.rpartition("-")
        if n.isdigit():
            used[prefix] = max(used.get(prefix, 0), int(n))
    out = {}
    for new, old in zip(match["new_id"], match["old_id"], strict=True):
        if old:
            out[new] = old
            continue
        prefix = new.rpartition("-")[0]
        used[prefix] = used.get(prefix, 0) + 1
        out[new] = f"{prefix}-{used[prefix]}"
    return out


def carry_over_ids(
    table: gpd.GeoDataFrame,
    assignment: pd.DataFrame,
    areas: pd.DataFrame,
    previous_exports: Path,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """The catchment table and assignment with ids (and names) carried over from an earlier plan.

    A team keeps an old team's id and name when at least half of its
    population is that team's (one optimal assignment by shared population per
    ICB); other teams get numbers never used in their ICB. A new name that an
    old team already carries gets " (new)".
    """
    previous = read_previous(previous_exports)
    population = table.set_index(table["team_id"].astype(str))["population"].astype(float)
    shared = shared_population(assignment, previous.assignment, areas)
    match = match_teams(shared, population)
    mapping = new_ids(match, previous.names.index)
    kept = match.loc[match["old_id"] != "", "new_id"]
    out = table.copy()
    out["team_id"] = out["team_id"].astype(str).map(mapping)
    old_names = {mapping[t]: previous.names[mapping[t]] for t in kept}
    taken = set(old_names.values())
    out["name"] = [
        old_names.get(tid) or (f"{name} (new)" if name in taken else name)
        for tid, name in zip(out["team_id"], out["name"], strict=True)
    ]
    out = out.iloc[np.argsort(out["team_id"].map(team_sort_key).to_numpy(), kind="stable")]
    moved = assignment.assign(team_id=assignment["team_id"].astype(str).map(mapping))
    return out.reset_index(drop=True), moved

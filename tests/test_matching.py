"""Stable team ids: new catchments take an earlier plan's ids by shared population."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
from synthetic_plan import carried_over, synthetic_plan

from planner import matching, tables
from planner.catchments import team_sort_key
from planner.errors import PlannerError


def shared_pairs(old_csv: Path, new_csv: Path, areas: pd.DataFrame) -> pd.DataFrame:
    """Independently of the planner: population shared by each (new, old) pair of team ids."""
    old = pd.read_csv(old_csv, dtype=str)[["lsoa21cd", "team_id"]]
    new = pd.read_csv(new_csv, dtype=str)[["lsoa21cd", "team_id"]]
    both = new.merge(old, on="lsoa21cd", suffixes=("_new", "_old")).merge(
        areas[["lsoa21cd", "population"]], on="lsoa21cd"
    )
    shared = both.groupby(["team_id_new", "team_id_old"])["population"].sum().reset_index()
    size = new.merge(areas[["lsoa21cd", "population"]]).groupby("team_id")["population"].sum()
    return shared.assign(share=shared["population"] / shared["team_id_new"].map(size))


def not_carried(pairs: pd.DataFrame) -> pd.DataFrame:
    """Teams sharing at least half of their population with an old team but not carrying its id,
    other than where another new team shares more of that old team's people and carries it
    (an old team split in two: only one half can keep the id)."""
    half = pairs[pairs["share"] >= 0.5]
    wrong = half[half["team_id_new"] != half["team_id_old"]]
    holder = pairs[pairs["team_id_new"] == pairs["team_id_old"]].set_index("team_id_old")
    # as numbers even when nothing is wrong (an empty map keeps the ids' text dtype)
    held = wrong["team_id_old"].map(holder["population"]).astype("float64")
    return wrong[~(held >= wrong["population"])]


def test_ids_carry_over_by_shared_population(tmp_path: Path) -> None:
    old_plan, table, assignment = carried_over(tmp_path)
    carried = synthetic_plan(assignment=assignment)
    tables.write_plan_exports(tmp_path / "new", carried, provenance="new")
    pairs = shared_pairs(
        tmp_path / "old" / "lsoa_to_team.csv", tmp_path / "new" / "lsoa_to_team.csv", old_plan.areas
    )
    kept = pairs[pairs["share"] >= 0.5]
    assert len(kept) > 150  # most teams were only shifted
    assert (kept["team_id_new"] == kept["team_id_old"]).all()
    # the scrambled ICB (Q10) keeps nothing: its teams take numbers never used there
    scrambled = sorted(t for t in table["team_id"] if t.startswith("Q10-"))
    old_q10 = sorted(t for t in old_plan.plan["team_id"] if t.startswith("Q10-"))
    k = len(old_q10)
    assert scrambled == sorted([f"Q10-{n}" for n in range(k + 1, 2 * k + 1)], key=team_sort_key)
    # kept teams keep their names too; every name is unique
    old_names = old_plan.plan.set_index("team_id")["name"]
    names = table.set_index("team_id")["name"]
    for tid in kept["team_id_new"]:
        assert names[tid] == old_names[tid]
    assert names.is_unique
    assert table["team_id"].tolist() == sorted(table["team_id"], key=team_sort_key)
    assert set(assignment["team_id"]) == set(table["team_id"])


def test_same_plan_keeps_every_id(tmp_path: Path) -> None:
    plan = synthetic_plan()
    tables.write_plan_exports(tmp_path / "old", plan, provenance="old")
    table, assignment = matching.carry_over_ids(
        plan.catchments, plan.assignment, plan.areas, tmp_path / "old"
    )
    assert table["team_id"].tolist() == sorted(plan.catchments["team_id"], key=team_sort_key)
    assert assignment.equals(plan.assignment)


def test_split_old_team_keeps_its_id_in_the_larger_half() -> None:
    """Two new teams each take over half their people from one old team: the one sharing more
    keeps the id (seed 7 on the real data does this to QM7-5), the other gets a new number."""
    shared = pd.DataFrame(
        {"new_id": ["Q-1", "Q-1", "Q-2"], "old_id": ["Q-1", "Q-2", "Q-1"],
         "shared": [170.0, 134.0, 155.0]}
    )  # fmt: skip
    population = pd.Series({"Q-1": 304.0, "Q-2": 303.0})
    match = matching.match_teams(shared, population)
    assert match.set_index("new_id")["old_id"].to_dict() == {"Q-1": "Q-1", "Q-2": ""}
    assert matching.new_ids(match, pd.Index(["Q-1", "Q-2"])) == {"Q-1": "Q-1", "Q-2": "Q-3"}
    pairs = pd.DataFrame(
        {"team_id_new": ["Q-1", "Q-1", "Q-3"], "team_id_old": ["Q-1", "Q-2", "Q-1"],
         "population": [170.0, 134.0, 155.0], "share": [170 / 304, 134 / 304, 155 / 303]}
    )  # fmt: skip
    assert not_carried(pairs).empty
    assert len(not_carried(pairs.assign(team_id_new=["Q-4", "Q-4", "Q-3"]))) == 2


def test_match_prefers_pairs_over_half() -> None:
    """Old A overlaps new X by 60% of X and new Y by 40% of Y (more people): X keeps A."""
    shared = pd.DataFrame(
        {"new_id": ["Q-1", "Q-2", "Q-2"], "old_id": ["Q-1", "Q-1", "Q-2"],
         "shared": [60.0, 80.0, 120.0]}
    )  # fmt: skip
    population = pd.Series({"Q-1": 100.0, "Q-2": 200.0})
    match = matching.match_teams(shared, population).set_index("new_id")
    assert match.at["Q-1", "old_id"] == "Q-1" and match.at["Q-2", "old_id"] == "Q-2"
    assert match.at["Q-2", "share"] == pytest.approx(0.6)
    # an overlap under half keeps nothing
    weak = matching.match_teams(shared.assign(shared=[40.0, 10.0, 90.0]), population)
    assert weak.set_index("new_id")["old_id"].to_dict() == {"Q-1": "", "Q-2": ""}


@pytest.mark.parametrize(
    "files, words, row",
    [
        ({"teams.csv": "team_id,name\nQ-1,A\n"}, "file not found", None),
        ({"lsoa_to_team.csv": "lsoa21cd\nE1\n", "teams.csv": "team_id,name\n"}, "missing", 1),
        ({"lsoa_to_team.csv": "lsoa21cd,team_id\nE1,Q-1\nE1,Q-1\n",
          "teams.csv": "team_id,name\nQ-1,A\n"}, "appears twice", 3),
        ({"lsoa_to_team.csv": "lsoa21cd,team_id\nE1,Q-1,x\n",
          "teams.csv": "team_id,name\nQ-1,A\n"}, "3 fields", 2),
        ({"lsoa_to_team.csv": 'lsoa21cd,team_id\nE1,"Q-1\nE2,Q-1\n',
          "teams.csv": "team_id,name\nQ-1,A\n"}, "cannot read", None),
        ({"lsoa_to_team.csv": "lsoa21cd,team_id\nE1,Q-9\n",
          "teams.csv": "team_id,name\nQ-1,A\n"}, "not in teams.csv", 2),
    ],
)  # fmt: skip
def test_bad_previous_exports(tmp_path: Path, files, words, row) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(PlannerError) as info:
        matching.read_previous(tmp_path)
    assert words in str(info.value) and info.value.row == row and info.value.fix


def test_previous_names_are_read_back_as_written(tmp_path: Path) -> None:
    (tmp_path / "lsoa_to_team.csv").write_text("lsoa21cd,team_id\nE1,Q-1\n", encoding="utf-8")
    (tmp_path / "teams.csv").write_text("team_id,name\nQ-1,'=Odd name\n", encoding="utf-8")
    assert matching.read_previous(tmp_path).names.to_dict() == {"Q-1": "=Odd name"}


@pytest.mark.slow
def test_real_plan_other_seed_keeps_ids(national_plan, prepared, tmp_path: Path) -> None:
    """The acceptance: seed 7 against seed 2021's exports, checked from the two CSVs."""
    from planner import pipeline

    tables.write_plan_exports(tmp_path / "old", national_plan, provenance="seed 2021")
    _, areas, adjacency = prepared
    seven = dataclasses.replace(national_plan.scenario, seed=7)
    other = pipeline.build_catchments(areas, adjacency, seven)
    table, assignment = matching.carry_over_ids(
        other.table, other.assignment, areas, tmp_path / "old"
    )
    (tmp_path / "new").mkdir()
    assignment.to_csv(tmp_path / "new" / "lsoa_to_team.csv", index=False)
    pairs = shared_pairs(
        tmp_path / "old" / "lsoa_to_team.csv", tmp_path / "new" / "lsoa_to_team.csv", areas
    )
    half = pairs[pairs["share"] >= 0.5]
    assert len(half) > 150
    assert not_carried(pairs).empty
    assert table["name"].is_unique and len(table) == 202

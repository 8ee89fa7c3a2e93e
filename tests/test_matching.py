"""Stable team ids: new catchments take an earlier plan's ids by shared population."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
from synthetic_plan import redrawn_assignment, synthetic_plan

from planner import matching, tables
from planner.catchments import team_sort_key
from planner.errors import PlannerError


def best_old_team(old_csv: Path, new_csv: Path, areas: pd.DataFrame) -> pd.DataFrame:
    """Independently of the planner: each new team's largest old team by shared population."""
    old = pd.read_csv(old_csv, dtype=str)[["lsoa21cd", "team_id"]]
    new = pd.read_csv(new_csv, dtype=str)[["lsoa21cd", "team_id"]]
    both = new.merge(old, on="lsoa21cd", suffixes=("_new", "_old")).merge(
        areas[["lsoa21cd", "population"]], on="lsoa21cd"
    )
    shared = both.groupby(["team_id_new", "team_id_old"])["population"].sum().reset_index()
    size = both.groupby("team_id_new")["population"].sum()
    best = shared.sort_values("population", ascending=False).drop_duplicates("team_id_new")
    return best.assign(share=best["population"] / best["team_id_new"].map(size))


def test_ids_carry_over_by_shared_population(tmp_path: Path) -> None:
    old_plan = synthetic_plan()
    tables.write_plan_exports(tmp_path / "old", old_plan, provenance="old")
    redrawn = synthetic_plan(assignment=redrawn_assignment())
    table, assignment = matching.carry_over_ids(
        redrawn.catchments, redrawn.assignment, redrawn.areas, tmp_path / "old"
    )
    carried = synthetic_plan(assignment=assignment)
    tables.write_plan_exports(tmp_path / "new", carried, provenance="new")
    best = best_old_team(
        tmp_path / "old" / "lsoa_to_team.csv", tmp_path / "new" / "lsoa_to_team.csv", old_plan.areas
    )
    kept = best[best["share"] >= 0.5]
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
    table, assignment = matching.carry_over_ids(other[0], other[1], areas, tmp_path / "old")
    (tmp_path / "new").mkdir()
    assignment.to_csv(tmp_path / "new" / "lsoa_to_team.csv", index=False)
    best = best_old_team(
        tmp_path / "old" / "lsoa_to_team.csv", tmp_path / "new" / "lsoa_to_team.csv", areas
    )
    kept = best[best["share"] >= 0.5]
    assert (kept["team_id_new"] == kept["team_id_old"]).all()
    assert table["name"].is_unique and len(table) == 202

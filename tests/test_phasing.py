"""Phasing: readiness files, need, rank, waves shared across regions, locks, rationale."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
from synthetic import REGIONS, synthetic_country

from planner import phasing
from planner.config import default_scenario, largest_remainder
from planner.errors import PlannerError


def raises(func, *args, **kwargs) -> PlannerError:
    """The PlannerError that func(*args, **kwargs) raises."""
    with pytest.raises(PlannerError) as info:
        func(*args, **kwargs)
    return info.value


@pytest.fixture(scope="module")
def country():
    return synthetic_country()


@pytest.fixture(scope="module")
def known(country):
    catch, areas, _ = country
    return phasing.known_area_codes(areas, catch)


def write(tmp_path: Path, text: str | bytes, name: str = "readiness.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8", newline="")
    else:
        path.write_bytes(text)
    return path


# ----------------------------------------------------------------------------- the plan


def plan_for(country, readiness=None, scenario=None, **kw) -> pd.DataFrame:
    catch, areas, assignment = country
    return phasing.assign_phasing(
        catch, areas, assignment, readiness, scenario or default_scenario(), **kw
    )


def test_waves_and_regional_shares(country) -> None:
    plan = plan_for(country)
    s = default_scenario()
    assert list(plan.columns[-8:]) == phasing.PLAN_COLUMNS
    assert list(plan["team_id"]) == sorted(plan["team_id"])
    assert plan["wave"].value_counts().sort_index().tolist() == [40, 40, 55, 67]
    assert sorted(plan["priority_rank"]) == list(range(1, 203))
    counts = [k for _, k in REGIONS.values()]
    wave1 = plan[plan["wave"] == 1].groupby("nhser24cd").size()
    assert wave1.reindex(list(REGIONS)).tolist() == largest_remainder(counts, 40)
    assert (wave1 >= 1).all() and len(wave1) == 7
    # each region's teams all get a wave, and within a region waves follow rank
    for _, part in plan.groupby("nhser24cd"):
        ordered = part.sort_values("priority_rank")
        assert ordered["wave"].is_monotonic_increasing
    assert set(plan["operating_from"]) == {"2022/23", "2023/24", "2024/25"}
    w2 = plan[plan["wave"] == 2]
    assert (w2["operating_from"] == "2022/23").all() and (w2["full_from"] == "2023/24").all()
    w1 = plan[plan["wave"] == 1]
    assert (w1["full_from"] == "2022/23").all()
    assert s.wave_sizes == (40, 40, 55, 67)


def test_without_regional_shares_top_ranks_go_first(country) -> None:
    s = dataclasses.replace(default_scenario(), regional_fair_shares=False)
    plan = plan_for(country, scenario=s)
    assert set(plan.loc[plan["wave"] == 1, "priority_rank"]) == set(range(1, 41))
    assert set(plan.loc[plan["wave"] == 4, "priority_rank"]) == set(range(136, 203))
    top = plan.sort_values("priority_rank").iloc[0]
    assert top["rationale"].endswith("wave-1 slot 1 of 40 nationally")


def test_need_score(country) -> None:
    _, areas, assignment = country
    s = default_scenario()
    need = phasing.need_scores(areas, assignment, s).set_index("team_id")
    lsoa = areas.merge(assignment, on="lsoa21cd")
    team = lsoa[lsoa["team_id"] == "Q00-1"]
    share = team.loc[team["imd_decile"] <= 2, "under3"].sum() / team["under3"].sum()
    assert need.at["Q00-1", "need_score"] == pytest.approx(team["under3"].sum() * (1 + share))
    s2 = dataclasses.replace(s, need_deprived_weight=0.0)
    need2 = phasing.need_scores(areas, assignment, s2).set_index("team_id")
    assert need2.at["Q00-1", "need_score"] == pytest.approx(team["under3"].sum())
    # with no readiness, priority follows need exactly
    plan = plan_for(country).sort_values("priority_rank")
    assert plan["need_score"].is_monotonic_decreasing


def test_readiness_puts_operating_first(tmp_path: Path, country, known) -> None:
    catch, areas, assignment = country
    # a district in the North West (split over two teams), an ICB in London, a team id,
    # a sub-ICB location marked emerging, and a district explicitly 'none'
    text = (
        "area_code,readiness,note\n"
        "E06006001,operating,NW service\n"
        "E54000000,operating,London ICB-wide service\n"
        "Q41-3,operating,team-level\n"
        "E38000020,emerging,SW emerging\n"
        "E06003000,none,\n"
    )
    ready = phasing.read_readiness(write(tmp_path, text), known)
    plan = plan_for(country, ready).set_index("team_id")
    lsoa = areas.merge(assignment, on="lsoa21cd")
    nw = set(lsoa.loc[lsoa["lad24cd"] == "E06006001", "team_id"])
    london = set(catch.loc[catch["icb24cd"] == "E54000000", "team_id"])
    operating = nw | london | {"Q41-3"}
    assert len(nw) == 2  # the district straddles two catchments: both count
    assert set(plan.index[plan["readiness"] == "operating"]) == operating
    ranks = plan.loc[sorted(operating), "priority_rank"]
    assert sorted(ranks) == list(range(1, len(operating) + 1))
    emerging = set(lsoa.loc[lsoa["sicbl24cd"] == "E38000020", "team_id"])
    assert set(plan.index[plan["readiness"] == "emerging"]) == emerging
    assert plan.loc[sorted(emerging), "priority_rank"].min() == len(operating) + 1
    one = sorted(nw)[0]
    assert plan.at[one, "rationale"].startswith("operating service in District 06001")
    assert plan.at[one, "readiness_note"] == "NW service"
    assert plan.at["Q41-3", "rationale"].startswith("operating service in Team Q41-3")
    assert "for North East and Yorkshire" in plan.at["Q41-3", "rationale"]
    assert plan.loc[sorted(nw), "wave"].tolist() == [1, 1]
    # London ICB has 16 operating teams but London's wave-1 share is only 7
    london_w1 = plan.loc[sorted(london), "wave"].value_counts()
    assert london_w1.get(1) == largest_remainder([k for _, k in REGIONS.values()], 40)[0]
    # explicit none names the area; unlisted says no known service
    none_team = set(lsoa.loc[lsoa["lad24cd"] == "E06003000", "team_id"]) - operating - emerging
    assert plan.at[sorted(none_team)[0], "rationale"].startswith("no service in District")
    assert any(r.startswith("no known service") for r in plan["rationale"])


def test_rationale_format(country) -> None:
    plan = plan_for(country).set_index("team_id")
    top = plan.sort_values("priority_rank").index[0]
    text = plan.at[top, "rationale"]
    assert text.startswith("no known service; need rank 1 of 202; wave-1 slot 1 of ")
    assert text.endswith(f"for {plan.at[top, 'nhser24nm']}")


def test_locks(country) -> None:
    base = plan_for(country)
    last = base.sort_values("priority_rank")["team_id"].iloc[-1]
    region = base.set_index("team_id").at[last, "nhser24cd"]
    plan = plan_for(country, locks={last: 1}).set_index("team_id")
    assert plan.at[last, "wave"] == 1
    assert plan["wave"].value_counts().sort_index().tolist() == [40, 40, 55, 67]
    assert "locked into wave 1" in plan.at[last, "rationale"]
    # the region's wave-1 share is unchanged: the lock displaced its weakest candidate
    before = (base["nhser24cd"] == region) & (base["wave"] == 1)
    after = (plan["nhser24cd"] == region) & (plan["wave"] == 1)
    assert before.sum() == after.sum()
    # locks in the scenario work the same way, and an argument overrides them
    s = dataclasses.replace(default_scenario(), locks=((last, 3),))
    assert plan_for(country, scenario=s).set_index("team_id").at[last, "wave"] == 3
    assert plan_for(country, scenario=s, locks={last: 2}).set_index("team_id").at[last, "wave"] == 2
    # many locks in one region beyond its fair share borrow places from other regions
    nw = base.loc[base["nhser24cd"] == "E40000014", "team_id"].tolist()
    plan = plan_for(country, locks=dict.fromkeys(nw[:15], 1))
    assert (plan.loc[plan["team_id"].isin(nw[:15]), "wave"] == 1).all()
    assert plan["wave"].value_counts().sort_index().tolist() == [40, 40, 55, 67]


def test_bad_locks(country) -> None:
    s = dataclasses.replace(default_scenario(), source="my.toml")
    err = raises(plan_for, country, scenario=s, locks={"NOPE-1": 1})
    assert err.field == "phasing.locks.NOPE-1" and err.value == "NOPE-1" and "my.toml" in str(err)
    teams = country[0]["team_id"].tolist()[:41]
    err = raises(plan_for, country, scenario=s, locks=dict.fromkeys(teams, 1))
    assert "41 teams are locked into wave 1, which has 40 places" in str(err)


def test_team_count_mismatch(country) -> None:
    s = dataclasses.replace(default_scenario(), teams=203)
    with pytest.raises(PlannerError, match="202 catchments"):
        plan_for(country, scenario=s)


def test_share_seats_bounds() -> None:
    seats = phasing.share_seats(10, {"a": 5, "b": 5}, {"a": 8, "b": 0}, {"a": 9, "b": 5})
    assert seats == {"a": 8, "b": 2}
    seats = phasing.share_seats(4, {"a": 10, "b": 1}, {"a": 0, "b": 0}, {"a": 3, "b": 5})
    assert seats == {"a": 3, "b": 1}
    assert phasing.share_seats(
        3, {"a": 1, "b": 1, "c": 1}, dict.fromkeys("abc", 0), dict.fromkeys("abc", 9)
    ) == {"a": 1, "b": 1, "c": 1}
    assert phasing.share_seats(
        2, {"c": 1, "a": 1, "b": 1}, dict.fromkeys("abc", 0), dict.fromkeys("abc", 9)
    ) == {"a": 1, "b": 1, "c": 0}
    with pytest.raises(PlannerError):
        phasing.share_seats(5, {"a": 1}, {"a": 0}, {"a": 3})


def test_deterministic(country) -> None:
    assert plan_for(country).equals(plan_for(country))


# ----------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def real(national_plan):
    """The real catchments of England (partitioned from the mirror's data)."""
    return national_plan.catchments, national_plan.areas, national_plan.assignment


def test_real_readiness_example(real, mirror_dir: Path) -> None:
    catch, areas, assignment = real
    known = phasing.known_area_codes(areas, catch)
    path = mirror_dir / "readiness/known_services_2019.csv"
    assert phasing.validate_readiness_file(path, known) == []
    first = areas.iloc[0]
    assert known[first["icb24cdh"]] == known[first["icb24cd"]] == first["icb24nm"]
    ready = phasing.read_readiness(path, known)
    assert len(ready) == 13 and (ready["readiness"] == "operating").sum() == 10
    plan = phasing.assign_phasing(catch, areas, assignment, ready, default_scenario())
    assert plan["wave"].value_counts().sort_index().tolist() == [40, 40, 55, 67]
    assert plan.groupby("nhser24cd")["wave"].min().eq(1).all()
    op = plan[plan["readiness"] == "operating"]
    assert sorted(op["priority_rank"]) == list(range(1, len(op) + 1))
    # in every region the wave-1 places go to operating services first
    for _, part in plan.groupby("nhser24cd"):
        places = int((part["wave"] == 1).sum())
        n_op = int((part["readiness"] == "operating").sum())
        first = part.sort_values("priority_rank").head(places)
        assert (first["readiness"] == "operating").sum() == min(places, n_op)
        assert (first["wave"] == 1).all()
    lsoa = areas.merge(assignment, on="lsoa21cd")
    leeds = set(lsoa.loc[lsoa["lad24cd"] == "E08000035", "team_id"])
    # every catchment touching Leeds inherits its operating service (a catchment
    # spanning two operating districts names one of them)
    touching = plan[plan["team_id"].isin(leeds)]
    assert leeds and (touching["readiness"] == "operating").all()
    assert all(r.startswith("operating service in ") for r in touching["rationale"])
    assert any(r.startswith("operating service in Leeds") for r in touching["rationale"])
    em = plan[plan["readiness"] == "emerging"]
    assert em["priority_rank"].min() == len(op) + 1
    assert any("emerging service in Oxford" in r for r in em["rationale"])

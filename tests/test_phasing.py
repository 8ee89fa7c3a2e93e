"""Phasing: readiness by share, need, ranks, waves, locks, options, rationale, run summary."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pandas as pd
import pytest
from synthetic import REGIONS, synthetic_country
from test_readiness import raises, write

from planner import phasing
from planner.config import (
    DEFAULT_SCENARIO_PATH,
    default_scenario,
    largest_remainder,
)
from planner.errors import PlannerError
from planner.scenario_file import load_scenario, validate_scenario_file


@pytest.fixture(scope="module")
def country():
    return synthetic_country()


@pytest.fixture(scope="module")
def known(country):
    catch, areas, _ = country
    return phasing.known_area_codes(areas, catch)


# ----------------------------------------------------------------------------- the plan


def plan_for(country, readiness=None, scenario=None, **kw) -> pd.DataFrame:
    catch, areas, assignment = country
    return phasing.assign_phasing(
        catch, areas, assignment, readiness, scenario or default_scenario(), **kw
    )


def test_waves_and_regional_shares(country) -> None:
    plan = plan_for(country)
    s = default_scenario()
    assert list(plan.columns[-len(phasing.PLAN_COLUMNS) :]) == phasing.PLAN_COLUMNS
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
    assert len(nw) == 2  # the district straddles two catchments, each 2/3 in it: both hold it
    assert set(plan.index[plan["readiness"] == "operating"]) == operating
    ranks = plan.loc[sorted(operating), "priority_rank"]
    assert sorted(ranks) == list(range(1, len(operating) + 1))
    emerging = set(lsoa.loc[lsoa["sicbl24cd"] == "E38000020", "team_id"])
    assert set(plan.index[plan["readiness"] == "emerging"]) == emerging
    assert plan.loc[sorted(emerging), "priority_rank"].min() == len(operating) + 1
    one = sorted(nw)[0]
    assert plan.at[one, "rationale"].startswith("operating service in District 06001 (")
    assert plan.at[one, "readiness_note"] == "NW service"
    assert plan.at["Q41-3", "rationale"].startswith(
        "operating service in Team Q41-3 (100% of Team Q41-3)"
    )
    # existing services first, whatever the regional shares: all 19 are in wave one, although
    # London's fair share of wave one is only 7 of 40
    assert (plan.loc[sorted(operating), "wave"] == 1).all()
    assert (plan.loc[sorted(operating), "wave_basis"] == "existing service").all()
    assert plan.at["Q41-3", "rationale"].endswith("wave 1: existing services go first")
    assert plan["wave"].value_counts().sort_index().tolist() == [40, 40, 55, 67]
    # the other 21 places are shared by the teams each region still has waiting
    rest = plan[(plan["wave"] == 1) & ~plan.index.isin(sorted(operating))]
    waiting = plan[~plan.index.isin(sorted(operating))].groupby("nhser24cd").size()
    assert rest.groupby("nhser24cd").size().reindex(waiting.index, fill_value=0).tolist() == (
        largest_remainder(waiting.tolist(), 40 - len(operating))
    )
    # explicit none names the area; unlisted says no known service
    none_team = set(lsoa.loc[lsoa["lad24cd"] == "E06003000", "team_id"]) - operating - emerging
    assert any(plan.at[t, "rationale"].startswith("no service in District") for t in none_team)
    assert any(r.startswith("no known service") for r in plan["rationale"])


def test_a_sliver_is_not_a_service(tmp_path: Path, country, known) -> None:
    """District 00 of ICB Q00 is LSOAs 0-3; team 1 is LSOAs 0-2, team 2 LSOAs 3-5."""
    ready = phasing.read_readiness(
        write(tmp_path, "area_code,readiness\nE06000000,operating\n"), known
    )
    plan = plan_for(country, ready).set_index("team_id")
    assert plan.at["Q00-1", "readiness"] == "operating"
    assert plan.at["Q00-2", "readiness"] == "none"  # a quarter of the district, a third of itself
    held = phasing.area_overlaps(country[1], country[2])
    q2 = held[(held["team_id"] == "Q00-2") & (held["area_code"] == "E06000000")].iloc[0]
    assert q2["area_share"] < 0.5 and q2["team_share"] < 0.5
    share = held[(held["team_id"] == "Q00-1") & (held["area_code"] == "E06000000")].iloc[0]
    pct = math.floor(share["area_share"] * 100)
    assert plan.at["Q00-1", "rationale"].startswith(
        f"operating service in District 00000 ({pct}% of District 00000)"
    )


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


def test_wave_basis_and_to_confirm(tmp_path: Path, country, known) -> None:
    text = "area_code,readiness\nE54000000,operating\nE38000020,emerging\n"
    plan = plan_for(country, phasing.read_readiness(write(tmp_path, text), known))
    basis = plan.groupby("readiness")["wave_basis"].unique().map(list).to_dict()
    assert basis == {
        "operating": ["existing service"],
        "emerging": ["emerging provision"],
        "none": ["need"],
    }
    wave1 = plan[plan["wave"] == 1]
    assert plan["to_confirm"].sum() == (wave1["wave_basis"] == "need").sum() > 0
    assert not plan.loc[plan["wave"] > 1, "to_confirm"].any()
    s = default_scenario()
    report = phasing.phasing_report(plan, s)
    n = int(plan["to_confirm"].sum())
    warning = [line for line in report if line.startswith(f"Warning: {n} of wave one's 40")]
    assert len(warning) == 1 and "wave_one_without_service = 'full'" in warning[0]
    confirm = plan.loc[plan["to_confirm"]].sort_values("priority_rank")["team_id"]
    assert ", ".join(confirm) in warning[0]
    new = dataclasses.replace(s, wave_one_without_service="new")
    assert any("costed as teams starting that year" in x for x in phasing.phasing_report(plan, new))


@pytest.mark.parametrize("share_by", ["population", "need"])
def test_share_by(country, share_by: str) -> None:
    s = dataclasses.replace(default_scenario(), share_by=share_by)
    plan = plan_for(country, scenario=s)
    assert plan["wave"].value_counts().sort_index().tolist() == [40, 40, 55, 67]
    weights = plan.groupby("nhser24cd")["population" if share_by == "population" else "need_score"]
    wave1 = plan[plan["wave"] == 1].groupby("nhser24cd").size()
    expected = largest_remainder(weights.sum().tolist(), 40)
    assert wave1.reindex(weights.sum().index, fill_value=0).tolist() == expected
    assert any(f"share_by = '{share_by}'" in line for line in phasing.phasing_report(plan, s))


def resized(scenario, sizes: tuple[int, ...]):
    waves = zip(scenario.waves, sizes, strict=True)
    return dataclasses.replace(
        scenario, waves=tuple(dataclasses.replace(w, teams=n) for w, n in waves)
    )


def test_first_team_by_wave(country) -> None:
    """One national ranking and a small wave one: some ICBs wait for wave 2."""
    national = resized(
        dataclasses.replace(default_scenario(), regional_fair_shares=False), (16, 64, 55, 67)
    )
    base = phasing.first_team_years(plan_for(country, scenario=national))
    assert (base["first_wave"] > 1).any()
    s = dataclasses.replace(national, first_team_by_wave=1)
    plan = plan_for(country, scenario=s)
    firsts = phasing.first_team_years(plan)
    assert len(firsts) == 14 and (firsts["first_wave"] == 1).all()
    assert plan["wave"].value_counts().sort_index().tolist() == [16, 64, 55, 67]
    assert any("first team of ICB" in r for r in plan["rationale"])
    report = phasing.phasing_report(plan, s)
    assert "First team in 2022/23: 14 ICBs." in report
    assert not any("first_team_by_wave" in line for line in report)
    # a wave too small to give every ICB a team is reported, not hidden
    s5 = resized(s, (5, 75, 55, 67))
    plan = plan_for(country, scenario=s5)
    assert (plan["wave"] == 1).sum() == 5
    warning = [x for x in phasing.phasing_report(plan, s5) if "first_team_by_wave = 1" in x]
    assert len(warning) == 1 and warning[0].startswith("Warning:") and "for 9 ICBs" in warning[0]


def test_region_rank(country) -> None:
    plan = plan_for(country)
    for _, part in plan.groupby("nhser24cd"):
        assert sorted(part["region_rank"]) == list(range(1, len(part) + 1))
        assert part.sort_values("region_rank")["priority_rank"].is_monotonic_increasing


def test_need_score_explanation() -> None:
    text = phasing.need_score_explanation(default_scenario())
    assert "children under 3" in text and "× (1 + 1 ×" in text and "IMD 2025 deciles 1–2" in text
    assert phasing.NEED_SCORE_UNIT in text


def test_service_areas(tmp_path: Path, country, known) -> None:
    _, areas, _ = country
    text = "area_code,readiness\nE54000000,emerging\nE06000000,operating\nE06000001,none\n"
    keys = phasing.service_areas(phasing.read_readiness(write(tmp_path, text), known), areas)
    assert keys.index.equals(areas.index)
    in_lad = areas["lad24cd"] == "E06000000"
    assert (keys[in_lad] == "E06000000").all()  # the smaller of the two listed areas
    rest_of_icb = (areas["icb24cd"] == "E54000000") & ~in_lad
    assert (keys[rest_of_icb] == "E54000000").all()
    assert keys[areas["icb24cd"] != "E54000000"].isna().all()
    assert phasing.service_areas(None, areas).isna().all()


PHASING_KEYS = [
    ('share_by = "teams"', 'share_by = "people"', "phasing.share_by", "people"),
    (
        'wave_one_without_service = "full"',
        'wave_one_without_service = "half"',
        "phasing.wave_one_without_service",
        "half",
    ),
    (
        'operating_overflow = "push"',
        "operating_overflow = true",
        "phasing.operating_overflow",
        True,
    ),
    ("# first_team_by_wave = 2", "first_team_by_wave = 5", "phasing.first_team_by_wave", 5),
    ("# first_team_by_wave = 2", "first_team_by_wave = 0", "phasing.first_team_by_wave", 0),
]


@pytest.mark.parametrize(("old", "new", "key", "value"), PHASING_KEYS)
def test_phasing_keys_validated(tmp_path: Path, old: str, new: str, key: str, value) -> None:
    text = DEFAULT_SCENARIO_PATH.read_text(encoding="utf-8")
    assert old in text
    path = write(tmp_path, text.replace(old, new, 1), "scenario.toml")
    problems = validate_scenario_file(path)
    assert len(problems) == 1
    err = problems[0]
    assert err.field == key and err.value == value and err.fix and str(path) in str(err)
    assert "(line " in err.detail


def test_phasing_keys_loaded(tmp_path: Path) -> None:
    text = DEFAULT_SCENARIO_PATH.read_text(encoding="utf-8")
    assert load_scenario(DEFAULT_SCENARIO_PATH) == default_scenario()
    text = (
        text.replace('share_by = "teams"', 'share_by = "need"')
        .replace('operating_overflow = "push"', 'operating_overflow = "widen"')
        .replace('wave_one_without_service = "full"', 'wave_one_without_service = "new"')
        .replace("# first_team_by_wave = 2", "first_team_by_wave = 2")
    )
    s = load_scenario(write(tmp_path, text, "scenario.toml"))
    assert (s.share_by, s.operating_overflow, s.wave_one_without_service) == (
        "need",
        "widen",
        "new",
    )
    assert s.first_team_by_wave == 2


def test_deterministic(country) -> None:
    assert plan_for(country).equals(plan_for(country))


# ----------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def real(national_plan):
    """The real catchments of England (partitioned from the mirror's data)."""
    return national_plan.catchments, national_plan.areas, national_plan.assignment


def real_plan(real, mirror_dir: Path, name: str, scenario=None):
    catch, areas, assignment = real
    ready = phasing.read_readiness(
        mirror_dir / "readiness" / name, phasing.known_area_codes(areas, catch)
    )
    plan = phasing.assign_phasing(catch, areas, assignment, ready, scenario or default_scenario())
    return plan, ready


def holders(real, ready: pd.DataFrame, level: str) -> pd.DataFrame:
    """(team, listed area) pairs where the team holds at least half of the area."""
    _, areas, assignment = real
    held = phasing.area_overlaps(areas, assignment)
    listed = ready.loc[ready["readiness"] == level, "area_code"]
    return held[held["area_code"].isin(listed) & (held["area_share"] >= 0.5)]


def test_real_readiness_example(real, mirror_dir: Path) -> None:
    _, areas, assignment = real
    plan, ready = real_plan(real, mirror_dir, "known_services_2019.csv")
    assert len(ready) == 13 and (ready["readiness"] == "operating").sum() == 10
    assert plan["wave"].value_counts().sort_index().tolist() == [40, 40, 55, 67]
    assert plan.groupby("nhser24cd")["wave"].min().eq(1).all()
    op = plan[plan["readiness"] == "operating"]
    assert sorted(op["priority_rank"]) == list(range(1, len(op) + 1))
    assert (op["wave"] == 1).all() and (op["wave_basis"] == "existing service").all()
    # acceptance (issue 13): nobody is operating or emerging on a sliver
    held = phasing.area_overlaps(areas, assignment)
    listed = held.merge(ready[["area_code", "readiness"]], on="area_code")
    listed = listed[listed["readiness"] != "none"]
    for r in plan[plan["readiness"] != "none"].itertuples():
        mine = listed[(listed["team_id"] == r.team_id) & (listed["readiness"] == r.readiness)]
        assert ((mine["area_share"] >= 0.5) | (mine["team_share"] >= 0.5)).any(), r.team_id
    lsoa = areas.merge(assignment, on="lsoa21cd")
    leeds = set(lsoa.loc[lsoa["lad24cd"] == "E08000035", "team_id"])
    inside = plan[plan["team_id"].isin(leeds)]
    assert any(r.startswith("operating service in Leeds (") for r in inside["rationale"])
    em = plan[plan["readiness"] == "emerging"]
    assert em["priority_rank"].min() == len(op) + 1
    assert any("emerging service in Oxford (" in r for r in em["rationale"])
    # one rank: the region rank in the rationale, the national one named beside it
    for r in plan.itertuples():
        assert f"; rank {r.region_rank} of " in r.rationale
        assert f" in {r.nhser24nm} (national rank {r.priority_rank}); " in r.rationale
    for _, part in plan.groupby("nhser24cd"):
        assert sorted(part["region_rank"]) == list(range(1, len(part) + 1))
        assert part.sort_values("region_rank")["priority_rank"].is_monotonic_increasing
    to_confirm = plan[plan["to_confirm"]]
    assert (to_confirm["wave"] == 1).all() and (to_confirm["wave_basis"] == "need").all()
    report = phasing.phasing_report(plan, default_scenario())
    assert any(
        line.startswith(f"Warning: {len(to_confirm)} of wave one's 40 places") for line in report
    )


def test_real_2025_existing_services_all_in_wave_one(real, mirror_dir: Path) -> None:
    """Acceptance (issue 13): every team holding half an operating district is in wave one."""
    plan, ready = real_plan(real, mirror_dir, "known_services_2025.csv")
    hold = set(holders(real, ready, "operating")["team_id"])
    assert 30 <= len(hold) <= 40
    waves_of = plan.set_index("team_id")["wave"]
    assert (waves_of[sorted(hold)] == 1).all()
    assert plan["wave"].value_counts().sort_index().tolist() == [40, 40, 55, 67]
    # 45 teams are operating (the 36 and teams mostly inside a larger service area): the
    # run says so and moves the 5 of them with the weakest claim to wave 2
    operating = plan[plan["readiness"] == "operating"]
    later = operating[operating["wave"] > 1]
    assert len(operating) - len(later) == 40 and not later["team_id"].isin(hold).any()
    report = phasing.phasing_report(plan, default_scenario())
    pushed = [line for line in report if "operating_overflow = 'push'" in line]
    assert len(pushed) == 1 and f"these {len(later)} start later" in pushed[0]


@pytest.mark.parametrize("overflow", ["push", "widen"])
def test_real_overflow(real, mirror_dir: Path, overflow: str) -> None:
    """With wave one cut to 20 places, the 2025 services outnumber it."""
    sizes = (20, 60, 55, 67)
    s = resized(dataclasses.replace(default_scenario(), operating_overflow=overflow), sizes)
    plan, ready = real_plan(real, mirror_dir, "known_services_2025.csv", s)
    operating = plan[plan["readiness"] == "operating"].sort_values("priority_rank")
    report = phasing.phasing_report(plan, s)
    if overflow == "push":
        assert plan["wave"].value_counts().sort_index().tolist() == list(sizes)
        hold = operating[operating["team_id"].isin(holders(real, ready, "operating")["team_id"])]
        assert set(operating.loc[operating["wave"] == 1, "team_id"]) == set(hold["team_id"][:20])
        assert (operating.loc[operating["wave"] > 1, "wave"] == 2).all()
        assert any(f"these {len(operating) - 20} start later" in x for x in report)
    else:
        n = len(operating)
        assert plan["wave"].value_counts().sort_index().tolist() == [n, 80 - n, 55, 67]
        assert (operating["wave"] == 1).all()
        assert any(f"wave one widened to {n}" in line for line in report)


@pytest.mark.parametrize("share_by", ["teams", "population", "need"])
def test_real_share_by_and_first_team(real, mirror_dir: Path, share_by: str) -> None:
    s = dataclasses.replace(default_scenario(), share_by=share_by)
    plan, _ = real_plan(real, mirror_dir, "known_services_2019.csv", s)
    assert plan["wave"].value_counts().sort_index().tolist() == [40, 40, 55, 67]
    firsts = phasing.first_team_years(plan)
    assert len(firsts) == 42
    late = int((firsts["first_wave"] > 2).sum())
    s2 = dataclasses.replace(s, first_team_by_wave=2)
    plan2, _ = real_plan(real, mirror_dir, "known_services_2019.csv", s2)
    firsts2 = phasing.first_team_years(plan2)
    assert (firsts2["first_wave"] <= 2).all()
    assert plan2["wave"].value_counts().sort_index().tolist() == [40, 40, 55, 67]
    if late:
        assert any("first team of" in r for r in plan2["rationale"])
    report = phasing.phasing_report(plan2, s2)
    assert any(f"phasing.share_by = '{share_by}'" in line for line in report)
    assert not any("first_team_by_wave" in line for line in report)


def test_real_service_areas(real, mirror_dir: Path) -> None:
    catch, areas, _ = real
    ready = phasing.read_readiness(
        mirror_dir / "readiness" / "known_services_2019.csv", phasing.known_area_codes(areas, catch)
    )
    keys = phasing.service_areas(ready, areas)
    assert keys.index.equals(areas.index)
    listed = ready.loc[ready["readiness"] != "none", "area_code"]
    assert set(keys.dropna()) == set(listed)
    leeds = areas["lad24cd"] == "E08000035"
    assert (keys[leeds] == "E08000035").all()
    assert keys[~areas["lad24cd"].isin(listed)].isna().all()

"""Scenario loading: the bundled TOML is the proposal, and every mistake names file, key, value, fix."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pandas as pd
import pytest

from planner.config import (
    DEFAULT_SCENARIO_PATH,
    Scenario,
    default_scenario,
    describe_teams,
    largest_remainder,
    next_year,
    rescale_teams,
    resolve_teams,
    teams_for_population,
    wave_dates,
    with_overrides,
)
from planner.errors import PlannerError
from planner.scenario_file import load_scenario, validate_scenario_file
from tests.conftest import DEFAULT_MIRROR


def raises(func, *args, **kwargs) -> PlannerError:
    """The PlannerError that func(*args, **kwargs) raises."""
    with pytest.raises(PlannerError) as info:
        func(*args, **kwargs)
    return info.value


BUNDLED = DEFAULT_SCENARIO_PATH.read_text(encoding="utf-8")


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def edited(tmp_path: Path, old: str, new: str) -> Path:
    assert old in BUNDLED, old
    return write(tmp_path, BUNDLED.replace(old, new, 1))


def test_bundled_toml_equals_defaults() -> None:
    loaded = load_scenario(DEFAULT_SCENARIO_PATH)
    assert loaded == default_scenario()
    assert load_scenario() == default_scenario()
    assert loaded.source == str(DEFAULT_SCENARIO_PATH)
    # field by field, so a difference says which parameter drifted
    for f in dataclasses.fields(Scenario):
        if f.compare:
            assert getattr(loaded, f.name) == getattr(default_scenario(), f.name), f.name
    assert validate_scenario_file(DEFAULT_SCENARIO_PATH) == []


def test_defaults_are_the_proposal() -> None:
    s = default_scenario()
    assert s.teams == 202 and s.population_per_team == 280_000
    assert s.wave_sizes == (40, 40, 55, 67)
    assert [w.ramp_up for w in s.waves] == [False, True, True, True]
    assert [w.start_year for w in s.waves] == ["2022/23", "2022/23", "2023/24", "2024/25"]
    assert round(s.wte, 10) == 5.13
    assert [(p.band, p.wte) for p in s.posts] == [
        ("8c", 0.33),
        ("8b", 1.0),
        ("7", 1.0),
        ("7", 1.0),
        ("6", 1.0),
        ("4", 0.8),
    ]
    assert dict(s.pay_points) == {"8c": 63751, "8b": 53168, "7": 40894, "6": 33176, "4": 24157}
    assert round(s.salary_bill, 6) == 208_495.43
    assert (s.oncost_uplift, s.pay_growth, s.starting_labour_share) == (1.14, 1.03, 0.5)
    assert (s.training_first_year, s.training_second_year) == (11_077.50, 4_987.50)
    assert s.development_programme == (500_000, 1_000_000, 1_000_000, 0)
    assert (s.babies_full_year, s.babies_first_year) == (150, 50)
    assert s.years == ("2022/23", "2023/24", "2024/25", "2025/26")
    assert s.spending_review == s.years[:3]
    assert s.regional_fair_shares is True and s.locks == ()
    assert (s.partition_preset, s.partition_tolerance) == ("la_aligned", 0.10)
    assert wave_dates(s, 1) == ("2022/23", "2022/23")
    assert wave_dates(s, 2) == ("2022/23", "2023/24")
    assert wave_dates(s, 4) == ("2024/25", "2025/26")


def test_bundled_toml_is_commented() -> None:
    keys = [
        line.split("=")[0].strip()
        for line in BUNDLED.splitlines()
        if "=" in line and not line.lstrip().startswith(("#", "{", '"'))
    ]
    lines = BUNDLED.splitlines()
    assert BUNDLED.count("Proposal:") >= 10
    for i, line in enumerate(lines):
        if line.strip().startswith("[") and not line.strip().startswith("[["):
            assert lines[i + 1].lstrip().startswith("#"), f"section {line} has no comment"
    assert "teams" in keys and "pay_growth" in keys


def test_partial_file_takes_defaults_and_preset_tolerance(tmp_path: Path) -> None:
    s = load_scenario(write(tmp_path, '[partition]\npreset = "equal_size"\n'))
    assert s.partition_tolerance == 0.005
    assert dataclasses.replace(s, partition_preset="la_aligned", partition_tolerance=0.10) == (
        default_scenario()
    )


def test_extra_years_and_locks(tmp_path: Path) -> None:
    path = edited(
        tmp_path,
        'labels = ["2022/23", "2023/24", "2024/25", "2025/26"]',
        'labels = ["2022/23", "2023/24", "2024/25", "2025/26", "2026/27"]',
    )
    text = path.read_text().replace("[phasing.locks]\n", '[phasing.locks]\n"QWO-1" = 2\n')
    s = load_scenario(write(tmp_path, text))
    assert s.years[-1] == "2026/27"
    assert s.development("2026/27") == 0.0
    assert s.locks_dict == {"QWO-1": 2}


def test_rescale_teams_scales_waves() -> None:
    s = rescale_teams(default_scenario(), 226, population_per_team=250_000)
    assert s.teams == 226 and sum(s.wave_sizes) == 226
    assert s.wave_sizes == tuple(largest_remainder([40, 40, 55, 67], 226))
    assert s.population_per_team == 250_000
    assert largest_remainder([1, 1, 1], 2) == [1, 1, 0]
    assert next_year("2025/26") == "2026/27" and next_year("2099/00") == "2100/01"


BAD_CASES = [
    # (old text, new text, key in the error, value in the error)
    ("pay_growth = 1.03", 'pay_growth = "1.03"', "costs.pay_growth", "'1.03'"),
    (
        "training_first_year = 11077.50",
        "training_first_year = -5",
        "costs.training_first_year",
        "-5",
    ),
    ("teams = 202", "teams = 203", "waves", "[40, 40, 55, 67]"),
    ("oncost_uplift = 1.14", "oncost_uplift = 1.14\nbogus = 1", "costs.bogus", "1"),
    (
        '"2023/24", "2024/25", "2025/26"]',
        '"2024/25", "2023/24", "2025/26"]',
        "years.labels[1]",
        "'2024/25'",
    ),
    ('"8c" = 63751', '"8c" = -63751', "pay_points.8c", "-63751"),
    (
        "regional_fair_shares = true",
        'regional_fair_shares = "yes"',
        "phasing.regional_fair_shares",
        "'yes'",
    ),
    ('preset = "la_aligned"', 'preset = "squares"', "partition.preset", "'squares'"),
    ('band = "4"', 'band = "9"', "team.posts[5].band", "'9'"),
    ("teams = 67", "teams = 67.5", "waves[3].teams", "67.5"),
    (
        "development_programme = [500000, 1000000, 1000000, 0]",
        "development_programme = [500000, 1000000, 1000000, 0, 0]",
        "costs.development_programme",
        "[500000.0",
    ),
]


@pytest.mark.parametrize(("old", "new", "key", "value"), BAD_CASES)
def test_bad_values_name_file_key_value_fix(
    tmp_path: Path, old: str, new: str, key: str, value: str
) -> None:
    path = edited(tmp_path, old, new)
    with pytest.raises(PlannerError) as info:
        load_scenario(path)
    err = info.value
    assert err.file == str(path) and err.field == key and err.fix
    assert str(path) in str(err) and f"'{key}'" in str(err) and value in str(err)
    assert validate_scenario_file(path)[0].field == key


def test_line_number_given(tmp_path: Path) -> None:
    path = edited(tmp_path, "pay_growth = 1.03", 'pay_growth = "x"')
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "pay_growth =" in t)
    assert f"(line {line})" in str(raises(load_scenario, path))


def test_validate_collects_every_problem(tmp_path: Path) -> None:
    text = (
        BUNDLED.replace("pay_growth = 1.03", 'pay_growth = "x"')
        .replace("babies_full_year = 150", "babies_full_year = -1")
        .replace("seed = 2021", "seed = 2021\ncolour = 'blue'")
    )
    problems = validate_scenario_file(write(tmp_path, text))
    assert {p.field for p in problems} == {
        "costs.pay_growth",
        "capacity.babies_full_year",
        "colour",
    }
    assert all(isinstance(p, PlannerError) and p.file for p in problems)


def test_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    path = edited(tmp_path, "pay_growth = 1.03", "pay_growth 1.03")
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "pay_growth 1" in t)
    with pytest.raises(PlannerError) as info:
        load_scenario(path)
    text = str(info.value)
    assert str(path) in text and f"line {line}, column" in text and "pay_growth 1.03" in text
    assert [str(p) for p in validate_scenario_file(path)] == [text]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PlannerError, match="not found"):
        load_scenario(tmp_path / "nope.toml")


def test_lock_beyond_last_wave(tmp_path: Path) -> None:
    path = write(tmp_path, BUNDLED.replace("[phasing.locks]\n", '[phasing.locks]\n"QWO-1" = 9\n'))
    err = raises(load_scenario, path)
    assert err.field == "phasing.locks.QWO-1" and err.value == 9
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if '"QWO-1"' in t)
    assert f"(line {line})" in str(err)


def test_overrides() -> None:
    s = with_overrides(default_scenario(), seed=7, preset="equal_size")
    assert (s.seed, s.partition_preset, s.partition_tolerance) == (7, "equal_size", 0.005)
    assert with_overrides(default_scenario()) == default_scenario()
    assert raises(with_overrides, default_scenario(), preset="round").field == "--preset"


# ----------------------------------------------------------------------------- extreme values


@pytest.mark.parametrize(
    ("old", "new", "key", "message"),
    [
        ("seed = 2021", "seed = -1", "seed", "cannot be negative"),
        ("seed = 2021", "seed = 4294967296", "seed", "at most 4,294,967,295"),
        ('"8c" = 63751', '"8c" = 1e308', "pay_points.8c", "at most 1,000,000"),
        ('band = "4", wte = 0.8', 'band = "4", wte = 1e300', "team.posts[5].wte", "at most 100"),
        ("oncost_uplift = 1.14", "oncost_uplift = 1e308", "costs.oncost_uplift", "at most 10"),
        ("base_weight = 1.0", "base_weight = 1e308", "need.base_weight", "at most 1,000,000"),
        ('sizing = "uniform"', 'sizing = "big"', "team.sizing", "must be one of uniform, need"),
        ("sizing_min = 0.75", "sizing_min = 1.2", "team.sizing_min", "at most 1"),
        ("sizing_min = 0.75", "sizing_min = 0", "team.sizing_min", "greater than zero"),
        ("sizing_max = 1.5", "sizing_max = 0.9", "team.sizing_max", "at least 1"),
        (
            'wave_one_without_service = "full"',
            'wave_one_without_service = "half"',
            "phasing.wave_one_without_service",
            "must be one of full, new",
        ),
    ],
)
def test_out_of_range_values_give_one_clear_error(
    tmp_path: Path, old: str, new: str, key: str, message: str
) -> None:
    path = edited(tmp_path, old, new)
    problems = validate_scenario_file(path)
    assert [p.field for p in problems] == [key]
    text = str(problems[0])
    assert message in text and str(path) in text and "Fix:" in text
    assert "money" not in text or key.startswith("pay_points")
    assert str(raises(load_scenario, path)) == text


def test_costs_that_overflow_are_one_error(tmp_path: Path) -> None:
    years = ", ".join(f'"{y}/{(y + 1) % 100:02d}"' for y in range(2022, 2222))
    path = edited(
        tmp_path,
        'labels = ["2022/23", "2023/24", "2024/25", "2025/26"]',
        f"labels = [{years}]",
    )
    text = path.read_text().replace("pay_growth = 1.03", "pay_growth = 9")
    problems = validate_scenario_file(write(tmp_path, text))
    assert [p.field for p in problems] == ["team.posts"]
    assert "beyond any budget" in str(problems[0]) and "2221/22" in str(problems[0])


def test_seed_override_is_checked() -> None:
    err = raises(with_overrides, default_scenario(), seed=-1)
    assert err.field == "--seed" and "money" not in str(err) and "0 to" in str(err)


def test_one_team_names_the_file(tmp_path: Path) -> None:
    path = edited(tmp_path, "teams = 202", "teams = 1")
    err = raises(load_scenario, path)
    assert err.file == str(path) and err.field == "waves"
    # waves that add up to one team: the file is still named, once the areas are known
    one = path.read_text()
    start = one.index("[[waves]]")
    end = one.index("\n[need]\n")
    one = (
        one[:start]
        + '[[waves]]\nteams = 1\nstart_year = "2022/23"\nramp_up = false\n\n'
        + one[end:]
    )
    scenario = load_scenario(write(tmp_path, one, "one.toml"))
    err = raises(resolve_teams, scenario, england_areas())
    assert err.file == str(tmp_path / "one.toml") and err.field == "coverage.teams"
    assert "at least one team each" in str(err) and "between 42 and 33,755" in str(err)


# ----------------------------------------------------------------------------- teams from population


def england_areas() -> pd.DataFrame:
    """The real small areas of England: population (Census 2021) and ICB, from the mirror."""
    mirror = _mirror()
    population = pd.read_csv(
        mirror / "population" / "census2021_ts001_usual_residents_lsoa21_england.csv",
        usecols=["LSOA21CD", "usual_residents_total"],
    )
    lookup = pd.read_csv(
        mirror / "lookups" / "lsoa21_msoa21_wd24_lad24_rgn24_sicbl24_icb24_nhser24_england.csv",
        usecols=["LSOA21CD", "ICB24CD"],
    )
    frame = population.merge(lookup, on="LSOA21CD", validate="1:1")
    return frame.rename(columns={"usual_residents_total": "population", "ICB24CD": "icb24cd"})


def _mirror() -> Path:
    path = Path(os.environ.get("PLANNER_MIRROR", DEFAULT_MIRROR)).resolve()
    if not (path / "MANIFEST.md").exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but the open-data mirror is missing at {path}")
        pytest.skip(f"open-data mirror not found at {path}")
    return path


COVERAGE = "population_per_team = 280000"


def test_proposal_gives_202_teams_either_way(tmp_path: Path) -> None:
    areas = england_areas()
    assert int(areas["population"].sum()) == 56_490_056
    proposal = resolve_teams(load_scenario(), areas)
    assert proposal.teams == 202 and not proposal.teams_from_population
    assert describe_teams(proposal, 56_490_056) == (
        "202 teams (coverage.teams; England's 56,490,056 people ÷ 280,000 per team gives the same)"
    )
    derived = load_scenario(edited(tmp_path, "teams = 202\n", ""))
    assert derived.teams is None
    resolved = resolve_teams(derived, areas)
    assert resolved.teams == 202 and resolved.teams_from_population
    assert describe_teams(resolved, 56_490_056).startswith("202 teams: England's 56,490,056")


def test_population_per_team_250000_without_teams(tmp_path: Path) -> None:
    """Issue 12's acceptance: fails clearly, then makes 226 teams once the waves are scaled."""
    areas = england_areas()
    path = edited(tmp_path, "teams = 202\n", "").read_text()
    path = write(tmp_path, path.replace(COVERAGE, "population_per_team = 250000"))
    assert validate_scenario_file(path) == []  # the file itself is good; the data decide
    err = raises(resolve_teams, load_scenario(path), areas)
    assert err.file == str(path) and err.field == "waves"
    text = str(err)
    assert "give 226 teams" in text and "sum to 202" in text
    assert "set the [[waves]] teams to 45, 45, 61, 75" in text
    assert "or give coverage.teams = 202" in text
    # follow the fix
    text = path.read_text()
    for old, new in ((40, 45), (40, 45), (55, 61), (67, 75)):
        text = text.replace(f"[[waves]]\nteams = {old}\n", f"[[waves]]\nteams = {new}\n", 1)
    scenario = resolve_teams(load_scenario(write(tmp_path, text, "fixed.toml")), areas)
    assert scenario.teams == 226 and scenario.wave_sizes == (45, 45, 61, 75)
    assert scenario.teams_from_population


def test_explicit_teams_win_and_the_summary_says_so() -> None:
    scenario = dataclasses.replace(default_scenario(), population_per_team=250_000)
    resolved = resolve_teams(scenario, england_areas())
    assert resolved.teams == 202
    assert describe_teams(resolved, 56_490_056) == (
        "202 teams, as coverage.teams says; England's 56,490,056 people ÷ 250,000 per team "
        "would give 226 (population_per_team is not used while teams is given)"
    )


def test_too_few_people_per_team(tmp_path: Path) -> None:
    text = edited(tmp_path, "teams = 202\n", "").read_text()
    path = write(tmp_path, text.replace(COVERAGE, "population_per_team = 1000"))
    err = raises(resolve_teams, load_scenario(path), england_areas())
    assert err.field == "coverage.population_per_team" and err.value == 1000
    assert "56,490 teams cannot cover" in str(err) and "between 1,674 and" in str(err)
    assert teams_for_population(56_490_056, 1000) == 56_490


# ----------------------------------------------------------------------------- sizing and wave one


def test_sizing_keys(tmp_path: Path) -> None:
    path = edited(tmp_path, 'sizing = "uniform"', 'sizing = "need"')
    s = load_scenario(path)
    assert (s.team_sizing, s.team_sizing_min, s.team_sizing_max) == ("need", 0.75, 1.5)
    assert (default_scenario().team_sizing, default_scenario().wave_one_without_service) == (
        "uniform",
        "full",
    )

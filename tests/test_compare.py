"""`planner compare`: the change report between two exports folders, CSVs and the HTML map."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pandas as pd
import pytest
from synthetic_plan import carried_over, synthetic_plan

from planner import compare, tables
from planner.errors import PlannerError

EVIL_NAME = "<script>window.__pwned=1</script>{{ 7*7 }}{% for x in y %}{#"


@pytest.fixture(scope="module")
def two_plans(tmp_path_factory, web_assets):
    """An old plan, and a new one redrawn with ids carried over, one team renamed hostilely."""
    root = tmp_path_factory.mktemp("compare")
    old, _, assignment = carried_over(root)
    new = synthetic_plan(assignment=assignment)
    catch = new.catchments.copy()
    catch.loc[catch["team_id"] == "Q00-1", "name"] = EVIL_NAME
    plan = new.plan.copy()
    plan.loc[plan["team_id"] == "Q00-1", "name"] = EVIL_NAME
    new = dataclasses.replace(new, catchments=catch, plan=plan)
    tables.write_plan_exports(root / "new", new, provenance="new")
    paths = compare.write_report(root / "old", root / "new", root / "report", assets_dir=web_assets)
    return root, old, new, paths


def test_report_files(two_plans) -> None:
    root, *_, paths = two_plans
    assert sorted(p.name for p in paths) == sorted(compare.FILES)
    assert sorted(p.name for p in (root / "report").iterdir()) == sorted([*compare.FILES, "assets"])


def test_team_statuses(two_plans) -> None:
    root, old, new, _ = two_plans
    teams = pd.read_csv(root / "report" / "changes_teams.csv", keep_default_na=False)
    assert list(teams.columns) == compare.TEAM_COLUMNS
    status = teams.set_index("team_id")["status"]
    # the scrambled ICB: its old teams are gone, its new teams are new
    q10 = status[status.index.str.startswith("Q10-")]
    k = int((old.plan["team_id"].str.startswith("Q10-")).sum())
    assert (q10.iloc[:k] == compare.GONE).all() and (q10.iloc[k:] == compare.NEW).all()
    assert status["Q00-1"] == compare.RENAMED
    others = status.drop([*q10.index, "Q00-1"])
    old_names = old.plan.set_index("team_id")["name"]
    new_names = new.plan.set_index("team_id")["name"]
    for tid, s in others.items():
        assert s == (compare.KEPT if old_names[tid] == new_names[tid] else compare.RENAMED), tid
    waves = teams.set_index("team_id")
    both = waves[waves["status"].isin([compare.KEPT, compare.RENAMED])]
    moved = both[both["old_wave"] != both["new_wave"]]
    assert (
        moved["wave_change"]
        == moved["old_wave"].astype(str) + " → " + moved["new_wave"].astype(str)
    ).all()
    assert (both.loc[both["old_wave"] == both["new_wave"], "wave_change"] == "").all()


def test_area_changes_match_the_two_files(two_plans) -> None:
    root, *_ = two_plans
    old = pd.read_csv(root / "old" / "lsoa_to_team.csv")
    new = pd.read_csv(root / "new" / "lsoa_to_team.csv")
    both = old.merge(new, on="lsoa21cd", suffixes=("_o", "_n"))
    expected = both[both["team_id_o"] != both["team_id_n"]]
    areas = pd.read_csv(root / "report" / "changes_areas.csv")
    assert list(areas.columns) == compare.AREA_COLUMNS
    assert areas["lsoa21cd"].tolist() == sorted(expected["lsoa21cd"])
    row = areas.iloc[0]
    src = expected.set_index("lsoa21cd").loc[row["lsoa21cd"]]
    assert (row["old_team_id"], row["new_team_id"]) == (src["team_id_o"], src["team_id_n"])
    teams = pd.read_csv(root / "report" / "changes_teams.csv").set_index("team_id")
    assert teams["areas_in"].sum() == len(areas) == teams["areas_out"].sum()


def test_icb_costs_old_against_new(two_plans) -> None:
    root, *_ = two_plans
    icb = pd.read_csv(root / "report" / "changes_by_icb.csv")
    assert list(icb.columns) == compare.ICB_COLUMNS
    old = pd.read_csv(root / "old" / "costs_by_icb.csv").set_index(["area_code", "year"])
    new = pd.read_csv(root / "new" / "costs_by_icb.csv").set_index(["area_code", "year"])
    for r in icb.itertuples(index=False):
        assert r.old_cost == old.at[(r.area_code, r.year), "cost"]
        assert r.new_cost == new.at[(r.area_code, r.year), "cost"]
        assert r.cost_change == r.new_cost - r.old_cost
        assert r.babies_change == r.new_babies - r.old_babies
    assert icb["cost_change"].abs().sum() > 0  # waves moved with the redrawing


def test_page_escapes_plan_text(two_plans) -> None:
    root, *_ = two_plans
    html = (root / "report" / "changes.html").read_text()
    assert "<script>window.__pwned" not in html
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;{{ 7*7 }}{% for x in y %}{#" in html
    assert html.count("{{ 7*7 }}") >= 1
    assert "Open Government Licence" in html


def test_report_is_deterministic(two_plans, tmp_path: Path, web_assets: Path) -> None:
    root, *_, paths = two_plans
    again = compare.write_report(root / "old", root / "new", tmp_path, assets_dir=web_assets)
    assert {p.name: p.read_bytes() for p in paths} == {p.name: p.read_bytes() for p in again}


def test_missing_or_broken_exports(two_plans, tmp_path: Path, web_assets: Path) -> None:
    root, *_ = two_plans
    with pytest.raises(PlannerError, match="does not exist"):
        compare.write_report(
            tmp_path / "nope", root / "new", tmp_path / "out", assets_dir=web_assets
        )
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("teams.csv", "lsoa_to_team.csv", "costs_by_icb.csv"):
        (broken / name).write_bytes((root / "old" / name).read_bytes())
    text = (broken / "teams.csv").read_text().splitlines()
    cells = text[1].split(",")
    cells[text[0].split(",").index("wave")] = "soon"
    (broken / "teams.csv").write_text("\n".join([text[0], ",".join(cells), *text[2:]]) + "\n")
    with pytest.raises(PlannerError) as info:
        compare.write_report(broken, root / "new", tmp_path / "out", assets_dir=web_assets)
    assert info.value.row == 2 and info.value.field == "wave" and info.value.value == "soon"
    (broken / "teams.csv").write_bytes((root / "old" / "teams.csv").read_bytes())
    with pytest.raises(PlannerError, match=re.escape("catchments.gpkg")):
        compare.write_report(broken, root / "new", tmp_path / "out", assets_dir=web_assets)
    assert not (tmp_path / "out").exists()


@pytest.mark.browser
def test_page_draws_changed_catchments_in_a_browser(two_plans) -> None:
    from browser_assets import CHROMIUM_ARGS, console_problem, missing_assets, route_assets

    if missing_assets() or not Path("/usr/bin/chromium").exists():
        if os.environ.get("CI"):
            pytest.fail("browser assets or /usr/bin/chromium missing")
        pytest.skip("browser assets or /usr/bin/chromium missing")
    sync_api = pytest.importorskip("playwright.sync_api")
    root, *_ = two_plans
    teams = pd.read_csv(root / "report" / "changes_teams.csv")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        problems: list[str] = []
        unexpected: list[str] = []
        page.on("console", lambda m: problems.append(console_problem(m) or ""))
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        route_assets(page, unexpected)
        page.goto((root / "report" / "changes.html").as_uri())
        page.wait_for_function("window.plannerChanges !== undefined")
        drawn = page.evaluate("document.querySelectorAll('path.leaflet-interactive').length")
        # every new catchment, and the old shape of every gone team: one per row of the CSV
        assert drawn == len(teams)
        tip = page.evaluate(
            """() => { let text = null; window.plannerChanges.eachLayer(l => {
                   if (l.feature.properties.lines[0].startsWith('Q00-1:')) {
                       l.openTooltip(l.getBounds().getCenter());
                       text = l.getTooltip().getElement().innerText; } });
               return text; }"""
        )
        assert EVIL_NAME in tip
        assert page.evaluate("window.__pwned") is None
        assert [p for p in problems if p] == [] and unexpected == []
        browser.close()

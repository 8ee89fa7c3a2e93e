"""Map pages: content, escaping, geometry, sizes; and in a real headless Chromium.

Inputs are the real national plan (tests/conftest.py `national_plan`), cut to
three ICBs in three regions so the browser suite stays quick; one test writes
every national page to check the size budgets.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
import shapely
from browser_assets import (
    CHROMIUM_ARGS,
    asset_dir,
    console_problem,
    missing_assets,
    route_assets,
    wait_until_fitted,
)

from planner import maps, pipeline
from planner.errors import PlannerError

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
ICBS = ["E54000054", "E54000036", "E54000027"]  # West Yorkshire, Cornwall, North West London
WEST_YORKSHIRE, NORTH_EAST_YORKS = "E54000054", "E40000012"
EVIL_NOTE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
EVIL_NAME = 'Wakefield <img src=x onerror="window.__pwned=3">'
PAGES = ["index.html", f"region/{NORTH_EAST_YORKS}.html", f"icb/{WEST_YORKSHIRE}.html"]


YEARS = ["2022/23", "2023/24", "2024/25", "2025/26"]
VINTAGE = pipeline.VINTAGE.removeprefix("Data: ")


def _subset(national_plan, icbs: list[str] | None):
    plan, areas, assignment = national_plan.plan, national_plan.areas, national_plan.assignment
    if icbs is not None:
        plan = plan[plan["icb24cd"].isin(icbs)].reset_index(drop=True)
        areas = areas[areas["icb24cd"].isin(icbs)].reset_index(drop=True)
        assignment = assignment[assignment["team_id"].isin(plan["team_id"])].reset_index(drop=True)
    return plan.copy(), areas, assignment


def _is_leeds_only(name: str) -> bool:
    """A catchment named after Leeds alone, e.g. "Leeds North" (not "Leeds & Wakefield")."""
    return name.startswith("Leeds") and "&" not in name


@pytest.fixture(scope="module")
def leeds(inputs) -> str:
    """The first Leeds-only catchment of the real plan (names follow the partition)."""
    return sorted(name for name in inputs[0]["name"] if _is_leeds_only(name))[0]


@pytest.fixture(scope="module")
def inputs(national_plan):
    plan, areas, assignment = _subset(national_plan, ICBS)
    assert any(_is_leeds_only(name) for name in plan["name"]), sorted(plan["name"])
    bradford = plan["name"].str.startswith("Bradford")
    plan.loc[bradford.idxmax(), "readiness_note"] = EVIL_NOTE
    wakefield = plan["name"].str.contains("Wakefield")
    plan.loc[wakefield.idxmax(), "name"] = EVIL_NAME
    return plan, areas, assignment


@pytest.fixture(scope="module")
def site(inputs, tmp_path_factory, web_assets):
    out = tmp_path_factory.mktemp("maps")
    written = maps.write_maps(out, *inputs, YEARS, VINTAGE, assets_dir=web_assets)
    return out, written


def _pages(out: Path) -> list[Path]:
    return sorted(out.rglob("*.html"))


# ------------------------------------------------------------------ files and content


def test_writes_index_region_and_icb_pages(site, inputs):
    out, written = site
    plan = inputs[0]
    expected = (
        {"index.html"}
        | {f"region/{c}.html" for c in plan["nhser24cd"].unique()}
        | {f"icb/{c}.html" for c in plan["icb24cd"].unique()}
    )
    assert set(written.sizes) == expected
    assert {str(p.relative_to(out)) for p in _pages(out)} == expected
    assert not [p for p in out.rglob("*") if p.name.startswith(".")], "temporary files left"
    for rel, size in written.sizes.items():
        assert (out / rel).stat().st_size == size


def test_every_link_between_pages_resolves(site):
    out, _ = site
    for page in _pages(out):
        hrefs = re.findall(r'<a href="([^"#:]+)"', page.read_text(encoding="utf-8"))
        assert hrefs, page
        for href in hrefs:
            assert (page.parent / href).resolve().is_file(), f"{page.name} -> {href}"
    index = (out / "index.html").read_text(encoding="utf-8")
    for p in _pages(out):
        if p.name != "index.html":
            assert f'href="{p.relative_to(out)}"' in index


def test_every_page_shows_vintage_licence_and_only_local_web_files(site):
    out, _ = site
    licence = maps.OGL_LINE.replace("©", "&copy;")
    for page in _pages(out):
        text = page.read_text(encoding="utf-8")
        assert maps.OGL_LINE in text or licence in text, page
        assert f'<div class="vintage">Data: {VINTAGE}</div>' in text, page
        scripts = set(re.findall(r'<script src="([^"]+)"', text))
        sheets = set(re.findall(r'<link rel="stylesheet" href="([^"]+)"', text))
        for src in scripts | sheets:  # maps11: local copies under maps/assets/
            assert not re.match(r"\w+:", src) and (page.parent / src).resolve().is_file(), src
        root = "" if page.parent == out else "../"
        assert f"{root}assets/leaflet-1.9.3/dist/leaflet.js" in scripts


def test_user_text_is_escaped_in_html(site):
    out, _ = site
    for rel in ["index.html", f"region/{NORTH_EAST_YORKS}.html", f"icb/{WEST_YORKSHIRE}.html"]:
        text = (out / rel).read_text(encoding="utf-8")
        assert "<script>window.__pwned" not in text
        assert "<img src=x" not in text
    region = (out / f"region/{NORTH_EAST_YORKS}.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in region


def test_icb_page_has_breadcrumbs_tables_and_layers(site, inputs):
    out, _ = site
    plan = inputs[0]
    text = (out / f"icb/{WEST_YORKSHIRE}.html").read_text(encoding="utf-8")
    assert 'href="../index.html"' in text and f'href="../region/{NORTH_EAST_YORKS}.html"' in text
    assert "Under-3s by LSOA (estimated)" in text and "Local authority boundaries" in text
    teams = plan[plan["icb24cd"] == WEST_YORKSHIRE]
    total = maps.pounds(sum(teams[f"cost_{y.replace('/', '_')}"].sum() for y in YEARS))
    assert f'<td class="num">{total:,}</td></tr></table>' in text
    babies = int(sum(teams[f"babies_{y.replace('/', '_')}"].sum() for y in YEARS))
    assert f"{babies:,}" in text


def test_pages_are_byte_identical_on_rerun(site, inputs, tmp_path, web_assets):
    out, _ = site
    again = maps.write_maps(tmp_path, *inputs, YEARS, VINTAGE, assets_dir=web_assets)
    for rel in again.sizes:
        assert (tmp_path / rel).read_bytes() == (out / rel).read_bytes(), rel


def test_pounds_round_half_up():
    assert maps.pounds(0.5) == 1
    assert maps.pounds(2.5) == 3
    assert maps.pounds(15204186.5) == 15204187
    assert maps.pounds(1.4999) == 1


def test_bad_inputs_raise_planner_errors(inputs, tmp_path, web_assets):
    plan, areas, assignment = inputs
    with pytest.raises(PlannerError, match="readiness_note"):
        maps.write_maps(tmp_path, plan.drop(columns="readiness_note"), areas, assignment,
                        YEARS, VINTAGE)  # fmt: skip
    with pytest.raises(PlannerError, match="no team"):
        maps.write_maps(tmp_path, plan, areas, assignment.iloc[1:], YEARS, VINTAGE)
    with pytest.raises(PlannerError, match="cost_2026_27"):
        maps.write_maps(tmp_path, plan, areas, assignment, [*YEARS, "2026/27"], VINTAGE)
    with pytest.raises(PlannerError, match="over the limit"):
        maps.write_maps(tmp_path, plan, areas, assignment, YEARS, VINTAGE, assets_dir=web_assets,
                        settings=maps.MapSettings(max_index_bytes=10_000, max_retries=1))  # fmt: skip


# ------------------------------------------------------------------ geometry


def test_simplified_catchments_form_a_coverage_that_nests_exactly(inputs):
    model = maps._Model.build(*inputs, YEARS, VINTAGE)
    lsoa = model.lsoa
    assert shapely.coverage_is_valid(lsoa.geometry.values)
    teams = model.catchments(300.0)
    simple = teams.geometry.values
    # Coverage kept: no overlaps, no gaps wider than a metre between neighbours.
    assert shapely.coverage_is_valid(simple, gap_width=1.0)
    assert (
        shapely.get_num_coordinates(simple).sum()
        < shapely.get_num_coordinates(maps._dissolve(lsoa, "team_id").geometry.values).sum()
    )
    # Shared edges are identical after reprojection and rounding too.
    web = maps._web(simple, 5)
    assert shapely.coverage_is_valid(web)
    coords = shapely.get_coordinates(web)
    assert np.allclose(coords, np.round(coords, 5))
    assert coords[:, 0].min() > -7 and coords[:, 0].max() < 2 and coords[:, 1].min() > 49.8
    # ICB outlines derived from the simplified catchments follow their edges exactly.
    icbs = maps._dissolve(teams, "icb24cd")
    for code, outline in zip(icbs["icb24cd"], icbs.geometry.values, strict=True):
        members = simple[teams["icb24cd"].to_numpy() == code]
        assert shapely.equals(outline, shapely.union_all(members))


@pytest.mark.slow
def test_national_pages_fit_their_size_budgets(national_plan, tmp_path, web_assets):
    plan, areas, assignment = _subset(national_plan, None)
    written = maps.write_maps(tmp_path, plan, areas, assignment, YEARS, VINTAGE,
                              assets_dir=web_assets)  # fmt: skip
    assert len([k for k in written.sizes if k.startswith("icb/")]) == 42
    assert len([k for k in written.sizes if k.startswith("region/")]) == 7
    assert written.sizes["index.html"] <= 5_000_000
    assert max(v for k, v in written.sizes.items() if k.startswith("icb/")) <= 2_000_000


# ------------------------------------------------------------------ real browser


@pytest.fixture(scope="module")
def browser():
    missing = missing_assets()
    if missing:
        msg = (f"browser assets missing under {asset_dir()} ({len(missing)} files); run "
               "scripts/fetch_browser_assets.sh")  # fmt: skip
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path("/usr/bin/chromium").exists():
        if os.environ.get("CI"):
            pytest.fail("/usr/bin/chromium is missing (apt-get install chromium)")
        pytest.skip("/usr/bin/chromium is missing")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Opened:
    def __init__(self, page, problems: list[str], unexpected: list[str]) -> None:
        self.page, self.problems, self.unexpected = page, problems, unexpected


def _open(browser, path: Path) -> Opened:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    problems: list[str] = []
    unexpected: list[str] = []
    page.on(
        "console", lambda m: problems.append(console_problem(m)) if console_problem(m) else None
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    route_assets(page, unexpected)
    page.goto(path.as_uri())
    page.wait_for_function("window.plannerMap !== undefined && window.plannerSearch !== undefined")
    wait_until_fitted(page)  # maps11: the first fitBounds must land before a test moves the map
    page.wait_for_timeout(300)
    return Opened(page, problems, unexpected)


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


_POINT_IN = """(name) => {
    let target = null;
    window.plannerCatchments.eachLayer(l => {
        if (l.feature.properties.name === name) { target = l; }
    });
    if (!target) { return null; }
    window.plannerMap.fitBounds(target.getBounds(), {animate: false});
    const r = target._path.getBoundingClientRect();
    for (let fy = 0.5; fy < 1; fy += 0.05) {
        for (const sy of [1, -1]) {
            for (let fx = 0.05; fx < 1; fx += 0.05) {
                const x = r.left + r.width * fx, y = r.top + r.height * (sy > 0 ? fy : 1 - fy);
                if (document.elementFromPoint(x, y) === target._path) { return [x, y]; }
            }
        }
    }
    return null;
}"""


def _hover_tooltip(page, name: str) -> str:
    point = page.evaluate(_POINT_IN, name)
    assert point, f"no visible point inside {name}"
    page.mouse.move(point[0], point[1])
    tip = page.locator(".leaflet-tooltip.planner-tip")
    tip.wait_for(state="visible", timeout=5000)
    return tip.inner_text()


@pytest.mark.browser
@pytest.mark.parametrize("rel", PAGES)
def test_page_renders_one_path_per_catchment_with_tooltips(browser, site, inputs, leeds, rel):
    out, _ = site
    plan = inputs[0]
    if rel.startswith("region/"):
        teams = plan[plan["nhser24cd"] == NORTH_EAST_YORKS]
    elif rel.startswith("icb/"):
        teams = plan[plan["icb24cd"] == WEST_YORKSHIRE]
    else:
        teams = plan
    opened = _open(browser, out / rel)
    page = opened.page
    try:
        assert page.locator("path.planner-catchment").count() == len(teams)
        assert page.evaluate("window.plannerCatchments.getLayers().length") == len(teams)
        assert page.locator("footer.planner-foot").inner_text().count("Open Government Licence")
        hrefs = page.eval_on_selector_all("header a, aside a", "els => els.map(e => e.href)")
        assert hrefs
        for href in hrefs:
            assert href.startswith("file://"), href
            assert Path(unquote(urlparse(href).path)).is_file(), href
        text = _hover_tooltip(page, leeds)
        assert "Leeds" in text and "Operating from" in text and "£" in text
        _shot(page, rel.replace("/", "_").replace(".html", ".png"))
        assert page.evaluate("window.__pwned") is None
        assert not opened.problems, opened.problems
        assert not opened.unexpected, opened.unexpected
    finally:
        page.close()


@pytest.mark.browser
def test_search_finds_leeds_and_zooms(browser, site, leeds):
    out, _ = site
    opened = _open(browser, out / "index.html")
    page = opened.page
    try:
        before = page.evaluate("window.plannerMap.getZoom()")
        page.locator(".leaflet-control-search input.search-input").fill("")
        page.locator(".leaflet-control-search input.search-input").type("Leeds", delay=30)
        tips = page.locator(".leaflet-control-search .search-tip")
        tips.first.wait_for(state="visible", timeout=5000)
        labels = tips.all_inner_texts()
        assert "Leeds (local authority)" in labels, labels
        assert any(t.startswith(f"{leeds} (team ") for t in labels), labels
        tips.filter(has_text="Leeds (local authority)").click()
        # (wait for the move itself, not for the end of the page's first fitBounds)
        page.wait_for_function(
            f"window.plannerMap.getZoom() > {before} && window.plannerMap.getCenter().lat > 53.6",
            timeout=5000,
        )
        centre = page.evaluate(
            "[window.plannerMap.getCenter().lat, window.plannerMap.getCenter().lng]"
        )
        assert 53.6 < centre[0] < 54.0 and -1.8 < centre[1] < -1.3, centre
        _shot(page, "index_search_leeds.png")
        # Other kinds of place are found anywhere in their names, as plain text.
        page.locator(".leaflet-control-search input.search-input").fill("")
        page.locator(".leaflet-control-search input.search-input").type("yorkshire", delay=30)
        tips.first.wait_for(state="visible", timeout=5000)
        assert "NHS West Yorkshire Integrated Care Board (ICB)" in tips.all_inner_texts()
        assert not opened.problems and not opened.unexpected
    finally:
        page.close()


@pytest.mark.browser
def test_rollout_control_shows_teams_operating_each_year(browser, site, inputs):
    out, _ = site
    plan = inputs[0]
    opened = _open(browser, out / "index.html")
    page = opened.page
    try:
        for i, year in enumerate(YEARS):
            page.locator(f'.planner-legend input[value="{year}"]').check()
            starts = [YEARS.index(v) for v in plan["operating_from"]]
            expected = sum(1 for s in starts if s <= i)
            assert page.locator(".planner-legend .count").inner_text() == (
                f"{expected} teams operating in {year}"
            )
            grey = page.evaluate(
                "(() => { let n = 0; window.plannerCatchments.eachLayer(l => {"
                f" if (l.options.fillColor === '{maps.NOT_YET_COLOUR}') n++; }}); return n; }})()"
            )
            assert grey == len(plan) - expected
            if i == 1:
                _shot(page, "index_rollout_2023_24.png")
        page.locator('.planner-legend input[value="all"]').check()
        assert (
            page.locator(".planner-legend .count").inner_text()
            == f"{len(plan)} teams, coloured by wave"
        )
    finally:
        page.close()


@pytest.mark.browser
def test_script_in_user_text_shows_as_text_and_never_runs(browser, site):
    out, _ = site
    for rel in PAGES:
        opened = _open(browser, out / rel)
        page = opened.page
        try:
            assert page.evaluate("window.__pwned") is None, rel
            tip = _hover_tooltip(page, maps._e(EVIL_NAME))
            assert EVIL_NAME in tip, tip
            if rel.startswith("region/"):
                assert page.get_by_text(EVIL_NOTE, exact=False).count() >= 1
                assert EVIL_NOTE in page.locator("table.candidates").inner_text()
            if rel.startswith("icb/"):
                assert EVIL_NAME in page.locator("aside.planner-side").inner_text()
                labels = page.locator(".team-label").all_inner_texts()
                assert EVIL_NAME in labels, labels
            time.sleep(0.2)
            assert page.evaluate("window.__pwned") is None, rel
            assert not opened.problems, opened.problems
        finally:
            page.close()


@pytest.mark.browser
def test_icb_page_lsoa_layer_and_labels(browser, site, inputs):
    out, _ = site
    _, areas, _ = inputs
    opened = _open(browser, out / f"icb/{WEST_YORKSHIRE}.html")
    page = opened.page
    try:
        assert page.locator(".team-label").count() == page.locator("path.planner-catchment").count()
        assert page.locator("path.planner-lsoa").count() == 0
        page.get_by_text("Under-3s by LSOA (estimated)").click()
        n_lsoa = int((areas["icb24cd"] == WEST_YORKSHIRE).sum())
        page.wait_for_function(
            f"document.querySelectorAll('path.planner-lsoa').length === {n_lsoa}"
        )
        _shot(page, "icb_under3_layer.png")
        assert not opened.problems, opened.problems
    finally:
        page.close()

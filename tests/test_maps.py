"""Map pages: content, escaping, geometry, sizes; and in a real headless Chromium.

Inputs are the real national plan (tests/conftest.py `national_plan`), cut to
three ICBs in three regions so the browser suite stays quick; one test writes
every national page to check the size budgets.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import markupsafe
import numpy as np
import pytest
import shapely
from browser_assets import (
    AXE_CORE,
    CHROMIUM_ARGS,
    asset_dir,
    console_problem,
    missing_assets,
    pinned_file,
    route_assets,
    wait_until_fitted,
)

from planner import exports, maps, tables
from planner.errors import PlannerError

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
ICBS = ["E54000054", "E54000036", "E54000027"]  # West Yorkshire, Cornwall, North West London
WEST_YORKSHIRE, NORTH_EAST_YORKS = "E54000054", "E40000012"
EVIL_NOTE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
EVIL_NAME = 'Wakefield <img src=x onerror="window.__pwned=3">'
#: Readiness notes that are Jinja syntax: each must show as text, never run or break a page.
TEMPLATE_NOTES = (
    "{{ 7*7 }}",
    "{% for x in y %}",
    "{#2 pending",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
)
PAGES = ["index.html", f"region/{NORTH_EAST_YORKS}.html", f"icb/{WEST_YORKSHIRE}.html"]


YEARS = ["2022/23", "2023/24", "2024/25", "2025/26"]
VINTAGE = "Census 2021 population (ONS), LSOA 2021 boundaries, ONS/NHS lookups April 2024"


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
    others = plan.index[(plan["icb24cd"] == WEST_YORKSHIRE) & ~bradford]
    for i, note in zip(others, TEMPLATE_NOTES, strict=False):
        plan.loc[i, "readiness_note"] = note
    assert len(others) >= len(TEMPLATE_NOTES)
    wakefield = plan["name"].str.contains("Wakefield")
    plan.loc[wakefield.idxmax(), "name"] = EVIL_NAME
    return plan, areas, assignment


@pytest.fixture(scope="module")
def site(inputs, national_plan, tmp_path_factory, web_assets):
    out = tmp_path_factory.mktemp("maps")
    figures = _team_figures(inputs, national_plan)
    written = maps.write_maps(out, *inputs, YEARS, VINTAGE, team_figures=figures,
                              assets_dir=web_assets)  # fmt: skip
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


def test_template_syntax_in_notes_is_data_never_run(site, inputs):
    """Notes in Jinja syntax reach every page literally; none is evaluated (issue 10)."""
    out, _ = site
    plan = inputs[0]
    assert set(TEMPLATE_NOTES) <= set(plan["readiness_note"])
    region = (out / f"region/{NORTH_EAST_YORKS}.html").read_text(encoding="utf-8")
    table = region[region.index('<table class="candidates"') :]
    for note in TEMPLATE_NOTES:
        assert str(markupsafe.escape(note)) in table, note
    for rel in PAGES:
        text = (out / rel).read_text(encoding="utf-8")
        assert "uid=" not in text and "<class 'object'>" not in text, rel
        for note in TEMPLATE_NOTES:  # in the page data, as JSON text
            assert note.replace("'", "\\u0027") in text, (rel, note)


def test_icb_page_has_breadcrumbs_tables_and_layers(site, inputs, national_plan):
    """The ICB's totals are the exports' shown team figures summed."""
    out, _ = site
    plan = inputs[0]
    text = (out / f"icb/{WEST_YORKSHIRE}.html").read_text(encoding="utf-8")
    assert 'href="../index.html"' in text and f'href="../region/{NORTH_EAST_YORKS}.html"' in text
    assert "Under-3s by LSOA (estimated)" in text and "Local authority boundaries" in text
    figures = _team_figures(inputs, national_plan)
    wy = figures["team_id"].isin(plan.loc[plan["icb24cd"] == WEST_YORKSHIRE, "team_id"])
    total, babies = int(figures.loc[wy, "cost"].sum()), int(figures.loc[wy, "babies"].sum())
    assert re.search(rf'<tr class="total">.*<td class="num">{total:,}</td></tr>', text)
    assert re.search(rf'<tr class="total">.*<td class="num">{babies:,}</td></tr>', text)


def test_pages_are_byte_identical_on_rerun(site, inputs, national_plan, tmp_path, web_assets):
    out, _ = site
    figures = _team_figures(inputs, national_plan)
    settings = maps.MapSettings(workers=1)  # serial: the same bytes as the workers made
    again = maps.write_maps(tmp_path, *inputs, YEARS, VINTAGE, settings=settings,
                            team_figures=figures, assets_dir=web_assets)  # fmt: skip
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
    model = maps.MapModel.build(*inputs, YEARS, VINTAGE)
    lsoa = model.lsoa
    assert shapely.coverage_is_valid(lsoa.geometry.values)
    teams = model.catchments(300.0)
    simple = teams.geometry.values
    # Coverage kept: no overlaps, no gaps wider than a metre between neighbours.
    assert shapely.coverage_is_valid(simple, gap_width=1.0)
    assert (
        shapely.get_num_coordinates(simple).sum()
        < shapely.get_num_coordinates(maps.dissolve_to(lsoa, "team_id").geometry.values).sum()
    )
    # Shared edges are identical after reprojection and rounding too.
    web = maps.to_web(simple, 5)
    assert shapely.coverage_is_valid(web)
    coords = shapely.get_coordinates(web)
    assert np.allclose(coords, np.round(coords, 5))
    assert coords[:, 0].min() > -7 and coords[:, 0].max() < 2 and coords[:, 1].min() > 49.8
    # ICB outlines derived from the simplified catchments follow their edges exactly.
    icbs = maps.dissolve_to(teams, "icb24cd")
    for code, outline in zip(icbs["icb24cd"], icbs.geometry.values, strict=True):
        members = simple[teams["icb24cd"].to_numpy() == code]
        assert shapely.equals(outline, shapely.union_all(members))


@pytest.fixture(scope="module")
def national_site(national_plan, tmp_path_factory, web_assets):
    plan, areas, assignment = _subset(national_plan, None)
    out = tmp_path_factory.mktemp("national-maps")
    return out, maps.write_maps(out, plan, areas, assignment, YEARS, VINTAGE,
                                assets_dir=web_assets)  # fmt: skip


@pytest.mark.slow
def test_national_pages_fit_their_size_budgets(national_site):
    _, written = national_site
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
    wait_until_fitted(page)  # a test moves the map only after its first view
    page.wait_for_timeout(300)
    return Opened(page, problems, unexpected)


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


_POINT_IN = """(name) => {
    const data = JSON.parse(document.getElementById('planner-data').textContent);
    const index = data.teams.findIndex(t => t.name === name);
    let target = null;
    window.plannerCatchments.eachLayer(l => {
        if (l.feature.properties.i === index) { target = l; }
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


def _point_in(page, name: str) -> list[float]:
    point = page.evaluate(_POINT_IN, name)
    assert point, f"no visible point inside {name}"
    return point


def _hover_tooltip(page, name: str) -> str:
    point = _point_in(page, name)
    page.mouse.move(point[0], point[1])
    tip = page.locator(".leaflet-tooltip.planner-tip")
    tip.wait_for(state="visible", timeout=5000)
    return tip.inner_text()


def _open_panel(page, name: str) -> str:
    point = _point_in(page, name)
    page.mouse.click(point[0], point[1])
    panel = page.locator(".planner-panel")
    panel.wait_for(state="visible", timeout=5000)
    return panel.inner_text()


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
        assert text.startswith(leeds) and " · wave " in text, text
        box, tip = page.locator(".folium-map").bounding_box(), page.locator(".planner-tip")
        tip_box = tip.bounding_box()
        assert tip_box["width"] < 320 and tip_box["height"] < 60, tip_box
        assert (
            box["x"] <= tip_box["x"] and tip_box["x"] + tip_box["width"] <= box["x"] + box["width"]
        )
        panel = _open_panel(page, leeds)
        assert "£" in panel and "Population" in panel and "Under-3s" in panel, panel
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
            page.locator(f'.planner-legend input[value="{i}"]').check()
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
def test_script_in_user_text_shows_as_text_and_never_runs(browser, site, inputs):
    out, _ = site
    for rel in PAGES:
        opened = _open(browser, out / rel)
        page = opened.page
        try:
            assert page.evaluate("window.__pwned") is None, rel
            tip = _hover_tooltip(page, EVIL_NAME)
            assert EVIL_NAME in tip, tip
            bradford = inputs[0].loc[inputs[0]["readiness_note"] == EVIL_NOTE, "name"].iloc[0]
            assert EVIL_NOTE in _open_panel(page, bradford)
            if rel.startswith("region/"):
                assert page.get_by_text(EVIL_NOTE, exact=False).count() >= 1
                assert EVIL_NOTE in page.locator("table.candidates").inner_text()
            if rel.startswith("icb/"):
                assert EVIL_NAME in page.locator("aside.planner-side").inner_text()
                labels = page.locator(".team-label span").all_text_contents()
                assert EVIL_NAME in labels, labels
            team = inputs[0].loc[inputs[0]["readiness_note"] == TEMPLATE_NOTES[0]].iloc[0]
            assert TEMPLATE_NOTES[0] in _open_panel(page, team["name"]), rel
            if rel.startswith("region/"):
                shown = page.locator("table.candidates").inner_text()
                assert all(note in shown for note in TEMPLATE_NOTES), shown
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


# ------------------------------------------------------------------ issue 14: use on any device


def _page_data(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    match = re.search(
        r'<script type="application/json" id="planner-data">(.*?)</script>', text, re.S
    )
    assert match, path
    return json.loads(match.group(1))


def _exports(inputs, national_plan) -> dict[str, str]:
    """The subset's export files, made by the exports' own code (planner.tables)."""
    plan = inputs[0]
    frames = {
        f"region_{code}_priorities.csv": frame
        for code, frame in tables.region_priorities(plan).items()
    }
    figures = _team_figures(inputs, national_plan)
    frames["teams.csv"] = tables.teams_table(plan, figures, YEARS)
    frames["costs_by_year.csv"] = tables.costs_by_year(plan, figures, YEARS)
    return {name: exports.to_csv_text(frame) for name, frame in frames.items()}


def _team_figures(inputs, national_plan):
    """The exports' shown team figures (whole pounds and babies) for the subset's teams."""
    team = tables.shown_tables(national_plan)["team"]
    return team[team["team_id"].astype(str).isin(inputs[0]["team_id"].astype(str))]


def _csv_rows(text: str, columns: list[str] | None = None) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(text)))
    if columns is None:
        return rows
    index = [rows[0].index(c) for c in columns]
    return [[r[i] for i in index] for r in rows]


def test_csv_downloads_match_the_exports(site, inputs, national_plan):
    out, _ = site
    files = _exports(inputs, national_plan)
    region = _page_data(out / f"region/{NORTH_EAST_YORKS}.html")["csv"]
    assert region["candidates"] == files[f"region_{NORTH_EAST_YORKS}_priorities.csv"]
    icb = _page_data(out / f"icb/{WEST_YORKSHIRE}.html")["csv"]
    teams = inputs[0]
    wy = set(teams.loc[teams["icb24cd"] == WEST_YORKSHIRE, "team_id"])
    for prefix in ("cost", "babies"):
        cols = ["team_id", "name", "wave", *[f"{prefix}_{y.replace('/', '_')}" for y in YEARS]]
        page_rows = _csv_rows(icb[prefix])
        assert page_rows[0] == cols
        export = [r for r in _csv_rows(files["teams.csv"], cols)[1:] if r[0] in wy]
        assert page_rows[1:] == export, prefix
    for rel, code in (("index.html", tables.ENGLAND[0]), *TOTALS_PAGES):
        assert _page_data(out / rel)["csv"]["totals"] == _year_rows(files, code), rel


#: Pages with a "Cost and capacity by year" table, and the area of costs_by_year.csv each shows.
TOTALS_PAGES = (("index.html", "E92000001"), (f"region/{NORTH_EAST_YORKS}.html", NORTH_EAST_YORKS))


def _year_rows(files: dict[str, str], code: str) -> str:
    """The header and one area's rows of costs_by_year.csv, as CSV text."""
    lines = files["costs_by_year.csv"].splitlines(keepends=True)
    rows = [line for line in lines[1:] if line.split(",")[1] == code]
    assert len(rows) == len(YEARS), code
    return "".join([lines[0], *rows])


def _download(page, table: str, folder: Path) -> tuple[str, str]:
    """Click a table's "Download CSV" button: the file's suggested name and its text."""
    with page.expect_download() as info:
        page.locator(f'button.csv[data-csv="{table}"]').click()
    saved = folder / f"{table}.csv"
    info.value.save_as(saved)
    return info.value.suggested_filename, saved.read_text(encoding="utf-8")


@pytest.mark.browser
@pytest.mark.parametrize(("rel", "code"), TOTALS_PAGES)
def test_totals_csv_download_equals_the_costs_by_year_export(
    browser, site, inputs, national_plan, tmp_path, rel, code
):
    """The downloaded file is the area's rows of costs_by_year.csv, byte for byte (issue 14)."""
    out, _ = site
    opened = _open(browser, out / rel)
    page = opened.page
    try:
        name, text = _download(page, "totals", tmp_path)
        assert name == f"costs_by_year_{code}.csv"
        assert text == _year_rows(_exports(inputs, national_plan), code)
        shown = page.locator("table.totals").inner_text()
        assert "Teams operating fully" in shown and "Teams starting during the year" in shown
        assert not opened.problems, opened.problems
    finally:
        page.close()


@pytest.mark.parametrize("rel", PAGES)
def test_every_page_carries_the_cluster_layer_off_at_first(site, inputs, rel):
    """One outline per cluster of the page's teams, labelled with its id and team count."""
    out, _ = site
    plan = inputs[0]
    teams = (
        plan[plan["nhser24cd"] == NORTH_EAST_YORKS] if rel.startswith("region/")
        else plan[plan["icb24cd"] == WEST_YORKSHIRE] if rel.startswith("icb/")
        else plan
    )  # fmt: skip
    data = _page_data(out / rel)
    layer = next(o for o in data["geo"]["outlines"] if o["key"] == "clusters")
    assert layer["on"] is False and layer["label"] == CLUSTER_LAYER
    ids = sorted(teams["cluster_id"].unique())
    assert sorted(lb[2].split(" · ")[0] for lb in layer["labels"]) == ids
    assert all(lb[2].endswith(" teams") for lb in layer["labels"])


def test_optional_plan_columns_show_in_the_details_panel(inputs, tmp_path, web_assets):
    plan, areas, assignment = inputs
    plan = plan.assign(wte=9.75, cluster_id="C-7", wave_basis="emerging provision",
                       region_rank=range(1, len(plan) + 1))  # fmt: skip
    maps.write_maps(tmp_path, plan, areas, assignment, YEARS, VINTAGE,
                    settings=maps.MapSettings(workers=1), assets_dir=web_assets)  # fmt: skip
    details = dict(_page_data(tmp_path / "index.html")["teams"][0]["details"])
    assert details["WTE"] == "9.8"
    assert details["Cluster"] == "C-7" and details["Wave based on"] == "emerging provision"
    assert "in region" in details["Priority"] and "in England" in details["Priority"]


def test_no_fmt_skip_left_in_the_page_modules():
    """The page code is formatted as ruff formats it (HTML lives in templates/)."""
    package = REPO / "planner" / "maps"
    modules = ["__init__", "text", "geometry", "model", "controls", "pages"]
    assert not [m for m in modules if "fmt: skip" in (package / f"{m}.py").read_text()]


def _open_at(browser, path: Path, width: int, height: int, url: str | None = None) -> Opened:
    page = browser.new_page(viewport={"width": width, "height": height})
    problems: list[str] = []
    unexpected: list[str] = []
    page.on(
        "console", lambda m: problems.append(console_problem(m)) if console_problem(m) else None
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    route_assets(page, unexpected)
    page.goto(url or path.as_uri())
    page.wait_for_function("window.plannerMap !== undefined && window.plannerSearch !== undefined")
    page.wait_for_timeout(300)
    return Opened(page, problems, unexpected)


def _overlaps(a: dict, b: dict) -> bool:
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])  # fmt: skip


@pytest.mark.browser
@pytest.mark.parametrize("rel", PAGES)
def test_phone_layout_puts_a_usable_map_first(browser, site, rel):
    out, _ = site
    opened = _open_at(browser, out / rel, 390, 844)
    page = opened.page
    try:
        box = page.locator(".folium-map").bounding_box()
        assert box["height"] >= 300 and box["y"] < 844 - 300, box
        viewport = page.locator('meta[name="viewport"]').get_attribute("content")
        assert "user-scalable=no" not in viewport and "maximum-scale" not in viewport
        search = page.locator(".leaflet-control-search").bounding_box()
        for control in page.locator(".leaflet-control").all():
            other = control.bounding_box()
            if other and control.evaluate("e => !e.classList.contains('leaflet-control-search')"):
                assert not _overlaps(search, other), control.get_attribute("class")
        assert not page.locator(".planner-legend details").evaluate("d => d.open")
        _shot(page, f"phone_{rel.replace('/', '_').replace('.html', '.png')}")
        assert not opened.problems, opened.problems
    finally:
        page.close()


@pytest.mark.browser
def test_url_hash_restores_year_selection_and_view(browser, site):
    out, _ = site
    opened = _open(browser, out / "index.html")
    page = opened.page
    try:
        search = page.locator(".leaflet-control-search input.search-input")
        search.type("Leeds", delay=30)
        page.locator(".leaflet-control-search .search-tip").filter(
            has_text="Leeds (local authority)"
        ).click()
        page.locator('.planner-legend input[value="1"]').check()
        page.evaluate("window.plannerMap.setZoom(window.plannerMap.getZoom() + 1)")
        page.wait_for_function("location.hash.includes('s=la:')")
        page.wait_for_timeout(600)  # the view is written to the hash after moving stops
        url, zoom = page.url, page.evaluate("window.plannerMap.getZoom()")
        assert "y=2023%2F24" in url or "y=2023/24" in url, url
        page.reload()
        page.wait_for_function("window.plannerMap !== undefined")
        assert page.url == url
        assert page.locator('.planner-legend input[value="1"]').is_checked()
        assert page.evaluate("window.plannerMap.getZoom()") == zoom
        assert page.locator(".selection-label").inner_text() == "Leeds"
        # The authority is outlined along its boundary, not boxed.
        vertices = page.evaluate(
            "[...document.querySelectorAll('path')].filter(p => p.getAttribute('stroke') === "
            "'#d40000').map(p => p.getAttribute('d').split(/[LM]/).length)"
        )
        assert vertices and max(vertices) > 20, vertices
        assert "operating in 2023/24" in page.locator(".planner-legend .count").inner_text()
        # Back steps through the states: first the zoom, then the year.
        page.go_back()
        page.wait_for_function(f"window.plannerMap.getZoom() < {zoom}")
        page.go_back()
        page.wait_for_function("document.querySelector('.planner-legend input[value=all]').checked")
        assert not opened.problems, opened.problems
    finally:
        page.close()


@pytest.mark.browser
def test_click_opens_panel_with_working_icb_link(browser, site, leeds):
    out, _ = site
    opened = _open(browser, out / "index.html")
    page = opened.page
    try:
        text = _open_panel(page, leeds)
        assert leeds in text and "Wave" in text and "Babies seen a year" in text
        link = page.locator(".planner-panel a", has_text="West Yorkshire ICB page")
        href = link.get_attribute("href")
        assert href == f"icb/{WEST_YORKSHIRE}.html"
        assert page.locator(".planner-panel a", has_text="North East and Yorkshire").count() == 1
        _shot(page, "index_panel.png")
        link.click()
        page.wait_for_function("window.plannerMap !== undefined")
        assert page.url.split("#")[0].endswith(f"icb/{WEST_YORKSHIRE}.html")
        # On the ICB page, the catchment list zooms to a catchment and opens its panel.
        page.locator("button.team-link", has_text=leeds).click()
        page.locator(".planner-panel").wait_for(state="visible")
        assert leeds in page.locator(".planner-panel h2").inner_text()
        assert "s=team:" in page.url
        assert not opened.problems, opened.problems
    finally:
        page.close()


_PANEL_YEARS = """() => {
    const panel = document.querySelector('.planner-panel'), table = panel.querySelector('table.years');
    const p = panel.getBoundingClientRect(), t = table.getBoundingClientRect();
    return {rows: [...table.querySelectorAll('tbody tr')].map(tr =>
                [...tr.children].map(c => c.textContent)),
            head: [...table.querySelectorAll('thead th')].map(c => c.textContent),
            panel: [p.left, p.right], table: [t.left, t.right],
            overflow: panel.scrollWidth - panel.clientWidth};
}"""


@pytest.mark.browser
@pytest.mark.parametrize("size", [(390, 844), (1400, 900)], ids=["phone", "desktop"])
def test_details_panel_gives_cost_and_babies_for_every_year(
    browser, site, inputs, national_plan, leeds, size
):
    """Every year's cost and babies in the panel, as teams.csv has them; it fits a phone."""
    out, _ = site
    opened = _open_at(browser, out / f"icb/{WEST_YORKSHIRE}.html", *size)
    page = opened.page
    try:
        _open_panel(page, leeds)
        shown = page.evaluate(_PANEL_YEARS)
        assert shown["head"] == ["Year", "Status", "Cost", "Babies seen"]
        team = inputs[0].loc[inputs[0]["name"] == leeds, "team_id"].iloc[0]
        teams = _csv_rows(_exports(inputs, national_plan)["teams.csv"])
        row = dict(zip(teams[0], next(r for r in teams[1:] if r[0] == team), strict=True))
        expected = []
        for year in YEARS:
            cost, babies = (
                int(row[f"cost_{year.replace('/', '_')}"]),
                int(row[f"babies_{year.replace('/', '_')}"]),
            )
            expected.append([year, f"£{cost:,}", f"{babies:,}"])
        assert [[r[0], r[2], r[3]] for r in shown["rows"]] == expected
        assert {r[1] for r in shown["rows"]} <= {"full year", "starting", "not yet"}
        assert shown["overflow"] <= 0, shown  # no sideways scrolling in the panel
        assert shown["panel"][0] >= 0 and shown["panel"][1] <= size[0], shown
        assert shown["panel"][0] <= shown["table"][0] and shown["table"][1] <= shown["panel"][1]
        _shot(page, f"panel_years_{size[0]}.png")
        assert not opened.problems, opened.problems
    finally:
        page.close()


@pytest.mark.browser
@pytest.mark.parametrize("rel", PAGES)
def test_axe_finds_no_serious_violations_and_keyboard_starts_at_skip_links(browser, site, rel):
    out, _ = site
    axe = pinned_file(AXE_CORE, "axe.min.js")
    assert axe is not None
    opened = _open(browser, out / rel)
    page = opened.page
    try:
        assert page.evaluate("document.documentElement.lang") == "en"
        page.add_script_tag(path=str(axe))
        result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        bad = [(v["id"], v["impact"], len(v["nodes"])) for v in result["violations"]
               if v["impact"] in ("serious", "critical")]  # fmt: skip
        assert not bad, bad
        page.locator("body").focus()
        reached = []
        for _ in range(5):
            page.keyboard.press("Tab")
            reached.append(page.evaluate("document.activeElement.getAttribute('href') || "
                                         "document.activeElement.id"))  # fmt: skip
        assert "#planner-search-input" in reached or "planner-search-input" in reached, reached
        # Catchments are no Tab stops (they are reached from the lists and the search).
        assert page.evaluate(
            "[...document.querySelectorAll('path.planner-catchment')].every(p => p.tabIndex < 0)"
        )
        # No invisible element takes focus: every focusable element has a size.
        hidden = page.evaluate("""() => [...document.querySelectorAll(
            'a[href], button, input, select, textarea, [tabindex]:not([tabindex="-1"])')]
            .filter(e => !e.closest('[hidden], details:not([open])') && !e.closest('nav.skip'))
            .filter(e => e.getClientRects().length > 0)
            .filter(e => { const r = e.getBoundingClientRect(); return r.width < 1 || r.height < 1; })
            .map(e => e.outerHTML.slice(0, 80))""")
        assert not hidden, hidden
    finally:
        page.close()


CLUSTER_LAYER = "Team clusters (one cluster lead each)"


def _axe_serious(page) -> list:
    axe = pinned_file(AXE_CORE, "axe.min.js")
    assert axe is not None
    page.add_script_tag(path=str(axe))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [(v["id"], v["impact"], len(v["nodes"])) for v in result["violations"]
            if v["impact"] in ("serious", "critical")]  # fmt: skip


@pytest.mark.browser
def test_cluster_layer_toggles_outlines_and_the_hash_restores_it(browser, site, inputs):
    """Issue 13: clusters as a map layer, off at first, one outline and label per cluster."""
    out, _ = site
    plan = inputs[0]
    wy = plan[plan["icb24cd"] == WEST_YORKSHIRE]
    expected = wy["cluster_id"].nunique()
    assert expected >= 2, wy["cluster_id"].tolist()
    opened = _open(browser, out / f"icb/{WEST_YORKSHIRE}.html")
    page = opened.page
    try:
        assert page.locator("path.planner-cluster").count() == 0
        assert CLUSTER_LAYER in page.locator(".planner-legend").inner_text()
        toggle = page.get_by_role("checkbox", name=CLUSTER_LAYER)
        assert not toggle.is_checked()
        toggle.check()
        page.wait_for_function(
            f"document.querySelectorAll('path.planner-cluster').length === {expected}"
        )
        labels = page.locator(".outline-label span").all_text_contents()
        sizes = plan["cluster_id"].value_counts()
        assert sorted(labels) == sorted(
            f"{c} · {sizes[c]} team{'s' if sizes[c] != 1 else ''}"
            for c in wy["cluster_id"].unique()
        )
        dashes = page.eval_on_selector_all(
            "path.planner-cluster", "ps => ps.map(p => p.getAttribute('stroke-dasharray'))"
        )
        assert set(dashes) == {maps.controls.CLUSTER_LINE[3]}
        page.wait_for_function("location.hash.includes('l=')")
        page.wait_for_timeout(500)
        url = page.url
        _shot(page, "icb_clusters.png")
        page.goto("about:blank")
        page.goto(url)
        page.wait_for_function("window.plannerMap !== undefined")
        page.wait_for_function(
            f"document.querySelectorAll('path.planner-cluster').length === {expected}"
        )
        assert page.get_by_role("checkbox", name=CLUSTER_LAYER).is_checked()
        toggle = page.get_by_role("checkbox", name=CLUSTER_LAYER)
        toggle.uncheck()
        page.wait_for_function("document.querySelectorAll('path.planner-cluster').length === 0")
        assert page.locator(".outline-label").count() == 0
        side = page.locator("ul.clusters").inner_text()
        assert all(c in side for c in wy["cluster_id"].unique()), side
        assert not opened.problems, opened.problems
        toggle.check()  # axe-core with the layer drawn (its stylesheet fetches log errors)
        page.wait_for_function(
            f"document.querySelectorAll('path.planner-cluster').length === {expected}"
        )
        assert not _axe_serious(page)
    finally:
        page.close()


_LABEL_BOXES = """() => [...document.querySelectorAll('.team-label:not(.hidden) span')]
    .map(e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })"""


def _check_labels(browser, page_path: Path) -> None:
    """At the default view: labels shown, none overlapping another, none past the map's edge."""
    opened = _open(browser, page_path)
    page = opened.page
    try:
        boxes = page.evaluate(_LABEL_BOXES)
        assert boxes, page_path
        m = page.locator(".folium-map").bounding_box()
        for i, a in enumerate(boxes):
            assert m["x"] <= a[0] and a[2] <= m["x"] + m["width"], (page_path, a)
            assert m["y"] <= a[1] and a[3] <= m["y"] + m["height"], (page_path, a)
            for b in boxes[i + 1 :]:
                assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
        assert page.locator(".team-label[tabindex]").count() == 0
        assert not opened.problems, opened.problems
    finally:
        page.close()


@pytest.mark.browser
@pytest.mark.parametrize("icb", ICBS)
def test_labels_do_not_overlap_or_clip_at_the_default_view(browser, site, icb):
    _check_labels(browser, site[0] / f"icb/{icb}.html")


@pytest.mark.slow
@pytest.mark.browser
def test_labels_on_every_national_icb_page(browser, national_site):
    out, written = national_site
    for rel in written.sizes:
        if rel.startswith("icb/"):
            _check_labels(browser, out / rel)


@pytest.mark.browser
def test_csv_button_downloads_the_table_and_print_fits_one_page(browser, site, tmp_path):
    out, _ = site
    rel = f"region/{NORTH_EAST_YORKS}.html"
    opened = _open(browser, out / rel)
    page = opened.page
    try:
        name, text = _download(page, "candidates", tmp_path)
        assert name == f"region_{NORTH_EAST_YORKS}_priorities.csv"
        assert text == _page_data(out / rel)["csv"]["candidates"]
        for target in PAGES:
            page.goto((out / target).as_uri())
            page.wait_for_function("window.plannerMap !== undefined")
            page.emulate_media(media="print")
            pdf = page.pdf(prefer_css_page_size=True, print_background=True)
            page.emulate_media(media="screen")
            assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 1, target
            (ARTIFACTS / f"print_{target.replace('/', '_')}.pdf").write_bytes(pdf)
    finally:
        page.close()


def test_a_broken_coverage_is_cleaned_around_its_fault():
    """One square overlapping its neighbour by a sliver, in a 9 x 9 grid: cleaned there only."""
    grid = [shapely.box(x, y, x + 10, y + 10) for x in range(0, 90, 10) for y in range(0, 90, 10)]
    geoms = np.array(grid, dtype=object)
    geoms[40] = shapely.box(40, 40, 50.5, 50)  # the middle square overlaps its right neighbour
    assert not shapely.coverage_is_valid(geoms)
    cleaned = maps.geometry.clean_coverage(geoms)
    assert shapely.coverage_is_valid(cleaned)
    assert shapely.area(cleaned).sum() == pytest.approx(8100)
    corners = [0, 8, 72, 80]
    assert all(cleaned[i] is geoms[i] for i in corners)

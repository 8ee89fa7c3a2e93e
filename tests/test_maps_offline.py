"""The maps from a file with no network: headless Chromium refuses every request to a host.

Pages are written from the real national plan (tests/conftest.py
`national_plan`) cut to three ICBs in three regions, with the pinned web files
from the local copies (`web_assets`).  Each page is opened from file:// with
every non-file request refused (Playwright route abort, and no host name
resolves), so the map tiles fail too: the catchments must still be drawn, with
no JavaScript errors, local authority names visible, and the one-line tile
notice shown.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
from browser_assets import (
    CHROMIUM_ARGS,
    TILE_HOST,
    console_problem,
    is_tile,
    route_assets,
    wait_until_fitted,
)

from planner import maps
from planner.maps import context

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
ICBS = ["E54000054", "E54000036", "E54000027"]  # West Yorkshire, Cornwall, North West London
WEST_YORKSHIRE, NORTH_EAST_YORKS = "E54000054", "E40000012"
PAGES = ["index.html", f"region/{NORTH_EAST_YORKS}.html", f"icb/{WEST_YORKSHIRE}.html"]
YEARS = ["2022/23", "2023/24", "2024/25", "2025/26"]
VINTAGE = "Census 2021 population (ONS), LSOA 2021 boundaries, ONS/NHS lookups April 2024"
EVIL_LA = '<img src=x onerror="window.__pwned=1">Hounslow</script>'
#: Local authority names shown under a shown team label (app.js), 1 px allowed.
UNDER_TEAM_LABELS = """() => {
    const shown = sel => [...document.querySelectorAll(sel)].filter(e =>
        getComputedStyle(e).visibility !== 'hidden').map(e => e.getBoundingClientRect())
        .filter(r => r.width > 0);
    const teams = shown('.team-label:not(.hidden) span');
    return shown('.planner-la-label div').filter(a => teams.some(b => a.left + 1 < b.right
        && b.left + 1 < a.right && a.top + 1 < b.bottom && b.top + 1 < a.bottom)).length;
}"""
_URL = re.compile(r"""(?:https?:)?//([A-Za-z0-9{}.-]+\.[A-Za-z]{2,})""")


@pytest.fixture(scope="module")
def site(national_plan, tmp_path_factory, web_assets):
    plan, areas, assignment = national_plan.plan, national_plan.areas, national_plan.assignment
    plan = plan[plan["icb24cd"].isin(ICBS)].reset_index(drop=True)
    areas = areas[areas["icb24cd"].isin(ICBS)].reset_index(drop=True)
    assignment = assignment[assignment["team_id"].isin(plan["team_id"])].reset_index(drop=True)
    areas = areas.assign(lad24nm=areas["lad24nm"].replace("Hounslow", EVIL_LA))
    out = tmp_path_factory.mktemp("maps")
    maps.write_maps(out, plan, areas, assignment, YEARS, VINTAGE, assets_dir=web_assets)
    return out, plan, areas


def _teams(plan, rel: str):
    if rel.startswith("region/"):
        return plan[plan["nhser24cd"] == NORTH_EAST_YORKS]
    if rel.startswith("icb/"):
        return plan[plan["icb24cd"] == WEST_YORKSHIRE]
    return plan


def test_pages_reference_no_external_host_but_the_tile_server(site):
    out, _, _ = site
    pages = sorted(out.rglob("*.html"))
    assert len(pages) == 1 + 3 + 3
    for page in [*pages, out / context.CONTEXT_FILE]:
        text = page.read_text(encoding="utf-8")
        hosts = {h.removeprefix("{s}.") for h in _URL.findall(text)}
        assert hosts <= {TILE_HOST}, (page, hosts)
    for sheet in out.rglob("*.css"):
        for url in re.findall(r"url\(([^)]*)\)", sheet.read_text(encoding="utf-8")):
            url = url.strip("'\"")
            if url.startswith("#"):
                continue
            assert not urlparse(url).scheme, (sheet, url)
            assert (sheet.parent / url).is_file(), (sheet, url)


def test_assets_ship_with_their_licences(site):
    out, _, _ = site
    for package in maps.assets.PACKAGES:
        folder = out / "assets" / package.folder
        assert (folder / package.licence).read_text(encoding="utf-8").strip()
        for path, _ in package.files:
            assert (folder / path).is_file()


# ------------------------------------------------------------------ real browser, offline


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path("/usr/bin/chromium").exists():
        if os.environ.get("CI"):
            pytest.fail("/usr/bin/chromium is missing (apt-get install chromium)")
        pytest.skip("/usr/bin/chromium is missing")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Offline:
    """A page opened from file:// with the network refused, and what went wrong in it."""

    def __init__(self, browser, path: Path) -> None:
        self.page = browser.new_page(viewport={"width": 1400, "height": 900})
        self.problems: list[str] = []
        self.unexpected: list[str] = []
        self.tiles: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("request", lambda r: self.tiles.append(r.url) if is_tile(r.url) else None)
        route_assets(self.page, self.unexpected)
        self.page.goto(path.as_uri())
        wait_until_fitted(self.page)

    def _console(self, message) -> None:
        problem = console_problem(message)
        if problem:
            self.problems.append(problem)

    def visible_names(self) -> list[str]:
        """Local authority names drawn inside the map's frame."""
        return self.page.evaluate(
            """() => {
                const frame = window.plannerMap.getContainer().getBoundingClientRect();
                return [...document.querySelectorAll('.planner-la-label div')].filter(el => {
                    const r = el.getBoundingClientRect();
                    return r.width > 0 && r.left >= frame.left && r.right <= frame.right
                        && r.top >= frame.top && r.bottom <= frame.bottom
                        && getComputedStyle(el).visibility !== 'hidden'
                        && document.elementsFromPoint((r.left + r.right) / 2,
                            (r.top + r.bottom) / 2).every(other => other === el
                            || other.contains(el) || !other.closest('.team-label'));
                }).map(el => el.textContent);
            }"""
        )

    def name_boxes(self) -> list[list[float]]:
        return self.page.eval_on_selector_all(
            ".planner-la-label div",
            "els => els.map(e => { const r = e.getBoundingClientRect();"
            " return [r.left, r.top, r.right, r.bottom]; })",
        )


@pytest.mark.browser
@pytest.mark.parametrize("rel", PAGES)
def test_offline_page_draws_catchments_and_local_authority_names(browser, site, rel):
    out, plan, _ = site
    opened = Offline(browser, out / rel)
    page = opened.page
    try:
        assert page.locator("path.planner-catchment").count() == len(_teams(plan, rel))
        notice = page.locator(".planner-tile-notice")
        notice.wait_for(state="visible", timeout=10_000)
        assert notice.inner_text() == context.TILE_NOTICE
        assert notice.bounding_box()["height"] < 24, "the tile notice takes more than one line"
        assert opened.tiles, "the page asked for no tiles"
        names = opened.visible_names()
        assert names, "no local authority name is visible"
        if rel.startswith("icb/"):
            assert {"Leeds", "Bradford", "Wakefield", "Kirklees", "Calderdale"} <= set(names)
            assert page.locator(".team-label:not(.hidden)").count() > 0
            for zoom in (None, 1):  # the first view, then one step in
                if zoom:
                    page.evaluate("window.plannerMap.zoomIn(1, {animate: false})")
                assert not page.evaluate(UNDER_TEAM_LABELS), "a name sits under a team label"
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"offline_{rel.replace('/', '_')[:-5]}.png"))
        assert not opened.problems, opened.problems
        assert not opened.unexpected, opened.unexpected
    finally:
        page.close()


@pytest.mark.browser
def test_names_appear_as_the_reader_zooms_in_and_never_overlap(browser, site):
    out, _, _ = site
    opened = Offline(browser, out / "index.html")
    page = opened.page
    try:
        counts = []
        for zoom in (6, 8, 10):
            page.evaluate(f"window.plannerMap.setView([53.75, -1.6], {zoom}, {{animate: false}})")
            counts.append(page.locator(".planner-la-label").count())
            boxes = opened.name_boxes()
            for i, a in enumerate(boxes):
                for b in boxes[i + 1 :]:
                    overlap = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
                    assert min(overlap) <= 0, (zoom, a, b)
        assert counts[0] < counts[1] < counts[2], counts
        assert not opened.problems, opened.problems
    finally:
        page.close()


@pytest.mark.browser
def test_a_hostile_authority_name_is_shown_as_text(browser, site):
    out, _, _ = site
    opened = Offline(browser, out / "region/E40000003.html")  # London
    page = opened.page
    try:
        page.evaluate("window.plannerMap.setView([51.47, -0.38], 13, {animate: false})")
        assert EVIL_LA in opened.visible_names()
        assert page.evaluate("window.__pwned") is None
        assert not opened.problems, opened.problems
    finally:
        page.close()

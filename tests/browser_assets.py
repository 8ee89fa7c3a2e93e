"""The browser tests' offline world: the pinned web files, Chromium flags, request checks.

The map pages load Leaflet and its plugins from maps/assets/ (planner.maps.assets),
so a test browser needs no network at all.  The tests also load axe-core
(`TEST_PACKAGES`, injected by Playwright, never by a page).  `web_assets(cache)` fills a
web-assets cache for write_maps from the local copies under
.cache/browser-assets (our layout in web-assets/, or an npm node_modules/),
never from the network; `install()` (run `python tests/browser_assets.py` or
scripts/fetch_browser_assets.sh) downloads them once from the npm registry with
planner's own checked fetch.  PLANNER_BROWSER_ASSETS overrides the folder.

In the browser, `route_assets(page, unexpected)` refuses every request that is
not a local file and records each one that is not a map tile; tiles fail, the
page says so, and `console_problem` ignores exactly those failures.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

import requests

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from planner.maps import assets  # noqa: E402
from planner.maps.context import Basemap  # noqa: E402

DEFAULT_DIR = REPO / ".cache" / "browser-assets"
#: npm files the tests load themselves (not the pages), pinned like the pages' files.
AXE_CORE = assets.NpmPackage(
    name="axe-core",
    version="4.10.2",
    integrity="sha512-RE3mdQ7P3FRSe7eqCWoeQ/Z9QXrtniSjp1wUjt5nRC3WIpz5rSCve6o3fsZ2aCpJtrZjSZgjwXAoTO5k4tEI0w==",
    licence="LICENSE",
    files=(
        ("LICENSE", "af175b9d96ee93c21a036152e1b905b0b95304d4ae8c2c921c7609100ba8df7e"),
        ("axe.min.js", "b511cd9dec01c76f4b2ad1723b66b6db37d4c2eb4ed199076e1829d9ee7b75e3"),
    ),
)  # fmt: skip
TEST_PACKAGES: tuple[assets.NpmPackage, ...] = (AXE_CORE,)
#: A registry address where nothing listens: tests never download.
OFFLINE_REGISTRY = "http://127.0.0.1:9"
#: The basemap's tile host (its `{s}.` subdomain template dropped).
TILE_HOST = urlparse(Basemap().tile_provider()["url"]).netloc.removeprefix("{s}.")
#: Chromium flags for an offline test browser: every host name fails to resolve.
NO_NETWORK_ARGS = ["--host-resolver-rules=MAP * ~NOTFOUND"]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", *NO_NETWORK_ARGS]  # fmt: skip


def asset_dir() -> Path:
    return Path(os.environ.get("PLANNER_BROWSER_ASSETS", DEFAULT_DIR)).resolve()


def _sources(root: Path) -> list[Path]:
    return [root / "web-assets", root]


def missing_assets(root: Path | None = None, *,
                   packages: Sequence[assets.NpmPackage] = assets.PACKAGES + TEST_PACKAGES,
                   ) -> list[str]:  # fmt: skip
    """Declared web files (name-version/path) that no local copy under `root` provides."""
    root = root or asset_dir()
    missing = []
    for package in packages:
        for path, _ in package.files:
            candidates = [
                c for s in _sources(root) for c in assets.local_candidates(s, package, path)
            ]
            if not any(c.is_file() for c in candidates):
                missing.append(f"{package.folder}/{path}")
    return missing


def pinned_file(package: assets.NpmPackage, path: str, root: Path | None = None) -> Path | None:
    """The local copy of one of a package's files, if one under `root` has its sha256."""
    wanted = dict(package.files)[path]
    for source in _sources(root or asset_dir()):
        for candidate in assets.local_candidates(source, package, path):
            if candidate.is_file() and hashlib.sha256(candidate.read_bytes()).hexdigest() == wanted:
                return candidate
    return None


def web_assets(cache: Path, root: Path | None = None) -> Path:
    """A web-assets cache for write_maps, filled from the local copies only (checked by sha256)."""
    return assets.ensure_assets(cache, sources=_sources(root or asset_dir()),
                                registry=OFFLINE_REGISTRY, session=requests.Session())  # fmt: skip


def install(root: Path | None = None) -> Path:
    """Fetch the pinned packages (pages' and tests') from the npm registry into root/web-assets.

    Idempotent: files already there and intact are kept.
    """
    root = root or asset_dir()
    return assets.ensure_assets(root / "web-assets", sources=[root],
                                packages=assets.PACKAGES + TEST_PACKAGES)  # fmt: skip


def is_tile(url: str) -> bool:
    host = urlparse(url).hostname or ""
    return host == TILE_HOST or host.endswith("." + TILE_HOST)


def route_assets(page, unexpected: list[str]) -> None:
    """Refuse every request that is not a local file; record those that are not tiles."""

    def handle(route) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:", "blob:")):
            route.continue_()
            return
        if not is_tile(url):
            unexpected.append(url)
        route.abort()

    page.route("**/*", handle)


#: True once the page's script has set its first view (app.js fits the map
#: without animation, or applies the URL hash, before it sets plannerMap) and
#: no zoom animation runs.
FITTED = """() => Boolean(window.plannerMap && window.plannerCatchments
    && !document.querySelector('.leaflet-zoom-anim'))"""


def wait_until_fitted(page) -> None:
    """Wait for the page's first view, so a test's own moves are not undone by it."""
    page.wait_for_function(FITTED)


def console_problem(message) -> str | None:
    """A console error/warning worth failing on (not a refused map tile)."""
    if message.type not in ("error", "warning"):
        return None
    url = (message.location or {}).get("url", "")
    if message.text.startswith("Failed to load resource") and is_tile(url):
        return None
    return f"console {message.type}: {message.text} ({url})"


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    where = install(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else None)
    names = ", ".join(f"{p.name}@{p.version}" for p in assets.PACKAGES + TEST_PACKAGES)
    print(f"browser assets ready in {where}: {names}")

"""Local copies of the CDN files the map pages load, for tests in an offline browser.

The pages refer to jsDelivr URLs of npm packages (planner.maps.CDN_ASSETS,
taken from folium).  `install()` puts exactly those packages and versions under
`.cache/browser-assets/node_modules` with npm; `route_assets(page)` makes
Playwright answer each CDN URL from that folder and records any other request
that fails; map tiles fail inside the browser (CHROMIUM_ARGS resolves no host
names) and `console_problem` ignores exactly those failures.

Run `python tests/browser_assets.py` (or scripts/fetch_browser_assets.sh) to
install; PLANNER_BROWSER_ASSETS overrides the folder.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from planner.maps import CDN_ASSETS  # noqa: E402

DEFAULT_DIR = REPO / ".cache" / "browser-assets"
_JSDELIVR = re.compile(
    r"^https://cdn\.jsdelivr\.net/npm/(?P<pkg>(?:@[^/@]+/)?[^/@]+)@(?P<ver>[^/]+)/(?P<path>.+)$"
)
#: npm files the tests load themselves (not the pages), named like the CDN URLs.
AXE_CORE = "https://cdn.jsdelivr.net/npm/axe-core@4.10.2/axe.min.js"
TEST_ASSETS: tuple[str, ...] = (AXE_CORE,)
_TILE_HOSTS = ("tile.openstreetmap.org",)
#: Chromium flags for an offline test browser: every host name fails to resolve
#: (the CDN files are answered by `route_assets` before any lookup).
NO_NETWORK_ARGS = ["--host-resolver-rules=MAP * ~NOTFOUND"]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", *NO_NETWORK_ARGS]  # fmt: skip

_TYPES = {".js": "application/javascript", ".css": "text/css", ".svg": "image/svg+xml",
          ".png": "image/png"}  # fmt: skip


def asset_dir() -> Path:
    return Path(os.environ.get("PLANNER_BROWSER_ASSETS", DEFAULT_DIR)).resolve()


def npm_specs(urls=CDN_ASSETS + TEST_ASSETS) -> list[str]:
    """`name@version` for every npm package the pages' CDN URLs name, sorted."""
    specs = set()
    for url in urls:
        match = _JSDELIVR.match(url)
        if not match:
            raise ValueError(f"no npm mapping for CDN URL {url}")
        specs.add(f"{match['pkg']}@{match['ver']}")
    return sorted(specs)


def local_file(url: str, root: Path | None = None) -> Path | None:
    """The installed file for a jsDelivr npm URL (or its unminified twin), if present.

    jsDelivr minifies on the fly, so `X.min.js` may exist only as `X.js` in the
    package (leaflet.fullscreen 3.0.0); same bytes semantics, just larger.
    Other files under the same package folder (images a CSS file refers to)
    resolve through the same rule.
    """
    match = _JSDELIVR.match(url.split("?", 1)[0].split("#", 1)[0])
    if not match:
        return None
    pkg_dir = (root or asset_dir()) / "node_modules" / match["pkg"]
    try:
        version = json.loads((pkg_dir / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None
    if version != match["ver"]:
        return None
    path = pkg_dir / match["path"]
    candidates = [path]
    for ext in (".js", ".css"):
        if path.name.endswith(f".min{ext}"):
            candidates.append(path.with_name(path.name[: -len(f".min{ext}")] + ext))
    return next((p for p in candidates if p.is_file()), None)


def missing_assets(root: Path | None = None) -> list[str]:
    return [url for url in CDN_ASSETS + TEST_ASSETS if local_file(url, root) is None]


def install(root: Path | None = None) -> Path:
    """npm-install the exact packages the pages use into `root` (idempotent)."""
    root = root or asset_dir()
    root.mkdir(parents=True, exist_ok=True)
    if not missing_assets(root):
        return root
    cmd = ["npm", "install", "--prefix", str(root), "--no-save", "--no-audit", "--no-fund",
           "--ignore-scripts", "--legacy-peer-deps", "--loglevel=error", *npm_specs()]  # fmt: skip
    subprocess.run(cmd, check=True)
    still = missing_assets(root)
    if still:
        raise RuntimeError(f"npm install finished but these files are still missing: {still}")
    return root


def is_tile(url: str) -> bool:
    return any(f"//{host}/" in url or f".{host}/" in url for host in _TILE_HOSTS)


def route_assets(page, unexpected: list[str], root: Path | None = None) -> None:
    """Serve the CDN files from the local copies; record every other failed request.

    Tiles are not routed through Python (that costs ~0.2 s a tile on a busy
    machine): Chromium is started with NO_NETWORK_ARGS, so tile requests fail
    at once inside the browser and `console_problem` ignores them.
    """
    root = root or asset_dir()

    def handle(route) -> None:
        path = local_file(route.request.url, root)
        if path is None:
            unexpected.append(route.request.url)
            route.abort()
            return
        route.fulfill(path=str(path), content_type=_TYPES.get(path.suffix),
                      headers={"Access-Control-Allow-Origin": "*"})  # fmt: skip

    page.route("https://cdn.jsdelivr.net/**", handle)
    page.on("requestfailed", lambda req: None if is_tile(req.url) or req.url in unexpected
            else unexpected.append(req.url))  # fmt: skip


def console_problem(message) -> str | None:
    """A console error/warning worth failing on (not a tile that failed to load)."""
    if message.type not in ("error", "warning"):
        return None
    url = (message.location or {}).get("url", "")
    if message.text.startswith("Failed to load resource") and is_tile(url):
        return None
    return f"console {message.type}: {message.text} ({url})"


if __name__ == "__main__":
    where = install(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else None)
    print(f"browser assets ready in {where}: {', '.join(npm_specs())}")

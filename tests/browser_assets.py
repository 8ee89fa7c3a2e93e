"""Local copies of the CDN files the map pages load, for tests in an offline browser.

The pages refer to jsDelivr URLs of npm packages (planner.maps.CDN_ASSETS,
taken from folium).  `install()` puts exactly those packages and versions under
`.cache/browser-assets/node_modules` with npm; `route_assets(page)` makes
Playwright answer each CDN URL from that folder, answers map-tile requests
with a blank tile (the tests have no network, and an aborted request would
show up as a console error), and records any other request as unexpected.

Run `python tests/browser_assets.py` (or scripts/fetch_browser_assets.sh) to
install; PLANNER_BROWSER_ASSETS overrides the folder.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from planner.maps import CDN_ASSETS  # noqa: E402

DEFAULT_DIR = REPO / ".cache" / "browser-assets"
_JSDELIVR = re.compile(r"^https://cdn\.jsdelivr\.net/npm/(?P<pkg>(?:@[^/@]+/)?[^/@]+)@(?P<ver>[^/]+)/(?P<path>.+)$")
_TILE_HOSTS = ("tile.openstreetmap.org",)


def _blank_png() -> bytes:
    """A 1x1 opaque PNG in OpenStreetMap's land colour, built here (no binary in the repo)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xf2\xef\xe9")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


BLANK_PNG = _blank_png()
_TYPES = {".js": "application/javascript", ".css": "text/css", ".svg": "image/svg+xml",
          ".png": "image/png"}  # fmt: skip


def asset_dir() -> Path:
    return Path(os.environ.get("PLANNER_BROWSER_ASSETS", DEFAULT_DIR)).resolve()


def npm_specs(urls=CDN_ASSETS) -> list[str]:
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
    return [url for url in CDN_ASSETS if local_file(url, root) is None]


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


def route_assets(page, unexpected: list[str], root: Path | None = None) -> None:
    """Serve CDN assets locally, blank out tiles, refuse (and record) anything else."""
    root = root or asset_dir()

    def handle(route) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:", "blob:", "about:")):
            route.continue_()
            return
        path = local_file(url, root)
        if path is not None:
            route.fulfill(path=str(path), content_type=_TYPES.get(path.suffix),
                          headers={"Access-Control-Allow-Origin": "*"})  # fmt: skip
            return
        if any(host in url for host in _TILE_HOSTS):
            route.fulfill(status=200, body=BLANK_PNG, content_type="image/png")
            return
        unexpected.append(url)
        route.abort()

    page.route("**/*", handle)


if __name__ == "__main__":
    where = install(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else None)
    print(f"browser assets ready in {where}: {', '.join(npm_specs())}")

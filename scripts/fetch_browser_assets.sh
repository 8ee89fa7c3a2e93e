#!/usr/bin/env bash
# Fetches, from the npm registry, the pinned web files the map pages load
# (Leaflet, leaflet-search, leaflet.fullscreen: planner.maps.assets.PACKAGES)
# into .cache/browser-assets/web-assets, where the browser tests take them
# from.  Uses planner's own checked download (tarball integrity, then the
# sha256 of every file); no npm needed.  Idempotent: files already there and
# intact are kept.
# Usage: bash scripts/fetch_browser_assets.sh [DEST]   (or set PLANNER_BROWSER_ASSETS)
set -euo pipefail
cd "$(dirname "$0")/.."

PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
exec "$PY" tests/browser_assets.py "$@"

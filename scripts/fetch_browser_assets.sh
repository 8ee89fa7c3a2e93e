#!/usr/bin/env bash
# Fetches, from the npm registry, the pinned web files the map pages load
# (Leaflet, leaflet-search, leaflet.fullscreen: planner.maps.assets.PACKAGES)
# and the one the browser tests inject themselves (axe-core:
# tests/browser_assets.py TEST_PACKAGES) into .cache/browser-assets/web-assets,
# where the tests take them from (and `planner` runs in tests, through
# PLANNER_WEB_ASSETS).  Uses planner's own checked download (tarball integrity, then the
# sha256 of every file); no npm needed.  Idempotent: files already there and
# intact are kept.
# Usage: bash scripts/fetch_browser_assets.sh [DEST]   (or set PLANNER_BROWSER_ASSETS)
set -euo pipefail
cd "$(dirname "$0")/.."

PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
exec "$PY" tests/browser_assets.py "$@"

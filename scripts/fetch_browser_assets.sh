#!/usr/bin/env bash
# Installs, from the npm registry, the exact CDN files the map pages load
# (Leaflet, leaflet-search, leaflet.fullscreen at the versions folium pins) into
# .cache/browser-assets/node_modules, where the browser tests serve them from.
# The package list comes from planner.maps.CDN_ASSETS (tests/browser_assets.py).
# Idempotent: does nothing when every file is already there.
# Usage: bash scripts/fetch_browser_assets.sh [DEST]   (or set PLANNER_BROWSER_ASSETS)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v npm >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get install -y -q npm >/dev/null 2>&1 || {
        $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q npm >/dev/null
    }
fi

PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
exec "$PY" tests/browser_assets.py "$@"

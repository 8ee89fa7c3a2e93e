#!/usr/bin/env bash
# Sets up everything the tests need on a fresh Debian machine, then runs them.
# Safe to re-run: each step is skipped when already done.
#   - Debian chromium (the browser tests drive it through Playwright)
#   - .venv with planner and its dev extras
#   - the pinned web files of the maps (Leaflet and plugins) and axe-core from the npm registry
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get install -y -q chromium >/dev/null 2>&1 || {
        $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium >/dev/null
    }
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import planner, geopandas, playwright" # fail here if the install failed

if [ -f scripts/fetch_browser_assets.sh ]; then
    bash scripts/fetch_browser_assets.sh
fi

# `planner` runs in the tests take the maps' web files from there, never the registry.
export PLANNER_WEB_ASSETS="${PLANNER_WEB_ASSETS:-${PLANNER_BROWSER_ASSETS:-$PWD/.cache/browser-assets}/web-assets}"
exec .venv/bin/python -m pytest -n 2 "$@"

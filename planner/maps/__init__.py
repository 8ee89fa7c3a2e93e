"""Folium maps of the plan: England, one page per NHS region, one per ICB.

`write_maps` writes a folder of HTML pages that open from a file with no
network (data embedded; Leaflet, its two plugins and a shared context layer in
assets/ beside the pages; only the basemap's tiles come from a server):

    assets/                  Leaflet and plugins (pinned npm files and their
                             licences) and context.js (England, local authorities)
    index.html               England: catchments by wave, ICB/region outlines,
                             search, rollout by year, links to every page
    region/<NHSER code>.html for regional leads: catchments + ranked candidates
    icb/<ICB code>.html      for commissioners: named catchments, local
                             authority outlines, under-3s by LSOA, cost and
                             capacity per team and year

Every page: click a catchment for its details (with cost and babies in every
year); a layer of team clusters (off at first); the URL hash keeps the view,
rollout year, selection and layers; each table downloads as CSV (the rows of
its export); prints on one A4 landscape page.

All geometry is derived from the LSOA coverage (`areas` + `assignment`), so a
catchment, its ICB, its local authorities and its LSOAs share edges exactly;
it is cleaned (`coverage_clean`) only if the input is not a valid coverage,
simplified with `coverage_simplify` in British National Grid metres, then
reprojected to WGS84 and rounded.  Pages are Jinja2 templates (autoescaped);
plan text never reaches folium, whose output branca parses as a template.

The package, imports one way (each module uses only those above it):

    text       number formatting
    geometry   dissolve, reprojection and rounding, bounds, label points
    model      `MapModel`: the inputs checked and joined, cleaned coverage
    controls   base map frame and its plugin files, layer styles (app.js draws)
    assets     pinned npm packages: fetch, check, cache, install beside the pages
    context    local asset URLs, basemap, tile notice, shared context layer (uses assets, geometry)
    pages      page data and tables, templates/, `write_maps`
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The module each public name comes from. They are imported on first use (PEP 562):
# `planner plan` needs only planner.maps.assets, and should not pay for folium.
_HOMES = {
    "CDN_ASSETS": "controls",
    "LEAFLET_CSS": "controls",
    "LEAFLET_JS": "controls",
    "NOT_YET_COLOUR": "controls",
    "UNDER3_COLOURS": "controls",
    "WAVE_COLOURS": "controls",
    "dissolve_to": "geometry",
    "to_web": "geometry",
    "AREA_COLUMNS": "model",
    "OPTIONAL_COLUMNS": "model",
    "PLAN_COLUMNS": "model",
    "MapModel": "model",
    "OGL_LINE": "pages",
    "MapSettings": "pages",
    "MapsWritten": "pages",
    "write_maps": "pages",
    "pounds": "text",
}

if TYPE_CHECKING:
    from planner.maps.controls import (
        CDN_ASSETS,
        LEAFLET_CSS,
        LEAFLET_JS,
        NOT_YET_COLOUR,
        UNDER3_COLOURS,
        WAVE_COLOURS,
    )
    from planner.maps.geometry import dissolve_to, to_web
    from planner.maps.model import AREA_COLUMNS, OPTIONAL_COLUMNS, PLAN_COLUMNS, MapModel
    from planner.maps.pages import OGL_LINE, MapSettings, MapsWritten, write_maps
    from planner.maps.text import pounds


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"planner.maps.{home}"), name)
    globals()[name] = value
    return value


__all__ = [
    "AREA_COLUMNS",
    "CDN_ASSETS",
    "LEAFLET_CSS",
    "LEAFLET_JS",
    "NOT_YET_COLOUR",
    "OGL_LINE",
    "OPTIONAL_COLUMNS",
    "PLAN_COLUMNS",
    "UNDER3_COLOURS",
    "WAVE_COLOURS",
    "MapModel",
    "MapSettings",
    "MapsWritten",
    "dissolve_to",
    "pounds",
    "to_web",
    "write_maps",
]

"""The folium base map, the page's CSS/JS assets, and how each layer is drawn.

folium draws only the base map (panes, plugin controls; context.decorate adds
the tiles): branca
compiles the text of every rendered folium element as a Jinja template, so
plan text and the (large) geometry stay out of it.  Both reach the page in the
template's JSON data block, from which templates/app.js draws the layers with
the styles below.  Colours are colour-blind safe; every CDN file folium names
is listed in `CDN_ASSETS`, and the pages load the local copy of each
(planner.maps.context.localise).
"""

from __future__ import annotations

import branca.element as be
import folium
from folium.elements import JSCSSMixin
from folium.plugins import Fullscreen, Search

#: Okabe-Ito colours, in the order that keeps the first four waves' states (operating,
#: starting, not yet) at least 14 CAM02-UCS apart as drawn, also under simulated
#: deuteranopia, protanopia and tritanopia (benchmarks/maps.py prints the table;
#: tests/test_maps_colours.py requires 10).
WAVE_COLOURS = ("#0072B2", "#D55E00", "#56B4E9", "#F0E442", "#E69F00", "#009E73", "#CC79A7")
#: Not yet operating: a white veil over the basemap (with a dotted outline).
NOT_YET_COLOUR = "#ffffff"
#: The land under the tiles (shown when they fail), and the range of the basemap's
#: land greys (Esri Light Gray Canvas tiles at `Basemap.opacity` over that land):
#: what the fills are drawn over, and what the legend's swatches sit on.
LAND_COLOUR = "#f4f1ea"
BASEMAP_GREYS = (LAND_COLOUR, "#dededc", "#edeceb")  # tiles #d9d9d9 and #ebebeb
#: ColorBrewer YlGnBu, 5 classes (colour-blind safe, sequential).
UNDER3_COLOURS = ("#ffffcc", "#a1dab4", "#41b6c4", "#2c7fb8", "#253494")
#: How the catchments are drawn (app.js draws them; the legend's swatches match).
CATCHMENT_STYLE = {
    "fill": 0.7,
    "starting": 0.4,
    "startingDash": "5 3",
    "notYet": 0.6,
    "selected": "#d40000",
}
UNDER3_OPACITY = 0.8
#: Boundary lines: (legend label, colour, weight, dash).
ICB_LINE = ("ICB boundaries", "#333333", 1.2, "4 3")
REGION_LINE = ("NHS region boundaries", "#000000", 2.6, None)
TEAM_LINE = ("Team boundaries", "#111111", 2.4, None)
LAD_LINE = ("Local authority boundaries", "#6a3d9a", 1.4, "6 4")
#: Cluster outlines (teams sharing one cluster lead): dark long dashes on a white band
#: (`CLUSTER_CASING`: colour, weight, opacity), unlike any border, in colour or not.
CLUSTER_LINE = ("Team clusters (one cluster lead each)", "#1a1a1a", 3.0, "12 6")
CLUSTER_CASING = ("#ffffff", 7.0, 0.9)

#: The page's CSS/JS files beyond Leaflet's own (folium's URLs, so they follow
#: folium's pinned versions).  folium's other defaults (jQuery, Bootstrap,
#: Font Awesome, awesome-markers) are not used by these pages and are dropped.
LEAFLET_JS = dict(folium.folium._default_js)["leaflet"]
LEAFLET_CSS = dict(folium.folium._default_css)["leaflet_css"]
PAGE_JS: tuple[tuple[str, str], ...] = (*Search.default_js, *Fullscreen.default_js)
PAGE_CSS: tuple[tuple[str, str], ...] = (*Search.default_css, *Fullscreen.default_css)
CDN_ASSETS: tuple[str, ...] = (
    LEAFLET_JS,
    LEAFLET_CSS,
    *(url for _, url in PAGE_JS + PAGE_CSS),
)


class PageAssets(JSCSSMixin, be.MacroElement):
    """Links the page's plugin files (search, full screen) into the page head."""

    default_js = PAGE_JS
    default_css = PAGE_CSS

    def __init__(self) -> None:
        super().__init__()
        self._name = "PageAssets"


def wave_colour(wave: int) -> str:
    return WAVE_COLOURS[(int(wave) - 1) % len(WAVE_COLOURS)]


def new_map() -> tuple[be.Figure, folium.Map]:
    """The base map: tiles, panes for LSOAs, outlines and labels, plugin assets.

    Quarter-step zoom lets fitBounds fill the frame with one ICB instead of
    snapping to the next whole zoom level out.
    """
    fig = be.Figure()
    fmap = folium.Map(
        location=[52.8, -1.6],
        zoom_start=6,
        tiles=None,
        control_scale=True,
        prefer_canvas=False,
        zoom_snap=0.25,
        zoom_delta=0.5,
    )
    fmap.default_js = [("leaflet", LEAFLET_JS)]
    fmap.default_css = [("leaflet_css", LEAFLET_CSS)]
    fig.add_child(fmap)
    # (no tile layer here: planner.maps.context.decorate adds the basemap)
    folium.map.CustomPane("lsoa", z_index=410, pointer_events=True).add_to(fmap)
    folium.map.CustomPane("outlines", z_index=420, pointer_events=False).add_to(fmap)
    folium.map.CustomPane("labels", z_index=430, pointer_events=False).add_to(fmap)
    PageAssets().add_to(fmap)
    Fullscreen(
        position="topleft", title="Show the map full screen", title_cancel="Leave full screen"
    ).add_to(fmap)
    return fig, fmap

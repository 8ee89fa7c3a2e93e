"""What makes a page work from disk: local assets, a basemap, and a context layer of our own.

A commissioner opens maps/index.html from a file, often on a network that
blocks CDNs or map tiles.  So every page

- loads Leaflet and its plugins from maps/assets/ (`localise`);
- draws a basemap from one tile server (`Basemap`, through xyzservices: Esri's
  keyless World Light Gray Canvas by default, CARTO Positron when given a
  key) and, when its tiles fail, says so in one line and keeps working
  (`TileNotice`);
- draws a context layer from the plan's own data, written once into
  maps/assets/context.js and shared by every page: England's outline (a pale
  land fill under the tiles, so it shows only without them), local authority
  outlines, and local authority names, each shown from the zoom at which it
  fits inside its authority and clears the names already placed
  (`label_zooms`), and giving way to the page's own team labels (app.js:
  DivIcons of class `AVOID_LABELS`, class `hidden` while hidden, and the
  map event `LABELS_PLACED` each time it has placed them).

`write_shared` writes maps/assets/ once per run; `decorate` adds the rest to
one page.
"""

from __future__ import annotations

import html
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import branca.element as be
import folium
import geopandas as gpd
import numpy as np
import shapely
import xyzservices
from folium.template import Template
from markupsafe import Markup

from planner.errors import PlannerError
from planner.fsutil import atomic_file
from planner.maps import assets
from planner.maps.controls import LAND_COLOUR
from planner.maps.geometry import dissolve_to, label_point, to_web

log = logging.getLogger(__name__)

CONTEXT_FILE = f"{assets.ASSETS_FOLDER}/context.js"
#: The one line a page shows when its map tiles do not load.
TILE_NOTICE = "No background map (offline or blocked); outlines and names are from the plan's data."
#: Leaflet's `referrerPolicy` for tiles.  Hosted over http(s), a page sends
#: the tile server its origin only (no path: page names stay private), which
#: is what tile usage policies ask for (OSM's wiki, folium #2215).  From
#: file:// a browser sends no Referer under any policy, so the default
#: provider is one that needs none.
REFERRER_POLICY = "strict-origin-when-cross-origin"
#: The page's own labels (team names), which local authority names give way to.
AVOID_LABELS = "team-label"  # the class of their DivIcons (app.js)
#: The map event app.js fires after placing (showing or hiding) its labels.
LABELS_PLACED = "plannerlabelsplaced"
#: The keyless default basemap, and the one used when a key is given.
DEFAULT_PROVIDER = "Esri.WorldGrayCanvas"
KEYED_PROVIDER = "CartoDB.Positron"


@dataclass(frozen=True)
class ContextSettings:
    """Detail of the shared context layer and of its labels."""

    tolerance: float = 100.0  # metres, coverage_simplify of local authority outlines
    decimals: int = 4  # ~10 m; the context is drawn under the catchments' own edges
    label_font_px: int = 11
    char_px: float = 6.2  # mean width of a character of the label font
    min_label_zoom: int = 5
    max_label_zoom: int = 12  # from this zoom on, every name is shown


@dataclass(frozen=True)
class Basemap:
    """The tile provider (an xyzservices name) and, if it needs one, its API key.

    With no provider named: Esri's World Light Gray Canvas, which needs no key,
    or CARTO Positron when a key is given.  CARTO has required a free key
    since August 2026 (carto.com/basemaps/apikey); without one its tiles carry
    an "API key required" watermark, which `warning` says (write_shared logs
    it once per run).
    """

    provider: str | None = None
    key: str | None = None
    opacity: float = 0.8
    #: Attribution as plain text ("Tiles © Esri — Esri, DeLorme, NAVTEQ"), so a
    #: page names no host but the tile server; True links the providers' pages.
    links: bool = False

    @property
    def provider_name(self) -> str:
        return self.provider or (KEYED_PROVIDER if self.key else DEFAULT_PROVIDER)

    def named_provider(self) -> xyzservices.TileProvider:
        try:
            return xyzservices.providers.query_name(self.provider_name)
        except ValueError as exc:
            raise PlannerError("unknown basemap provider", field="basemap", value=self.provider,
                               fix=f"use an xyzservices name, e.g. {DEFAULT_PROVIDER}") from exc  # fmt: skip

    def tile_provider(self) -> xyzservices.TileProvider:
        """The provider with its key filled in (or, lacking a key, with the key left out)."""
        provider = self.named_provider()
        if not provider.requires_token():
            return provider
        if self.key:
            return provider(**{_token_field(provider): self.key})
        keyless = xyzservices.TileProvider(dict(provider))
        keyless["url"] = keyless["url"].split("?", 1)[0]
        del keyless[_token_field(provider)]
        return keyless

    def warning(self) -> str | None:
        """What a reader of the maps will miss with this basemap, if anything."""
        if not self.key and self.named_provider().requires_token():
            return (f"maps: the {self.provider_name} basemap needs an API key; without one its tiles "
                    "carry a watermark (the context layer still names every local authority)")  # fmt: skip
        return None

    def attribution(self) -> str:
        """The provider's attribution as HTML: its own (with links), or plain text."""
        provider = self.named_provider()
        if self.links:
            return provider.html_attribution
        return html.escape(Markup(provider.html_attribution).striptags())

    def tile_layer(self) -> folium.TileLayer:
        return folium.TileLayer(self.tile_provider(), name="Background map", control=False,
                                attr=self.attribution(), opacity=self.opacity,
                                referrer_policy=REFERRER_POLICY, class_name="planner-tiles")  # fmt: skip


def _token_field(provider: xyzservices.TileProvider) -> str:
    return next(k for k, v in provider.items() if isinstance(v, str) and "<insert your" in v)


# --------------------------------------------------------------------------- shared files


def write_shared(maps_dir: str | Path, lsoa: gpd.GeoDataFrame, *, assets_dir: str | Path | None,
                 settings: ContextSettings | None = None,
                 basemap: Basemap | None = None) -> list[str]:  # fmt: skip
    """Write maps/assets/: the pinned web files (licences included) and context.js.

    `lsoa` is the areas table (EPSG:27700, with lad24cd and lad24nm);
    `assets_dir` is the cache `assets.ensure_assets` filled.
    Returns the written paths relative to `maps_dir`.
    """
    if assets_dir is None:
        raise PlannerError("the maps need Leaflet's files, and no web-assets folder was given",
                           field="assets_dir", fix="pass assets_dir=planner.maps.assets."
                           "ensure_assets(<workdir>/data/raw/web-assets) to write_maps")  # fmt: skip
    settings = settings or ContextSettings()
    warning = (basemap or Basemap()).warning()
    if warning:
        log.warning(warning)
    written = assets.install(maps_dir, assets_dir)
    data = context_data(lsoa, settings)
    text = "window.plannerContext = " + json.dumps(data, separators=(",", ":")) + ";\n"
    with atomic_file(Path(maps_dir) / CONTEXT_FILE, "wb") as handle:
        handle.write(text.encode("utf-8"))
    return [*written, CONTEXT_FILE]


def context_data(lsoa: gpd.GeoDataFrame, settings: ContextSettings) -> dict:
    """England's outline and the local authorities (outline, name, label point and zoom)."""
    lads = dissolve_to(lsoa, "lad24cd")
    names = lsoa.drop_duplicates("lad24cd").set_index("lad24cd")["lad24nm"].astype(str)
    outlines = shapely.coverage_simplify(lads.geometry.values, settings.tolerance)
    england = shapely.coverage_union_all(outlines)
    web = to_web(outlines, settings.decimals)
    points = [label_point(g) for g in outlines]
    labels = [names[c] for c in lads["lad24cd"]]
    zooms = label_zooms(labels, points, shapely.bounds(web), settings)
    features = [
        {"type": "Feature", "properties": {"n": name, "z": zoom, "p": [lat, lon]},
         "geometry": shapely.geometry.mapping(geom)}
        for name, zoom, (lat, lon), geom in zip(labels, zooms, points, web, strict=True)
    ]  # fmt: skip
    return {
        "england": shapely.geometry.mapping(to_web(np.array([england]), settings.decimals)[0]),
        "lads": {"type": "FeatureCollection", "features": features},
    }


def label_zooms(names: Sequence[str], points: Sequence[tuple[float, float]], boxes: np.ndarray,
                settings: ContextSettings) -> list[int]:  # fmt: skip
    """The first whole zoom from which each name is shown (and stays shown when zooming in).

    At each zoom a name is placed, biggest authority first, if its text fits
    within its authority's bounding box and clears every name placed before.
    Fractional zooms only spread labels further apart, so the page compares
    floor(zoom).  `boxes` are WGS84 (minx, miny, maxx, maxy) per authority.
    """
    height = settings.label_font_px + 3
    widths = [len(n) * settings.char_px + 6 for n in names]
    order = sorted(range(len(names)), key=lambda i: -(boxes[i, 2] - boxes[i, 0]) *
                   (boxes[i, 3] - boxes[i, 1]))  # fmt: skip
    top = settings.max_label_zoom
    first = [top] * len(names)
    shown_above = [True] * len(names)
    for zoom in range(top - 1, settings.min_label_zoom - 1, -1):
        placed: list[tuple[float, float, float, float]] = []
        for i in order:
            x, y = _pixel(points[i][0], points[i][1], zoom)
            x0, y1 = _pixel(boxes[i, 1], boxes[i, 0], zoom)
            x1, y0 = _pixel(boxes[i, 3], boxes[i, 2], zoom)
            box = (x - widths[i] / 2, y - height / 2, x + widths[i] / 2, y + height / 2)
            fits = widths[i] <= x1 - x0 and height <= y1 - y0
            clear = all(box[2] < p[0] or p[2] < box[0] or box[3] < p[1] or p[3] < box[1]
                        for p in placed)  # fmt: skip
            if fits and clear:
                placed.append(box)
            shown_above[i] = shown_above[i] and fits and clear
            if shown_above[i]:
                first[i] = zoom
    return first


def _pixel(lat: float, lon: float, zoom: int) -> tuple[float, float]:
    """Web Mercator pixel coordinates of a point at a whole zoom (256-pixel tiles)."""
    scale = 256 * 2**zoom
    phi = math.radians(lat)
    y = (1 - math.log(math.tan(phi) + 1 / math.cos(phi)) / math.pi) / 2
    return (lon + 180) / 360 * scale, y * scale


# --------------------------------------------------------------------------- one page


def decorate(figure: be.Figure, fmap: folium.Map, *, root: str,
             basemap: Basemap | None = None) -> None:  # fmt: skip
    """Give a page its basemap, tile notice and context layer, and local asset URLs.

    Call right after the map is made (the tile layer goes first); `root` is
    the way from the page to the maps folder ("" or "../").
    """
    tiles = (basemap or Basemap()).tile_layer()
    tiles.add_to(fmap)
    TileNotice(tiles).add_to(fmap)
    ContextLayer(root).add_to(fmap)
    localise(figure, root)


class LocalAssets(be.Element):
    """Points every script and stylesheet of a figure at the copies under maps/assets/.

    Add it to the figure after the map: figure children render in order, so
    by the time this renders, the map and its plugins have put their CDN links
    in the header, and it rewrites exactly those.
    """

    def __init__(self, root: str) -> None:
        super().__init__()
        self._name = "LocalAssets"
        self.root = root

    def render(self, **kwargs) -> None:
        figure = self.get_root()
        for child in figure.header._children.values():
            if isinstance(child, be.JavascriptLink | be.CssLink) and child.url.startswith("http"):
                child.url = assets.local_url(child.url, self.root)


def localise(figure: be.Figure, root: str) -> None:
    """Make `figure` load Leaflet and its plugins from maps/assets/ (see LocalAssets)."""
    figure.add_child(LocalAssets(root), name="local_assets")


class TileNotice(be.MacroElement):
    """One line on the map while its tiles fail to load; hidden again once they load."""

    _template = Template(
        """
        {% macro header(this, kwargs) %}
        <style>
        .planner-tile-notice { background: #fff8e1; border: 1px solid #c9a227; border-radius: 3px;
            padding: 2px 6px; font: 12px/1.3 system-ui, sans-serif; color: #333; }
        </style>
        {% endmacro %}
        {% macro script(this, kwargs) %}
        (function () {
            var tiles = {{ this.tiles.get_name() }}, errors = 0, line = null;
            var control = L.control({position: 'bottomleft'});
            control.onAdd = function () {
                line = L.DomUtil.create('div', 'planner-tile-notice');
                line.textContent = {{ this.text|tojson }};
                line.style.display = 'none';
                return line;
            };
            control.addTo({{ this._parent.get_name() }});
            tiles.on('loading', function () { errors = 0; });
            tiles.on('tileerror', function () { errors += 1; line.style.display = ''; });
            tiles.on('load', function () { if (errors === 0) { line.style.display = 'none'; } });
        })();
        {% endmacro %}
        """
    )

    def __init__(self, tiles: folium.TileLayer) -> None:
        super().__init__()
        self._name = "TileNotice"
        self.tiles = tiles
        self.text = TILE_NOTICE


class ContextLayer(be.MacroElement):
    """Draws maps/assets/context.js: land under the tiles, outlines, names by zoom."""

    _template = Template(
        """
        {% macro header(this, kwargs) %}
        <style>
        .planner-la-label { font: italic 11px/1.1 system-ui, sans-serif; color: #4a2e63;
            text-shadow: 0 0 2px #fff, 0 0 2px #fff, 0 0 3px #fff; white-space: nowrap; }
        .planner-la-label div { transform: translate(-50%, -50%); display: inline-block;
            position: relative; }
        </style>
        {% endmacro %}
        {% macro script(this, kwargs) %}
        (function () {
            var map = {{ this._parent.get_name() }}, data = window.plannerContext;
            if (!data) { return; }
            [['planner-land', 150], ['planner-context', 405], ['planner-la-names', 425]]
                .forEach(function (p) {
                    var pane = map.createPane(p[0]);
                    pane.style.zIndex = p[1];
                    pane.style.pointerEvents = 'none';
                });
            L.geoJSON(data.england, {pane: 'planner-land', interactive: false,
                style: {stroke: false, fillColor: {{ this.land|tojson }}, fillOpacity: 1}}).addTo(map);
            L.geoJSON(data.lads, {pane: 'planner-context', interactive: false,
                style: {color: '#7a6a8a', weight: 0.8, opacity: 0.8, fill: false}}).addTo(map);
            L.geoJSON(data.england, {pane: 'planner-context', interactive: false,
                style: {color: '#555555', weight: 1.5, opacity: 0.9, fill: false}}).addTo(map);
            var labels = data.lads.features.map(function (f) {
                var text = document.createElement('div');
                text.textContent = f.properties.n;
                var marker = L.marker(f.properties.p, {pane: 'planner-la-names', interactive: false,
                    keyboard: false, icon: L.divIcon({className: 'planner-la-label', html: text,
                    iconSize: [0, 0]})});
                return {zoom: f.properties.z, marker: marker};
            });
            var avoid = {{ this.avoid|tojson }};
            // A name's box in container pixels if moved `dy` down, from its position
            // and size (centred on its point).
            function box(marker, dy) {
                var el = marker.getElement(), p = map.latLngToContainerPoint(marker.getLatLng());
                var w = el.firstChild.offsetWidth / 2, h = el.firstChild.offsetHeight / 2;
                return {left: p.x - w, right: p.x + w, top: p.y - h + dy, bottom: p.y + h + dy};
            }
            // A page label's box in container pixels, as drawn (it may sit off its point).
            function drawnBox(el) {
                var r = el.getBoundingClientRect(), c = map.getContainer().getBoundingClientRect();
                return {left: r.left - c.left, right: r.right - c.left, top: r.top - c.top,
                    bottom: r.bottom - c.top};
            }
            function clear(r, boxes) {
                return boxes.every(function (b) {
                    return r.right < b.left || b.right < r.left || r.bottom < b.top
                        || b.bottom < r.top;
                });
            }
            function show() {
                var z = Math.floor(map.getZoom() + 1e-6);
                labels.forEach(function (l) {
                    if (l.zoom <= z) { l.marker.addTo(map); } else { l.marker.remove(); }
                });
                // Give way to the page's own labels (those shown): nudge a name a line
                // or two down or up, or hide it while it would sit under one of them.
                var boxes = [];
                map.eachLayer(function (layer) {
                    var icon = layer.options && layer.options.icon, el = layer.getElement
                        && layer.getElement();
                    if (icon && (' ' + icon.options.className + ' ').indexOf(' ' + avoid + ' ') >= 0
                        && el
                        && !el.classList.contains('hidden')) {
                        boxes.push(drawnBox(el.firstChild));
                    }
                });
                labels.forEach(function (l) {
                    if (!map.hasLayer(l.marker)) { return; }
                    var el = l.marker.getElement().firstChild, line = el.offsetHeight;
                    el.style.visibility = 'hidden';
                    [0, 1, -1, 2, -2].some(function (shift) {
                        if (!clear(box(l.marker, shift * line), boxes)) { return false; }
                        el.style.top = shift * line + 'px';
                        el.style.visibility = '';
                        return true;
                    });
                });
            }
            map.on('zoomend overlayadd overlayremove ' + {{ this.placed|tojson }}, show);
            map.whenReady(function () { setTimeout(show, 0); });
            window.plannerContextLabels = labels;
        })();
        {% endmacro %}
        """
    )

    def __init__(self, root: str, avoid: str = AVOID_LABELS, placed: str = LABELS_PLACED) -> None:
        super().__init__()
        self._name = "ContextLayer"
        self.root = root
        self.avoid = avoid
        self.placed = placed
        self.land = LAND_COLOUR

    def render(self, **kwargs) -> None:
        super().render(**kwargs)
        self.get_root().header.add_child(be.JavascriptLink(f"{self.root}{CONTEXT_FILE}"),
                                         name="planner_context")  # fmt: skip

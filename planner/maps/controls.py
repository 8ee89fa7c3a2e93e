"""Folium pieces of a map: base map, catchment and outline layers, search, legend, rollout.

Colours are colour-blind safe; every CDN file a page loads is listed in
`CDN_ASSETS`.  Tooltip properties are HTML-escaped here because folium's
tooltip inserts them as HTML.
"""

from __future__ import annotations

import html

import branca.element as be
import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from folium.elements import JSCSSMixin
from folium.plugins import Fullscreen, Search
from folium.template import Template

from planner.maps.geometry import _bounds, _box_wgs84, _feature_collection, _web
from planner.maps.model import _Model, _suffix
from planner.maps.text import _count, _e, _money

#: Okabe-Ito: distinguishable with the common colour-vision deficiencies.
WAVE_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
NOT_YET_COLOUR = "#bdbdbd"
#: ColorBrewer YlGnBu, 5 classes (colour-blind safe, sequential).
UNDER3_COLOURS = ("#ffffcc", "#a1dab4", "#41b6c4", "#2c7fb8", "#253494")

#: Every CDN file a page refers to (folium's own URLs, so they follow folium's
#: pinned versions).  folium's other defaults (jQuery, Bootstrap, Font Awesome,
#: awesome-markers) are not used by these pages and are dropped.
LEAFLET_JS = dict(folium.folium._default_js)["leaflet"]
LEAFLET_CSS = dict(folium.folium._default_css)["leaflet_css"]
CDN_ASSETS: tuple[str, ...] = (
    LEAFLET_JS,
    LEAFLET_CSS,
    *(url for _, url in Search.default_js + Search.default_css),
    *(url for _, url in Fullscreen.default_js + Fullscreen.default_css),
)


def _team_props(model: _Model, row: pd.Series) -> dict:
    """Tooltip properties (already HTML-escaped: folium's tooltip uses innerHTML)."""
    full = str(row["full_from"])
    cost_col = f"cost_{_suffix(full)}"
    babies_col = f"babies_{_suffix(full)}"
    if cost_col in row.index:
        cost = f"{_money(row[cost_col])} ({_e(full)})"
        babies = _count(row[babies_col])
    else:
        cost = f"from {_e(full)} (after {_e(model.years[-1])})"
        babies = ""
    note = _e(row["readiness_note"])
    readiness = _e(row["readiness"]) + (f": {note}" if note else "")
    return {
        "name": _e(row["name"]),
        "team": _e(row["team_id"]),
        "icb": _e(row["icb24nm"]),
        "las": _e(row["lads"]),
        "pop": _count(row["population"]),
        "u3": _count(row["under3"]),
        "wave": _e(row["wave"]),
        "from": _e(row["operating_from"]),
        "cost": cost,
        "babies": babies,
        "ready": readiness,
        "w": int(row["wave"]),
        "s": model.year_index(row["operating_from"]),
        "f": model.year_index(row["full_from"]),
    }


TOOLTIP_FIELDS = ("name", "team", "icb", "las", "pop", "u3", "wave", "from", "cost", "babies",
                  "ready")  # fmt: skip
TOOLTIP_ALIASES = ("Catchment", "Team", "ICB", "Local authorities", "Population", "Under-3s",
                   "Wave", "Operating from", "Annual cost (first full year)",
                   "Babies seen a year", "Readiness")  # fmt: skip


def _wave_colour(wave: int) -> str:
    return WAVE_COLOURS[(int(wave) - 1) % len(WAVE_COLOURS)]


# --------------------------------------------------------------------------- folium pieces


class _PageSearch(JSCSSMixin, be.MacroElement):
    """leaflet-search over a list of named bounding boxes (teams, ICBs, authorities).

    Unlike folium's Search it indexes several kinds of place at once, matches
    anywhere in the name, shows suggestions as text (never HTML) and zooms to
    the whole place.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
            var records = {{ this.records|tojson }};
            var control = new L.Control.Search({
                sourceData: function (text, callResponse) {
                    callResponse(records);
                    return {abort: function () {}};
                },
                formatData: function (rows) {
                    var out = {};
                    rows.forEach(function (r) {
                        var b = L.latLngBounds([r[1], r[2]], [r[3], r[4]]);
                        var c = b.getCenter();
                        c.bounds = b;
                        out[r[0]] = c;
                    });
                    return out;
                },
                buildTip: function (text) {
                    var li = document.createElement('li');
                    li.textContent = text;
                    return li;
                },
                moveToLocation: function (latlng, title, map) {
                    map.fitBounds(latlng.bounds, {maxZoom: 13, animate: false});
                },
                initial: false,
                marker: false,
                collapsed: false,
                autoCollapse: false,
                textPlaceholder: {{ this.placeholder|tojson }},
                position: 'topleft'
            });
            {{ this._parent.get_name() }}.addControl(control);
            window.plannerSearch = control;
        })();
        {% endmacro %}
        """
    )
    default_js = Search.default_js
    default_css = Search.default_css

    def __init__(self, records: list[list], placeholder: str) -> None:
        super().__init__()
        self._name = "PageSearch"
        self.records = sorted(records, key=lambda r: (str(r[0]).lower(), r[0]))
        self.placeholder = placeholder


class _WaveControl(be.MacroElement):
    """Legend by wave plus a rollout-by-year switch that restyles the catchments.

    Styles come from one JS function of (feature, year): teams operating fully
    by the year in wave colour, teams starting that year pale and dashed,
    teams not yet started grey.  It replaces the layer's style option so
    folium's hover reset keeps the chosen year.
    """

    _template = Template(
        """
        {% macro header(this, kwargs) %}
        <style>
        .planner-legend { background: #fff; padding: 5px 8px; border-radius: 4px;
            box-shadow: 0 1px 4px rgba(0,0,0,.4); font: 11px/1.3 system-ui, sans-serif;
            max-width: 230px; }
        .planner-legend summary { font-weight: bold; font-size: 12px; cursor: pointer; }
        .planner-legend .sw { display: inline-block; width: 14px; height: 12px;
            margin-right: 5px; vertical-align: -2px; border: 1px solid #555; }
        .planner-legend label { display: inline-block; margin-right: 6px; cursor: pointer; }
        .planner-legend .years { margin-top: 4px; border-top: 1px solid #ddd; padding-top: 4px; }
        </style>
        {% endmacro %}
        {% macro script(this, kwargs) %}
        (function () {
            var layer = {{ this.layer.get_name() }};
            var colours = {{ this.colours|tojson }};
            var years = {{ this.years|tojson }};
            var state = {year: null};
            function styleFor(feature) {
                var p = feature.properties, y = state.year;
                var colour = colours[(p.w - 1) % colours.length];
                var base = {color: '#ffffff', weight: 1.2, opacity: 1, fillOpacity: 0.7,
                            fillColor: colour, dashArray: null};
                if (y === null) { return base; }
                if (p.f !== null && p.f <= y) { return base; }
                if (p.s !== null && p.s <= y) {
                    return {color: colour, weight: 1.5, opacity: 1, fillOpacity: 0.3,
                            fillColor: colour, dashArray: '4 3'};
                }
                return {color: '#ffffff', weight: 1, opacity: 1, fillOpacity: 0.35,
                        fillColor: {{ this.not_yet|tojson }}, dashArray: null};
            }
            function show(y) {
                state.year = y;
                layer.options.style = styleFor;
                layer.resetStyle();
                var n = 0;
                layer.eachLayer(function (l) {
                    var p = l.feature.properties;
                    if (y === null || (p.s !== null && p.s <= y)) { n += 1; }
                });
                count.textContent = y === null
                    ? n + ' teams, coloured by wave'
                    : n + ' teams operating in ' + years[y];
            }
            var control = L.control({position: 'bottomright'});
            var count;
            control.onAdd = function () {
                var div = L.DomUtil.create('div', 'planner-legend');
                var details = L.DomUtil.create('details', '', div);
                details.open = true;
                details.innerHTML = '<summary>Legend and rollout</summary>' + {{ this.legend_html|tojson }};
                var box = L.DomUtil.create('div', 'years', details);
                var title = L.DomUtil.create('div', '', box);
                title.textContent = 'Rollout: show teams operating in';
                [null].concat(years.map(function (_, i) { return i; })).forEach(function (i) {
                    var label = L.DomUtil.create('label', '', box);
                    var input = L.DomUtil.create('input', '', label);
                    input.type = 'radio';
                    input.name = {{ (this.get_name() + '_year')|tojson }};
                    input.value = i === null ? 'all' : years[i];
                    input.checked = i === null;
                    input.addEventListener('change', function () { show(i); });
                    label.appendChild(document.createTextNode(i === null ? 'all waves' : years[i]));
                });
                count = L.DomUtil.create('div', 'count', box);
                L.DomEvent.disableClickPropagation(div);
                L.DomEvent.disableScrollPropagation(div);
                return div;
            };
            control.addTo({{ this._parent.get_name() }});
            show(null);
            window.plannerRollout = show;
            window.plannerMap = {{ this._parent.get_name() }};
            window.plannerCatchments = layer;
        })();
        {% endmacro %}
        """
    )

    def __init__(self, layer: folium.GeoJson, years: list[str], legend_html: str) -> None:
        super().__init__()
        self._name = "WaveControl"
        self.layer = layer
        self.years = years
        self.colours = list(WAVE_COLOURS)
        self.not_yet = NOT_YET_COLOUR
        self.legend_html = legend_html


def _wave_legend(model: _Model, teams: pd.DataFrame, extra: str = "") -> str:
    rows = []
    for wave, group in teams.groupby("wave", sort=True):
        start = min(str(v) for v in group["operating_from"])
        full = min(str(v) for v in group["full_from"])
        when = (f"operating fully from {_e(full)}" if start == full
                else f"starting during {_e(start)}")  # fmt: skip
        rows.append(
            f'<div><span class="sw" style="background:{_wave_colour(int(wave))}"></span>'
            f"Wave {_e(wave)}: {len(group)} team{'s' if len(group) != 1 else ''}, {when}</div>"
        )
    return f"{''.join(rows)}{extra}"


def _new_map(title: str) -> tuple[be.Figure, folium.Map]:
    fig = be.Figure(title=html.escape(title))
    # Quarter-step zoom lets fitBounds fill the frame with one ICB instead of
    # snapping to the next whole zoom level out.
    fmap = folium.Map(location=[52.8, -1.6], zoom_start=6, tiles=None, control_scale=True,
                      prefer_canvas=False, zoom_snap=0.25, zoom_delta=0.5)  # fmt: skip
    fmap.default_js = [("leaflet", LEAFLET_JS)]
    fmap.default_css = [("leaflet_css", LEAFLET_CSS)]
    fig.add_child(fmap)
    # (no tile layer here: planner.maps.context.decorate adds the basemap)
    folium.map.CustomPane("lsoa", z_index=410, pointer_events=True).add_to(fmap)
    folium.map.CustomPane("outlines", z_index=420, pointer_events=False).add_to(fmap)
    folium.map.CustomPane("labels", z_index=430, pointer_events=False).add_to(fmap)
    return fig, fmap


def _catchment_layer(model: _Model, teams: gpd.GeoDataFrame, decimals: int) -> folium.GeoJson:
    geoms = _web(teams.geometry.values, decimals)
    props = [_team_props(model, row) for _, row in teams.iterrows()]
    data = _feature_collection(geoms, props)

    def style(feature: dict) -> dict:
        return {"color": "#ffffff", "weight": 1.2, "opacity": 1, "fillOpacity": 0.7,
                "fillColor": _wave_colour(feature["properties"]["w"])}  # fmt: skip

    def highlight(feature: dict) -> dict:
        return {"weight": 3, "color": "#222222", "fillOpacity": 0.85}

    layer = folium.GeoJson(
        data,
        name="Catchments (by wave)",
        style_function=style,
        highlight_function=highlight,
        tooltip=folium.GeoJsonTooltip(
            fields=list(TOOLTIP_FIELDS),
            aliases=list(TOOLTIP_ALIASES),
            sticky=True,
            class_name="planner-tip",
        ),
        class_name="planner-catchment",
        control=True,
    )
    layer.planner_geoms = geoms  # type: ignore[attr-defined]
    return layer


def _outline_layer(geoms: np.ndarray, name: str, colour: str, weight: float, dash: str | None,
                   show: bool = True) -> folium.GeoJson:  # fmt: skip
    data = _feature_collection(geoms, [{} for _ in geoms])
    style = {"color": colour, "weight": weight, "fill": False, "opacity": 0.9}
    if dash:
        style["dashArray"] = dash
    return folium.GeoJson(data, name=name, style_function=lambda _f, s=style: dict(s),
                          interactive=False, pane="outlines", show=show)  # fmt: skip


def _search_records(model: _Model, teams: pd.DataFrame, team_geoms: np.ndarray,
                    lsoa: gpd.GeoDataFrame, with_icbs: bool) -> list[list]:  # fmt: skip
    records: list[list] = []
    for (_, row), geom in zip(teams.iterrows(), team_geoms, strict=True):
        records.append([f"{row['name']} (team {row['team_id']})", *_bounds(np.array([geom]))])
    bbox = gpd.GeoDataFrame(lsoa[["lad24nm", "icb24cd"]], geometry=_box_wgs84(lsoa), crs=4326)
    for name, group in bbox.groupby("lad24nm", sort=True):
        records.append([f"{name} (local authority)", *_bounds(group.geometry.values)])
    if with_icbs:
        for code, group in bbox.groupby("icb24cd", sort=True):
            records.append([f"{model.icb_name(str(code))} (ICB)", *_bounds(group.geometry.values)])
    return records

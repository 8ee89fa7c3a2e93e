"""Folium maps of the plan: England, one page per NHS region, one per ICB.

`write_maps` writes a folder of self-contained HTML pages (data embedded, so a
page opens from a file without a server; only Leaflet and two Leaflet plugins
come from a CDN):

    index.html               England: catchments by wave, ICB/region outlines,
                             search, rollout by year, links to every page
    region/<NHSER code>.html for regional leads: catchments + ranked candidates
    icb/<ICB code>.html      for commissioners: named catchments, local
                             authority outlines, under-3s by LSOA, cost and
                             capacity per team and year

All geometry is derived from the LSOA coverage (`areas` + `assignment`), so a
catchment, its ICB, its local authorities and its LSOAs share edges exactly;
it is cleaned (`coverage_clean`) only if the input is not a valid coverage,
simplified with `coverage_simplify` in British National Grid metres, then
reprojected to WGS84 and rounded.  Every string that reaches HTML is escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import branca.element as be
import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import shapely.geometry
import shapely.ops
from folium.elements import JSCSSMixin
from folium.plugins import Fullscreen, Search
from folium.template import Template
from pyproj import Transformer

from planner.errors import PlannerError
from planner.fsutil import atomic_file

OGL_LINE = (
    "Contains public sector information licensed under the Open Government Licence v3.0. "
    "Contains OS data © Crown copyright and database right."
)

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

PLAN_COLUMNS = (
    "team_id", "name", "icb24cd", "icb24nm", "nhser24cd", "nhser24nm", "lads", "population",
    "under3", "wave", "operating_from", "full_from", "readiness", "readiness_note",
    "need_score", "priority_rank", "rationale",
)  # fmt: skip
AREA_COLUMNS = ("lsoa21cd", "lsoa21nm", "lad24cd", "lad24nm", "icb24cd", "nhser24cd", "under3")
_CODE = re.compile(r"^[A-Za-z0-9]+$")
_TO_WGS84 = Transformer.from_crs("EPSG:27700", "EPSG:4326", always_xy=True)


@dataclass(frozen=True)
class MapSettings:
    """Simplification tolerances (metres) and page size limits.

    A page over its limit is rebuilt with the tolerance doubled (up to
    `max_retries` times) before giving up with a PlannerError.
    """

    national_tolerance: float = 300.0
    region_tolerance: float = 120.0
    icb_tolerance: float = 40.0
    decimals: int = 5
    max_index_bytes: int = 5_000_000
    max_region_bytes: int = 5_000_000
    max_icb_bytes: int = 2_000_000
    max_retries: int = 4


@dataclass
class MapsWritten:
    """What write_maps produced: relative page path -> size in bytes, sorted."""

    sizes: dict[str, int] = field(default_factory=dict)

    @property
    def pages(self) -> list[str]:
        return list(self.sizes)


# --------------------------------------------------------------------------- entry point


def write_maps(
    out_dir: str | Path,
    plan: pd.DataFrame,
    areas: gpd.GeoDataFrame,
    assignment: pd.DataFrame,
    years: Sequence[str],
    vintage: str,
    *,
    settings: MapSettings | None = None,
) -> MapsWritten:
    """Write index.html, region/<code>.html and icb/<code>.html into `out_dir`.

    plan: one row per team (DataFrame or GeoDataFrame; its geometry, if any, is
        not used) with PLAN_COLUMNS plus `cost_<yyyy_yy>` and `babies_<yyyy_yy>`
        for every year in `years`.
    areas: the LSOA GeoDataFrame (areas contract, EPSG:27700).
    assignment: columns lsoa21cd, team_id (every LSOA of `areas` exactly once).
    years: display labels in order, e.g. ["2022/23", "2023/24", ...].
    vintage: one line saying which data the plan was built from, shown on every page.

    Each page is written atomically; the caller swaps the folder in.
    """
    settings = settings or MapSettings()
    out = Path(out_dir)
    model = _Model.build(plan, areas, assignment, list(years), vintage)
    written = MapsWritten()

    def emit(rel: str, build, limit: int, tolerance: float) -> None:
        tol = tolerance
        for _ in range(settings.max_retries + 1):
            page = build(tol).encode("utf-8")
            if len(page) <= limit:
                with atomic_file(out / rel, "wb") as fh:
                    fh.write(page)
                written.sizes[rel] = len(page)
                return
            tol *= 2
        raise PlannerError(
            f"map page is {len(page):,} bytes, over the limit of {limit:,} even at "
            f"tolerance {tol / 2:g} m",
            file=out / rel,
            fix="raise the limit or the tolerance in MapSettings",
        )

    emit("index.html", lambda t: _index_page(model, t, settings), settings.max_index_bytes,
         settings.national_tolerance)  # fmt: skip
    for code in model.region_codes:
        emit(f"region/{code}.html", lambda t, c=code: _region_page(model, c, t, settings),
             settings.max_region_bytes, settings.region_tolerance)  # fmt: skip
    for code in model.icb_codes:
        emit(f"icb/{code}.html", lambda t, c=code: _icb_page(model, c, t, settings),
             settings.max_icb_bytes, settings.icb_tolerance)  # fmt: skip
    written.sizes = dict(sorted(written.sizes.items()))
    return written


# --------------------------------------------------------------------------- inputs


@dataclass
class _Model:
    """Validated inputs plus the cleaned LSOA coverage shared by every page."""

    plan: pd.DataFrame
    lsoa: gpd.GeoDataFrame  # areas + team_id, cleaned coverage, EPSG:27700
    years: list[str]
    vintage: str
    _catchment_cache: dict[float, gpd.GeoDataFrame] = field(default_factory=dict)

    @classmethod
    def build(cls, plan, areas, assignment, years, vintage) -> _Model:
        _require(plan, PLAN_COLUMNS, "plan")
        money = [f"cost_{_suffix(y)}" for y in years] + [f"babies_{_suffix(y)}" for y in years]
        _require(plan, money, "plan")
        _require(areas, AREA_COLUMNS, "areas")
        _require(assignment, ("lsoa21cd", "team_id"), "assignment")
        if not years:
            raise PlannerError("no scenario years given to write_maps", field="years")
        plan = pd.DataFrame(plan.drop(columns="geometry", errors="ignore")).copy()
        plan["team_id"] = plan["team_id"].astype(str)
        if plan["team_id"].duplicated().any():
            dup = sorted(plan.loc[plan["team_id"].duplicated(), "team_id"])[:5]
            raise PlannerError("team ids repeat in the plan", field="team_id", value=dup)
        for col, label in (("icb24cd", "ICB"), ("nhser24cd", "NHS region")):
            bad = sorted({c for c in plan[col].astype(str) if not _CODE.match(c)})
            if bad:
                raise PlannerError(f"{label} codes must be letters and digits (used as file "
                                   "names)", field=col, value=bad[:5])  # fmt: skip
        if areas.crs is None or areas.crs.to_epsg() != 27700:
            raise PlannerError(
                "areas must be in EPSG:27700", field="geometry", value=str(areas.crs)
            )
        lsoa = areas[[*AREA_COLUMNS, "geometry"]].copy()
        lsoa["lsoa21cd"] = lsoa["lsoa21cd"].astype(str)
        amap = assignment.assign(lsoa21cd=assignment["lsoa21cd"].astype(str),
                                 team_id=assignment["team_id"].astype(str))  # fmt: skip
        if amap["lsoa21cd"].duplicated().any():
            raise PlannerError("an LSOA is assigned twice", field="lsoa21cd",
                               value=sorted(amap.loc[amap["lsoa21cd"].duplicated(), "lsoa21cd"])[:5])  # fmt: skip
        lsoa = lsoa.merge(amap[["lsoa21cd", "team_id"]], on="lsoa21cd", how="left")
        missing = lsoa.loc[lsoa["team_id"].isna(), "lsoa21cd"]
        if len(missing):
            raise PlannerError(f"{len(missing)} LSOAs have no team in the assignment",
                               field="lsoa21cd", value=sorted(missing)[:5])  # fmt: skip
        unknown = sorted(set(lsoa["team_id"]) - set(plan["team_id"]))
        empty = sorted(set(plan["team_id"]) - set(lsoa["team_id"]))
        if unknown or empty:
            raise PlannerError("assignment and plan disagree on teams", field="team_id",
                               value={"not in plan": unknown[:5], "no LSOAs": empty[:5]})  # fmt: skip
        lsoa = lsoa.sort_values("lsoa21cd", kind="stable").reset_index(drop=True)
        geoms = shapely.make_valid(lsoa.geometry.values)
        if not shapely.coverage_is_valid(geoms):
            geoms = shapely.coverage_clean(geoms)
        lsoa = gpd.GeoDataFrame(lsoa.drop(columns="geometry"), geometry=geoms, crs=27700)
        plan = plan.sort_values(["priority_rank", "team_id"], kind="stable").reset_index(drop=True)
        return cls(plan=plan, lsoa=lsoa, years=list(years), vintage=vintage)

    @property
    def region_codes(self) -> list[str]:
        return sorted(self.plan["nhser24cd"].astype(str).unique())

    @property
    def icb_codes(self) -> list[str]:
        return sorted(self.plan["icb24cd"].astype(str).unique())

    def region_name(self, code: str) -> str:
        return str(self.plan.loc[self.plan["nhser24cd"] == code, "nhser24nm"].iloc[0])

    def icb_name(self, code: str) -> str:
        return str(self.plan.loc[self.plan["icb24cd"] == code, "icb24nm"].iloc[0])

    def icb_region(self, code: str) -> str:
        return str(self.plan.loc[self.plan["icb24cd"] == code, "nhser24cd"].iloc[0])

    def catchments(self, tolerance: float) -> gpd.GeoDataFrame:
        """National catchment coverage simplified at `tolerance` (27700), cached."""
        if tolerance not in self._catchment_cache:
            polys = _dissolve(self.lsoa, "team_id")
            polys = polys.assign(geometry=shapely.coverage_simplify(polys.geometry.values,
                                                                    tolerance))  # fmt: skip
            merged = self.plan.merge(polys, on="team_id", how="left")
            self._catchment_cache[tolerance] = gpd.GeoDataFrame(merged, geometry="geometry",
                                                                crs=27700)  # fmt: skip
        return self._catchment_cache[tolerance]

    def year_index(self, label: Any) -> int | None:
        label = str(label)
        return self.years.index(label) if label in self.years else None


def _require(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise PlannerError(f"{what} lacks columns needed for the maps", field=missing[0],
                           value=missing, fix=f"add {', '.join(missing)} to the {what}")  # fmt: skip


def _suffix(year: str) -> str:
    return str(year).replace("/", "_")


# --------------------------------------------------------------------------- geometry


def _dissolve(frame: gpd.GeoDataFrame, key: str) -> gpd.GeoDataFrame:
    """Union a valid coverage by `key`, keeping shared edges exact (coverage_union)."""
    groups = frame.groupby(key, sort=True).indices
    geoms = []
    for idx in groups.values():
        parts = frame.geometry.values[np.sort(idx)]
        try:
            geoms.append(shapely.coverage_union_all(parts))
        except shapely.errors.GEOSException:
            geoms.append(shapely.union_all(parts))
    return gpd.GeoDataFrame({key: list(groups)}, geometry=geoms, crs=frame.crs)


def _web(geoms: np.ndarray, decimals: int) -> np.ndarray:
    """Reproject BNG geometries to WGS84 and round coordinates (same vertex -> same output)."""

    def project(coords: np.ndarray) -> np.ndarray:
        x, y = _TO_WGS84.transform(coords[:, 0], coords[:, 1])
        return np.round(np.column_stack([x, y]), decimals)

    out = shapely.transform(np.asarray(geoms, dtype=object), project)
    return shapely.remove_repeated_points(out)


def _bounds(geoms: np.ndarray) -> list[float]:
    """[south, west, north, east] of WGS84 geometries, rounded for compact JSON."""
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    return [round(float(v), 4) for v in (miny, minx, maxy, maxx)]


def _feature_collection(geoms: np.ndarray, props: list[dict]) -> dict:
    feats = [
        {"type": "Feature", "properties": p, "geometry": shapely.geometry.mapping(g)}
        for g, p in zip(geoms, props, strict=True)
    ]
    return {"type": "FeatureCollection", "features": feats}


def _label_point(geom: shapely.Geometry) -> tuple[float, float]:
    """Where a name label sits: pole of inaccessibility of the largest part (BNG)."""
    parts = shapely.get_parts(geom)
    biggest = parts[int(np.argmax(shapely.area(parts)))]
    pt = shapely.ops.polylabel(biggest, tolerance=50.0)
    lon, lat = _TO_WGS84.transform(pt.x, pt.y)
    return round(lat, 5), round(lon, 5)


# --------------------------------------------------------------------------- formatting


def _e(value: Any) -> str:
    """html.escape for anything; missing values become an empty string."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    return html.escape(str(value), quote=True)


def pounds(value: float) -> int:
    """Round half-up to whole pounds (the proposal's rule; not banker's rounding)."""
    return int(Decimal(repr(float(value))).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _money(value: float) -> str:
    return f"£{pounds(value):,}"


def _count(value: Any) -> str:
    try:
        return f"{pounds(float(value)):,}"
    except (TypeError, ValueError):
        return _e(value)


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
    folium.TileLayer("OpenStreetMap", name="OpenStreetMap", opacity=0.55, control=False).add_to(
        fmap
    )
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


def _assign_ids(root: be.Element) -> None:
    """Stable element ids (folium uses random ones) so reruns give identical pages."""

    def walk(el: be.Element) -> Iterator[be.Element]:
        yield el
        for child in list(el._children.values()):
            yield from walk(child)

    for counter, el in enumerate(walk(root)):
        el._id = f"{counter:04d}"


def _render(fig: be.Figure, fmap: folium.Map, bounds: list[float], *, top: str, side: str,
            footer: str) -> str:  # fmt: skip
    # Keep the catchments clear of the legend in the bottom-right corner.
    fmap.fit_bounds([[bounds[0], bounds[1]], [bounds[2], bounds[3]]],
                    padding_top_left=(10, 10), padding_bottom_right=(240, 10))  # fmt: skip
    fig.header.add_child(be.Element(_PAGE_CSS), name="planner_css")
    fig.html.add_child(be.Element(f'<header class="planner-top">{top}</header>'), name="p_top")
    fig.html.add_child(be.Element(f'<aside class="planner-side">{side}</aside>'), name="p_side")
    fig.html.add_child(be.Element(f'<footer class="planner-foot">{footer}</footer>'),
                       name="p_foot")  # fmt: skip
    _assign_ids(fig)
    return fig.render()


_PAGE_CSS = """
<style>
html, body { margin: 0; height: 100%; font: 14px/1.4 system-ui, -apple-system, "Segoe UI",
  Roboto, Arial, sans-serif; color: #222; }
header.planner-top { position: fixed; top: 0; left: 0; right: 0; height: 52px; padding: 4px 12px;
  box-sizing: border-box; background: #005eb8; color: #fff; overflow: hidden; }
header.planner-top a { color: #fff; }
header.planner-top h1 { font-size: 18px; margin: 0; white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis; }
header.planner-top nav { font-size: 12px; }
.folium-map { position: fixed !important; top: 52px !important; bottom: 40px; left: 0 !important;
  width: 60% !important; height: auto !important; }
aside.planner-side { position: fixed; top: 52px; bottom: 40px; right: 0; width: 40%;
  overflow: auto; padding: 8px 14px; box-sizing: border-box; border-left: 1px solid #ccc; }
footer.planner-foot { position: fixed; bottom: 0; left: 0; right: 0; height: 40px;
  padding: 3px 12px; box-sizing: border-box; font-size: 11px; background: #f3f3f3;
  border-top: 1px solid #ccc; overflow: auto; }
aside h2 { font-size: 16px; margin: 10px 0 6px; }
aside table { border-collapse: collapse; font-size: 12px; width: 100%; margin-bottom: 10px; }
aside th, aside td { border-bottom: 1px solid #ddd; padding: 3px 4px; text-align: left;
  vertical-align: top; }
aside td { overflow-wrap: anywhere; }
aside td.num, aside th.num { text-align: right; white-space: nowrap; overflow-wrap: normal; }
aside .scroll { overflow-x: auto; }
aside tr.wave1 td { background: #eaf2fb; }
aside tr.total td { font-weight: bold; border-top: 2px solid #999; }
aside ul { padding-left: 18px; margin: 4px 0; }
.planner-tip table { font-size: 12px; }
.planner-tip th { color: #555; font-weight: normal; }
.team-label { font: bold 11px/1.1 system-ui, sans-serif; color: #111; text-align: center;
  text-shadow: 0 0 3px #fff, 0 0 3px #fff, 0 0 3px #fff; white-space: nowrap; }
.team-label div { transform: translate(-50%, -50%); display: inline-block; }
.leaflet-control-search .search-tooltip { max-height: 280px; }
@media (max-width: 820px) {
  header.planner-top, footer.planner-foot, aside.planner-side { position: static; width: auto;
    height: auto; border: 0; }
  .folium-map { position: relative !important; top: 0 !important; width: 100% !important;
    height: 65vh !important; }
}
</style>
"""


def _footer(model: _Model) -> str:
    vintage = model.vintage.strip()
    if not vintage.lower().startswith(("data:", "data ")):
        vintage = f"Data: {vintage}"
    return (f'<div class="vintage">{_e(vintage)}</div>'
            f'<div class="ogl">{_e(OGL_LINE)}</div>')  # fmt: skip


def _top(title: str, crumbs: list[tuple[str, str | None]]) -> str:
    links = " › ".join(f'<a href="{_e(href)}">{_e(text)}</a>' if href else _e(text)
                       for text, href in crumbs)  # fmt: skip
    return f'<nav class="breadcrumb">{links}</nav><h1>{_e(title)}</h1>'


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


def _box_wgs84(frame: gpd.GeoDataFrame) -> np.ndarray:
    """Each geometry's bounding box in WGS84 (all four corners projected)."""
    b = shapely.bounds(frame.geometry.values)
    xs = np.stack([b[:, 0], b[:, 2], b[:, 2], b[:, 0]], axis=1)
    ys = np.stack([b[:, 1], b[:, 1], b[:, 3], b[:, 3]], axis=1)
    lon, lat = _TO_WGS84.transform(xs.ravel(), ys.ravel())
    lon, lat = lon.reshape(xs.shape), lat.reshape(ys.shape)
    return shapely.box(lon.min(1), lat.min(1), lon.max(1), lat.max(1))


# --------------------------------------------------------------------------- pages


def _index_page(model: _Model, tolerance: float, settings: MapSettings) -> str:
    teams = model.catchments(tolerance)
    fig, fmap = _new_map("Parent-infant teams in England")
    layer = _catchment_layer(model, teams, settings.decimals)
    layer.add_to(fmap)
    icbs = _dissolve(teams, "icb24cd")
    regions = _dissolve(teams, "nhser24cd")
    _outline_layer(_web(icbs.geometry.values, settings.decimals), "ICB boundaries", "#333333",
                   1.2, "4 3").add_to(fmap)  # fmt: skip
    _outline_layer(_web(regions.geometry.values, settings.decimals), "NHS region boundaries",
                   "#000000", 2.6, None).add_to(fmap)  # fmt: skip
    _WaveControl(layer, model.years, _wave_legend(model, teams)).add_to(fmap)
    geoms = layer.planner_geoms  # type: ignore[attr-defined]
    _PageSearch(_search_records(model, teams, geoms, model.lsoa, with_icbs=True),
                "Find a team, ICB or local authority").add_to(fmap)  # fmt: skip
    Fullscreen(position="topleft").add_to(fmap)
    folium.LayerControl(collapsed=False, position="topright").add_to(fmap)

    items = []
    for rcode in model.region_codes:
        icb_items = "".join(
            f'<li><a href="icb/{_e(c)}.html">{_e(model.icb_name(c))}</a> '
            f"({(teams['icb24cd'] == c).sum()} teams)</li>"
            for c in model.icb_codes
            if model.icb_region(c) == rcode
        )
        n = (teams["nhser24cd"] == rcode).sum()
        items.append(f'<li><a href="region/{_e(rcode)}.html">{_e(model.region_name(rcode))}</a>'
                     f" ({n} teams)<ul>{icb_items}</ul></li>")  # fmt: skip
    side = (
        f"<p>{len(teams)} specialised parent-infant teams, one catchment each, coloured by the "
        "wave in which the team starts. Hover over a catchment for its details; use the "
        "rollout switch on the map to see which teams operate in each year.</p>"
        f"{_totals_table(model, teams)}"
        f'<h2>Regions and ICBs</h2><ul class="pages">{"".join(items)}</ul>'
    )
    return _render(fig, fmap, _bounds(geoms), top=_top("Parent-infant teams in England",
                   [("England", None)]), side=side, footer=_footer(model))  # fmt: skip


def _totals_table(model: _Model, teams: pd.DataFrame) -> str:
    """Team cost and babies seen per year for a set of teams (team costs only)."""
    head = "".join(f'<th class="num">{_e(y)}</th>' for y in model.years)
    cost = "".join(f'<td class="num">{_money(teams[f"cost_{_suffix(y)}"].sum())}</td>'
                   for y in model.years)  # fmt: skip
    babies = "".join(f'<td class="num">{_count(teams[f"babies_{_suffix(y)}"].sum())}</td>'
                     for y in model.years)  # fmt: skip
    starts = [model.year_index(v) for v in teams["operating_from"]]
    running = "".join(
        f'<td class="num">{sum(1 for s in starts if s is not None and s <= i)}</td>'
        for i, _ in enumerate(model.years)
    )
    return (f'<div class="scroll"><table class="totals"><tr><th></th>{head}</tr>'
            f"<tr><td>Teams operating</td>{running}</tr>"
            f"<tr><td>Team cost</td>{cost}</tr><tr><td>Babies seen</td>{babies}</tr></table></div>"
            "<p><small>Team costs (labour and training) only; the national development "
            "programme is not included.</small></p>")  # fmt: skip


def _region_page(model: _Model, code: str, tolerance: float, settings: MapSettings) -> str:
    allteams = model.catchments(tolerance)
    teams = allteams[allteams["nhser24cd"] == code]
    name = model.region_name(code)
    fig, fmap = _new_map(f"{name}: parent-infant teams")
    layer = _catchment_layer(model, teams, settings.decimals)
    layer.add_to(fmap)
    icbs = _dissolve(teams, "icb24cd")
    _outline_layer(_web(icbs.geometry.values, settings.decimals), "ICB boundaries", "#333333",
                   1.6, "4 3").add_to(fmap)  # fmt: skip
    _WaveControl(layer, model.years, _wave_legend(model, teams)).add_to(fmap)
    lsoa = model.lsoa[model.lsoa["nhser24cd"] == code]
    geoms = layer.planner_geoms  # type: ignore[attr-defined]
    _PageSearch(_search_records(model, teams, geoms, lsoa, with_icbs=True),
                "Find a team, ICB or local authority").add_to(fmap)  # fmt: skip
    Fullscreen(position="topleft").add_to(fmap)
    folium.LayerControl(collapsed=False, position="topright").add_to(fmap)

    rows = []
    for _, row in teams.sort_values(["priority_rank", "team_id"]).iterrows():
        note = _e(row["readiness_note"])
        rows.append(
            f'<tr class="{"wave1" if int(row["wave"]) == 1 else ""}">'
            f'<td class="num">{_e(row["priority_rank"])}</td>'
            f"<td>{_e(row['name'])}<br><small>{_e(row['team_id'])} · "
            f'<a href="../icb/{_e(row["icb24cd"])}.html">{_e(_short_icb(row["icb24nm"]))}</a>'
            "</small></td>"
            f'<td class="num">{_e(row["wave"])}</td>'
            f"<td>{_e(row['readiness'])}{'<br><small>' + note + '</small>' if note else ''}</td>"
            f'<td class="num">{_score(row["need_score"])}</td>'
            f"<td>{_e(row['rationale'])}</td></tr>"
        )
    icb_links = "".join(f'<li><a href="../icb/{_e(c)}.html">{_e(model.icb_name(c))}</a></li>'
                        for c in sorted(teams["icb24cd"].unique()))  # fmt: skip
    n1 = int((teams["wave"].astype(int) == 1).sum())
    side = (
        f"<h2>Wave-one candidates, ranked</h2><p>All {len(teams)} catchments in {_e(name)} in "
        f"national priority order; the {n1} shaded rows are in wave one.</p>"
        '<div class="scroll"><table class="candidates"><tr><th class="num">Rank</th><th>Team</th>'
        '<th class="num">Wave</th><th>Readiness</th><th class="num">Need score</th>'
        f"<th>Rationale</th></tr>{''.join(rows)}</table></div>"
        f"<h2>Cost and capacity</h2>{_totals_table(model, teams)}"
        f"<h2>ICBs in this region</h2><ul>{icb_links}</ul>"
    )
    top = _top(f"{name}: parent-infant teams", [("England", "../index.html"), (name, None)])
    return _render(fig, fmap, _bounds(geoms), top=top, side=side, footer=_footer(model))


def _short_icb(name: Any) -> str:
    """'NHS West Yorkshire Integrated Care Board' -> 'West Yorkshire ICB' for narrow tables."""
    text = re.sub(r"^NHS\s+", "", str(name))
    return re.sub(r"\s*Integrated Care Board$", " ICB", text)


def _score(value: Any) -> str:
    try:
        return f"{float(value):,.2f}"
    except (TypeError, ValueError):
        return _e(value)


def _icb_page(model: _Model, code: str, tolerance: float, settings: MapSettings) -> str:
    name = model.icb_name(code)
    rcode = model.icb_region(code)
    rname = model.region_name(rcode)
    lsoa = model.lsoa[model.lsoa["icb24cd"] == code].reset_index(drop=True)
    lsoa = lsoa.assign(geometry=shapely.coverage_simplify(lsoa.geometry.values, tolerance))
    polys = _dissolve(lsoa, "team_id")
    teams = gpd.GeoDataFrame(
        model.plan[model.plan["icb24cd"] == code].merge(polys, on="team_id", how="inner"),
        geometry="geometry",
        crs=27700,
    )
    lads = _dissolve(lsoa, "lad24cd").merge(
        lsoa[["lad24cd", "lad24nm"]].drop_duplicates("lad24cd"), on="lad24cd"
    )
    fig, fmap = _new_map(f"{name}: parent-infant teams")

    # Under-3s by LSOA (below the outlines, above the catchment fills; off at first).
    values = lsoa["under3"].astype(float).to_numpy()
    edges = np.unique(np.quantile(values, [0.2, 0.4, 0.6, 0.8])) if len(values) else np.array([])
    bins = np.searchsorted(edges, values, side="right")
    lgeoms = _web(lsoa.geometry.values, settings.decimals)
    lprops = [{"c": _e(c), "n": _e(n), "u": f"{v:,.0f}", "b": int(b)}
              for c, n, v, b in zip(lsoa["lsoa21cd"], lsoa["lsoa21nm"], values, bins,
                                    strict=True)]  # fmt: skip
    folium.GeoJson(
        _feature_collection(lgeoms, lprops),
        name="Under-3s by LSOA (estimated)",
        style_function=lambda f: {"fillColor": UNDER3_COLOURS[min(f["properties"]["b"], 4)],
                                  "fillOpacity": 0.8, "color": "#777777", "weight": 0.4},
        tooltip=folium.GeoJsonTooltip(fields=["n", "c", "u"], aliases=["LSOA", "Code", "Under-3s"],
                                      class_name="planner-tip"),
        pane="lsoa", show=False, class_name="planner-lsoa",
    ).add_to(fmap)  # fmt: skip

    layer = _catchment_layer(model, teams, settings.decimals)
    layer.add_to(fmap)
    geoms = layer.planner_geoms  # type: ignore[attr-defined]
    _outline_layer(geoms, "Team boundaries", "#111111", 2.4, None).add_to(fmap)
    _outline_layer(_web(lads.geometry.values, settings.decimals), "Local authority boundaries",
                   "#6a3d9a", 1.4, "6 4").add_to(fmap)  # fmt: skip
    labels = folium.FeatureGroup(name="Team names", show=True)
    for _, row in teams.iterrows():
        folium.Marker(
            _label_point(row.geometry),
            icon=folium.DivIcon(html=f"<div>{_e(row['name'])}</div>", class_name="team-label",
                                icon_size=(0, 0)),
            interactive=False, pane="labels",
        ).add_to(labels)  # fmt: skip
    labels.add_to(fmap)

    lo = [0.0, *edges.tolist()]
    hi = [*edges.tolist(), float(values.max()) if len(values) else 0.0]
    u3_rows = "".join(
        f'<div><span class="sw" style="background:{UNDER3_COLOURS[i]}"></span>'
        f"{lo[i]:,.0f}–{hi[i]:,.0f}</div>"
        for i in range(len(hi))
    )
    legend = _wave_legend(model, teams, f'<div class="years"><b>Under-3s per LSOA</b>'
                                         f" (layer){u3_rows}</div>")  # fmt: skip
    _WaveControl(layer, model.years, legend).add_to(fmap)
    _PageSearch(_search_records(model, teams, geoms, lsoa, with_icbs=False),
                "Find a team or local authority").add_to(fmap)  # fmt: skip
    Fullscreen(position="topleft").add_to(fmap)
    folium.LayerControl(collapsed=False, position="topright").add_to(fmap)

    side = (
        f"<p>{len(teams)} team{'s' if len(teams) != 1 else ''} in {_e(name)}. "
        "Under-3s by LSOA are estimated by sharing each MSOA's Census count of children aged "
        "0–2 across its LSOAs in proportion to population.</p>"
        f"{_team_year_table(model, teams, 'cost', 'Cost by team and year (£)', _count)}"
        f"{_team_year_table(model, teams, 'babies', 'Babies seen by team and year', _count)}"
        "<p><small>Team costs (labour and training) only; the national development programme "
        "is not included.</small></p>"
        f"{_team_list(teams)}"
    )
    top = _top(
        f"{name}: parent-infant teams",
        [("England", "../index.html"), (rname, f"../region/{rcode}.html"), (name, None)],
    )
    return _render(fig, fmap, _bounds(geoms), top=top, side=side, footer=_footer(model))


def _team_year_table(model: _Model, teams: pd.DataFrame, prefix: str, title: str, fmt) -> str:
    cols = [f"{prefix}_{_suffix(y)}" for y in model.years]
    head = "".join(f'<th class="num">{_e(y)}</th>' for y in model.years)
    rows = []
    for _, row in _by_team_id(teams).iterrows():
        cells = "".join(f'<td class="num">{fmt(row[c])}</td>' for c in cols)
        total = fmt(sum(float(row[c]) for c in cols))
        rows.append(f"<tr><td>{_e(row['name'])}<br><small>{_e(row['team_id'])} · wave "
                    f"{_e(row['wave'])}</small></td>{cells}"
                    f'<td class="num">{total}</td></tr>')  # fmt: skip
    sums = "".join(f'<td class="num">{fmt(teams[c].astype(float).sum())}</td>' for c in cols)
    grand = fmt(sum(teams[c].astype(float).sum() for c in cols))
    return (f'<h2>{_e(title)}</h2><div class="scroll"><table class="{_e(prefix)}"><tr>'
            f'<th>Team</th>{head}<th class="num">Total</th></tr>{"".join(rows)}'
            f'<tr class="total"><td>Total</td>{sums}<td class="num">{grand}</td></tr>'
            "</table></div>")  # fmt: skip


def _by_team_id(teams: pd.DataFrame) -> pd.DataFrame:
    """Natural order of team ids: QWO-2 before QWO-10."""

    def key(tid: str) -> tuple:
        return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(tid)))

    return teams.iloc[sorted(range(len(teams)), key=lambda i: key(teams["team_id"].iloc[i]))]


def _team_list(teams: pd.DataFrame) -> str:
    items = "".join(
        f"<li><b>{_e(r['name'])}</b> ({_e(r['team_id'])}): {_e(r['lads'])}; population "
        f"{_count(r['population'])}, under-3s {_count(r['under3'])}; wave {_e(r['wave'])}, "
        f"operating from {_e(r['operating_from'])}.</li>"
        for _, r in _by_team_id(teams).iterrows()
    )
    return f"<h2>Teams</h2><ul>{items}</ul>"

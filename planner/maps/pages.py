"""The pages: England index, one per NHS region, one per ICB, and `write_maps`."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import branca.element as be
import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from folium.plugins import Fullscreen

from planner.errors import PlannerError
from planner.fsutil import atomic_file
from planner.maps import context  # maps11 hook: local assets, basemap, context layer
from planner.maps.controls import (
    UNDER3_COLOURS,
    _catchment_layer,
    _new_map,
    _outline_layer,
    _PageSearch,
    _search_records,
    _wave_legend,
    _WaveControl,
)
from planner.maps.geometry import _bounds, _dissolve, _feature_collection, _label_point, _web
from planner.maps.model import _Model, _suffix
from planner.maps.text import _count, _e, _money, _score, _short_icb

OGL_LINE = (
    "Contains public sector information licensed under the Open Government Licence v3.0. "
    "Contains OS data © Crown copyright and database right."
)


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
    assets_dir: str | Path | None = None,
) -> MapsWritten:
    """Write index.html, region/<code>.html and icb/<code>.html into `out_dir`.

    plan: one row per team (DataFrame or GeoDataFrame; its geometry, if any, is
        not used) with PLAN_COLUMNS plus `cost_<yyyy_yy>` and `babies_<yyyy_yy>`
        for every year in `years`.
    areas: the LSOA GeoDataFrame (areas contract, EPSG:27700).
    assignment: columns lsoa21cd, team_id (every LSOA of `areas` exactly once).
    years: display labels in order, e.g. ["2022/23", "2023/24", ...].
    vintage: one line saying which data the plan was built from, shown on every page.
    assets_dir: the web-assets cache filled by planner.maps.assets.ensure_assets
        (Leaflet and its plugins, copied into out_dir/assets/ with their licences).

    Each page is written atomically; the caller swaps the folder in.
    """
    settings = settings or MapSettings()
    out = Path(out_dir)
    model = _Model.build(plan, areas, assignment, list(years), vintage)
    written = MapsWritten()
    context.write_shared(out, model.lsoa, assets_dir=assets_dir)  # maps11 hook

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


# --------------------------------------------------------------------------- page frame


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


# --------------------------------------------------------------------------- pages


def _index_page(model: _Model, tolerance: float, settings: MapSettings) -> str:
    teams = model.catchments(tolerance)
    fig, fmap = _new_map("Parent-infant teams in England")
    context.decorate(fig, fmap, root="")  # maps11 hook
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
    context.decorate(fig, fmap, root="../")  # maps11 hook
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
    context.decorate(fig, fmap, root="../")  # maps11 hook

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

"""The pages: England index, one per NHS region, one per ICB, and `write_maps`.

Each page is a Jinja2 template (templates/, autoescaped).  folium draws only
geometry and numbers; every string from the plan or the data files reaches
the page as an escaped template value or inside the JSON data block that
templates/app.js reads and shows with textContent.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import branca.element as be
import folium
import geopandas as gpd
import jinja2
import numpy as np
import pandas as pd
import shapely
from markupsafe import Markup

from planner import exports, tables
from planner.catchments import team_sort_key
from planner.config import year_suffix
from planner.costs import OPERATING, STARTING
from planner.errors import PlannerError
from planner.fsutil import atomic_file
from planner.maps import context
from planner.maps.controls import (
    BASEMAP_GREYS,
    CATCHMENT_STYLE,
    CLUSTER_CASING,
    CLUSTER_LINE,
    ICB_LINE,
    LAD_LINE,
    NOT_YET_COLOUR,
    REGION_LINE,
    TEAM_LINE,
    UNDER3_COLOURS,
    UNDER3_OPACITY,
    WAVE_COLOURS,
    new_map,
    wave_colour,
)
from planner.maps.geometry import (
    GeoJsonText,
    bounds_of,
    dissolve_to,
    feature_collection,
    label_point,
    to_web,
    union_groups,
)
from planner.maps.model import MapModel
from planner.maps.text import count_text, money_text, score_text, short_icb_name
from planner.workers import wait_until_ready, worker_pool

OGL_LINE = (
    "Contains public sector information licensed under the Open Government Licence v3.0. "
    "Contains OS data © Crown copyright and database right."
)
COST_NOTE = (
    "Team costs (labour and training) only; the national development programme is not included."
)


@dataclass(frozen=True)
class MapSettings:
    """Simplification tolerances (metres), page size limits, parallel workers, basemap.

    A page over its limit is rebuilt with the tolerance doubled (up to
    `max_retries` times) before giving up with a PlannerError.  `workers`
    processes build pages at once (0: one per CPU, at most 4); the pages are
    the same bytes whatever the number.
    """

    national_tolerance: float = 300.0
    region_tolerance: float = 120.0
    icb_tolerance: float = 40.0
    decimals: int = 5
    max_index_bytes: int = 5_000_000
    max_region_bytes: int = 5_000_000
    max_icb_bytes: int = 2_000_000
    max_retries: int = 4
    workers: int = 0
    basemap: context.Basemap = field(default_factory=context.Basemap)


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
    team_figures: pd.DataFrame | None = None,
    assets_dir: str | Path | None = None,
) -> MapsWritten:
    """Write index.html, region/<code>.html and icb/<code>.html into `out_dir`.

    plan: one row per team (DataFrame or GeoDataFrame; its geometry, if any, is
        not used) with PLAN_COLUMNS plus `cost_<yyyy_yy>` and `babies_<yyyy_yy>`
        for every year in `years`; OPTIONAL_COLUMNS are shown when present.
    areas: the LSOA GeoDataFrame (areas contract, EPSG:27700).
    assignment: columns lsoa21cd, team_id (every LSOA of `areas` exactly once).
    years: display labels in order, e.g. ["2022/23", "2023/24", ...].
    vintage: the provenance line (which data the plan was built from), shown
        in every page's footer.
    team_figures: the exports' shown team figures (team_id, year, cost,
        babies: tables.shown_tables(plan)["team"]), so the pages' money and
        CSVs equal teams.csv; without them each figure is rounded on its own.
    assets_dir: the web-assets cache filled by planner.maps.assets.ensure_assets
        (Leaflet and its plugins, copied into out_dir/assets/ with their licences).

    Each page is written atomically; the caller swaps the folder in.
    """
    settings = settings or MapSettings()
    out = Path(out_dir)
    model = MapModel.build(plan, areas, assignment, list(years), vintage, team_figures)
    jobs = [("index.html", "index", "")]
    jobs += [(f"region/{c}.html", "region", c) for c in model.region_codes]
    jobs += [(f"icb/{c}.html", "icb", c) for c in model.icb_codes]
    workers = settings.workers or min(os.cpu_count() or 1, 4)
    written = MapsWritten()
    context.write_shared(out, model.lsoa, assets_dir=assets_dir, basemap=settings.basemap)
    if workers > 1 and len(jobs) > 1:
        # Shared by the index and region pages: simplify once, before the workers fork.
        model.catchments(settings.national_tolerance)
        model.catchments(settings.region_tolerance)
        model.lad_shapes(settings.national_tolerance)
        pages = _build_in_workers(model, settings, jobs, workers)
    else:
        pages = [build_page(model, settings, kind, code) for _, kind, code in jobs]
    for (rel, _, _), page in zip(jobs, pages, strict=True):
        with atomic_file(out / rel, "wb") as fh:
            fh.write(page)
        written.sizes[rel] = len(page)
    written.sizes = dict(sorted(written.sizes.items()))
    return written


_WORKER_MODEL: tuple[MapModel, MapSettings] | None = None


def _build_in_worker(kind: str, code: str) -> bytes:
    assert _WORKER_MODEL is not None
    model, settings = _WORKER_MODEL
    return build_page(model, settings, kind, code)


def _build_in_workers(
    model: MapModel, settings: MapSettings, jobs: list[tuple[str, str, str]], workers: int
) -> list[bytes]:
    """Pages in forked workers (sharing the built model), in job order.

    Workers die with the parent and the pool always stops (planner.workers); the
    wait is in short steps so a SIGTERM turned into an exit reaches the main thread.
    """
    global _WORKER_MODEL
    _WORKER_MODEL = (model, settings)
    try:
        with worker_pool(workers) as pool:
            pending = [pool.apply_async(_build_in_worker, (kind, code)) for _, kind, code in jobs]
            pages = []
            for result in pending:
                wait_until_ready(result)
                pages.append(result.get())
            return pages
    finally:
        _WORKER_MODEL = None


def build_page(model: MapModel, settings: MapSettings, kind: str, code: str) -> bytes:
    """One page's bytes, simplified further (tolerance doubled) until it fits its limit."""
    build: Callable[[float], str]
    if kind == "index":
        build, limit, tol = (
            lambda t: _index_page(model, t, settings),
            settings.max_index_bytes,
            settings.national_tolerance,
        )
        rel = "index.html"
    elif kind == "region":
        build, limit, tol = (
            lambda t: _region_page(model, code, t, settings),
            settings.max_region_bytes,
            settings.region_tolerance,
        )
        rel = f"region/{code}.html"
    else:
        build, limit, tol = (
            lambda t: _icb_page(model, code, t, settings),
            settings.max_icb_bytes,
            settings.icb_tolerance,
        )
        rel = f"icb/{code}.html"
    for _ in range(settings.max_retries + 1):
        page = build(tol).encode("utf-8")
        if len(page) <= limit:
            return page
        tol *= 2
    raise PlannerError(
        f"map page is {len(page):,} bytes, over the limit of {limit:,} even at "
        f"tolerance {tol / 2:g} m",
        file=rel,
        fix="raise the limit or the tolerance in MapSettings",
    )


# --------------------------------------------------------------------------- page frame


@cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("planner.maps", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


@cache
def _static(name: str) -> Markup:
    """A template folder file included as it is (CSS, JS: not a template)."""
    return Markup(resources.files("planner.maps").joinpath("templates", name).read_text("utf-8"))


def _assign_ids(root: be.Element) -> None:
    """Stable element ids (folium uses random ones) so reruns give identical pages."""
    stack = [root]
    counter = 0
    while stack:
        el = stack.pop(0)
        el._id = f"{counter:04d}"
        counter += 1
        stack[0:0] = list(el._children.values())


def _render(template: str, fig: be.Figure, fmap: folium.Map, **values: Any) -> str:
    """The page: folium's head/body/script (no plan text in them) inside our template.

    folium's own map header is left out: it sets a viewport that blocks pinch
    zoom and fixed sizes; the template sets both.
    """
    _assign_ids(fig)
    for child in list(fig._children.values()):  # in order, as Figure.render (hooks rely on it)
        child.render()
    fig.header._children.pop(fmap.get_name(), None)
    fig.header._children.pop("meta_http", None)
    shapes: list[str] = []

    def pull(value: Any) -> Any:
        """GeoJSON text out of the data, into its own block (replaced by its index)."""
        if isinstance(value, GeoJsonText):
            shapes.append(value)
            return len(shapes) - 1
        if isinstance(value, dict):
            return {k: pull(v) for k, v in value.items()}
        if isinstance(value, list):
            return [pull(v) for v in value]
        return value

    data = values.pop("data")
    data = {**data, "geo": pull(data["geo"]), "map": fmap.get_name()}
    return (
        _env()
        .get_template(template)
        .render(
            map_head=Markup(fig.header.render()),
            map_html=Markup(fig.html.render()),
            map_script=Markup(fig.script.render()),
            page_css=_static("page.css"),
            app_js=_static("app.js"),
            licence=OGL_LINE,
            data=data,
            shapes=Markup(f"[{','.join(shapes)}]"),
            **values,
        )
    )


def _provenance(model: MapModel) -> str:
    vintage = model.vintage.strip()
    return vintage if vintage.lower().startswith(("data:", "data ")) else f"Data: {vintage}"


# --------------------------------------------------------------------------- page data


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _team_details(model: MapModel, row: pd.Series) -> list[list[str]]:
    """The details panel's rows (plain text; the page shows them with textContent)."""
    start, full = str(row["operating_from"]), str(row["full_from"])
    when = f"operating from {start}" + (f", fully from {full}" if full != start else "")
    rows = [
        ["Team", str(row["team_id"])],
        ["ICB", short_icb_name(row["icb24nm"])],
        ["Local authorities", str(row["lads"])],
        ["Wave", f"{row['wave']}, {when}"],
        ["Population", count_text(row["population"])],
        ["Under-3s", count_text(row["under3"])],
    ]
    if "wte" in row.index and pd.notna(row["wte"]):
        rows.append(["WTE", f"{float(row['wte']):,.1f}"])
    shown = model.rows[str(row["team_id"])]
    cost_col = f"cost_{year_suffix(full)}"
    if "annual_staff_cost" in row.index and pd.notna(row["annual_staff_cost"]):
        # One price year, no one-off costs: comparable across teams and waves.
        rows.append(
            [f"Staff cost a year ({model.years[0]} prices)", money_text(row["annual_staff_cost"])]
        )
    if cost_col in shown:
        rows.append(
            [f"Babies seen a year (from {full})", count_text(shown[f"babies_{year_suffix(full)}"])]
        )
    else:
        rows.append(["Babies seen a year", f"from {full} (after {model.years[-1]})"])
    if "babies_per_1000_under1" in row.index and pd.notna(row["babies_per_1000_under1"]):
        rows.append(["Babies a year per 1,000 under-1s", f"{row['babies_per_1000_under1']:.1f}"])
    note = row["readiness_note"]
    readiness = str(row["readiness"]) + (f": {note}" if pd.notna(note) and str(note) else "")
    rows.append(["Readiness", readiness])
    if "wave_basis" in row.index and pd.notna(row["wave_basis"]):
        rows.append(["Wave based on", str(row["wave_basis"])])
    if "cluster_id" in row.index and pd.notna(row["cluster_id"]):
        rows.append(["Cluster", str(row["cluster_id"])])
    rank = f"{_ordinal(int(row['priority_rank']))} in England"
    if "region_rank" in row.index and pd.notna(row["region_rank"]):
        rank = f"{_ordinal(int(row['region_rank']))} in region, {rank}"
    rows.append(["Priority", rank])
    return rows


#: The details panel's word for a team's costing status in a year (tables: status).
_STATUS_TEXT = {OPERATING: "full year", STARTING: "starting", "": "not yet"}


def _team_years(model: MapModel, team_id: str) -> list[list[str]]:
    """[year, status, cost, babies] per year for the panel, as teams.csv shows them."""
    row = model.rows[team_id]
    out = []
    for year in model.years:
        suffix = year_suffix(year)
        status = _STATUS_TEXT.get(row[f"status_{suffix}"], row[f"status_{suffix}"])
        cost, babies = row[f"cost_{suffix}"], row[f"babies_{suffix}"]
        out.append([year, status, money_text(cost), count_text(babies)])
    return out


def _team_records(
    model: MapModel, teams: gpd.GeoDataFrame, geoms: np.ndarray, kind: str, labels: bool
) -> list[dict]:
    """Per team: what the panel, tooltip, labels, search and hash state need."""
    up = "" if kind == "index" else "../"
    areas = shapely.area(teams.geometry.values)
    area_rank = np.empty(len(areas), dtype=int)
    area_rank[np.lexsort((np.arange(len(areas)), -areas))] = np.arange(len(areas))
    out = []
    for i, ((_, row), geom) in enumerate(zip(teams.iterrows(), geoms, strict=True)):
        links = []
        if kind != "icb":
            links.append(
                [f"{short_icb_name(row['icb24nm'])} page", f"{up}icb/{row['icb24cd']}.html"]
            )
        if kind != "region":
            links.append([f"{row['nhser24nm']} page", f"{up}region/{row['nhser24cd']}.html"])
        rec = {
            "id": str(row["team_id"]),
            "name": str(row["name"]),
            "wave": int(row["wave"]),
            "details": _team_details(model, row),
            "years": _team_years(model, str(row["team_id"])),
            "links": links,
            "bounds": bounds_of(np.array([geom])),
            "area_rank": int(area_rank[i]),
        }
        if labels:
            rec["label"] = list(label_point(row.geometry))
        out.append(rec)
    return out


def _team_props(model: MapModel, teams: pd.DataFrame) -> list[dict]:
    return [
        {
            "i": i,
            "w": int(w),
            "s": model.year_index(s),
            "f": model.year_index(f),
        }
        for i, (w, s, f) in enumerate(
            zip(teams["wave"], teams["operating_from"], teams["full_from"], strict=True)
        )
    ]


def _places(model: MapModel, lsoa: pd.DataFrame, code: str, name: str) -> list[list]:
    """[name, bounds, code] per area of `lsoa` (rows of model.lsoa, sorted by code)."""
    boxes = model.lsoa_boxes.loc[lsoa.index].assign(code=lsoa[code].astype(str))
    ext = boxes.groupby("code", sort=True).agg(
        s=("s", "min"), w=("w", "min"), n=("n", "max"), e=("e", "max")
    )
    names = lsoa.groupby(lsoa[code].astype(str), sort=True)[name].first()
    return [
        [str(names[c]), [round(float(v), 4) for v in (r.s, r.w, r.n, r.e)], str(c)]
        for c, r in zip(ext.index, ext.itertuples(), strict=True)
    ]


def _search(records: list[dict], icbs: list[list], lads: list[list]) -> list[list]:
    rows = [
        [f"{t['name']} (team {t['id']})", "team", i, t["bounds"]] for i, t in enumerate(records)
    ]
    rows += [[f"{n} (ICB)", "icb", i, b] for i, (n, b, _) in enumerate(icbs)]
    rows += [[f"{n} (local authority)", "la", i, b] for i, (n, b, _) in enumerate(lads)]
    return sorted(rows, key=lambda r: (r[0].lower(), r[0]))


def _legend(model: MapModel, teams: pd.DataFrame, lines: list[tuple], under3=None) -> dict:
    waves = []
    for wave, group in teams.groupby("wave", sort=True):
        start = min(str(v) for v in group["operating_from"])
        full = min(str(v) for v in group["full_from"])
        when = f"operating fully from {full}" if start == full else f"starting during {start}"
        n = len(group)
        waves.append(
            {
                "colour": wave_colour(int(wave)),
                "label": f"Wave {wave}: {n} team{'s' if n != 1 else ''}, {when}",
            }
        )
    return {
        "waves": waves,
        "fill_opacity": CATCHMENT_STYLE["fill"],
        "starting_opacity": CATCHMENT_STYLE["starting"],
        "starting_dash": CATCHMENT_STYLE["startingDash"],
        "not_yet": NOT_YET_COLOUR,
        "not_yet_opacity": CATCHMENT_STYLE["notYet"],
        "example_colour": WAVE_COLOURS[0],
        "selected_colour": CATCHMENT_STYLE["selected"],
        "ground": BASEMAP_GREYS[1],
        "lines": [
            {
                "label": label,
                "colour": colour,
                "width": weight,
                "dash": dash,
                "casing": CLUSTER_CASING if line == CLUSTER_LINE else None,
            }
            for line in lines
            for label, colour, weight, dash in [line]
        ],
        "under3": under3,
        "under3_opacity": UNDER3_OPACITY,
        "years": model.years,
    }


def _outline(key: str, geoms: np.ndarray, line: tuple) -> dict:
    """A boundary layer for app.js: feature i is entry i of the page data's list `key`."""
    label, colour, weight, dash = line
    style = {"color": colour, "weight": weight, "fill": False, "opacity": 0.9, "dashArray": dash}
    props = [{"i": i} for i in range(len(geoms))]
    return {"key": key, "label": label, "style": style, "data": feature_collection(geoms, props)}


def _cluster_layer(model: MapModel, teams: gpd.GeoDataFrame, decimals: int) -> dict | None:
    """Cluster outlines (the page's catchments united by cluster_id) and labels.

    Off at first (a layer in the layer control). Each label, at the pole of
    inaccessibility of its cluster's largest part, gives the id and the
    cluster's number of teams (all of them, also those beyond the page).
    None when the plan has no clusters.
    """
    if not model.cluster_sizes or "cluster_id" not in teams.columns:
        return None
    ids = teams["cluster_id"]
    mask = ids.notna().to_numpy()
    if not mask.any():
        return None
    # Arrays rather than dissolve_to's frames: this runs on every page (pandas' overhead).
    names, group = np.unique(ids[mask].astype(str).to_numpy(), return_inverse=True)
    parts = np.asarray(teams.geometry.values, dtype=object)[mask]
    shapes = union_groups(parts, (np.flatnonzero(group == k) for k in range(len(names))))
    layer = _outline("clusters", to_web(np.array(shapes, dtype=object), decimals), CLUSTER_LINE)
    colour, weight, opacity = CLUSTER_CASING
    layer["on"] = False
    layer["className"] = "planner-cluster"
    layer["casing"] = {"color": colour, "weight": weight, "opacity": opacity, "fill": False}
    layer["labels"] = [
        [*label_point(geom), f"{cid} · {_teams_text(model.cluster_sizes[cid])}"]
        for cid, geom in zip(names.tolist(), shapes, strict=True)
    ]
    return layer


def _cluster_key(layer: dict | None) -> list[tuple]:
    """The legend's line for the cluster layer, when the page has one."""
    return [CLUSTER_LINE] if layer else []


def _teams_text(n: int) -> str:
    return f"{n} team{'s' if n != 1 else ''}"


def _cluster_list(model: MapModel, teams: pd.DataFrame) -> list[dict]:
    """The page's clusters for the side list: id, size and member names (team-id order)."""
    if "cluster_id" not in teams.columns:
        return []
    rows = [r for r in _by_team_id(model, teams) if pd.notna(r.get("cluster_id"))]
    out: dict[str, list[str]] = {}
    for r in rows:
        out.setdefault(str(r["cluster_id"]), []).append(str(r["name"]))
    return [
        {"id": cid, "teams": _teams_text(model.cluster_sizes[cid]), "names": names}
        for cid, names in out.items()  # in the order of their first team
    ]


def _lad_shapes(model: MapModel, lads: list[list], tolerance: float, decimals: int) -> GeoJsonText:
    """The outlines of the page's local authorities (D.lads order), drawn when one is selected."""
    shapes = model.lad_shapes(tolerance).set_index("lad24cd")
    geoms = shapes.loc[[code for _, _, code in lads]].geometry.values
    return feature_collection(to_web(geoms, decimals), [{"i": i} for i in range(len(lads))])


def _page_data(model: MapModel, records, icbs, lads, bounds, placeholder, labels, geo):
    return {
        "years": model.years,
        "colours": list(WAVE_COLOURS),
        "notYet": NOT_YET_COLOUR,
        "style": CATCHMENT_STYLE,
        "teams": records,
        "icbs": icbs,
        "lads": lads,
        "search": _search(records, icbs, lads),
        "bounds": bounds,
        "placeholder": placeholder,
        "labels": labels,
        "geo": geo,
        "under3Colours": list(UNDER3_COLOURS),
        "under3Opacity": UNDER3_OPACITY,
        "csv": {},
    }


# --------------------------------------------------------------------------- tables


def _totals_table(
    model: MapModel, teams: pd.DataFrame, *, level: str, code: str, name: str
) -> tuple[dict, str]:
    """Teams operating and starting, team cost and babies per year for a set of teams.

    Its CSV is the area's rows of exports/costs_by_year.csv (tables.year_totals
    on the same shown team figures).
    """
    figures = pd.DataFrame(
        [
            {
                "team_id": r["team_id"],
                "year": y,
                **{v: r[f"{v}_{year_suffix(y)}"] for v in ("status", "cost", "babies")},
            }
            for r in _by_team_id(model, teams)
            for y in model.years
        ],
        columns=["team_id", "year", "status", "cost", "babies"],
    )
    frame = tables.year_totals(figures, model.years, level=level, area_code=code, area_name=name)
    table = {
        "id": "totals",
        "caption": "Cost and capacity by year",
        "csv_name": f"costs_by_year_{code}.csv",
        "head": ["", *model.years],
        "num": list(range(1, len(model.years) + 1)),
        "rows": [
            ["Teams operating fully", *[str(n) for n in frame["teams_operating"]]],
            ["Teams starting during the year", *[str(n) for n in frame["teams_starting"]]],
            ["Team cost", *[money_text(v) for v in frame["cost"]]],
            ["Babies seen", *[count_text(v) for v in frame["babies"]]],
        ],
        "total": None,
        "row_class": None,
        "intro": None,
        "note": COST_NOTE,
        "key": True,
    }
    return table, exports.to_csv_text(frame)


def _team_year_table(model: MapModel, teams: pd.DataFrame, prefix: str, caption: str, key: bool):
    """Per team and year (`cost` or `babies`), with the teams.csv columns as its CSV."""
    cols = [f"{prefix}_{year_suffix(y)}" for y in model.years]
    rows = []
    for row in _by_team_id(model, teams):
        values = [float(row[c]) for c in cols]
        rows.append(
            [
                {
                    "text": str(row["name"]),
                    "small": [[f"{row['team_id']} · wave {row['wave']}", None]],
                },
                *[count_text(v) for v in values],
                count_text(sum(values)),
            ]
        )
    sums = [sum(r[c] for r in _by_team_id(model, teams)) for c in cols]
    table = {
        "id": prefix,
        "caption": caption,
        "csv_name": f"{prefix}_by_team.csv",
        "head": ["Team", *model.years, "Total"],
        "num": list(range(1, len(model.years) + 2)),
        "rows": rows,
        "total": ["Total", *[count_text(v) for v in sums], count_text(sum(sums))],
        "row_class": None,
        "intro": None,
        "note": None,
        "key": key,
    }
    frame = pd.DataFrame(_by_team_id(model, teams))[["team_id", "name", "wave", *cols]]
    return table, exports.to_csv_text(frame)


#: Optional columns of the priorities export shown in the candidates table: (column, heading).
_CANDIDATE_EXTRAS = (
    ("national_rank", "National rank"),
    ("wave_basis", "Wave based on"),
    ("confirm", "To confirm"),
)


def _candidates_table(model: MapModel, teams: pd.DataFrame, name: str, up: str):
    """The region's teams in priority order, with the region_<code>_priorities.csv rows."""
    frame = next(iter(tables.region_priorities(teams).values()))
    extras = [(col, head) for col, head in _CANDIDATE_EXTRAS if col in frame.columns]
    rows, classes = [], []
    for r in frame.to_dict("records"):
        t = model.rows[str(r["team_id"])]
        note = t["readiness_note"]
        readiness = str(r["readiness"]) + (f": {note}" if pd.notna(note) and str(note) else "")
        rows.append(
            [
                {
                    "text": str(r["name"]),
                    "small": [
                        [str(r["team_id"]), None],
                        [short_icb_name(r["icb24nm"]), f"{up}icb/{t['icb24cd']}.html"],
                    ],
                },
                str(r["rank"]),
                *[str(r[col]) for col, _ in extras],
                str(r["wave"]),
                readiness,
                score_text(r["need_score"]),
                str(r["rationale"]),
            ]
        )
        classes.append("wave1" if int(r["wave"]) == 1 else "")
    n1 = sum(1 for c in classes if c)
    head = ["Team", "Rank", *[h for _, h in extras], "Wave", "Readiness", "Need score", "Rationale"]
    num = [1, head.index("Wave"), head.index("Need score")]
    if "national_rank" in frame.columns:
        num.append(head.index("National rank"))
    table = {
        "id": "candidates",
        "caption": "Wave-one candidates, ranked",
        "csv_name": f"region_{teams['nhser24cd'].iloc[0]}_priorities.csv",
        "head": head,
        "num": sorted(num),
        "rows": rows,
        "total": None,
        "row_class": classes,
        "intro": f"All {len(teams)} catchments in {name} in priority order; "
        f"the {n1} shaded rows are in wave one.",
        "note": None,
        "key": False,
    }
    return table, exports.to_csv_text(frame)


def _by_team_id(model: MapModel, teams: pd.DataFrame) -> list[dict]:
    """The teams' plan rows (plain values, figures as shown) in teams.csv order."""
    return [model.rows[t] for t in sorted(teams["team_id"].astype(str), key=team_sort_key)]


def _list_items(model: MapModel, records: list[dict], teams: pd.DataFrame) -> list[dict]:
    """Catchment list entries in natural team-id order; `index` is the page data's team."""
    pos = {t["id"]: i for i, t in enumerate(records)}
    return [
        {
            "index": pos[str(r["team_id"])],
            "id": str(r["team_id"]),
            "name": str(r["name"]),
            "wave": r["wave"],
            "lads": str(r["lads"]),
            "population": count_text(r["population"]),
            "under3": count_text(r["under3"]),
            "from": str(r["operating_from"]),
            "wte": f"{float(r['wte']):,.1f}" if pd.notna(r.get("wte")) else "",
        }
        for r in _by_team_id(model, teams)
    ]


# --------------------------------------------------------------------------- pages


def _searchable_page_data(
    model: MapModel, lsoa, records, geoms, geo: dict, tolerance: float, settings: MapSettings
) -> tuple[dict, list]:
    """Page data of a page searched by team, ICB or local authority (the index, a region).

    The ICBs and local authorities of `lsoa` become search entries; the local
    authorities' outlines (at `tolerance`) go into `geo` so a found one is drawn.
    Returns the data and the ICB entries ([name, bounds, code]).
    """
    icbs = [[model.icb_name(c), b, c] for _, b, c in _places(model, lsoa, "icb24cd", "icb24cd")]
    lads = _places(model, lsoa, "lad24cd", "lad24nm")
    geo["ladShapes"] = _lad_shapes(model, lads, tolerance, settings.decimals)
    data = _page_data(
        model,
        records,
        icbs,
        lads,
        bounds_of(geoms),
        "Find a team, ICB or local authority",
        False,
        geo,
    )
    return data, icbs


def _index_page(model: MapModel, tolerance: float, settings: MapSettings) -> str:
    teams = model.catchments(tolerance)
    fig, fmap = new_map()
    context.decorate(fig, fmap, root="", basemap=settings.basemap)
    geoms = to_web(teams.geometry.values, settings.decimals)
    icb_polys = dissolve_to(teams, "icb24cd")
    regions = dissolve_to(teams, "nhser24cd")
    geo = {
        "catchments": feature_collection(geoms, _team_props(model, teams)),
        "lsoa": None,
        "outlines": [
            _outline("icbs", to_web(icb_polys.geometry.values, settings.decimals), ICB_LINE),
            _outline("regions", to_web(regions.geometry.values, settings.decimals), REGION_LINE),
        ],
    }
    clusters = _cluster_layer(model, teams, settings.decimals)
    if clusters:
        geo["outlines"].append(clusters)

    records = _team_records(model, teams, geoms, "index", labels=False)
    data, _ = _searchable_page_data(model, model.lsoa, records, geoms, geo, tolerance, settings)
    totals, data["csv"]["totals"] = _totals_table(
        model, teams, level="england", code=tables.ENGLAND[0], name=tables.ENGLAND[1]
    )
    regions_list = []
    for rcode in model.region_codes:
        icb_items = []
        for c in model.icb_codes:
            if model.icb_region(c) != rcode:
                continue
            members = teams[teams["icb24cd"] == c]
            icb_items.append(
                {
                    "href": f"icb/{c}.html",
                    "name": model.icb_name(c),
                    "n": len(members),
                    "teams": _list_items(model, records, members),
                }
            )
        regions_list.append(
            {
                "href": f"region/{rcode}.html",
                "name": model.region_name(rcode),
                "n": int((teams["nhser24cd"] == rcode).sum()),
                "icbs": icb_items,
            }
        )
    title = "Parent-infant teams in England"
    return _render(
        "index.html.j2",
        fig,
        fmap,
        data=data,
        kind="index",
        title=title,
        place="England",
        crumbs=[("England", None)],
        provenance=_provenance(model),
        legend=_legend(model, teams, [REGION_LINE, ICB_LINE, *_cluster_key(clusters)]),
        n_teams=len(teams),
        totals=totals,
        regions=regions_list,
    )


def _region_page(model: MapModel, code: str, tolerance: float, settings: MapSettings) -> str:
    allteams = model.catchments(tolerance)
    teams = allteams[allteams["nhser24cd"] == code].reset_index(drop=True)
    name = model.region_name(code)
    fig, fmap = new_map()
    context.decorate(fig, fmap, root="../", basemap=settings.basemap)
    geoms = to_web(teams.geometry.values, settings.decimals)
    icb_polys = dissolve_to(teams, "icb24cd")
    geo = {
        "catchments": feature_collection(geoms, _team_props(model, teams)),
        "lsoa": None,
        "outlines": [
            _outline("icbs", to_web(icb_polys.geometry.values, settings.decimals), ICB_LINE)
        ],
    }
    clusters = _cluster_layer(model, teams, settings.decimals)
    if clusters:
        geo["outlines"].append(clusters)
    lsoa = model.lsoa[model.lsoa["nhser24cd"] == code]
    records = _team_records(model, teams, geoms, "region", labels=False)
    data, icbs = _searchable_page_data(
        model, lsoa, records, geoms, geo, settings.national_tolerance, settings
    )
    candidates, data["csv"]["candidates"] = _candidates_table(model, teams, name, "../")
    totals, data["csv"]["totals"] = _totals_table(
        model, teams, level="region", code=code, name=name
    )
    title = f"{name}: parent-infant teams"
    return _render(
        "region.html.j2",
        fig,
        fmap,
        data=data,
        kind="region",
        title=title,
        place=name,
        crumbs=[("England", "../index.html"), (name, None)],
        provenance=_provenance(model),
        legend=_legend(model, teams, [ICB_LINE, *_cluster_key(clusters)]),
        clusters=_cluster_list(model, teams),
        cluster_layer=CLUSTER_LINE[0],
        candidates=candidates,
        totals=totals,
        teams=_list_items(model, records, teams),
        icbs=[{"href": f"../icb/{c}.html", "name": n} for n, _, c in icbs],
    )


def _icb_page(model: MapModel, code: str, tolerance: float, settings: MapSettings) -> str:
    name = model.icb_name(code)
    rcode = model.icb_region(code)
    rname = model.region_name(rcode)
    layers = model.icb_layers(code, tolerance, settings.decimals)
    lsoa, teams, lads = layers.lsoa, layers.teams, layers.lads
    fig, fmap = new_map()
    context.decorate(fig, fmap, root="../", basemap=settings.basemap)

    # Under-3s by LSOA (below the outlines, above the catchment fills; off at first).
    values = lsoa["under3"].astype(float).to_numpy()
    edges = np.unique(np.quantile(values, [0.2, 0.4, 0.6, 0.8])) if len(values) else np.array([])
    bins = np.searchsorted(edges, values, side="right")
    lsoa_props = [{"i": i, "b": int(b)} for i, b in enumerate(bins)]
    geoms = to_web(teams.geometry.values, settings.decimals)
    lad_geoms = to_web(lads.geometry.values, settings.decimals)
    geo = {
        "catchments": feature_collection(geoms, _team_props(model, teams)),
        "lsoa": feature_collection(layers.lsoa_text, lsoa_props),
        "lsoaLabel": "Under-3s by LSOA (estimated)",
        "outlines": [
            _outline("teams", geoms, TEAM_LINE),
            _outline("lads", lad_geoms, LAD_LINE),
        ],
    }
    clusters = _cluster_layer(model, teams, settings.decimals)
    if clusters:
        geo["outlines"].append(clusters)

    lo = [0.0, *edges.tolist()]
    hi = [*edges.tolist(), float(values.max()) if len(values) else 0.0]
    under3 = [
        {"colour": UNDER3_COLOURS[i], "label": f"{lo[i]:,.0f}–{hi[i]:,.0f}"} for i in range(len(hi))
    ]
    records = _team_records(model, teams, geoms, "icb", labels=True)
    lad_places = [
        [str(n), bounds_of(np.array([g])), str(c)]
        for c, n, g in zip(lads["lad24cd"], lads["lad24nm"], lad_geoms, strict=True)
    ]
    data = _page_data(
        model,
        records,
        [],
        lad_places,
        bounds_of(geoms),
        "Find a team or local authority",
        True,
        geo,
    )
    data["lsoa"] = [
        [str(c), str(n), f"{v:,.0f}"]
        for c, n, v in zip(lsoa["lsoa21cd"], lsoa["lsoa21nm"], values, strict=True)
    ]
    cost, data["csv"]["cost"] = _team_year_table(
        model, teams, "cost", "Cost by team and year (£)", key=True
    )
    babies, data["csv"]["babies"] = _team_year_table(
        model, teams, "babies", "Babies seen by team and year", key=False
    )
    n = len(teams)
    intro = (
        f"{n} team{'s' if n != 1 else ''} in {name}. Under-3s by LSOA are estimated by sharing "
        "each MSOA's Census count of children aged 0–2 across its LSOAs in proportion to "
        "population. " + COST_NOTE
    )
    title = f"{name}: parent-infant teams"
    return _render(
        "icb.html.j2",
        fig,
        fmap,
        data=data,
        kind="icb",
        title=title,
        place=name,
        crumbs=[("England", "../index.html"), (rname, f"../region/{rcode}.html"), (name, None)],
        provenance=_provenance(model),
        legend=_legend(model, teams, [TEAM_LINE, LAD_LINE, *_cluster_key(clusters)], under3),
        clusters=_cluster_list(model, teams),
        cluster_layer=CLUSTER_LINE[0],
        intro=intro,
        cost=cost,
        babies=babies,
        teams=_list_items(model, records, teams),
    )

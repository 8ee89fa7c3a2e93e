"""`planner compare OLD NEW`: what changed between two exports folders.

A planner who reruns the plan every quarter needs to see what moved: which
teams were kept, renamed, are new or gone; which small areas changed team;
which teams changed wave; and cost and babies by ICB, old against new. Both
plans are read from their exports (never re-planned). The change report is
three CSVs and one HTML page with a map of the changed catchments; the page
is rendered by Jinja2 with autoescape, every plan text reaching it as a value.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import jinja2
import numpy as np
import pandas as pd
import shapely

from planner import exports, maps
from planner.catchments import team_sort_key
from planner.errors import PlannerError
from planner.maps import assets as map_assets
from planner.maps.context import REFERRER_POLICY, Basemap

KEPT, RENAMED, NEW, GONE = "kept", "renamed", "new", "gone"
STATUS_COLOURS = {  # Okabe-Ito, colour-blind safe
    NEW: "#009E73",
    RENAMED: "#E69F00",
    GONE: "#D55E00",
    "areas changed": "#0072B2",
    "wave changed": "#CC79A7",
    "unchanged": "#999999",
}
TEAM_COLUMNS = [
    "team_id",
    "status",
    "old_name",
    "new_name",
    "icb24cd",
    "icb24nm",
    "old_wave",
    "new_wave",
    "wave_change",
    "old_areas",
    "new_areas",
    "areas_in",
    "areas_out",
]
AREA_COLUMNS = [
    "lsoa21cd",
    "lsoa21nm",
    "old_team_id",
    "old_team_name",
    "new_team_id",
    "new_team_name",
]
ICB_COLUMNS = [
    "area_code",
    "area_name",
    "year",
    "old_cost",
    "new_cost",
    "cost_change",
    "old_babies",
    "new_babies",
    "babies_change",
]
FILES = ("changes_teams.csv", "changes_areas.csv", "changes_by_icb.csv", "changes.html")
FIX = "give two exports folders written by `planner plan` (teams.csv, lsoa_to_team.csv, costs_by_icb.csv, catchments.gpkg)"
SIMPLIFY_M = 150.0


# ----------------------------------------------------------------------------- reading


def _numbers(frame: pd.DataFrame, columns: list[str], path: Path) -> pd.DataFrame:
    out = frame.copy()
    for col in columns:
        values = pd.to_numeric(out[col], errors="coerce")
        bad = values.isna() & (out[col].astype(str).str.strip() != "")
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise PlannerError("not a number", file=path, row=row + 2, field=col,
                               value=out[col].iloc[row], fix=FIX)  # fmt: skip
        out[col] = values
    return out


def read_plan(directory: Path) -> dict[str, pd.DataFrame]:
    """teams, lsoa (lsoa_to_team) and icb (costs_by_icb) tables of one exports folder."""
    directory = Path(directory)
    if not directory.is_dir():
        raise PlannerError("the exports folder does not exist", file=directory, fix=FIX)
    teams_path = directory / "teams.csv"
    teams = exports.read_csv_export(
        teams_path, ["team_id", "name", "icb24cd", "icb24nm", "wave"], fix=FIX
    )
    lsoa_path = directory / "lsoa_to_team.csv"
    lsoa = exports.read_csv_export(lsoa_path, ["lsoa21cd", "team_id"], fix=FIX)
    icb_path = directory / "costs_by_icb.csv"
    icb = exports.read_csv_export(
        icb_path, ["area_code", "area_name", "year", "cost", "babies"], fix=FIX
    )
    return {
        "teams": _numbers(teams, ["wave"], teams_path),
        "lsoa": lsoa,
        "icb": _numbers(icb, ["cost", "babies"], icb_path),
    }


def read_shapes(directory: Path) -> gpd.GeoDataFrame:
    """team_id and geometry from an exports folder's catchments.gpkg."""
    path = Path(directory) / "catchments.gpkg"
    try:
        frame = gpd.read_file(path, columns=["team_id"])
    except Exception as exc:  # pyogrio raises DataSourceError, OSError, …
        raise PlannerError(f"cannot read the catchments ({exc})", file=path, fix=FIX) from exc
    return frame


# ----------------------------------------------------------------------------- comparing


def team_changes(old: dict[str, pd.DataFrame], new: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per team id in either plan: kept, renamed, new or gone; waves; areas in and out."""
    o = old["teams"].set_index("team_id")
    n = new["teams"].set_index("team_id")
    ids = sorted(set(o.index) | set(n.index), key=team_sort_key)
    frame = pd.DataFrame({"team_id": ids})
    frame["old_name"] = frame["team_id"].map(o["name"]).fillna("")
    frame["new_name"] = frame["team_id"].map(n["name"]).fillna("")
    frame["icb24cd"] = frame["team_id"].map(n["icb24cd"]).fillna(frame["team_id"].map(o["icb24cd"]))
    frame["icb24nm"] = frame["team_id"].map(n["icb24nm"]).fillna(frame["team_id"].map(o["icb24nm"]))
    in_old, in_new = frame["team_id"].isin(o.index), frame["team_id"].isin(n.index)
    frame["status"] = np.select(
        [~in_old, ~in_new, frame["old_name"] != frame["new_name"]], [NEW, GONE, RENAMED], KEPT
    )
    frame["old_wave"] = frame["team_id"].map(o["wave"]).astype("Int64")
    frame["new_wave"] = frame["team_id"].map(n["wave"]).astype("Int64")
    moved = in_old & in_new & (frame["old_wave"] != frame["new_wave"])
    frame["wave_change"] = np.where(
        moved, frame["old_wave"].astype(str) + " → " + frame["new_wave"].astype(str), ""
    )
    both = old["lsoa"][["lsoa21cd", "team_id"]].merge(
        new["lsoa"][["lsoa21cd", "team_id"]], on="lsoa21cd", how="outer", suffixes=("_o", "_n")
    )
    frame["old_areas"] = frame["team_id"].map(both["team_id_o"].value_counts()).fillna(0)
    frame["new_areas"] = frame["team_id"].map(both["team_id_n"].value_counts()).fillna(0)
    changed = both[both["team_id_o"] != both["team_id_n"]]
    frame["areas_in"] = frame["team_id"].map(changed["team_id_n"].value_counts()).fillna(0)
    frame["areas_out"] = frame["team_id"].map(changed["team_id_o"].value_counts()).fillna(0)
    counts = ["old_areas", "new_areas", "areas_in", "areas_out"]
    frame[counts] = frame[counts].astype("int64")
    return frame[TEAM_COLUMNS]


def area_changes(old: dict[str, pd.DataFrame], new: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every small area whose team id differs (or that is in one plan only)."""
    names_o = old["teams"].set_index("team_id")["name"]
    names_n = new["teams"].set_index("team_id")["name"]
    o = old["lsoa"].rename(columns={"team_id": "old_team_id"})
    n = new["lsoa"].rename(columns={"team_id": "new_team_id"})
    both = o[["lsoa21cd", "old_team_id"]].merge(
        n[["lsoa21cd", "new_team_id"]], on="lsoa21cd", how="outer"
    )
    labels = [f.set_index("lsoa21cd")["lsoa21nm"] for f in (n, o) if "lsoa21nm" in f.columns]
    names = pd.concat(labels) if labels else pd.Series(dtype=object)
    both["lsoa21nm"] = both["lsoa21cd"].map(names[~names.index.duplicated()]).fillna("")
    both = both.fillna({"old_team_id": "", "new_team_id": ""})
    both = both[both["old_team_id"] != both["new_team_id"]]
    both["old_team_name"] = both["old_team_id"].map(names_o).fillna("")
    both["new_team_name"] = both["new_team_id"].map(names_n).fillna("")
    return both.sort_values("lsoa21cd", kind="stable")[AREA_COLUMNS].reset_index(drop=True)


def icb_changes(old: dict[str, pd.DataFrame], new: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Cost and babies per ICB and year, old against new (0 where a plan has no row)."""
    keys = ["area_code", "year"]
    o = old["icb"][[*keys, "area_name", "cost", "babies"]]
    n = new["icb"][[*keys, "area_name", "cost", "babies"]]
    both = o.merge(n, on=keys, how="outer", suffixes=("_old", "_new"))
    both["area_name"] = both["area_name_new"].fillna(both["area_name_old"])
    for value in ("cost", "babies"):
        both[f"old_{value}"] = both[f"{value}_old"].fillna(0)
        both[f"new_{value}"] = both[f"{value}_new"].fillna(0)
        both[f"{value}_change"] = both[f"new_{value}"] - both[f"old_{value}"]
    for col in ICB_COLUMNS[3:]:
        both[col] = both[col].round().astype("int64")
    return both.sort_values(keys, kind="stable")[ICB_COLUMNS].reset_index(drop=True)


# ----------------------------------------------------------------------------- the page


def _features(teams: pd.DataFrame, old_shapes: gpd.GeoDataFrame, new_shapes: gpd.GeoDataFrame):
    """GeoJSON features in WGS84: every new catchment, plus the old shapes of gone teams."""
    info = teams.set_index("team_id")
    rows = []
    for shapes, gone in ((new_shapes, False), (old_shapes, True)):
        if shapes.crs is None:
            shapes = shapes.set_crs(27700)
        shapes = shapes[shapes["team_id"].isin(info.index[info["status"] == GONE]) == gone]
        simple = shapely.simplify(shapes.geometry.to_numpy(), SIMPLIFY_M, preserve_topology=True)
        web = gpd.GeoSeries(simple, crs=shapes.crs).to_crs(4326)
        for tid, geom in zip(shapes["team_id"], web, strict=True):
            r = info.loc[tid]
            kind = _kind(r)
            lines = [f"{tid}: {r['new_name'] or r['old_name']}", f"{kind}"]
            if r["status"] == RENAMED:
                lines.append(f"was {r['old_name']}")
            if r["wave_change"]:
                lines.append(f"wave {r['wave_change']}")
            if r["areas_in"] or r["areas_out"]:
                lines.append(f"small areas in {r['areas_in']}, out {r['areas_out']}")
            rows.append(
                {
                    "type": "Feature",
                    "geometry": shapely.geometry.mapping(
                        shapely.transform(geom, lambda xy: np.round(xy, 5))
                    ),
                    "properties": {
                        "colour": STATUS_COLOURS[kind],
                        "changed": kind != "unchanged",
                        "dash": "4 4" if gone else "",
                        "lines": lines,
                    },
                }
            )
    return {"type": "FeatureCollection", "features": rows}


def _kind(row: pd.Series) -> str:
    if row["status"] != KEPT:
        return str(row["status"])
    if row["areas_in"] or row["areas_out"]:
        return "areas changed"
    return "wave changed" if row["wave_change"] else "unchanged"


def page_html(
    teams: pd.DataFrame,
    areas: pd.DataFrame,
    icbs: pd.DataFrame,
    features: dict,
    *,
    old_label: str,
    new_label: str,
) -> str:
    """The change report page (Jinja2, autoescape: plan text only ever as values).

    Leaflet is loaded from the report's own assets/ folder (no CDN), so the page
    opens from disk with no network.
    """
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("planner", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    changed = teams[teams.apply(_kind, axis=1) != "unchanged"]
    last = icbs["year"].max() if len(icbs) else ""
    year_rows = icbs[icbs["year"] == last]
    return env.get_template("compare.html").render(
        old_label=old_label,
        new_label=new_label,
        counts=[(s, int((teams["status"] == s).sum())) for s in (KEPT, RENAMED, NEW, GONE)],
        areas_changed=len(areas),
        waves_changed=int((teams["wave_change"] != "").sum()),
        legend=[(k, v) for k, v in STATUS_COLOURS.items()],
        changed=[
            {**r, "old_wave": _text(r["old_wave"]), "new_wave": _text(r["new_wave"])}
            for r in changed.to_dict("records")
        ],
        year=last,
        icbs=[
            {
                "area_name": r["area_name"],
                "old_cost": f"{r['old_cost']:,}",
                "new_cost": f"{r['new_cost']:,}",
                "old_babies": f"{r['old_babies']:,}",
                "new_babies": f"{r['new_babies']:,}",
            }
            for r in year_rows.to_dict("records")
        ],
        features=features,
        tiles=_tiles(),
        leaflet_js=map_assets.local_url(maps.LEAFLET_JS, ""),
        leaflet_css=map_assets.local_url(maps.LEAFLET_CSS, ""),
        licence=exports.LICENCE,
    )


def _tiles() -> dict[str, object]:
    """The maps' basemap (keyless, works from disk), as values for the page's tile layer."""
    basemap = Basemap()
    provider = basemap.tile_provider()
    return {
        "url": provider.build_url(scale_factor="{r}"),
        "attribution": basemap.attribution(),
        "max_zoom": int(provider.get("max_zoom", 18)),
        "referrer_policy": REFERRER_POLICY,
    }


def _text(value: object) -> str:
    return "" if value is None or value is pd.NA else str(value)


def write_report(old: Path, new: Path, out: Path, *, assets_dir: Path) -> list[Path]:
    """Compare two exports folders; write the change CSVs and changes.html into `out`.

    Everything is read and rendered before anything is written; each file is
    written atomically, and the pinned Leaflet files (from `assets_dir`, see
    planner.maps.assets.ensure_assets) go into out/assets/. Returns the
    report's paths.
    """
    old, new, out = Path(old), Path(new), Path(out)
    old_plan, new_plan = read_plan(old), read_plan(new)
    teams = team_changes(old_plan, new_plan)
    areas = area_changes(old_plan, new_plan)
    icbs = icb_changes(old_plan, new_plan)
    features = _features(teams, read_shapes(old), read_shapes(new))
    files = {
        "changes_teams.csv": exports.to_csv_text(teams),
        "changes_areas.csv": exports.to_csv_text(areas),
        "changes_by_icb.csv": exports.to_csv_text(icbs),
        "changes.html": page_html(
            teams, areas, icbs, features, old_label=str(old), new_label=str(new)
        ),
    }
    written = exports.write_text_files(out, files)
    map_assets.install(out, assets_dir)
    return written

"""Web-ready geometry: dissolve a coverage, reproject to WGS84 and round, bounds, labels.

Geometry stays in British National Grid metres (EPSG:27700) until `to_web`
reprojects it to WGS84 and rounds the coordinates, so that a vertex shared by
two polygons gives the same output in both.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import shapely.geometry
import shapely.ops
from pyproj import Transformer

_TO_WGS84 = Transformer.from_crs("EPSG:27700", "EPSG:4326", always_xy=True)


def dissolve_to(frame: gpd.GeoDataFrame, key: str) -> gpd.GeoDataFrame:
    """Union a valid coverage by `key`, keeping shared edges exact (coverage_union)."""
    groups = frame.groupby(key, sort=True).indices
    geoms = union_groups(frame.geometry.values, groups.values())
    return gpd.GeoDataFrame({key: list(groups)}, geometry=geoms, crs=frame.crs)


def union_groups(geoms: np.ndarray, groups: Iterable[np.ndarray]) -> list[shapely.Geometry]:
    """The union of each group (row positions) of a coverage, shared edges kept exact."""
    out = []
    for idx in groups:
        parts = geoms[np.sort(idx)]
        try:
            out.append(shapely.coverage_union_all(parts))
        except shapely.errors.GEOSException:
            out.append(shapely.union_all(parts))
    return out


def clean_coverage(geoms: np.ndarray) -> np.ndarray:
    """A valid coverage from nearly valid polygons, cleaning only around the faults.

    coverage_clean of all 33,755 LSOAs takes seconds, for a dozen bad edges.
    Clean the faulty polygons with two rings of neighbours, check them with
    their neighbours, and clean everything only if that check fails.
    """
    bad = ~shapely.is_empty(shapely.coverage_invalid_edges(geoms))
    if not bad.any():
        return geoms
    tree = shapely.STRtree(geoms)
    near = np.unique(tree.query(geoms[bad], predicate="intersects")[1])
    ring = np.unique(tree.query(geoms[near], predicate="intersects")[1])
    out = geoms.copy()
    out[ring] = shapely.coverage_clean(geoms[ring])
    # Validity is between neighbours: only pairs with a cleaned polygon can have changed.
    around = np.unique(tree.query(geoms[ring], predicate="intersects")[1])
    return out if shapely.coverage_is_valid(out[around]) else shapely.coverage_clean(geoms)


def to_web(geoms: np.ndarray, decimals: int) -> np.ndarray:
    """Reproject BNG geometries to WGS84 and round coordinates (same vertex -> same output)."""

    def project(coords: np.ndarray) -> np.ndarray:
        x, y = _TO_WGS84.transform(coords[:, 0], coords[:, 1])
        return np.round(np.column_stack([x, y]), decimals)

    out = shapely.transform(np.asarray(geoms, dtype=object), project)
    return shapely.remove_repeated_points(out)


def bounds_of(geoms: np.ndarray) -> list[float]:
    """[south, west, north, east] of WGS84 geometries, rounded for compact JSON."""
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    return [round(float(v), 4) for v in (miny, minx, maxy, maxx)]


class GeoJsonText(str):
    """A FeatureCollection as JSON text holding only numbers: safe to embed as it is."""


def geometry_texts(geoms: np.ndarray) -> np.ndarray:
    """Each geometry as GeoJSON text, from shapely's C writer (much faster than mapping)."""
    return shapely.to_geojson(np.asarray(geoms, dtype=object))


def feature_collection(geoms: np.ndarray, props: list[dict]) -> GeoJsonText:
    """A FeatureCollection of WGS84 geometries (or their `geometry_texts`) as JSON text.

    Properties must be numbers (indices into the page data), so the text can
    go into the page without escaping.
    """
    for p in props:
        for value in p.values():
            if not (value is None or isinstance(value, int | float)):
                raise TypeError(f"GeoJSON properties must be numbers, not {value!r}")
    texts = geoms if len(geoms) and isinstance(geoms[0], str) else geometry_texts(geoms)
    feats = ",".join(
        f'{{"type":"Feature","properties":{json.dumps(p, separators=(",", ":"))},"geometry":{g}}}'
        for g, p in zip(texts, props, strict=True)
    )
    return GeoJsonText(f'{{"type":"FeatureCollection","features":[{feats}]}}')


def label_point(geom: shapely.Geometry) -> tuple[float, float]:
    """Where a name label sits: pole of inaccessibility of the largest part (BNG)."""
    parts = shapely.get_parts(geom)
    biggest = parts[int(np.argmax(shapely.area(parts)))]
    pt = shapely.ops.polylabel(biggest, tolerance=50.0)
    lon, lat = _TO_WGS84.transform(pt.x, pt.y)
    return round(lat, 5), round(lon, 5)


def box_wgs84(frame: gpd.GeoDataFrame) -> pd.DataFrame:
    """Each geometry's bounding box in WGS84 (all four corners projected): s, w, n, e."""
    b = shapely.bounds(frame.geometry.values)
    xs = np.stack([b[:, 0], b[:, 2], b[:, 2], b[:, 0]], axis=1)
    ys = np.stack([b[:, 1], b[:, 1], b[:, 3], b[:, 3]], axis=1)
    lon, lat = _TO_WGS84.transform(xs.ravel(), ys.ravel())
    lon, lat = lon.reshape(xs.shape), lat.reshape(ys.shape)
    return pd.DataFrame(
        {"s": lat.min(1), "w": lon.min(1), "n": lat.max(1), "e": lon.max(1)}, index=frame.index
    )

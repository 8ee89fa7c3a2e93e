"""Web-ready geometry: dissolve a coverage, reproject to WGS84 and round, bounds, labels.

Geometry stays in British National Grid metres (EPSG:27700) until `_web`
reprojects it to WGS84 and rounds the coordinates, so that a vertex shared by
two polygons gives the same output in both.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
import shapely.geometry
import shapely.ops
from pyproj import Transformer

_TO_WGS84 = Transformer.from_crs("EPSG:27700", "EPSG:4326", always_xy=True)


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


def _box_wgs84(frame: gpd.GeoDataFrame) -> np.ndarray:
    """Each geometry's bounding box in WGS84 (all four corners projected)."""
    b = shapely.bounds(frame.geometry.values)
    xs = np.stack([b[:, 0], b[:, 2], b[:, 2], b[:, 0]], axis=1)
    ys = np.stack([b[:, 1], b[:, 1], b[:, 3], b[:, 3]], axis=1)
    lon, lat = _TO_WGS84.transform(xs.ravel(), ys.ravel())
    lon, lat = lon.reshape(xs.shape), lat.reshape(ys.shape)
    return shapely.box(lon.min(1), lat.min(1), lon.max(1), lat.max(1))

"""planner.maps.context: basemap choice, label zooms, the shared context file."""

from __future__ import annotations

import json

import folium
import geopandas as gpd
import numpy as np
import pytest
import shapely

from planner.errors import PlannerError
from planner.maps import context

SETTINGS = context.ContextSettings()


def _squares(names: list[str], size: float = 20_000.0) -> gpd.GeoDataFrame:
    """Two LSOAs per local authority, side by side near Leeds (EPSG:27700)."""
    rows = []
    for i, name in enumerate(names):
        for j in range(2):
            x0, y0 = 420_000 + i * size, 430_000 + j * size / 2
            rows.append({"lad24cd": f"E0800{i:04d}", "lad24nm": name,
                         "geometry": shapely.box(x0, y0, x0 + size, y0 + size / 2)})  # fmt: skip
    return gpd.GeoDataFrame(rows, crs=27700)


def test_context_data_has_england_and_one_feature_per_authority():
    lsoa = _squares(["Leeds", "Bradford", "Wakefield <b>"])
    data = context.context_data(lsoa, SETTINGS)
    features = data["lads"]["features"]
    assert [f["properties"]["n"] for f in features] == ["Leeds", "Bradford", "Wakefield <b>"]
    england = shapely.geometry.shape(data["england"])
    assert england.geom_type == "Polygon"  # the three authorities form one outline
    union = shapely.union_all([shapely.geometry.shape(f["geometry"]) for f in features])
    assert abs(england.area - union.area) < 1e-6
    for f in features:
        lat, lon = f["properties"]["p"]
        assert shapely.geometry.shape(f["geometry"]).contains(shapely.Point(lon, lat))
        assert SETTINGS.min_label_zoom <= f["properties"]["z"] <= SETTINGS.max_label_zoom


def test_label_zooms_grow_with_name_length_and_shrink_with_area():
    points = [(53.8, -1.55), (53.8, -1.0)]
    boxes = np.array([[-1.7, 53.7, -1.4, 53.9], [-1.02, 53.79, -0.98, 53.81]])
    short, small = context.label_zooms(["Leeds", "Tiny Place"], points, boxes, SETTINGS)
    assert short < small
    longer = context.label_zooms(["Leeds and a much longer name"], points[:1], boxes[:1], SETTINGS)
    assert longer[0] > short


def test_two_names_at_one_place_never_show_at_the_same_zoom():
    points = [(53.8, -1.55), (53.8, -1.55)]
    boxes = np.array([[-1.9, 53.5, -1.2, 54.1], [-1.8, 53.6, -1.3, 54.0]])
    big, other = context.label_zooms(["Leeds", "Bradford"], points, boxes, SETTINGS)
    assert big < SETTINGS.max_label_zoom
    assert other == SETTINGS.max_label_zoom  # only once every name shows


def test_the_default_basemap_is_keyless_esri_and_carto_needs_a_key():
    basemap = context.Basemap()
    assert basemap.tile_provider()["url"].startswith("https://server.arcgisonline.com/ArcGIS/")
    assert not basemap.named_provider().requires_token() and basemap.warning() is None
    keyed = context.Basemap(key="abc123")  # a key alone chooses CARTO Positron
    assert keyed.named_provider().name == "CartoDB.Positron" and keyed.warning() is None
    assert keyed.tile_provider().build_url(x=1, y=2, z=3).endswith("?key=abc123")
    keyless = context.Basemap(provider="CartoDB.Positron")
    url = keyless.tile_provider()["url"]
    assert url.startswith("https://{s}.basemaps.cartocdn.com/") and "key" not in url
    assert "needs an API key" in keyless.warning()
    assert context.Basemap(provider="OpenStreetMap.Mapnik").warning() is None


def test_the_tile_layer_sets_attribution_and_referrer_policy():
    fmap = folium.Map(tiles=None)
    context.Basemap().tile_layer().add_to(fmap)
    page = fmap.get_root().render()
    assert '"referrerPolicy": "strict-origin-when-cross-origin"' in page
    assert '"attribution": "Tiles \\u00a9 Esri \\u2014 Esri, DeLorme, NAVTEQ"' in page
    assert "esri.com" not in page and "arcgis.com" not in page
    carto = context.Basemap(key="abc123").attribution()
    assert carto == "\u00a9 OpenStreetMap contributors \u00a9 CARTO"
    linked = context.Basemap(key="abc123", links=True).attribution()
    assert 'href="https://www.openstreetmap.org/copyright"' in linked and "CARTO" in linked


def test_an_unknown_basemap_is_a_planner_error():
    with pytest.raises(PlannerError, match=r"unknown basemap provider.*xyzservices"):
        context.Basemap(provider="Nowhere.Tiles").tile_layer()


def test_write_shared_without_web_assets_is_a_planner_error(tmp_path):
    with pytest.raises(PlannerError, match=r"assets_dir.*ensure_assets"):
        context.write_shared(tmp_path, _squares(["Leeds"]), assets_dir=None)


def test_write_shared_writes_the_assets_and_one_context_script(tmp_path, web_assets):
    written = context.write_shared(tmp_path, _squares(["Leeds", "Bradford"]),
                                   assets_dir=web_assets)  # fmt: skip
    assert context.CONTEXT_FILE in written
    assert "assets/leaflet-1.9.3/LICENSE" in written
    text = (tmp_path / context.CONTEXT_FILE).read_text(encoding="utf-8")
    prefix = "window.plannerContext = "
    assert text.startswith(prefix) and text.endswith(";\n")
    data = json.loads(text[len(prefix) : -2])
    assert {f["properties"]["n"] for f in data["lads"]["features"]} == {"Leeds", "Bradford"}


def test_the_context_script_is_byte_identical_on_rerun(tmp_path, web_assets):
    lsoa = _squares(["Leeds", "Bradford", "Wakefield"])
    for name in ("a", "b"):
        context.write_shared(tmp_path / name, lsoa, assets_dir=web_assets)
    first, second = (tmp_path / n / context.CONTEXT_FILE for n in ("a", "b"))
    assert first.read_bytes() == second.read_bytes()

"""MapLibre styles (version 8) using only this server: glyphs, sprite, raster and vector tiles.

``build_style("cadastre", base_url)`` is the 2D cadastral map; ``"cadastre-3d"`` adds buildings
extruded by height. Every URL in the returned style starts with ``base_url``, so the map works with
no internet. A missing ortho tile is only a gap (MapLibre tolerates 404 tiles).

Source layers and their properties are those published by the vector tile endpoints: ``parcels``,
``buildings``, ``boundary_points``, ``labels`` (one ``cadastre`` source) and ``units`` (per floor).
"""

from __future__ import annotations

import copy
from typing import Any

from cadastre.errors import NotFound
from cadastre.query.layers import BOUNDARY_POINTS, BUILDINGS, LAYERS, UNITS

STYLE_NAMES = ("cadastre", "cadastre-3d")
SPRITE = "cadastre"
FONT_REGULAR = ["Noto Sans CJK SC Regular"]
DEFAULT_CENTER = (120.03, 30.26)  # the demo district, 杭州市西湖区

Layer = dict[str, Any]


class StyleNotFound(NotFound):
    code = "STYLE_NOT_FOUND"


# GB/T 21010 land use: a few named codes first, then the first-level class (two characters).
LAND_USE_COLOURS: dict[str, str] = {"08H2": "#a6cee3", "0810": "#b2df8a"}  # education, park
LAND_USE_CLASS_COLOURS: dict[str, str] = {
    "01": "#d9ead3", "02": "#d9ead3",  # farmland, orchards
    "03": "#c7e0b4", "04": "#dcedc8",  # forest, grassland
    "05": "#f4a582",  # commercial
    "06": "#c9b8d9",  # industrial, mining, storage
    "07": "#f3d9b1",  # residential
    "08": "#cab2d6",  # public administration and services
    "09": "#bdbdbd",  # special
    "10": "#e0e0e0",  # transport
    "11": "#a6d8f0",  # water
    "12": "#eeeeee",  # other
}
LAND_USE_DEFAULT = "#eeeeee"
LAND_USE_ICONS: dict[str, str] = {
    "08H2": "school", "0810": "park", "0501": "commercial", "0505": "commercial",
    "0701": "residential",
}
REGISTRATION_COLOURS: dict[str, str] = {
    "registered": "#4daf4a", "pre_sale": "#ffb000", "unregistered": "#9e9e9e",
}

_HALO = {"text-halo-color": "#ffffff", "text-halo-width": 1.4, "text-color": "#333333"}


def _match(input_expr: Any, table: dict[str, Any], default: Any) -> list[Any]:
    expr: list[Any] = ["match", input_expr]
    for key, value in table.items():
        expr += [key, value]
    return [*expr, default]


def _land_use_colour() -> list[Any]:
    land_use = ["to-string", ["get", "land_use"]]
    by_class = _match(["slice", land_use, 0, 2], LAND_USE_CLASS_COLOURS, LAND_USE_DEFAULT)
    return _match(land_use, LAND_USE_COLOURS, by_class)


#: the layers of the style's composite vector source (one tile request for all of them)
STYLE_LAYERS = "parcels,buildings,boundary_points,labels"
#: zooms come from the layer catalogue (``cadastre.query.layers``): a source starts where its
#: first layer does, and a style layer never asks for a zoom its source layer has no data for
CADASTRE_MINZOOM = min(LAYERS[name].minzoom for name in STYLE_LAYERS.split(","))


def _sources(base: str) -> dict[str, Any]:
    empty = {"type": "FeatureCollection", "features": []}
    layers = STYLE_LAYERS
    return {
        "ortho": {
            "type": "raster", "tiles": [f"{base}/raster/demo-ortho/{{z}}/{{x}}/{{y}}.webp"],
            "tileSize": 256, "minzoom": 10, "maxzoom": 20,
            "attribution": "正射影像 / orthophoto: demo",
        },
        "cadastre": {
            "type": "vector",
            "tiles": [f"{base}/tiles/{layers}/{{z}}/{{x}}/{{y}}.mvt"],
            "minzoom": CADASTRE_MINZOOM, "maxzoom": 20,
            "attribution": "不动产登记数据 / cadastral data",
        },
        "units": {
            "type": "vector", "tiles": [f"{base}/tiles/units/{{z}}/{{x}}/{{y}}.mvt?floor=1"],
            "minzoom": UNITS.minzoom, "maxzoom": 20,
        },
        # filled by the web client with setData(); inline, so nothing is fetched
        "highlight": {"type": "geojson", "data": copy.deepcopy(empty)},
        "search-results": {"type": "geojson", "data": copy.deepcopy(empty)},
    }


def _base_layers() -> list[Layer]:
    return [
        {"id": "background", "type": "background", "paint": {"background-color": "#f2efe9"}},
        {"id": "ortho", "type": "raster", "source": "ortho", "minzoom": 10,
         "paint": {"raster-opacity": 0.9, "raster-fade-duration": 0}},
        {"id": "parcel-fill", "type": "fill", "source": "cadastre", "source-layer": "parcels",
         "paint": {"fill-color": _land_use_colour(), "fill-opacity": 0.45}},
        {"id": "parcel-line", "type": "line", "source": "cadastre", "source-layer": "parcels",
         "layout": {"line-join": "round"},
         "paint": {"line-color": "#d94f2b",
                   "line-width": ["interpolate", ["linear"], ["zoom"], 12, 0.4, 16, 1.2, 19, 2.5]}},
        {"id": "building-fill", "type": "fill", "source": "cadastre", "source-layer": "buildings",
         "minzoom": BUILDINGS.minzoom, "paint": {"fill-color": "#b9b1a6", "fill-opacity": 0.8}},
        {"id": "building-line", "type": "line", "source": "cadastre", "source-layer": "buildings",
         "minzoom": 15, "paint": {"line-color": "#7a6f63", "line-width": 0.8}},
        {"id": "unit-fill", "type": "fill", "source": "units", "source-layer": "units",
         "minzoom": 17,
         "paint": {"fill-color": _match(["get", "registration_status"], REGISTRATION_COLOURS,
                                        "#cccccc"),
                   "fill-opacity": 0.7}},
        {"id": "unit-line", "type": "line", "source": "units", "source-layer": "units",
         "minzoom": 17, "paint": {"line-color": "#ffffff", "line-width": 0.8}},
    ]


def _extrusion_layers() -> list[Layer]:
    height = ["coalesce", ["to-number", ["get", "height"]], 0]
    return [
        {"id": "building-extrusion", "type": "fill-extrusion", "source": "cadastre",
         "source-layer": "buildings", "minzoom": BUILDINGS.minzoom,
         "paint": {
             "fill-extrusion-color": ["interpolate", ["linear"], height,
                                      0, "#d8d2c8", 50, "#b9b1a6", 100, "#8f8679"],
             "fill-extrusion-height": height,
             "fill-extrusion-base": 0,
             "fill-extrusion-opacity": 0.85,
         }},
    ]


def _symbol_layers() -> list[Layer]:
    return [
        {"id": "parcel-icon", "type": "symbol", "source": "cadastre", "source-layer": "parcels",
         "minzoom": 15,
         "filter": ["in", ["to-string", ["get", "land_use"]], ["literal", list(LAND_USE_ICONS)]],
         "layout": {"icon-image": _match(["to-string", ["get", "land_use"]], LAND_USE_ICONS, ""),
                    "icon-size": 0.9, "icon-padding": 4}},
        {"id": "boundary-point", "type": "symbol", "source": "cadastre",
         "source-layer": "boundary_points", "minzoom": BOUNDARY_POINTS.minzoom,
         "layout": {"icon-image": "boundary-point", "icon-allow-overlap": True,
                    "icon-ignore-placement": True}},
        {"id": "boundary-point-label", "type": "symbol", "source": "cadastre",
         "source-layer": "boundary_points", "minzoom": 18,
         "layout": {"text-field": ["to-string", ["get", "point_no"]], "text-font": FONT_REGULAR,
                    "text-size": 11, "text-anchor": "left", "text-offset": [0.7, 0]},
         "paint": {**_HALO, "text-color": "#b2182b"}},
        _label("label-building", "building", 17, 11),
        _label("label-parcel", "parcel", 16, 12),
        _label("label-compound", "compound", 14, 15),
        {"id": "unit-highlight", "type": "symbol", "source": "highlight",
         "layout": {"icon-image": "unit-pin", "icon-anchor": "bottom",
                    "icon-allow-overlap": True, "icon-ignore-placement": True}},
        {"id": "search-result", "type": "symbol", "source": "search-results",
         "layout": {"icon-image": "search-marker", "icon-anchor": "bottom",
                    "icon-allow-overlap": True}},
    ]


def _label(layer_id: str, kind: str, minzoom: int, size: float) -> Layer:
    return {
        "id": layer_id, "type": "symbol", "source": "cadastre", "source-layer": "labels",
        "minzoom": minzoom, "filter": ["==", ["get", "kind"], kind],
        "layout": {
            "text-field": ["to-string", ["get", "label"]],
            "text-font": FONT_REGULAR,
            "text-size": size,
            "text-max-width": 8,
            "text-padding": 2,
            "symbol-sort-key": ["coalesce", ["to-number", ["get", "rank"]], 100],
        },
        "paint": dict(_HALO),
    }


def build_style(name: str, base_url: str, center: tuple[float, float] | None = None) -> dict:
    """The MapLibre style ``name`` whose every resource is under ``base_url``."""
    if name not in STYLE_NAMES:
        raise StyleNotFound(
            message=f"未知地图样式 / unknown style {name!r}; available: {', '.join(STYLE_NAMES)}"
        )
    base = base_url.rstrip("/")
    three_d = name == "cadastre-3d"
    layers = _base_layers() + (_extrusion_layers() if three_d else []) + _symbol_layers()
    lon, lat = center or DEFAULT_CENTER
    style: dict[str, Any] = {
        "version": 8,
        "name": "地籍三维 / cadastre 3D" if three_d else "地籍图 / cadastre",
        "metadata": {"cadastre:style": name},
        "center": [lon, lat],
        "zoom": 16 if three_d else 15,
        "pitch": 55 if three_d else 0,
        "bearing": -17 if three_d else 0,
        "glyphs": f"{base}/glyphs/{{fontstack}}/{{range}}.pbf",
        "sprite": f"{base}/sprites/{SPRITE}",
        "sources": _sources(base),
        "layers": layers,
    }
    if three_d:
        style["light"] = {"anchor": "viewport", "color": "#ffffff", "intensity": 0.35}
    return style

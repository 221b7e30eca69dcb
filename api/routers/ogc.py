"""OGC API – Features (Part 1: Core, GeoJSON, OpenAPI 3.0) and OGC API – Tiles metadata, so
that GDAL (``OAPIF:``) and QGIS can read the published layers.

Collections, properties and filters come from the layer catalogue through the privacy policy
(``cadastre.query.ogc``); tiles are the very bytes of ``/tiles`` (``api.routers.tiles``).

Feature properties go through ``api.auth.view`` (policy + an API key's field grants) and county
scope; reads by non-public callers are audited (``ogc.items``; tiles as ``tiles.read``), public
reads are not.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import mercantile
import morecantile
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from api.auditing import record
from api.auth import caller
from api.routers import tiles as tile_routes
from api.state import app_state
from cadastre.access.principal import Principal
from cadastre.errors import InvalidInput, NotFound
from cadastre.query import ogc as oq

router = APIRouter(prefix="/ogc", tags=["ogc"])

JSON = "application/json"
GEOJSON = "application/geo+json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
MVT = tile_routes.MVT_TYPE
REL = "http://www.opengis.net/def/rel/ogc/1.0/"
TMS_ID = "WebMercatorQuad"
TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
CRS_3857 = "http://www.opengis.net/def/crs/EPSG/0/3857"
UNITS_DEFAULT_FLOOR = 1      # OGC clients know nothing of ?floor=N: they get the ground floor
EXTENT_TTL = 60.0            # seconds; extents are a full scan of the feature table

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/landing-page",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/json",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/tms/2.0/conf/tilematrixset",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset",
]


class FormatUnsupported(InvalidInput):
    code = "FORMAT_UNSUPPORTED"


class TileMatrixSetNotFound(NotFound):
    code = "TILE_MATRIX_SET_NOT_FOUND"


def _query_param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "style": "form", "explode": False,
            "description": description, "schema": schema}


# Items parameters are parsed by hand (errors are 400 with our codes, not 422), so the OpenAPI
# description of them is written here.
_ITEMS_OPENAPI = {"parameters": [
    _query_param("bbox", "minx,miny,maxx,maxy (CRS84)",
                 {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}}),
    _query_param("bbox-crs", "仅 / only CRS84", {"type": "string", "enum": [oq.CRS84]}),
    _query_param("datetime", "RFC 3339 instant, or interval a/b, ../b, a/.. (版本时间 / "
                 "as-of state or overlapping versions); default: current versions",
                 {"type": "string"}),
    _query_param("limit", "每页要素数 / features per page",
                 {"type": "integer", "minimum": 1, "maximum": oq.MAX_LIMIT,
                  "default": oq.DEFAULT_LIMIT}),
    _query_param("offset", "分页偏移 / paging offset", {"type": "integer", "minimum": 0,
                                                      "default": 0}),
    _query_param("f", "格式 / format", {"type": "string", "enum": ["json", "geojson"]}),
    *(_query_param(name, "精确匹配 / exact match (where the collection has it)",
                   {"type": "integer" if integer else "string"})
      for name, integer in dict.fromkeys(
          (f.name, f.integer) for c in oq.COLLECTIONS.values() for f in c.filters)),
]}


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _link(href: str, rel: str, type_: str = JSON, title: str | None = None,
          templated: bool = False) -> dict[str, Any]:
    link: dict[str, Any] = {"href": href, "rel": rel, "type": type_}
    if title:
        link["title"] = title
    if templated:
        link["templated"] = True
    return link


def _check_format(request: Request, *allowed: str) -> None:
    f = request.query_params.get("f")
    if f is not None and f not in ("json", *allowed):
        raise FormatUnsupported(message="不支持的格式 / unsupported format; use f=json")


def _respond(body: dict[str, Any], media_type: str = JSON) -> JSONResponse:
    # properties and field lists depend on the caller's role
    return JSONResponse(body, media_type=media_type, headers={"Vary": "Authorization"})


# ------------------------------------------------------------------ landing, conformance
@router.get("", summary="OGC API 入口 / landing page")
async def landing(request: Request) -> JSONResponse:
    _check_format(request)
    base = _base(request)
    return _respond({
        "title": "不动产登记 OGC API / Cadastre OGC API",
        "description": "宗地、自然幢、户、界址点 / parcels, buildings, units, boundary points "
                       "(OGC API – Features, OGC API – Tiles)",
        "links": [
            _link(f"{base}/ogc", "self", title="本页 / this document"),
            _link(f"{base}/openapi.json", "service-desc", OPENAPI, "API 定义 / API definition"),
            _link(f"{base}/docs", "service-doc", "text/html", "API 文档 / API documentation"),
            _link(f"{base}/ogc/conformance", "conformance", title="一致性 / conformance"),
            _link(f"{base}/ogc/collections", "data", title="要素集 / collections"),
            _link(f"{base}/ogc/tileMatrixSets", REL + "tiling-schemes",
                  title="瓦片矩阵集 / tile matrix sets"),
        ],
    })


@router.get("/conformance", summary="一致性类 / conformance classes")
async def conformance(request: Request) -> JSONResponse:
    _check_format(request)
    return _respond({"conformsTo": CONFORMANCE})


# ------------------------------------------------------------------ collections
async def _extent(request: Request, collection: oq.Collection) -> oq.Extent:
    state = app_state(request)
    cache = state.ogc_extents
    hit = cache.get(collection.id)
    if hit is None or time.monotonic() - hit[0] > EXTENT_TTL:
        async with state.pool.connection() as conn:
            hit = (time.monotonic(), await oq.fetch_extent(conn, collection))
        cache[collection.id] = hit
    return hit[1]


async def _collection_doc(request: Request, collection: oq.Collection) -> dict[str, Any]:
    base, cid = _base(request), collection.id
    extent = await _extent(request, collection)
    storage = ", ".join(f"EPSG:{s}" for s in extent.srids) or "-"
    doc: dict[str, Any] = {
        "id": cid,
        "title": collection.layer.title,
        "description": f"{collection.description}. 存储坐标系 / stored in {storage}; "
                       "输出 / served in CRS84",
        "itemType": "feature",
        "crs": [oq.CRS84],
        "extent": {
            "spatial": {"bbox": [extent.bbox or [-180.0, -90.0, 180.0, 90.0]], "crs": oq.CRS84},
            "temporal": {
                "interval": [[oq.iso(extent.first_version) if extent.first_version else None,
                              None]],
                "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
            },
        },
        "links": [
            _link(f"{base}/ogc/collections/{cid}", "self", title=collection.layer.title),
            _link(f"{base}/ogc/collections/{cid}/items", "items", GEOJSON, "要素 / features"),
            _link(f"{base}/ogc/collections/{cid}/tiles", REL + "tilesets-vector",
                  title="矢量瓦片集 / vector tilesets"),
        ],
    }
    return doc


@router.get("/collections", summary="要素集列表 / collections")
async def collections(request: Request) -> JSONResponse:
    _check_format(request)
    base = _base(request)
    return _respond({
        "links": [_link(f"{base}/ogc/collections", "self")],
        "collections": [await _collection_doc(request, c) for c in oq.COLLECTIONS.values()],
    })


@router.get("/collections/{collection_id}", summary="要素集 / collection")
async def collection(request: Request, collection_id: str) -> JSONResponse:
    _check_format(request)
    return _respond(await _collection_doc(request, oq.get_collection(collection_id)))


# ------------------------------------------------------------------ features
@router.get("/collections/{collection_id}/items", summary="要素 / features (GeoJSON)",
            openapi_extra=_ITEMS_OPENAPI, responses={200: {"content": {GEOJSON: {}}}})
async def items(request: Request, collection_id: str,
                who: Principal = Depends(caller)) -> JSONResponse:
    _check_format(request, "geojson")
    chosen = oq.get_collection(collection_id)
    query = oq.parse_items_query(chosen, who, request.query_params)
    async with app_state(request).pool.connection() as conn:
        page = await oq.fetch_items(conn, query)
    await record(request, who, "ogc.items", chosen.id, len(page.features))
    base, url = _base(request), request.url
    links = [_link(str(url), "self", GEOJSON, "本页 / this page"),
             _link(f"{base}/ogc/collections/{chosen.id}", "collection",
                   title=chosen.layer.title)]
    returned = len(page.features)
    if query.offset + returned < page.number_matched and returned > 0:
        nxt = url.include_query_params(offset=query.offset + returned, limit=query.limit)
        links.append(_link(str(nxt), "next", GEOJSON, "下一页 / next page"))
    if query.offset > 0:
        prev = url.include_query_params(offset=max(0, query.offset - query.limit),
                                        limit=query.limit)
        links.append(_link(str(prev), "prev", GEOJSON, "上一页 / previous page"))
    return _respond({
        "type": "FeatureCollection",
        "features": page.features,
        "numberMatched": page.number_matched,
        "numberReturned": returned,
        "timeStamp": oq.iso(datetime.now(UTC)),
        "links": links,
    }, GEOJSON)


@router.get("/collections/{collection_id}/items/{feature_id}", summary="要素 / one feature",
            responses={200: {"content": {GEOJSON: {}}}})
async def item(request: Request, collection_id: str, feature_id: str,
               datetime_: str | None = Query(None, alias="datetime",
                                             description="RFC 3339 instant: as-of version"),
               who: Principal = Depends(caller)) -> JSONResponse:
    _check_format(request, "geojson")
    chosen = oq.get_collection(collection_id)
    query = oq.ItemsQuery(chosen, who, time=oq.parse_datetime(datetime_))
    async with app_state(request).pool.connection() as conn:
        feature = await oq.fetch_feature(conn, query, feature_id)
    await record(request, who, "ogc.items", f"{chosen.id}/{feature['id']}", 1)
    base = _base(request)
    feature["links"] = [
        _link(str(request.url), "self", GEOJSON),
        _link(f"{base}/ogc/collections/{chosen.id}", "collection", title=chosen.layer.title),
    ]
    return _respond(feature, GEOJSON)


# ------------------------------------------------------------------ tiles
def _tms(tile_matrix_set_id: str) -> morecantile.TileMatrixSet:
    if tile_matrix_set_id != TMS_ID:
        raise TileMatrixSetNotFound(message=f"仅支持 / only {TMS_ID} is offered")
    return morecantile.tms.get(TMS_ID)


@router.get("/tileMatrixSets", summary="瓦片矩阵集 / tile matrix sets")
async def tile_matrix_sets(request: Request) -> JSONResponse:
    _check_format(request)
    href = f"{_base(request)}/ogc/tileMatrixSets/{TMS_ID}"
    tms = _tms(TMS_ID)
    return _respond({"tileMatrixSets": [{
        "id": TMS_ID, "title": tms.title, "uri": TMS_URI,
        "links": [_link(href, "self", title=tms.title),
                  _link(href, REL + "tiling-scheme", title=tms.title)],
    }]})


@router.get("/tileMatrixSets/{tile_matrix_set_id}", summary="瓦片矩阵集 / tile matrix set")
async def tile_matrix_set(request: Request, tile_matrix_set_id: str) -> JSONResponse:
    _check_format(request)
    return _respond(_tms(tile_matrix_set_id).model_dump(mode="json", exclude_none=True))


def _tile_template(request: Request, collection: oq.Collection) -> str:
    floor = f"?floor={UNITS_DEFAULT_FLOOR}" if collection.layer.floor_filter else ""
    return (f"{_base(request)}/tiles/{collection.layer.name}/{{tileMatrix}}/{{tileCol}}/"
            f"{{tileRow}}.mvt{floor}")


def _tileset_summary(request: Request, collection: oq.Collection) -> dict[str, Any]:
    base, cid = _base(request), collection.id
    return {
        "title": collection.layer.title, "dataType": "vector", "crs": CRS_3857,
        "tileMatrixSetURI": TMS_URI,
        "links": [
            _link(f"{base}/ogc/collections/{cid}/tiles/{TMS_ID}", "self",
                  title=f"{collection.layer.title} ({TMS_ID})"),
            _link(f"{base}/ogc/tileMatrixSets/{TMS_ID}", REL + "tiling-scheme", title=TMS_ID),
        ],
    }


@router.get("/collections/{collection_id}/tiles", summary="矢量瓦片集 / vector tilesets")
async def tilesets(request: Request, collection_id: str) -> JSONResponse:
    _check_format(request)
    chosen = oq.get_collection(collection_id)
    href = f"{_base(request)}/ogc/collections/{chosen.id}/tiles"
    return _respond({"links": [_link(href, "self")],
                     "tilesets": [_tileset_summary(request, chosen)]})


def _limits(bbox: list[float] | None, minzoom: int, maxzoom: int) -> list[dict[str, Any]]:
    if bbox is None:
        return []
    out = []
    for z in range(minzoom, maxzoom + 1):
        nw = mercantile.tile(bbox[0], bbox[3], z)
        se = mercantile.tile(bbox[2], bbox[1], z)
        out.append({"tileMatrix": str(z), "minTileRow": nw.y, "maxTileRow": se.y,
                    "minTileCol": nw.x, "maxTileCol": se.x})
    return out


_JSON_TYPES = {"String": "string", "Number": "number", "Boolean": "boolean"}


@router.get("/collections/{collection_id}/tiles/{tile_matrix_set_id}",
            summary="矢量瓦片集元数据 / tileset metadata")
async def tileset(request: Request, collection_id: str, tile_matrix_set_id: str,
                  who: Principal = Depends(caller)) -> JSONResponse:
    _check_format(request)
    chosen = oq.get_collection(collection_id)
    _tms(tile_matrix_set_id)
    layer = chosen.layer
    extent = await _extent(request, chosen)
    doc = _tileset_summary(request, chosen)
    floor_note = (f"；分层图层默认 floor={UNITS_DEFAULT_FLOOR}，可加 ?floor=N / this layer shows "
                  f"one floor: floor={UNITS_DEFAULT_FLOOR} unless ?floor=N is given"
                  if layer.floor_filter else "")
    doc["description"] = f"{chosen.description}{floor_note}"
    doc["links"].append(_link(_tile_template(request, chosen), "item", MVT,
                              "矢量瓦片 / vector tile", templated=True))
    doc["tileMatrixSetLimits"] = _limits(extent.bbox, layer.minzoom, layer.maxzoom)
    if extent.bbox:
        doc["boundingBox"] = {"lowerLeft": extent.bbox[:2], "upperRight": extent.bbox[2:],
                              "crs": oq.CRS84}
    doc["layers"] = [{
        "id": layer.name, "title": layer.title, "dataType": "vector",
        "geometryDimension": 0 if layer.geometry == "point" else 2,
        "minTileMatrix": str(layer.minzoom), "maxTileMatrix": str(layer.maxzoom),
        "propertiesSchema": {"type": "object", "properties": {
            f.name: {"type": _JSON_TYPES.get(f.type, "string"), "description": f.description}
            for f in tile_routes.tile_fields(layer, who)}},
    }]
    return _respond(doc)


@router.get("/collections/{collection_id}/tiles/{tile_matrix_set_id}/{tile_matrix}/{tile_row}"
            "/{tile_col}", summary="矢量瓦片 / vector tile (MVT)",
            responses={200: {"content": {MVT: {}}}, 204: {"description": "empty tile"}})
async def tile(request: Request, collection_id: str, tile_matrix_set_id: str, tile_matrix: str,
               tile_row: str, tile_col: str,
               floor: int | None = Query(None, ge=-9, le=200, description="楼层 (units)"),
               who: Principal = Depends(caller)) -> Response:
    chosen = oq.get_collection(collection_id)
    _tms(tile_matrix_set_id)
    if chosen.layer.floor_filter and floor is None:
        floor = UNITS_DEFAULT_FLOOR
    # the same route function as /tiles: same cache, same SQL, same bytes and headers
    return await tile_routes.vector_tile(request, chosen.layer.name, tile_matrix, tile_col,
                                         tile_row, floor, who)


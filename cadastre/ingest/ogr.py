"""OGR formats through pyogrio: Shapefile (zipped), GeoPackage, GeoJSON, FlatGeobuf.

Each layer becomes features of one kind, chosen by the layer name (ZDJBXX/ZD -> parcel,
ZRZ -> building, C -> floor, H -> unit, JZD -> boundary_point, English names too), else by a
``kind`` attribute per feature, else guessed from the attribute names.  The CRS comes from the
file and is mapped to an EPSG code; without one the zone prefix of the eastings or ``srid``
decides.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import shapely
from pyogrio.errors import DataLayerError, DataSourceError
from shapely.geometry import LineString, Polygon

from cadastre.ingest.checks import coerce_geometry, ensure_finite
from cadastre.ingest.crsinfo import (
    check_target_srid,
    crs_unknown,
    epsg_from_crs,
    inferred_zone_warning,
    is_geographic,
    reproject_features,
    reprojected_warning,
    zone_from_eastings,
    zone_of_srid,
)
from cadastre.ingest.fields import (
    kind_from_keys,
    kind_from_layer_name,
    kind_from_value,
    normalise_columns,
    normalise_properties,
)
from cadastre.ingest.model import (
    AREA_KINDS,
    IssueLog,
    SurveyDataset,
    SurveyFeature,
    SurveyFormatError,
)

__all__ = ["OgrLayer", "FeatureSink", "read_ogr_layers", "list_ogr_layers"]

_KIND_COLUMNS = ("kind", "feature_kind", "要素类型")


@dataclass(frozen=True)
class OgrLayer:
    path: Path
    layer: str | None  # None: the only layer of the file
    label: str  # name used for the kind mapping and in refs
    encoding: str | None = None


def corrupt(fmt: str, exc: Exception | None = None) -> SurveyFormatError:
    detail = f": {exc}" if exc else ""
    return SurveyFormatError(
        "FILE_CORRUPT",
        f"{fmt}文件已损坏，无法读取",
        f"the {fmt} file is damaged and cannot be read{detail}",
    )


def list_ogr_layers(path: Path, fmt: str, label: str) -> list[OgrLayer]:
    try:
        names = [str(row[0]) for row in pyogrio.list_layers(path)]
    except (DataSourceError, DataLayerError, OSError) as exc:
        raise corrupt(fmt, exc) from exc
    if len(names) == 1:
        return [OgrLayer(path, names[0], label if fmt != "gpkg" else names[0])]
    return [OgrLayer(path, name, name) for name in names]


def _layer_kind(label: str, columns: list[str], geom_type: str | None) -> tuple[str | None, str]:
    """(kind for the whole layer or None, name of the kind column or "")."""
    kind = kind_from_layer_name(label)
    if kind is not None:
        return kind, ""
    for col in columns:
        if col.lower() in _KIND_COLUMNS:
            return None, col
    keys = set(normalise_properties({c: None for c in columns}, None)) - {"raw"}
    return kind_from_keys(keys, geom_type or ""), ""


def _plausible_lonlat(coords: np.ndarray) -> bool:
    return bool(
        coords.size == 0
        or (np.abs(coords[:, 0]).max() <= 180.0 and np.abs(coords[:, 1]).max() <= 90.0)
    )


def _layer_epsg(df: Any, layer: OgrLayer, fmt: str, srid: int | None, log: IssueLog) -> int:
    coords = shapely.get_coordinates(df.geometry.values)
    ensure_finite(coords, f"layer {layer.label}")
    epsg: int | None = None
    if df.crs is not None:
        epsg = epsg_from_crs(df.crs)
        if epsg is None:
            raise crs_unknown(
                f"图层{layer.label}的坐标系无法识别为EPSG代码（{df.crs.name}）",
                f"the CRS of layer {layer.label} maps to no EPSG code ({df.crs.name})",
            )
    if epsg is not None and is_geographic(epsg) and not _plausible_lonlat(coords):
        if fmt != "geojson":
            raise SurveyFormatError(
                "COORDINATE_OUT_OF_RANGE",
                f"图层{layer.label}声明为经纬度坐标，但坐标值超出经纬度范围",
                f"layer {layer.label} declares lon/lat but its coordinates are not lon/lat",
            )
        log.warning(
            "CRS_GEOJSON_NOT_WGS84",
            f"GeoJSON未声明坐标系且坐标不是经纬度，按投影坐标处理（图层{layer.label}）",
            f"the GeoJSON declares no CRS and its coordinates are not lon/lat; they "
            f"are read as projected coordinates (layer {layer.label})",
        )
        epsg = None
    if epsg is None:
        zone = zone_from_eastings(coords[:, 0]) if coords.size else None
        if zone is not None:
            inferred_zone_warning(log, zone, f"图层{layer.label}", f"layer {layer.label}")
            return zone.epsg
        if srid is not None:
            return srid
        raise crs_unknown(
            f"图层{layer.label}没有坐标系信息（缺少.prj等），且横坐标不含带号：请指定坐标系",
            f"layer {layer.label} has no CRS (e.g. no .prj) and its eastings carry "
            "no zone prefix: pass the srid",
        )
    return epsg


def _area_from_line(geom: Any) -> Polygon | None:
    if isinstance(geom, LineString) and geom.is_ring and len(geom.coords) >= 4:
        return Polygon(geom.coords)
    return None


def _read_layer(layer: OgrLayer, fmt: str) -> Any:
    try:
        with warnings.catch_warnings():  # NaN coordinates are reported by ensure_finite
            warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
            return pyogrio.read_dataframe(
                layer.path, layer=layer.layer, encoding=layer.encoding, fid_as_index=True
            )
    except (DataSourceError, DataLayerError, OSError, ValueError) as exc:
        raise corrupt(fmt, exc) from exc


_POLYGONAL = (shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON)


def _shaped_fast(kind: str, geoms: np.ndarray) -> np.ndarray:
    """``coerce_geometry`` for the common case, the whole array at once: non-empty 2D
    polygons for area kinds, points for boundary points. Other rows come back as None and take
    the per-feature path."""
    types = shapely.get_type_id(geoms)
    ok = (np.isin(types, _POLYGONAL) if kind in AREA_KINDS
          else types == shapely.GeometryType.POINT)
    ok &= ~shapely.is_empty(geoms)
    out = np.full(len(geoms), None, dtype=object)
    picked = geoms[ok]
    if picked.size and shapely.has_z(picked).any():
        picked = shapely.force_2d(picked)
    out[ok] = picked
    return out


#: Rows normalised (and handed to a feature sink) at a time.
BATCH_ROWS = 10_000

#: Receives features as soon as they are final: (index of the first, features, their srid).
FeatureSink = Callable[[int, list[SurveyFeature], int], None]


def _layer_features(df: Any, layer: OgrLayer, log: IssueLog, offset: int,
                    emit: Callable[[int, list[SurveyFeature]], None] | None = None,
                    ) -> list[SurveyFeature]:
    """The layer's features (indices from ``offset``), built ``BATCH_ROWS`` rows at a time;
    ``emit(first index, features)`` is called after each batch."""
    geom_type = next((g.geom_type for g in df.geometry.values if g is not None), None)
    columns = [c for c in df.columns if c != df.geometry.name]
    layer_kind, kind_col = _layer_kind(layer.label, columns, geom_type)
    if layer_kind is None and not kind_col:
        log.warning(
            "LAYER_SKIPPED",
            f"无法判断图层{layer.label}的要素类型（宗地/自然幢/层/户/界址点），已跳过",
            f"layer {layer.label} was skipped: its kind (parcel/building/floor/unit/"
            "boundary point) cannot be told from its name or attributes",
        )
        return []
    # attributes and geometries column by column; the per-feature loop only assembles them
    values = {c: df[c].tolist() for c in columns}
    geoms = np.asarray(df.geometry.values, dtype=object)
    fids = df.index.tolist()
    kinds: list[str | None] = (
        [layer_kind] * len(df) if layer_kind else [kind_from_value(v) for v in values[kind_col]]
    )
    out: list[SurveyFeature] = []
    for lo in range(0, len(df), BATCH_ROWS):
        hi = min(lo + BATCH_ROWS, len(df))
        first = len(out)
        _batch_features(layer, log, offset, out, values, geoms, fids, kinds, kind_col,
                        layer_kind, lo, hi)
        if emit is not None and len(out) > first:
            emit(offset + first, out[first:])
    return out


def _batch_features(layer: OgrLayer, log: IssueLog, offset: int, out: list[SurveyFeature],
                    values: dict[str, list[Any]], geoms: np.ndarray, fids: list[Any],
                    kinds: list[str | None], kind_col: str, layer_kind: str | None, lo: int,
                    hi: int) -> None:
    """Append the features of rows ``lo``..``hi`` to ``out``."""
    n = hi - lo
    props_of: list[dict[str, Any] | None] = [None] * n
    shaped_of: list[Any] = [None] * n
    for group in {k for k in kinds[lo:hi] if k is not None}:
        rows = (list(range(lo, hi)) if layer_kind
                else [i for i in range(lo, hi) if kinds[i] == group])
        sub = {c: v[lo:hi] if layer_kind else [v[i] for i in rows] for c, v in values.items()}
        props = normalise_columns(sub, len(rows), group)
        fast = _shaped_fast(group, geoms[lo:hi] if layer_kind else geoms[rows])
        for i, p, g in zip(rows, props, fast, strict=True):
            props_of[i - lo] = p
            shaped_of[i - lo] = g
    label = layer.label
    if layer_kind and all(g is not None for g in shaped_of):   # the usual file: no problems
        out.extend(SurveyFeature(layer_kind, g, p, f"layer {label} feature #{fid}")  # type: ignore[arg-type]
                   for fid, g, p in zip(fids[lo:hi], shaped_of, props_of, strict=True))
        return
    for j in range(n):
        i = lo + j
        fid, kind, geom = fids[i], kinds[i], geoms[i]
        ref = f"layer {label} feature #{fid}"
        if kind is None:
            raw = values[kind_col][i]
            log.error(
                "KIND_UNKNOWN",
                f"{ref}的kind属性“{raw}”无法识别，已跳过",
                f"{ref}: unknown kind '{raw}'; skipped",
            )
            continue
        shaped = shaped_of[j]
        if shaped is None:
            shaped = coerce_geometry(kind, geom)
        if shaped is None and kind in AREA_KINDS and (poly := _area_from_line(geom)) is not None:
            shaped = poly
            log.warning(
                "LINE_AS_POLYGON",
                f"{ref}为闭合线，已按面读取",
                f"{ref} is a closed line; read as a polygon",
                feature=offset + len(out),
            )
        if shaped is None:
            got = "空" if geom is None or geom.is_empty else geom.geom_type
            need = "点" if kind == "boundary_point" else "面"
            log.error(
                "GEOMETRY_TYPE_MISMATCH",
                f"{ref}的图形为{got}，{kind}需要{need}，已跳过",
                f"{ref}: geometry is {got if got != '空' else 'empty'} but a {kind} needs "
                f"a {'Point' if kind == 'boundary_point' else 'Polygon'}; skipped",
            )
            continue
        out.append(SurveyFeature(kind, shaped, props_of[j], ref))  # type: ignore[arg-type]


def read_ogr_layers(
    layers: list[OgrLayer],
    fmt: str,
    *,
    srid: int | None,
    metadata: dict[str, Any] | None = None,
    sink: FeatureSink | None = None,
) -> SurveyDataset:
    """Read every spatial layer; all layers must share one CRS (else CRS_MIXED).

    ``sink`` (optional) receives the features batch by batch as soon as they are final
    (projected to ``srid``); if this function raises later, what it received is void."""
    log = IssueLog()
    features: list[SurveyFeature] = []
    sources: dict[int, list[str]] = {}
    read_layers: list[str] = []
    skipped: list[str] = []
    for layer in layers:
        df = _read_layer(layer, fmt)
        if "geometry" not in df or df.geometry.name is None or len(df) == 0:
            skipped.append(layer.label)
            continue
        if df.geometry.isna().all():
            skipped.append(layer.label)
            continue
        epsg = _layer_epsg(df, layer, fmt, srid, log)
        project = srid is not None and srid != epsg
        emit = None
        if sink is not None:
            def emit(first: int, batch: list[SurveyFeature], epsg: int = epsg,
                     project: bool = project) -> None:
                if project:
                    reproject_features(batch, epsg, srid)  # type: ignore[arg-type]
                sink(first, batch, srid if srid is not None else epsg)
        layer_features = _layer_features(df, layer, log, len(features), emit)
        if not layer_features:
            skipped.append(layer.label)
            continue
        sources.setdefault(epsg, []).append(layer.label)
        read_layers.append(layer.label)
        if project and sink is None:     # (batches given to the sink were projected already)
            reproject_features(layer_features, epsg, srid)  # type: ignore[arg-type]
        features.extend(layer_features)
    if len(sources) > 1:
        detail = "; ".join(f"EPSG:{e} ({', '.join(names)})" for e, names in sources.items())
        raise SurveyFormatError(
            "CRS_MIXED",
            f"各图层/文件的坐标系不一致：{detail}",
            f"layers/files use different CRSs: {detail}",
            crs=sorted(sources),
        )
    source = next(iter(sources), None)
    if srid is not None:
        target: int | None = check_target_srid(srid)
        if source is not None and source != srid:
            reprojected_warning(log, source, srid)
    else:
        target = source
        if source is not None and zone_of_srid(source) is None:
            raise crs_unknown(
                f"坐标系EPSG:{source}不是中国高斯-克吕格投影坐标系：请指定要投影到的坐标系(srid)",
                f"EPSG:{source} is not a Chinese Gauss-Kruger CRS: pass the srid to project to",
            )
    meta = dict(metadata or {})
    meta.update({"layers": read_layers, "skipped_layers": skipped, "source_srid": source})
    return SurveyDataset(fmt, target, features, log.issues, meta)

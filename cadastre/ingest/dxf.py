"""CASS-style cadastral DXF drawings (ezdxf): parcels, boundary points, parcel codes.

- Parcel boundaries: closed LWPOLYLINE/POLYLINE on boundary layers (JZX, ZD, 权属线, ...;
  see :class:`ReaderOptions`) or entities carrying SOUTH XDATA 302002; open lines on those
  layers are polygonised.  A ring inside another is a hole of it, and also a parcel of its own
  when a label lies inside it.
- Parcel codes: TEXT/MTEXT/ATTRIB inside the boundary (point-in-polygon).
- Boundary points: POINT or INSERT entities on JZD layers (or SOUTH XDATA 302001), numbered by
  their attributes or the nearest number text.
- Coordinates are drawing units (m), x = easting.  DXF has no CRS: ``srid`` or zone-prefixed
  eastings decide.  Layers named after floors (F01, -1F, 3层) are floor plans (dxf_floors).
"""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import ezdxf
import ezdxf.path
import ezdxf.recover
import numpy as np
import shapely
from ezdxf.lldxf.const import DXFError
from shapely.geometry import Point, Polygon
from shapely.strtree import STRtree

from cadastre.codes import parcel_code_of
from cadastre.ingest.checks import ensure_finite
from cadastre.ingest.crsinfo import (
    check_target_srid,
    crs_unknown,
    inferred_zone_warning,
    reproject_features,
    reprojected_warning,
    zone_from_eastings,
)
from cadastre.ingest.dxf_common import (
    SOUTH_LINE,
    SOUTH_POINT,
    DxfText,
    collect_texts,
    dxf_encoding,
    entity_rings,
    layer_of,
    unescape,
)
from cadastre.ingest.dxf_common import entity_ref as _ref
from cadastre.ingest.dxf_common import south_code as _south_code
from cadastre.ingest.dxf_floors import floor_layers, read_floor_units
from cadastre.ingest.model import (
    IssueLog,
    ReaderOptions,
    SurveyDataset,
    SurveyFeature,
    SurveyFormatError,
)
from gis.crs import detect_swapped_axes

__all__ = ["read_dxf"]

_CODE19 = re.compile(r"\d{12}[A-Z]{2}\d{5}")
_CODE28 = re.compile(r"\d{12}[A-Z]{2}\d{5}[FLQW]\d{8}")
_POINT_NO = re.compile(r"^J?\d+[A-Za-z]?$")
_POINT_TAGS = ("JZDH", "点号", "DH", "NO", "NAME", "POINT_NO", "界址点号")
_UNITS_OK = (0, 6)  # $INSUNITS unitless / metres


def _used_encoding(doc: Any, requested: str | None) -> str:
    if doc.dxfversion >= "AC1021":
        return "utf-8"
    return requested or str(doc.encoding)


def _open_doc(path: Path, log: IssueLog) -> tuple[Any, str]:
    """The ezdxf document and the text encoding it was read with."""
    with open(path, "rb") as fh:
        fh.seek(max(0, path.stat().st_size - 64))
        tail = fh.read()
    if b"EOF" not in tail:
        raise SurveyFormatError(
            "FILE_TRUNCATED",
            "DXF文件不完整（缺少结尾的EOF）",
            "the DXF file is truncated (no closing EOF)",
        )
    encoding, guessed = dxf_encoding(path)
    if guessed:
        log.warning(
            "DXF_ENCODING_GUESSED",
            f"DXF声明的代码页与内容不符，已按{encoding}读取中文",
            f"the DXF's $DWGCODEPAGE does not match its bytes; text was read as {encoding}",
        )
    try:
        doc = ezdxf.readfile(path, encoding=encoding)
        return doc, _used_encoding(doc, encoding)
    except (DXFError, UnicodeDecodeError, ValueError):
        pass
    try:
        doc, _auditor = ezdxf.recover.readfile(path)
        return doc, _used_encoding(doc, None)
    except (DXFError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise SurveyFormatError(
            "FILE_CORRUPT",
            "DXF文件已损坏，无法读取",
            f"the DXF file is damaged and cannot be read: {exc}",
        ) from exc


def _boundary_rings(
    msp: Any, layers: set[str], opts: ReaderOptions, log: IssueLog
) -> list[tuple[Polygon, str]]:
    rings: list[tuple[Polygon, str]] = []
    open_lines: list[Any] = []
    for e in msp.query("LWPOLYLINE POLYLINE LINE"):
        on_layer = layer_of(e).upper() in layers or _south_code(e) == SOUTH_LINE
        if not on_layer:
            continue
        if e.dxftype() == "LINE":
            start, end = e.dxf.start, e.dxf.end
            open_lines.append(shapely.LineString([(start.x, start.y), (end.x, end.y)]))
            continue
        got = entity_rings(e, opts.arc_tolerance)
        if got is None:
            continue
        pts, closed = got
        if closed and len(pts) >= 3:
            rings.append((Polygon(pts), _ref(e)))
        elif len(pts) >= 2:
            open_lines.append(shapely.LineString(pts))
    if open_lines:
        merged = shapely.union_all(open_lines)
        polys = list(shapely.get_parts(shapely.polygonize(list(shapely.get_parts(merged)))))
        for poly in polys:
            rings.append((Polygon(poly.exterior.coords), "polygonised boundary lines"))
        if polys:
            log.warning(
                "DXF_POLYGONIZED",
                f"界址线图层中有{len(open_lines)}条未闭合的线，已拼接成{len(polys)}个面",
                f"{len(open_lines)} open lines on boundary layers were joined into "
                f"{len(polys)} polygons",
            )
    return rings


def _nesting(
    polys: list[Polygon], refs: list[str], log: IssueLog
) -> tuple[list[int | None], set[int]]:
    """Parent (smallest enclosing ring) of each ring, and rings that duplicate a larger one."""
    tree = STRtree(polys)
    parent: list[int | None] = [None] * len(polys)
    duplicates: set[int] = set()
    for i, poly in enumerate(polys):
        containers = [int(j) for j in tree.query(poly, predicate="within") if int(j) != i]
        for j in containers:
            if j < i and poly.equals(polys[j]):
                duplicates.add(i)
        if i in duplicates:
            log.warning(
                "DXF_DUPLICATE_BOUNDARY",
                f"{refs[i]}与另一条界址线重合，已忽略",
                f"{refs[i]} duplicates another boundary and was ignored",
            )
            continue
        outer = [j for j in containers if j not in duplicates and not polys[j].equals(poly)]
        if outer:
            parent[i] = min(outer, key=lambda j: polys[j].area)
    return parent, duplicates


def _parcels(
    rings: list[tuple[Polygon, str]], texts: list[DxfText], log: IssueLog
) -> list[SurveyFeature]:
    order = sorted(range(len(rings)), key=lambda i: -rings[i][0].area)
    polys = [rings[i][0] for i in order]
    refs = [rings[i][1] for i in order]
    if not polys:
        return []
    parent, duplicates = _nesting(polys, refs, log)
    tree = STRtree(polys)
    labels: dict[int, list[DxfText]] = {}
    for t in texts:
        inside = [int(j) for j in tree.query(Point(t.x, t.y), predicate="within")]
        inside = [j for j in inside if j not in duplicates]
        if inside:  # the smallest ring around the text owns it
            labels.setdefault(min(inside, key=lambda j: polys[j].area), []).append(t)
    children: dict[int, list[int]] = {}
    for i, p in enumerate(parent):
        if p is not None:
            children.setdefault(p, []).append(i)
    features: list[SurveyFeature] = []
    for i, poly in enumerate(polys):
        if i in duplicates or (parent[i] is not None and i not in labels):
            continue  # an unlabelled inner ring is only a hole
        holes = [polys[j].exterior.coords for j in children.get(i, [])]
        shaped = shapely.geometry.polygon.orient(Polygon(poly.exterior.coords, holes), 1.0)
        own = labels.get(i, [])
        codes = list(
            dict.fromkeys(
                parcel_code_of(m.group(0))
                for t in own
                if (m := _CODE28.fullmatch(t.text) or _CODE19.fullmatch(t.text))
            )
        )
        props: dict[str, Any] = {
            "parcel_code": codes[0] if codes else None,
            "raw": {"texts": [t.text for t in own], "entity": refs[i]},
        }
        index = len(features)
        c = shaped.representative_point()
        if len(codes) > 1:
            log.warning(
                "DXF_MULTIPLE_CODES",
                f"{refs[i]}内有多个宗地代码{codes}，取第一个",
                f"{refs[i]} contains several parcel codes {codes}; the first is used",
                feature=index,
                location=(c.x, c.y),
            )
        if not codes:
            log.warning(
                "PARCEL_CODE_MISSING",
                f"{refs[i]}内没有宗地代码注记",
                f"no parcel code text inside {refs[i]}",
                feature=index,
                location=(c.x, c.y),
            )
        features.append(SurveyFeature("parcel", shaped, props, refs[i]))
    return features


def _point_number(
    e: Any, pt: Point, labels: STRtree | None, texts: list[DxfText], radius: float
) -> str | None:
    """The point's number: its block attribute, else the nearest number text within radius."""
    if e.dxftype() == "INSERT":
        for a in e.attribs:
            if a.dxf.tag.upper() in _POINT_TAGS or _POINT_NO.match(a.dxf.text.strip()):
                return a.dxf.text.strip()
    if labels is None:
        return None
    nearest = labels.query_nearest(pt, max_distance=radius)
    return texts[int(nearest[0])].text if len(nearest) else None


def _boundary_points(
    msp: Any,
    layers: set[str],
    texts: list[DxfText],
    parcels: list[SurveyFeature],
    opts: ReaderOptions,
    log: IssueLog,
    offset: int,
) -> list[SurveyFeature]:
    number_texts = [t for t in texts if _POINT_NO.match(t.text)]
    labels = STRtree([Point(t.x, t.y) for t in number_texts]) if number_texts else None
    outlines = [p.geometry.boundary for p in parcels]
    tree = STRtree(outlines) if outlines else None
    out: list[SurveyFeature] = []
    for e in msp.query("POINT INSERT"):
        if layer_of(e).upper() not in layers and _south_code(e) != SOUTH_POINT:
            continue
        loc = e.dxf.insert if e.dxftype() == "INSERT" else e.dxf.location
        pt = Point(float(loc.x), float(loc.y))
        number = _point_number(e, pt, labels, number_texts, opts.point_label_radius)
        on: list[int] = []
        if tree is not None:
            on = sorted(
                int(i)
                for i in tree.query(
                    pt, predicate="dwithin", distance=opts.point_on_boundary_tolerance
                )
            )
        refs = [parcels[i].properties.get("parcel_code") or i for i in on]
        props = {
            "point_no": number,
            "parcel_ref": refs[0] if refs else None,
            "parcel_refs": refs,
            "ring_no": None,
            "raw": {"entity": _ref(e)},
        }
        if not on:
            log.warning(
                "POINT_OFF_BOUNDARY",
                f"界址点{number or _ref(e)}不在任何宗地边界上",
                f"boundary point {number or _ref(e)} lies on no parcel boundary",
                feature=offset + len(out),
                location=(pt.x, pt.y),
            )
        out.append(SurveyFeature("boundary_point", pt, props, _ref(e)))
    return out


def _resolve_srid(features: list[SurveyFeature], srid: int | None, log: IssueLog) -> int:
    xy = np.concatenate([shapely.get_coordinates(f.geometry) for f in features])
    ensure_finite(xy, "DXF entities")
    if detect_swapped_axes(xy[:, 1], xy[:, 0]):
        raise SurveyFormatError(
            "AXES_SWAPPED",
            "DXF的X像是纵坐标(北)、Y像是横坐标(东)：CAD中X应为东、Y应为北",
            "DXF x values look like northings and y like eastings: in CAD x "
            "is the easting and y the northing",
        )
    zone = zone_from_eastings(xy[:, 0])
    if zone is None and srid is None:
        raise crs_unknown(
            "DXF没有坐标系信息且横坐标不含带号：请指定坐标系(srid)",
            "a DXF carries no CRS and its eastings have no zone prefix: pass the srid",
        )
    if zone is not None:
        inferred_zone_warning(log, zone, "DXF")
    source = zone.epsg if zone is not None else srid
    assert source is not None
    if srid is not None:
        check_target_srid(srid)
        if srid != source:
            reproject_features(features, source, srid)
            reprojected_warning(log, source, srid)
        return srid
    return source


def read_dxf(
    path: Path, *, srid: int | None = None, options: ReaderOptions | None = None
) -> SurveyDataset:
    opts = options or ReaderOptions()
    log = IssueLog()
    doc, encoding = _open_doc(path, log)
    msp = doc.modelspace()
    layer_names = [unescape(layer.dxf.name) for layer in doc.layers]
    boundary = {name.upper() for name in opts.boundary_layers}
    points = {name.upper() for name in opts.point_layers}
    texts = collect_texts(msp.query("TEXT MTEXT INSERT"))
    rings = _boundary_rings(msp, boundary, opts, log)
    floors = floor_layers(doc)
    features = _parcels(rings, texts, log)
    features += _boundary_points(msp, points, texts, features, opts, log, len(features))
    features += read_floor_units(doc, floors, opts, log, len(features))
    if not rings and not any(f.kind == "unit" for f in features):
        raise SurveyFormatError(
            "DXF_NO_BOUNDARY_LAYER",
            f"DXF中没有界址线图层（{'、'.join(opts.boundary_layers)}）上的闭合多段线，"
            f"也没有分层图层；现有图层：{'、'.join(layer_names)}",
            f"the DXF has no closed polylines on a boundary layer "
            f"({', '.join(opts.boundary_layers)}) and no floor layers; layers present: "
            f"{', '.join(layer_names)}",
            layers=layer_names,
        )
    units = int(doc.header.get("$INSUNITS", 0) or 0)
    if units not in _UNITS_OK:
        log.warning(
            "DXF_UNITS",
            f"图形单位($INSUNITS={units})不是米，坐标按米读取",
            f"drawing units ($INSUNITS={units}) are not metres; coordinates are read as metres",
        )
    target = _resolve_srid(features, srid, log)
    meta = {
        "layers": layer_names,
        "dxf_version": doc.dxfversion,
        "floor_layers": {f.name: asdict(f) for f in floors.values()},
        "encoding": encoding,
    }
    return SurveyDataset("dxf", target, features, log.issues, meta)

"""Floor plans in DXF (分层分户图): one layer per floor, closed polylines = units.

Floor layers are named like ``F01``, ``F02``, ``-1F``, ``3F``, ``3层``, ``B1``, ``地下1层``,
optionally with the base elevation: ``F03@6.00``, ``F03_EL6.0``.  The base elevation and storey
height may instead come from the layer's XDATA (application ``CADASTRE``: pairs of a 1000 name,
``base_elevation`` or ``storey_height``, and a 1040 value) or from texts on the layer such as
``标高=6.000`` / ``EL=6.0`` and ``层高=3.0``.  Unit codes (28 chars), room numbers (房号) and
areas (建筑面积/套内面积/分摊面积) are texts inside each unit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from shapely.geometry import Point, Polygon
from shapely.geometry.polygon import orient

from cadastre.codes import building_code_of, is_unit_code_with_fixture
from cadastre.ingest.dxf_common import (
    collect_texts,
    entity_ref,
    entity_rings,
    layer_of,
    unescape,
)
from cadastre.ingest.model import IssueLog, ReaderOptions, SurveyFeature

__all__ = ["FloorLayer", "parse_floor_layer", "floor_layers", "read_floor_units"]

XDATA_APP = "CADASTRE"
_NUM = r"-?\d+(?:\.\d+)?"
_FLOOR = re.compile(
    r"^(?:(?:F|L)(?P<a>-?\d{1,3})|(?P<b>-?\d{1,3})(?:F|层)|B(?P<c>\d{1,2})F?|地下(?P<d>\d{1,2})层?"
    r"|第(?P<e>-?\d{1,3})层)"
    rf"(?:\s*[@_ ]\s*(?:EL|H|标高)?\s*=?\s*(?P<elev>{_NUM}))?$",
    re.I,
)
_ELEVATION_TEXT = re.compile(rf"^(?:标高|层底标高|EL)\s*[:：=]?\s*(?P<v>{_NUM})\s*m?$", re.I)
_HEIGHT_TEXT = re.compile(rf"^(?:层高|H)\s*[:：=]\s*(?P<v>{_NUM})\s*m?$", re.I)
_CODE28 = re.compile(r"\d{12}[A-Z]{2}\d{5}[FLQW]\d{8}")
_ROOM = re.compile(
    r"^(?:房号|室号|户号)?\s*[:：]?\s*(?P<v>[A-Za-z]?\d{1,4}[A-Za-z]?|\d{1,3}-\d{1,4})$"
)
_AREAS = {
    "building_area": re.compile(rf"^(?:建筑面积|JZMJ)\s*[:：=]?\s*(?P<v>{_NUM})"),
    "inner_area": re.compile(rf"^(?:套内(?:建筑)?面积|TNMJ)\s*[:：=]?\s*(?P<v>{_NUM})"),
    "shared_area": re.compile(rf"^(?:分摊(?:建筑)?面积|FTMJ)\s*[:：=]?\s*(?P<v>{_NUM})"),
}
_USE = re.compile(r"^(?:用途|FWYT)\s*[:：=]\s*(?P<v>.+)$")


@dataclass(frozen=True)
class FloorLayer:
    name: str
    floor_no: int
    base_elevation: float | None
    storey_height: float | None


def parse_floor_layer(name: str) -> tuple[int, float | None] | None:
    """(floor number, base elevation from the name or None), or None if not a floor layer."""
    m = _FLOOR.match(name.strip())
    if m is None:
        return None
    if m.group("c") or m.group("d"):
        floor = -int(m.group("c") or m.group("d"))
    else:
        floor = int(m.group("a") or m.group("b") or m.group("e"))
    if floor == 0:
        return None
    elev = float(m.group("elev")) if m.group("elev") else None
    return floor, elev


def _xdata_values(layer: Any) -> dict[str, float]:
    if not layer.has_xdata(XDATA_APP):
        return {}
    out: dict[str, float] = {}
    key: str | None = None
    for code, value in layer.get_xdata(XDATA_APP):
        if code == 1000:
            key = str(value).strip().lower()
        elif code in (1040, 1041, 1070, 1071) and key:
            out[key] = float(value)
            key = None
    return out


def floor_layers(doc: Any) -> dict[str, FloorLayer]:
    """Floor layers of the drawing with what the layer table says about their elevation."""
    out: dict[str, FloorLayer] = {}
    for layer in doc.layers:
        label = unescape(layer.dxf.name)
        parsed = parse_floor_layer(label)
        if parsed is None:
            continue
        floor, elev = parsed
        xdata = _xdata_values(layer)
        if elev is None:
            elev = xdata.get("base_elevation")
        out[label.upper()] = FloorLayer(label, floor, elev, xdata.get("storey_height"))
    return out


def _unit_props(texts: list[str], floor: FloorLayer) -> dict[str, Any]:
    props: dict[str, Any] = {
        "unit_code": None,
        "building_code": None,
        "floor_no": floor.floor_no,
        "base_elevation": floor.base_elevation,
        "height": floor.storey_height,
        "storey_height": floor.storey_height,
        "room_no": None,
        "use": None,
        "raw": {"texts": texts, "layer": floor.name},
    }
    for text in texts:
        if props["unit_code"] is None and _CODE28.fullmatch(text):
            props["unit_code"] = text
            if is_unit_code_with_fixture(text, "F"):
                props["building_code"] = building_code_of(text)
            continue
        for key, pattern in _AREAS.items():
            if (m := pattern.match(text)) is not None:
                props[key] = float(m.group("v"))
        if props["use"] is None and (m := _USE.match(text)) is not None:
            props["use"] = m.group("v").strip()
        elif props["room_no"] is None and (m := _ROOM.match(text)) is not None:
            props["room_no"] = m.group("v")
    return props


def _floor_levels(floor: FloorLayer, texts: list[tuple[str, Point]]) -> FloorLayer:
    elev, height = floor.base_elevation, floor.storey_height
    for text, _ in texts:
        if elev is None and (m := _ELEVATION_TEXT.match(text)) is not None:
            elev = float(m.group("v"))
        if height is None and (m := _HEIGHT_TEXT.match(text)) is not None:
            height = float(m.group("v"))
    return FloorLayer(floor.name, floor.floor_no, elev, height)


def read_floor_units(
    doc: Any, floors: dict[str, FloorLayer], opts: ReaderOptions, log: IssueLog, offset: int
) -> list[SurveyFeature]:
    """Unit features of every floor layer (leaf closed polylines; outlines are skipped)."""
    out: list[SurveyFeature] = []
    by_layer: dict[str, list[Any]] = {}
    for e in doc.modelspace().query("LWPOLYLINE POLYLINE TEXT MTEXT INSERT"):
        by_layer.setdefault(layer_of(e).upper(), []).append(e)
    for key, floor0 in sorted(floors.items(), key=lambda kv: kv[1].floor_no):
        entities = by_layer.get(key, [])
        labels = collect_texts(e for e in entities if e.dxftype() in ("TEXT", "MTEXT", "INSERT"))
        texts = [(t.text, Point(t.x, t.y)) for t in labels]
        floor = _floor_levels(floor0, texts)
        rings: list[tuple[Polygon, str]] = []
        for e in entities:
            if e.dxftype() not in ("LWPOLYLINE", "POLYLINE"):
                continue
            got = entity_rings(e, opts.arc_tolerance)
            if got is not None and got[1] and len(got[0]) >= 3:
                rings.append((Polygon(got[0]), entity_ref(e)))
        leaves = [
            (p, ref) for p, ref in rings if not any(o is not p and p.contains(o) for o, _ in rings)
        ]
        if leaves and floor.base_elevation is None:
            log.warning(
                "FLOOR_ELEVATION_MISSING",
                f"图层{floor.name}（第{floor.floor_no}层）没有层底标高",
                f"layer {floor.name} (floor {floor.floor_no}) gives no base elevation",
            )
        for poly, ref in leaves:
            inside = [t for t, pt in texts if poly.contains(pt)]
            props = _unit_props(inside, floor)
            index = offset + len(out)
            if props["unit_code"] is None:
                c = poly.representative_point()
                log.warning(
                    "UNIT_CODE_MISSING",
                    f"{ref}内没有不动产单元代码注记",
                    f"no unit code text inside {ref}",
                    feature=index,
                    location=(c.x, c.y),
                )
            out.append(SurveyFeature("unit", orient(poly, 1.0), props, ref))
    return out

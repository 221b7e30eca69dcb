"""分层分户图 (floor plan): for each floor the unit occupies, the floor outline with every unit on
it, this unit highlighted with its room number, and the area table (建筑面积 / 套内 / 分摊).

Only natural attributes (自然状况) of units are printed, through the privacy policy for the
caller's role; no person is named.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg
from shapely import wkb
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from cadastre import labels
from cadastre.access import privacy
from cadastre.access.privacy import Role
from cadastre.documents.render import esc, html_to_pdf, page_html
from cadastre.documents.svgmap import (
    FLOOR_SCALES,
    Frame,
    choose_scale,
    north_arrow,
    scale_bar,
    svg,
    text,
)
from cadastre.errors import NotFound

FRAME_W, FRAME_H = 186.0, 130.0
MAX_FLOORS = 12   # pages per document (a whole-building unit of a tall building is capped)

_UNIT = """
SELECT unit_code, building_code, parcel_code, floor_no, floor_count, room_no, seat, use,
       layout, building_area, inner_area, shared_area, shared_coefficient, srid
FROM cad.unit_current WHERE unit_code = %s
"""
_BUILDING = """
SELECT building_code, name, floors_total, floors_above, floors_below, structure, planned_use
FROM cad.building_current WHERE building_code = %s
"""
_FLOORS = """
SELECT floor_no, floor_label, floor_area, ST_AsBinary(geom)
FROM cad.floor_current WHERE building_code = %s AND floor_no = ANY(%s)
"""
_FLOOR_UNITS = """
SELECT unit_code, floor_no, floor_count, room_no, use, building_area, inner_area, shared_area,
       shared_coefficient, ST_AsBinary(geom)
FROM cad.unit_current
WHERE building_code = %s AND floor_no <= %s
  AND floor_no + floor_count >= %s   -- reaches the lowest wanted floor (+1: no floor 0)
ORDER BY room_no, unit_code
"""
_UNIT_FIELDS = ("unit_code", "floor_no", "floor_count", "room_no", "use", "building_area",
                "inner_area", "shared_area", "shared_coefficient")


def floors_of(floor_no: int, floor_count: int) -> list[int]:
    """Floor numbers a unit spans (there is no floor 0: -1 is followed by 1)."""
    out: list[int] = []
    f = floor_no
    while len(out) < floor_count:
        if f != 0:
            out.append(f)
        f += 1
    return out


def floor_name(label: object) -> str:
    """'12' → 第12层, '地下1' → 地下1层."""
    text_ = "" if label is None else str(label)
    return f"第{text_}层" if text_.lstrip("-").isdigit() else f"{text_}层"


@dataclass
class FloorPage:
    floor_no: int
    floor: dict[str, Any]                               # after the policy
    outline: BaseGeometry | None
    units: list[tuple[dict[str, Any], BaseGeometry]]    # (record after the policy, geometry)


@dataclass
class FloorPlanData:
    unit: dict[str, Any]
    building: dict[str, Any]
    pages: list[FloorPage]


def _num(v: Any) -> Any:
    return float(v) if v is not None and not isinstance(v, (int, str)) else v


def load(conn: psycopg.Connection, unit_code: str, role: Role = Role.OWNER) -> FloorPlanData:
    with conn.cursor() as cur:
        cur.execute(_UNIT, (unit_code,))
        row = cur.fetchone()
        if row is None:
            raise NotFound("NO_FLOOR_PLAN", "该不动产单元没有分层分户图 / no floor plan for "
                           "this unit")
        names = [d.name for d in cur.description or ()]
    unit_raw = {k: _num(v) for k, v in zip(names, row, strict=True)}
    unit = privacy.apply("unit", role, unit_raw)
    with conn.cursor() as cur:
        cur.execute(_BUILDING, (unit_raw["building_code"],))
        brow = cur.fetchone()
        bnames = [d.name for d in cur.description or ()]
    building = privacy.apply("building", role, dict(zip(bnames, brow, strict=True))
                             if brow else {"building_code": unit_raw["building_code"]})
    wanted = floors_of(unit_raw["floor_no"], unit_raw["floor_count"])[:MAX_FLOORS]
    floors = {r[0]: r for r in conn.execute(_FLOORS, (unit_raw["building_code"], wanted))}
    candidates = conn.execute(_FLOOR_UNITS, (unit_raw["building_code"], max(wanted),
                                             min(wanted))).fetchall()
    pages = []
    for f in wanted:
        on_floor = []
        for r in candidates:
            if f in floors_of(r[1], r[2]):
                rec = privacy.apply("unit", role, dict(zip(_UNIT_FIELDS,
                                                           (_num(v) for v in r[:9]),
                                                           strict=True)))
                on_floor.append((rec, wkb.loads(bytes(r[9]))))
        frow = floors.get(f)
        floor = privacy.apply("floor", role, {
            "building_code": unit_raw["building_code"], "floor_no": f,
            "floor_label": frow[1] if frow else str(f),
            "floor_area": _num(frow[2]) if frow else None})
        outline = wkb.loads(bytes(frow[3])) if frow else None
        pages.append(FloorPage(f, floor, outline, on_floor))
    return FloorPlanData(unit, building, pages)


def _plan_svg(d: FloorPlanData, page: FloorPage) -> tuple[str, int]:
    shapes = [g for _, g in page.units] + ([page.outline] if page.outline is not None else [])
    extent = unary_union(shapes)
    e0, n0, e1, n1 = extent.bounds
    scale = choose_scale(e1 - e0, n1 - n0, FRAME_W, FRAME_H, FLOOR_SCALES, fill=0.8)
    frame = Frame(FRAME_W, FRAME_H, scale, (e0 + e1) / 2, (n0 + n1) / 2)
    parts = []
    if page.outline is not None:
        parts.append(f'<path d="{frame.path(page.outline)}" fill="#f6f6f6" stroke="#111" '
                     f'stroke-width="0.6" fill-rule="evenodd"/>')
    mine = d.unit.get("unit_code")
    for rec, g in page.units:
        this = rec.get("unit_code") == mine
        fill, width = ("#ffd54f", 0.6) if this else ("#fff", 0.3)
        parts.append(f'<path d="{frame.path(g)}" fill="{fill}" stroke="#111" '
                     f'stroke-width="{width}" fill-rule="evenodd"/>')
    for rec, g in page.units:
        this = rec.get("unit_code") == mine
        x, y = frame.xy(*g.representative_point().coords[0])
        parts.append(text(x, y, rec.get("room_no"), 3.4 if this else 2.8,
                          weight=700 if this else 400))
        area = rec.get("building_area")
        if area is not None:
            parts.append(text(x, y + 3.6, f"{float(area):.2f} m²", 2.3, fill="#333"))
    parts.append(north_arrow(FRAME_W - 12.0, 8.0))
    parts.append(scale_bar(frame, 8.0, FRAME_H - 10.0, target_mm=30.0))
    return svg(frame, "".join(parts)), scale


def _area(v: Any, digits: int = 2) -> str:
    return "" if v is None else f"{float(v):.{digits}f}"


def render_html(d: FloorPlanData, today: date | None = None) -> str:
    return page_html(f"分层分户图 {d.unit.get('unit_code', '')}", render_body(d, today))


def render_body(d: FloorPlanData, today: date | None = None) -> str:
    """One ``div.page`` per floor (certificates put them among their own pages)."""
    today = today or date.today()
    u, b = d.unit, d.building
    out = []
    for page in d.pages:
        map_svg, scale = _plan_svg(d, page)
        info = (
            "<table class=\"info\">"
            f"<tr><th>不动产单元号</th><td>{esc(u.get('unit_code'))}</td>"
            f"<th>幢号</th><td>{esc(b.get('building_code'))}</td></tr>"
            f"<tr><th>坐落</th><td colspan=\"3\">{esc(u.get('seat'))}</td></tr>"
            f"<tr><th>所在层</th><td>{esc(floor_name(page.floor.get('floor_label')))}"
            f"（共 {esc(b.get('floors_total', ''))} 层）</td>"
            f"<th>房号</th><td>{esc(u.get('room_no'))}</td></tr>"
            f"<tr><th>房屋用途</th><td>{esc(labels.printed(labels.HOUSE_USE, u.get('use')))}</td>"
            f"<th>房屋结构</th>"
            f"<td>{esc(labels.printed(labels.STRUCTURE, b.get('structure')))}</td></tr>"
            "</table>")
        rows = []
        for rec, _ in page.units:
            this = rec.get("unit_code") == u.get("unit_code")
            style = " style=\"font-weight:700;background:#fff3c4\"" if this else ""
            rows.append(f"<tr{style}><td>{esc(rec.get('room_no'))}</td>"
                        f"<td>{_area(rec.get('building_area'))}</td>"
                        f"<td>{_area(rec.get('inner_area'))}</td>"
                        f"<td>{_area(rec.get('shared_area'))}</td>"
                        f"<td>{_area(rec.get('shared_coefficient'), 4)}</td></tr>")
        areas = ("<h2>面积表 / Areas (m²)</h2><table class=\"areas\"><tr><th>房号</th>"
                 "<th>建筑面积</th><th>套内建筑面积</th><th>分摊建筑面积</th><th>分摊系数</th></tr>"
                 + "".join(rows) + "</table>")
        foot = (f"<div class=\"foot\"><span>比例尺 1:{scale}</span>"
                f"<span>层建筑面积 {_area(page.floor.get('floor_area'))} m²</span>"
                f"<span>制图日期 {today.isoformat()}</span></div>"
                "<div class=\"note\">本单元以黄色标示。本图由不动产登记信息系统生成，"
                "仅供权利人查询使用。 / This unit is shown in yellow. Generated by the "
                "registry for the right holder's information.</div>")
        floor = esc(floor_name(page.floor.get("floor_label")))
        out.append(f"<div class=\"page\"><h1>分层分户图</h1><div class=\"sub\">Floor plan · "
                   f"{esc(b.get('building_code'))} · {floor}</div>{info}{map_svg}{foot}{areas}"
                   "</div>")
    return "".join(out)


def floor_plan_pdf(conn: psycopg.Connection, unit_code: str, role: Role = Role.OWNER,
                   today: date | None = None) -> bytes:
    return html_to_pdf(render_html(load(conn, unit_code, role), today))

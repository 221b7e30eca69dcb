"""宗地图 (parcel map): the parcel in the grid coordinates of its CGCS2000 zone with its numbered
boundary points (界址点), side lengths, buildings, neighbouring parcels and 四至, north arrow,
scale bar and grid; then the boundary-point table (点号, X, Y, 边长).

Every attribute printed passes the privacy policy for the caller's role; the map names no
person (owners' names are not printed at all).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg
from shapely import wkb
from shapely.geometry import Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import polylabel, unary_union

from cadastre import labels
from cadastre.access import privacy
from cadastre.access.privacy import Role
from cadastre.codes import parcel_code_of
from cadastre.documents.render import esc, html_to_pdf, page_html
from cadastre.documents.svgmap import (
    PARCEL_SCALES,
    Frame,
    choose_scale,
    grid,
    label_box,
    north_arrow,
    scale_bar,
    svg,
    text,
)
from cadastre.errors import NotFound

FRAME_W, FRAME_H = 186.0, 132.0

_PARCEL = """
SELECT feature_id::text AS id, parcel_code, seat, compound_name, land_use, right_type,
       registered_area, neighbour_north, neighbour_east, neighbour_south, neighbour_west,
       map_sheet, srid, ST_AsBinary(geom) AS wkb
FROM cad.parcel_current WHERE parcel_code = %s
"""
_POINTS = """
SELECT point_no, seq, ring_no, x_north, y_east, marker_type, point_type
FROM cad.boundary_point_current WHERE parcel_code = %s
ORDER BY ring_no, seq
"""
_NEIGHBOURS = """
SELECT n.parcel_code, ST_AsBinary(n.geom)
FROM cad.parcel_current t JOIN cad.parcel_current n
  ON n.parcel_code <> t.parcel_code AND n.srid = t.srid AND ST_DWithin(n.geom, t.geom, %s)
WHERE t.parcel_code = %s
ORDER BY n.parcel_code
"""
_BUILDINGS = """
SELECT building_code, ST_AsBinary(geom) FROM cad.building_current
WHERE parcel_code = %s ORDER BY building_code
"""
_OFFICE = """
SELECT registry_office FROM cad.right_current
WHERE unit_code = %s AND status = 1 AND kind IN ('ownership', 'land_use')
ORDER BY registered_at DESC LIMIT 1
"""


@dataclass
class ParcelMapData:
    unit_code: str                    # '' = the parcel's map for all its units
    parcel: dict[str, Any]            # after the policy
    geom: BaseGeometry
    srid: int
    points: list[dict[str, Any]]      # after the policy
    neighbours: list[tuple[str, BaseGeometry]]
    buildings: list[tuple[str, BaseGeometry]]
    registry_office: str | None
    neighbour_distance: float


def load(conn: psycopg.Connection, unit_code: str, role: Role = Role.OWNER,
         neighbour_distance: float = 3.0) -> ParcelMapData:
    """The parcel of ``unit_code`` with everything the map shows."""
    parcel_code = parcel_code_of(unit_code)
    with conn.cursor() as cur:
        cur.execute(_PARCEL, (parcel_code,))
        row = cur.fetchone()
        if row is None:
            raise NotFound("PARCEL_NOT_FOUND", "宗地不存在 / parcel not found")
        names = [d.name for d in cur.description or ()]
    rec = dict(zip(names, row, strict=True))
    geom = wkb.loads(bytes(rec.pop("wkb")))
    srid = rec["srid"]
    points = [privacy.apply("boundary_point", role, {
        "point_no": p[0], "seq": p[1], "ring_no": p[2], "x_north": float(p[3]),
        "y_east": float(p[4]), "marker_type": p[5], "point_type": p[6]})
        for p in conn.execute(_POINTS, (parcel_code,))]
    neighbours = [(code, wkb.loads(bytes(g)))
                  for code, g in conn.execute(_NEIGHBOURS, (neighbour_distance, parcel_code))]
    buildings = [(code, wkb.loads(bytes(g))) for code, g in conn.execute(_BUILDINGS,
                                                                         (parcel_code,))]
    office_row = conn.execute(_OFFICE, (unit_code,)).fetchone() or conn.execute(
        _OFFICE, (parcel_code + "W00000000",)).fetchone()
    office = None
    if office_row is not None:
        office = privacy.apply("right", role, {"registry_office": office_row[0]}).get(
            "registry_office")
    return ParcelMapData(unit_code, privacy.apply("parcel", role, rec), geom, srid, points,
                         neighbours, buildings, office, neighbour_distance)


def _zone_text(srid: int) -> str:
    try:
        from gis.crs import zone_from_epsg

        z = zone_from_epsg(srid)
        return (f"{z.datum.db_name} {z.width}°带 第{z.zone}带（中央经线 {z.central_meridian}°E，"
                f"EPSG:{srid}）")
    except Exception:   # not a Gauss-Krüger zone we know: print the code only
        return f"EPSG:{srid}"


def _ring_lengths(points: list[dict[str, Any]]) -> list[float | None]:
    """Length from each point to the next one of its ring (the last closes the ring)."""
    out: list[float | None] = []
    for p in points:
        ring = [q for q in points if q.get("ring_no") == p.get("ring_no")]
        if len(ring) < 2 or "x_north" not in p:
            out.append(None)
            continue
        k = ring.index(p)
        q = ring[(k + 1) % len(ring)]
        out.append(math.hypot(q["x_north"] - p["x_north"], q["y_east"] - p["y_east"]))
    return out


def _map_svg(d: ParcelMapData) -> tuple[str, int]:
    e0, n0, e1, n1 = d.geom.bounds
    scale = choose_scale(e1 - e0, n1 - n0, FRAME_W, FRAME_H, PARCEL_SCALES)
    frame = Frame(FRAME_W, FRAME_H, scale, (e0 + e1) / 2, (n0 + n1) / 2)
    inner = frame.world_box(inset_mm=6.0)
    parts = [grid(frame)]
    # neighbouring parcels, labelled with the short parcel code (特征码 + 顺序号)
    for _code, g in d.neighbours:
        parts.append(f'<path d="{frame.path(g)}" fill="#f3f3f3" stroke="#888" '
                     f'stroke-width="0.25" fill-rule="evenodd"/>')
    for code, g in d.neighbours:
        visible = g.intersection(inner).difference(d.geom)
        if visible.is_empty or visible.area < 1e-6:
            continue
        x, y = frame.xy(*visible.representative_point().coords[0])
        parts.append(text(x, y, code[12:], 2.2, fill="#666"))
    parts.append(f'<path d="{frame.path(d.geom)}" fill="#fff6d5" stroke="#111" '
                 f'stroke-width="0.55" fill-rule="evenodd"/>')
    for code, g in d.buildings:
        parts.append(f'<path d="{frame.path(g)}" fill="none" stroke="#444" stroke-width="0.3" '
                     f'stroke-dasharray="1.2,0.8"/>')
        x, y = frame.xy(*g.representative_point().coords[0])
        parts.append(text(x, y + 1, f"{int(code[-4:])}幢", 2.2, fill="#444"))
    centre = d.geom.centroid
    cx, cy = frame.xy(centre.x, centre.y)
    # side lengths along each side, outside the parcel
    lengths = _ring_lengths(d.points)
    ring_of: dict[int, list[int]] = {}
    for i, p in enumerate(d.points):
        ring_of.setdefault(p.get("ring_no", 1), []).append(i)
    for idx in ring_of.values():
        for j, i in enumerate(idx):
            p, q = d.points[i], d.points[idx[(j + 1) % len(idx)]]
            if "x_north" not in p or lengths[i] is None:
                continue
            x1, y1 = frame.xy(p["y_east"], p["x_north"])
            x2, y2 = frame.xy(q["y_east"], q["x_north"])
            if math.hypot(x2 - x1, y2 - y1) < 9:
                continue
            mx, my = (x1 + x2) / 2, (y1 + y2) / 2
            nx, ny = -(y2 - y1), x2 - x1
            norm = math.hypot(nx, ny) or 1.0
            nx, ny = nx / norm, ny / norm
            mid_world = Point((p["y_east"] + q["y_east"]) / 2, (p["x_north"] + q["x_north"]) / 2)
            probe = Point(mid_world.x + nx / frame.mm_per_m, mid_world.y - ny / frame.mm_per_m)
            if d.geom.contains(probe):
                nx, ny = -nx, -ny
            angle = math.degrees(math.atan2(y2 - y1, x2 - x1))
            if angle > 90:
                angle -= 180
            elif angle < -90:
                angle += 180
            parts.append(text(mx + nx * 1.6, my + ny * 1.6 + 0.7, f"{lengths[i]:.2f}", 2.0,
                              fill="#1a4d8f", rotate=angle))
    # boundary points, numbered outside the parcel
    for p in d.points:
        if "x_north" not in p:
            continue
        x, y = frame.xy(p["y_east"], p["x_north"])
        dx, dy = x - cx, y - cy
        norm = math.hypot(dx, dy) or 1.0
        parts.append(f'<circle cx="{x:.2f}" cy="{y:.2f}" r="0.65" fill="#fff" stroke="#c00" '
                     f'stroke-width="0.3"/>')
        parts.append(text(x + dx / norm * 3.2, y + dy / norm * 3.2 + 0.9, p.get("point_no"),
                          2.4, fill="#c00", weight=700))
    parts.append(_title_label(d, frame))
    # 四至 at the edges
    sides = (("neighbour_north", FRAME_W / 2, 5.0, "北至"), ("neighbour_south", FRAME_W / 2,
             FRAME_H - 4.5, "南至"), ("neighbour_west", 8.0, FRAME_H / 2, "西至"),
             ("neighbour_east", FRAME_W - 8.0, FRAME_H / 2, "东至"))
    for key, x, y, word in sides:
        if d.parcel.get(key):
            rot = -90.0 if key == "neighbour_west" else (90.0 if key == "neighbour_east" else None)
            parts.append(text(x, y, f"{word}：{d.parcel[key]}", 2.6, weight=700, rotate=rot))
    parts.append(north_arrow(FRAME_W - 12.0, 8.0))
    parts.append(scale_bar(frame, 26.0, FRAME_H - 10.0))
    return svg(frame, "".join(parts)), scale


def _label_point(d: ParcelMapData) -> Point:
    """Where the parcel's label goes: the point of the parcel farthest from its edges and its
    buildings (pole of inaccessibility), so the label covers as little as possible."""
    free = d.geom
    if d.buildings:
        free = d.geom.difference(unary_union([g for _, g in d.buildings]))
    parts = getattr(free, "geoms", [free])
    polys = [g for g in parts if isinstance(g, Polygon) and not g.is_empty]
    if not polys:
        return d.geom.representative_point()
    return polylabel(max(polys, key=lambda g: g.area), tolerance=0.5)


def _title_label(d: ParcelMapData, frame: Frame) -> str:
    """Parcel code over land use and area (the 宗地号/地类 fraction), inside the parcel when it
    is wide enough on paper, else beside it with a leader line."""
    code = d.parcel.get("parcel_code", "")
    area = d.parcel.get("registered_area")
    lower = labels.LAND_USE.get(str(d.parcel.get("land_use")), "")
    if area is not None:
        lower = f"{lower} {float(area):.2f} m²"
    width, height = 34.0, 9.0
    x, y = frame.xy(*_label_point(d).coords[0])
    e0, n0, e1, n1 = d.geom.bounds
    left, top = frame.xy(e0, n1)
    right, bottom = frame.xy(e1, n0)
    parts = []
    if right - left < width + 4 or bottom - top < height + 4:
        ax, ay = x, y
        x = right + width / 2 + 12 if right + width + 14 < frame.width else left - width / 2 - 12
        y = max(height, min(frame.height - height, y))
        parts.append(f'<path d="M{ax:.2f},{ay:.2f} L{x:.2f},{y:.2f}" stroke="#111" '
                     f'stroke-width="0.2"/>')
    parts.append(label_box(x, y + 1.0, width, height))
    parts.append(text(x, y - 1.0, code, 2.8, weight=700))
    parts.append(f'<path d="M{x - 16:.2f},{y + 0.4:.2f} H{x + 16:.2f}" stroke="#111" '
                 f'stroke-width="0.25"/>')
    parts.append(text(x, y + 3.6, lower, 2.5))
    return "".join(parts)


def render_html(d: ParcelMapData, today: date | None = None) -> str:
    return page_html(f"宗地图 {d.parcel.get('parcel_code', '')}", render_body(d, today))


def render_body(d: ParcelMapData, today: date | None = None) -> str:
    """The map page's HTML (certificates put it among their own pages)."""
    today = today or date.today()
    p = d.parcel
    map_svg, scale = _map_svg(d)
    area = p.get("registered_area")
    code_row = (f"<td>{esc(p.get('parcel_code'))}</td><th>不动产单元号</th>"
                f"<td>{esc(d.unit_code)}</td>" if d.unit_code
                else f"<td colspan=\"3\">{esc(p.get('parcel_code'))}</td>")
    info = (
        "<table class=\"info\">"
        f"<tr><th>宗地代码</th>{code_row}</tr>"
        f"<tr><th>坐落</th><td colspan=\"3\">{esc(p.get('seat'))}</td></tr>"
        f"<tr><th>用途</th><td>{esc(labels.printed(labels.LAND_USE, p.get('land_use')))}</td>"
        f"<th>宗地面积</th><td>{'' if area is None else f'{float(area):.2f} m²'}</td></tr>"
        f"<tr><th>权利类型</th>"
        f"<td>{esc(labels.printed(labels.RIGHT_TYPE, p.get('right_type')))}</td>"
        f"<th>图幅号</th><td>{esc(p.get('map_sheet'))}</td></tr>"
        "</table>")
    lengths = _ring_lengths(d.points)
    rows = []
    for p_, length in zip(d.points, lengths, strict=True):
        ring = f"（第{p_['ring_no']}圈）" if p_.get("ring_no", 1) != 1 else ""
        rows.append(f"<tr><td>{esc(p_.get('point_no'))}{ring}</td>"
                    f"<td>{p_.get('x_north', 0):.3f}</td><td>{p_.get('y_east', 0):.3f}</td>"
                    f"<td>{'' if length is None else f'{length:.2f}'}</td></tr>")
    points = ("<h2>界址点成果表 / Boundary points</h2><table class=\"points\"><tr><th>点号</th>"
              "<th>X（北坐标, m）</th><th>Y（东坐标, m）</th><th>边长（至下一点, m）</th></tr>"
              + "".join(rows) + "</table>")
    neighbour_codes = "、".join(code for code, _ in d.neighbours) or "—"
    sides = "".join(f"<th>{w}</th><td>{esc(p.get(k) or '—')}</td>" for k, w in
                    (("neighbour_north", "北至"), ("neighbour_east", "东至"),
                     ("neighbour_south", "南至"), ("neighbour_west", "西至")))
    four = (f"<h2>四至 / Neighbours</h2><table class=\"info\"><tr>{sides}</tr>"
            f"<tr><th>相邻宗地</th><td colspan=\"7\">{esc(neighbour_codes)}</td></tr></table>")
    foot = (f"<div class=\"foot\"><span>比例尺 1:{scale}</span>"
            f"<span>坐标系 {esc(_zone_text(d.srid))}</span></div>"
            f"<div class=\"foot\"><span>制图日期 {today.isoformat()}</span>"
            f"<span>登记机构 {esc(d.registry_office or '—')}</span></div>"
            "<div class=\"note\">本图由不动产登记信息系统生成，仅供权利人查询使用；"
            "坐标为高斯-克吕格投影平面坐标，X 为北坐标，Y 为东坐标（含带号）。 / "
            "Generated by the registry for the right holder's information; X = northing, "
            "Y = easting (zone-prefixed).</div>")
    return (f"<h1>宗地图</h1><div class=\"sub\">Parcel map · {esc(p.get('parcel_code'))}</div>"
            f"{info}{map_svg}{foot}{four}{points}")


def parcel_map_pdf(conn: psycopg.Connection, unit_code: str, role: Role = Role.OWNER,
                   today: date | None = None) -> bytes:
    return html_to_pdf(render_html(load(conn, unit_code, role), today))

"""Shared DXF helpers: polyline vertices (arcs flattened), texts, entity references."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ezdxf.path
from ezdxf.lldxf.const import DXFError
from ezdxf.tools.codepage import toencoding

__all__ = [
    "unescape",
    "layer_of",
    "dxf_encoding",
    "SOUTH_POINT",
    "SOUTH_LINE",
    "DxfText",
    "entity_ref",
    "south_code",
    "entity_rings",
    "collect_texts",
]

#: SOUTH (CASS) XDATA feature codes: 界址点, 界址线 (seen in one open-source tool only).
SOUTH_POINT, SOUTH_LINE = 302001, 302002


_UNICODE_ESCAPE = re.compile(r"\\U\+([0-9A-Fa-f]{4})")
_ACADVER = re.compile(rb"\$ACADVER\s*\r?\n\s*1\s*\r?\n\s*(AC\d{4})")
_CODEPAGE = re.compile(rb"\$DWGCODEPAGE\s*\r?\n\s*3\s*\r?\n\s*(\S+)")
_CJK_ENCODINGS = ("gbk", "cp936", "gb2312", "gb18030")


def unescape(text: str) -> str:
    """Decode AutoCAD's \\U+XXXX escapes (used for characters outside the code page)."""
    return _UNICODE_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


def layer_of(e: Any) -> str:
    return unescape(str(e.dxf.layer))


def dxf_encoding(path: Path) -> tuple[str | None, bool]:
    """(encoding to read a text DXF with, whether it was guessed against $DWGCODEPAGE).

    R2007+ files are UTF-8 (ezdxf knows).  Older files use $DWGCODEPAGE, but Chinese drawings
    often say ANSI_1252 while holding GBK bytes: non-ASCII bytes that decode as GB18030 are
    read as such.
    """
    data = path.read_bytes()
    if data.startswith(b"AutoCAD Binary DXF"):
        return None, False
    head = data[:65536]
    version = _ACADVER.search(head)
    if version and version.group(1).decode() >= "AC1021":
        return None, False
    page = _CODEPAGE.search(head)
    declared = toencoding(page.group(1).decode("ascii", "replace")) if page else "cp1252"
    if declared in _CJK_ENCODINGS:
        return "gb18030", False
    if data.isascii():
        return None, False
    for candidate in ("utf-8", "gb18030"):
        try:
            data.decode(candidate)
        except UnicodeDecodeError:
            continue
        return candidate, True
    return None, False


@dataclass(frozen=True)
class DxfText:
    text: str
    x: float
    y: float
    layer: str
    ref: str


def entity_ref(e: Any) -> str:
    return f"layer {layer_of(e)} {e.dxftype()} #{e.dxf.handle}"


def south_code(e: Any) -> int | None:
    if not e.has_xdata("SOUTH"):
        return None
    for code, value in e.get_xdata("SOUTH"):
        if code in (1070, 1071, 1000):
            try:
                return int(value)
            except (TypeError, ValueError):
                return None
    return None


def entity_rings(e: Any, tolerance: float) -> tuple[list[tuple[float, float]], bool] | None:
    """Flattened vertices of a polyline (arcs/bulges included) and whether it is closed."""
    if e.dxftype() == "POLYLINE" and not (e.is_2d_polyline or e.is_3d_polyline):
        return None
    try:
        path = ezdxf.path.make_path(e)
    except (TypeError, ValueError, DXFError):
        return None
    pts: list[tuple[float, float]] = []
    for v in path.flattening(tolerance):
        xy = (float(v.x), float(v.y))
        if not pts or pts[-1] != xy:
            pts.append(xy)
    closed = bool(getattr(e, "closed", False) or getattr(e, "is_closed", False))
    if len(pts) > 2 and pts[0] == pts[-1]:
        closed = True
        pts.pop()
    return pts, closed


def collect_texts(entities: Any) -> list[DxfText]:
    out: list[DxfText] = []
    for e in entities:
        kind = e.dxftype()
        if kind == "TEXT":
            text, where = e.dxf.text, e.dxf.insert
        elif kind == "MTEXT":
            text, where = e.plain_text(), e.dxf.insert
        elif kind == "INSERT":
            for a in e.attribs:
                out.append(
                    DxfText(
                        unescape(a.dxf.text.strip()),
                        a.dxf.insert.x,
                        a.dxf.insert.y,
                        layer_of(e),
                        entity_ref(e),
                    )
                )
            continue
        else:
            continue
        for line in str(text).splitlines() or [""]:
            if line.strip():
                out.append(
                    DxfText(
                        unescape(line.strip()),
                        float(where.x),
                        float(where.y),
                        layer_of(e),
                        entity_ref(e),
                    )
                )
    return out

"""The office's seal as drawn on the record page (the digital signature is the seal in law): a red
double ring, a star, the office name around the top and the seal's purpose below.

The layout leaves a 42 mm square for it (``SEAL_ANCHOR``); the seal is drawn once per office as
a one-page PDF and stamped there on every document (``render.combine``). Drawn with each page,
its characters cost WeasyPrint a text layout each, every time. They are glyph outlines of the
document face (``fonts.glyph_outline``): no font subset to embed for them (one costs a document
about 40 KiB).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

from cadastre.documents.fonts import glyph_outline

SEAL_ANCHOR = "seal"              # the id of the square the layout leaves for the seal
SEAL_MM = 42.0
PURPOSE = "不动产登记专用章"
_RED = "#d40000"
_PT_PER_PX = 0.75         # PDF points per CSS pixel (WeasyPrint)
_MIDDLE = 0.3       # a character centred on y has its baseline 0.3 em below (WeasyPrint's SVG
                    # "central" baseline, which drew the seal before)


def _glyph(char: str, x: float, y: float, size: float, angle: float = 0.0) -> str:
    """``char`` as a path, ``size`` high, centred on (x, y) (its advance, and vertically as
    ``_MIDDLE`` says), turned by ``angle`` degrees about that point."""
    d, advance = glyph_outline(char)
    if not d:
        return ""
    return (f'<path transform="translate({x:.3f} {y:.3f}) rotate({angle:.2f}) '
            f'scale({size:.3f} {-size:.3f}) translate({-advance / 2:.3f} {-_MIDDLE})" '
            f'd="{d}"/>')


def seal_svg(office: str, text: str = PURPOSE) -> str:
    """The seal as an SVG drawing (42 × 42 user units)."""
    r, cx, cy = 20.0, 21.0, 21.0
    chars = list(office)[:20]
    spread = min(250.0, 14.0 * len(chars))
    parts = [f'<circle cx="{cx}" cy="{cy}" r="{r}" fill="none" stroke="{_RED}" '
             'stroke-width="1.2"/>',
             f'<circle cx="{cx}" cy="{cy}" r="{r - 1.6}" fill="none" stroke="{_RED}" '
             'stroke-width="0.3"/>']
    star = []
    for k in range(10):
        rad = 5.2 if k % 2 == 0 else 2.1
        a = math.radians(-90 + 36 * k)
        star.append(f"{cx + rad * math.cos(a):.2f},{cy + rad * math.sin(a):.2f}")
    parts.append(f'<polygon points="{" ".join(star)}" fill="{_RED}"/>')
    for i, ch in enumerate(chars):
        angle = -90 - spread / 2 + spread * (i + 0.5) / len(chars)
        a = math.radians(angle)
        parts.append(_glyph(ch, cx + (r - 5.2) * math.cos(a), cy + (r - 5.2) * math.sin(a),
                            3.4, angle + 90))
    size = 2.8
    advances = [glyph_outline(ch)[1] * size for ch in text]
    x = cx - sum(advances) / 2
    for ch, advance in zip(text, advances, strict=True):
        # the purpose sits on a baseline 11 below the centre
        parts.append(_glyph(ch, x + advance / 2, cy + 11 - _MIDDLE * size, size))
        x += advance
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{SEAL_MM}mm" '
            f'height="{SEAL_MM}mm" viewBox="0 0 42 42"><g fill="{_RED}">{"".join(parts)}</g>'
            "</svg>")


@lru_cache(maxsize=16)
def seal_pdf(office: str) -> bytes:
    """The seal of ``office`` as a one-page PDF of its size (PDF/A-3b, no fonts)."""
    from cadastre.documents.render import render_pages, write_pages

    page = (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head><body>"
            f"{seal_svg(office)}</body></html>")
    css = (f"@page {{ size: {SEAL_MM}mm {SEAL_MM}mm; margin: 0; "
           "@bottom-center { content: none; } } body { margin: 0; } svg { display: block; }")
    return write_pages(render_pages(page, css))


def seal_place(page: Any) -> tuple[float, float, float, float] | None:
    """Where the layout left the seal's square on a laid-out WeasyPrint page: (left, bottom,
    right, top) in PDF points, or None when the square is not on this page."""
    if SEAL_ANCHOR not in page.anchors:
        return None
    x1, y1, x2, y2 = page.anchors[SEAL_ANCHOR]       # its box, CSS pixels from the top left
    return (x1 * _PT_PER_PX, (page.height - y2) * _PT_PER_PX, x2 * _PT_PER_PX,
            (page.height - y1) * _PT_PER_PX)

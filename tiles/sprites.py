"""The map's sprite sheet (icons), drawn with Pillow so the map needs nothing from the internet.

MapLibre loads ``{sprite}.json`` + ``{sprite}.png`` and, on high-DPI screens, ``{sprite}@2x.json`` +
``{sprite}@2x.png``. Each icon is drawn as vector shapes on a 4× supersampled canvas and reduced
by area averaging, so both pixel ratios come from the same drawing and the output is the same
bytes on every run (no timestamps or metadata in the PNG).
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from cadastre.errors import NotFound
from tiles.files import atomic_write

SPRITE_NAMES = ("cadastre",)
PIXEL_RATIOS = (1, 2)
FORMAT_VERSION = 1  # bump when an icon changes; old cache entries are then ignored
_SUPERSAMPLE = 4
_PADDING = 2  # logical px between icons

Point = tuple[float, float]


class SpriteNotFound(NotFound):
    code = "SPRITE_NOT_FOUND"


class _Pen:
    """Draws in logical icon pixels onto a canvas ``scale`` times larger."""

    def __init__(self, draw: ImageDraw.ImageDraw, scale: float) -> None:
        self.draw, self.s = draw, scale

    def _pts(self, points: list[Point]) -> list[Point]:
        return [(x * self.s, y * self.s) for x, y in points]

    def circle(self, cx: float, cy: float, r: float, fill: str | None = None,
               outline: str | None = None, width: float = 0) -> None:
        box = ((cx - r) * self.s, (cy - r) * self.s, (cx + r) * self.s, (cy + r) * self.s)
        self.draw.ellipse(box, fill=fill, outline=outline, width=round(width * self.s))

    def polygon(self, points: list[Point], fill: str) -> None:
        self.draw.polygon(self._pts(points), fill=fill)

    def rect(self, x0: float, y0: float, x1: float, y1: float, fill: str) -> None:
        self.draw.rectangle((x0 * self.s, y0 * self.s, x1 * self.s - 1, y1 * self.s - 1), fill=fill)

    def line(self, points: list[Point], fill: str, width: float) -> None:
        self.draw.line(self._pts(points), fill=fill, width=max(1, round(width * self.s)))

    def arc(self, box: tuple[float, float, float, float], start: float, end: float, fill: str,
            width: float) -> None:
        scaled = tuple(v * self.s for v in box)
        self.draw.arc(scaled, start, end, fill=fill, width=max(1, round(width * self.s)))


# --- icons (logical size, drawing function) ----------------------------------------------------


def _boundary_point(p: _Pen) -> None:
    """界址点: a small white circle with a red ring and a cross."""
    red = "#d7191c"
    p.circle(6.5, 6.5, 5.5, fill="#ffffff", outline=red, width=1.5)
    p.line([(6.5, 1.5), (6.5, 11.5)], red, 1.2)
    p.line([(1.5, 6.5), (11.5, 6.5)], red, 1.2)


def _badge(colour: str) -> Callable[[_Pen], None]:
    def draw(p: _Pen) -> None:
        p.circle(10, 10, 9.5, fill="#ffffff")
        p.circle(10, 10, 8.5, fill=colour)

    return draw


def _school(p: _Pen) -> None:
    """学校: a mortarboard."""
    _badge("#3b6fb6")(p)
    p.polygon([(3.5, 8.5), (10, 5.0), (16.5, 8.5), (10, 12.0)], "#ffffff")
    p.polygon([(6.5, 10.5), (13.5, 10.5), (13.5, 14.0), (10, 15.0), (6.5, 14.0)], "#ffffff")
    p.line([(16.0, 8.8), (16.0, 13.0)], "#ffffff", 1.0)


def _park(p: _Pen) -> None:
    """公园: a tree."""
    _badge("#3a9d4a")(p)
    p.polygon([(10, 3.5), (15.0, 10.5), (5.0, 10.5)], "#ffffff")
    p.polygon([(10, 6.5), (16.0, 14.0), (4.0, 14.0)], "#ffffff")
    p.rect(9.0, 14.0, 11.0, 17.0, "#ffffff")


def _commercial(p: _Pen) -> None:
    """商业: a shopping bag."""
    _badge("#e08a1e")(p)
    p.rect(5.5, 8.0, 14.5, 15.5, "#ffffff")
    p.arc((7.5, 4.5, 12.5, 10.5), 180, 360, "#ffffff", 1.3)


def _residential(p: _Pen) -> None:
    """住宅小区: a house."""
    colour = "#b5533c"
    _badge(colour)(p)
    p.polygon([(10, 4.0), (16.0, 9.5), (4.0, 9.5)], "#ffffff")
    p.rect(5.5, 9.0, 14.5, 15.5, "#ffffff")
    p.rect(8.5, 11.5, 11.5, 15.5, colour)


def _building(p: _Pen) -> None:
    """自然幢: a tower with windows."""
    colour = "#5b6770"
    _badge(colour)(p)
    p.rect(6.5, 4.0, 13.5, 16.0, "#ffffff")
    for y in (5.5, 8.5, 11.5):
        p.rect(8.0, y, 9.5, y + 1.5, colour)
        p.rect(10.5, y, 12.0, y + 1.5, colour)
    p.rect(9.0, 14.0, 11.0, 16.0, colour)


def _pin(body: str, border: str, inner: Callable[[_Pen], None]) -> Callable[[_Pen], None]:
    """A map pin 24 × 32 whose tip is the bottom centre (use ``icon-anchor: bottom``)."""

    def draw(p: _Pen) -> None:
        p.circle(12, 11, 11, fill=border)
        p.polygon([(2.2, 15.0), (21.8, 15.0), (12, 31.8)], border)
        p.circle(12, 11, 9.8, fill=body)
        p.polygon([(3.6, 15.0), (20.4, 15.0), (12, 30.0)], body)
        inner(p)

    return draw


def _unit_inner(p: _Pen) -> None:
    p.rect(7.0, 6.0, 17.0, 16.0, "#ffffff")  # a unit (户) as a white square with a door
    p.rect(10.5, 11.0, 13.5, 16.0, "#e0245e")


def _search_inner(p: _Pen) -> None:
    p.circle(12, 11, 4.2, fill="#ffffff")


ICONS: dict[str, tuple[int, int, Callable[[_Pen], None]]] = {
    "boundary-point": (13, 13, _boundary_point),
    "school": (20, 20, _school),
    "park": (20, 20, _park),
    "commercial": (20, 20, _commercial),
    "residential": (20, 20, _residential),
    "building": (20, 20, _building),
    "unit-pin": (24, 32, _pin("#e0245e", "#8c0f35", _unit_inner)),
    "search-marker": (24, 32, _pin("#1e6fd9", "#0b3f86", _search_inner)),
}


# --- the sheet -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpriteSheet:
    index: bytes  # sprite JSON
    image: bytes  # PNG


def _render_icon(width: int, height: int, draw: Callable[[_Pen], None], ratio: int) -> Image.Image:
    scale = ratio * _SUPERSAMPLE
    big = Image.new("RGBA", (width * scale, height * scale), (0, 0, 0, 0))
    draw(_Pen(ImageDraw.Draw(big), scale))
    return big.resize((width * ratio, height * ratio), Image.Resampling.BOX)


def render_sheet(ratio: int) -> SpriteSheet:
    """All icons in one row, left to right in :data:`ICONS` order."""
    width = sum(w + _PADDING for w, _, _ in ICONS.values()) + _PADDING
    height = max(h for _, h, _ in ICONS.values()) + 2 * _PADDING
    sheet = Image.new("RGBA", (width * ratio, height * ratio), (0, 0, 0, 0))
    index: dict[str, dict[str, int]] = {}
    x = _PADDING
    for name, (w, h, draw) in ICONS.items():
        sheet.paste(_render_icon(w, h, draw, ratio), (x * ratio, _PADDING * ratio))
        index[name] = {"x": x * ratio, "y": _PADDING * ratio, "width": w * ratio,
                       "height": h * ratio, "pixelRatio": ratio}
        x += w + _PADDING
    buf = io.BytesIO()
    sheet.save(buf, format="PNG", optimize=False, compress_level=9)
    text = json.dumps(index, indent=1, sort_keys=True).encode()
    return SpriteSheet(text, buf.getvalue())


def _file_name(name: str, ratio: int, ext: str) -> str:
    return f"{name}{'' if ratio == 1 else f'@{ratio}x'}.{ext}"


_lock = threading.Lock()


def sprite_file(cache_dir: Path, name: str, ratio: int, ext: str) -> bytes:
    """``sprite.json`` or ``sprite.png`` bytes of a sprite at a pixel ratio, cached under
    ``cache_dir``; an unknown name, ratio or extension is a :class:`SpriteNotFound`."""
    if name not in SPRITE_NAMES or ratio not in PIXEL_RATIOS or ext not in ("json", "png"):
        raise SpriteNotFound(
            message=f"未知图标集 / unknown sprite {_file_name(name, ratio, ext)!r}; "
            f"available: {', '.join(SPRITE_NAMES)}"
        )
    path = Path(cache_dir) / f"v{FORMAT_VERSION}" / _file_name(name, ratio, ext)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    with _lock:
        if not path.is_file():
            sheet = render_sheet(ratio)
            # the PNG first: a client that sees the JSON can always fetch the image
            atomic_write(path.with_name(_file_name(name, ratio, "png")), sheet.image)
            atomic_write(path.with_name(_file_name(name, ratio, "json")), sheet.index)
        return path.read_bytes()

"""Map font glyphs: MapLibre / Mapbox glyph PBF ranges rendered from the local Noto Sans CJK fonts.

The web map asks for ``{fontstack}/{start}-{end}.pbf`` (256 code points per range). Each range is
rendered on first request and kept on disk, so the map needs no internet for its labels.

Every glyph is rendered the way node-fontnik / sdf-glyph-foundry does it (the reference server-side
generator MapLibre is calibrated against):

* the face is set to 24 px (``FT_Set_Char_Size(24 * 64)`` at 72 dpi) and loaded without hinting;
* ``width``/``height``/``left`` come from the outline's bounding box rounded to whole pixels and
  exclude the 3 px buffer, while the ``bitmap`` covers ``(width + 6) * (height + 6)`` bytes;
* ``top`` is the box's top (bearing-y) minus the face's scaled ascender, ``advance`` the truncated
  horizontal advance; glyphs with an empty outline (space) carry metrics but no bitmap;
* the bitmap holds a signed distance field, ``alpha = 255 - 255 * (d / 8 + 0.25)`` with ``d`` the
  distance in px to the outline (negative inside), clamped to 0..255, rows top to bottom.

The distance field is computed on a supersampled binary rendering of the outline with
``scipy.ndimage.distance_transform_edt`` and sampled at the pixel centres.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import subprocess
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import freetype
import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from scipy.ndimage import distance_transform_edt

from cadastre.errors import ConfigError, InvalidInput, NotFound
from tiles.files import atomic_write

log = logging.getLogger("tiles.glyphs")

GLYPH_SIZE = 24  # px, the size MapLibre's glyph atlas is built for
BUFFER = 3  # px of distance field around each glyph
RADIUS = 8.0  # px covered by the 0..255 distance ramp
CUTOFF = 0.25  # fraction of the ramp reserved for the inside
SUPERSAMPLE = 3  # odd, so each output pixel centre falls on a supersampled pixel centre
RANGE_SIZE = 256
MAX_CODEPOINT = 0x10FFFF
FORMAT_VERSION = 1  # bump when the rendering changes; old cache entries are then ignored

_RANGE_RE = re.compile(r"^(\d+)-(\d+)$")


class FontstackNotFound(NotFound):
    code = "FONTSTACK_NOT_FOUND"


class InvalidGlyphRange(InvalidInput):
    code = "INVALID_GLYPH_RANGE"


class FontUnavailable(ConfigError):
    code = "FONT_NOT_INSTALLED"


@dataclass(frozen=True)
class FontSource:
    """Where a font stack's face lives: a family/style inside one of the candidate files."""

    family: str
    style: str
    files: tuple[str, ...]


_NOTO_DIRS = (
    "/usr/share/fonts/opentype/noto",  # Debian, Ubuntu (fonts-noto-cjk)
    "/usr/share/fonts/google-noto-cjk",  # Fedora
    "/usr/share/fonts/noto-cjk",  # Arch
)

FONT_STACKS: dict[str, FontSource] = {
    "Noto Sans CJK SC Regular": FontSource(
        "Noto Sans CJK SC", "Regular", tuple(f"{d}/NotoSansCJK-Regular.ttc" for d in _NOTO_DIRS)
    ),
    "Noto Sans CJK SC Bold": FontSource(
        "Noto Sans CJK SC", "Bold", tuple(f"{d}/NotoSansCJK-Bold.ttc" for d in _NOTO_DIRS)
    ),
}


@dataclass(frozen=True)
class Glyph:
    id: int
    bitmap: bytes | None
    width: int
    height: int
    left: int
    top: int
    advance: int


# --- protobuf schema (glyphs.proto of mapbox/glyph-pbf-composite, built at import time) -----------


def _glyph_messages() -> tuple[type[Message], type[Message], type[Message]]:
    T = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(
        name="cadastre/glyphs.proto", package="mapboxgl.glyphs", syntax="proto2"
    )
    glyph = fdp.message_type.add(name="glyph")
    for name, number, ftype, label in (
        ("id", 1, T.TYPE_UINT32, T.LABEL_REQUIRED),
        ("bitmap", 2, T.TYPE_BYTES, T.LABEL_OPTIONAL),
        ("width", 3, T.TYPE_UINT32, T.LABEL_REQUIRED),
        ("height", 4, T.TYPE_UINT32, T.LABEL_REQUIRED),
        ("left", 5, T.TYPE_SINT32, T.LABEL_REQUIRED),
        ("top", 6, T.TYPE_SINT32, T.LABEL_REQUIRED),
        ("advance", 7, T.TYPE_UINT32, T.LABEL_REQUIRED),
    ):
        glyph.field.add(name=name, number=number, type=ftype, label=label)
    stack = fdp.message_type.add(name="fontstack")
    stack.field.add(name="name", number=1, type=T.TYPE_STRING, label=T.LABEL_REQUIRED)
    stack.field.add(name="range", number=2, type=T.TYPE_STRING, label=T.LABEL_REQUIRED)
    stack.field.add(name="glyphs", number=3, type=T.TYPE_MESSAGE, label=T.LABEL_REPEATED,
                    type_name=".mapboxgl.glyphs.glyph")
    root = fdp.message_type.add(name="glyphs")
    root.field.add(name="stacks", number=1, type=T.TYPE_MESSAGE, label=T.LABEL_REPEATED,
                   type_name=".mapboxgl.glyphs.fontstack")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return tuple(  # type: ignore[return-value]
        GetMessageClass(pool.FindMessageTypeByName(f"mapboxgl.glyphs.{n}"))
        for n in ("glyphs", "fontstack", "glyph")
    )


GlyphsMessage, FontstackMessage, GlyphMessage = _glyph_messages()


def encode_range(stack: str, start: int, end: int, glyphs: Iterable[Glyph]) -> bytes:
    message = GlyphsMessage()
    fontstack = message.stacks.add()  # type: ignore[attr-defined]
    fontstack.name = stack
    fontstack.range = f"{start}-{end}"
    for g in glyphs:
        out = fontstack.glyphs.add(id=g.id, width=g.width, height=g.height, left=g.left,
                                   top=g.top, advance=g.advance)
        if g.bitmap is not None:
            out.bitmap = g.bitmap
    return message.SerializeToString()


def decode_range(data: bytes) -> Message:
    """Parse a glyph PBF (for tests and tools)."""
    message = GlyphsMessage()
    message.ParseFromString(data)
    return message


# --- ranges and font stacks ------------------------------------------------------------------


def parse_range(text: str) -> tuple[int, int]:
    """``"19968-20223"`` → ``(19968, 20223)``; anything else is an :class:`InvalidGlyphRange`."""
    m = _RANGE_RE.match(text)
    if not m:
        raise InvalidGlyphRange(
            message="字形范围格式应为 起-止 / glyph range must be START-END"
        )
    start, end = int(m.group(1)), int(m.group(2))
    if start % RANGE_SIZE or end != start + RANGE_SIZE - 1 or end > MAX_CODEPOINT:
        raise InvalidGlyphRange(
            message="字形范围须为 256 的整段 / glyph range must be N*256-(N*256+255)"
        )
    return start, end


def resolve_stack(fontstack: str, known: Iterable[str] = FONT_STACKS) -> str:
    """The first known font of a comma-separated font stack, else :class:`FontstackNotFound`."""
    names = list(known)
    for part in fontstack.split(","):
        if part.strip() in names:
            return part.strip()
    raise FontstackNotFound(
        message=f"未知字体 / unknown font stack; available: {', '.join(names)}"
    )


def _round_half_away(value: float) -> int:
    """``std::round``: halves away from zero (Python's ``round`` goes to even)."""
    return int(np.sign(value) * np.floor(abs(value) + 0.5))


# --- rendering -------------------------------------------------------------------------------


def _locate_face(source: FontSource) -> tuple[str, int]:
    """(file, face index) of the family/style; looks at the known paths, then asks fontconfig."""
    files = [f for f in source.files if os.path.isfile(f)]
    if not files:
        try:
            out = subprocess.run(
                ["fc-match", "-f", "%{file}", f"{source.family}:style={source.style}"],
                capture_output=True, text=True, timeout=10, check=False,
            ).stdout.strip()
        except OSError:
            out = ""
        if out and os.path.isfile(out):
            files.append(out)
    for path in files:
        count = freetype.Face(path).num_faces
        for index in range(count):
            face = freetype.Face(path, index)
            if (face.family_name or b"").decode() == source.family and (
                face.style_name or b""
            ).decode() == source.style:
                return path, index
    raise FontUnavailable(
        message=f"未安装字体 / font not installed: {source.family} {source.style} "
        "(Debian/Ubuntu: apt-get install fonts-noto-cjk)"
    )


def _bitmap_array(bitmap: freetype.Bitmap) -> np.ndarray:
    rows, width, pitch = bitmap.rows, bitmap.width, bitmap.pitch
    if rows == 0 or width == 0:
        return np.zeros((0, 0), dtype=np.uint8)
    raw = ctypes.string_at(bitmap._FT_Bitmap.buffer, rows * abs(pitch))
    array = np.frombuffer(raw, dtype=np.uint8).reshape(rows, abs(pitch))[:, :width]
    return array if pitch > 0 else array[::-1]


@dataclass
class _Outline:
    """What FreeType gives for one glyph; the distance field is computed from it without a lock."""

    codepoint: int
    advance: int
    ascender: int
    box: tuple[int, int, int, int] | None  # rounded (xmin, ymin, xmax, ymax) at 24 px
    coverage: np.ndarray | None  # supersampled anti-aliased rendering
    coverage_left: int = 0
    coverage_top: int = 0


def _load_outline(face: freetype.Face, codepoint: int) -> _Outline | None:
    index = face.get_char_index(codepoint)
    if index == 0:
        return None
    flags = freetype.FT_LOAD_NO_HINTING
    face.set_char_size(0, GLYPH_SIZE * 64, 72, 72)
    face.load_glyph(index, flags)
    slot = face.glyph
    advance = int(slot.metrics.horiAdvance / 64)  # C++ integer division truncates
    ascender = int(face.size.ascender / 64)
    result = _Outline(codepoint, advance, ascender, None, None)
    if slot.format != freetype.FT_GLYPH_FORMAT_OUTLINE or slot.outline.n_points == 0:
        return result
    bbox = slot.outline.get_bbox()
    box = tuple(_round_half_away(v / 64) for v in (bbox.xMin, bbox.yMin, bbox.xMax, bbox.yMax))
    if box[2] == box[0] or box[3] == box[1]:
        return result
    result.box = box  # type: ignore[assignment]
    face.set_char_size(0, GLYPH_SIZE * SUPERSAMPLE * 64, 72, 72)
    face.load_glyph(index, flags | freetype.FT_LOAD_RENDER)
    result.coverage = _bitmap_array(face.glyph.bitmap).copy()
    result.coverage_left, result.coverage_top = face.glyph.bitmap_left, face.glyph.bitmap_top
    return result


def signed_distance_alpha(inside: np.ndarray, scale: int) -> np.ndarray:
    """Alpha bytes of the distance field of a supersampled mask, sampled at each block's centre.

    ``inside`` has ``scale`` × ``scale`` cells per output pixel; distances are measured from cell
    centres to the nearest cell of the other side, less half a cell (the edge lies between them).
    """
    if inside.any():
        outside_dist = distance_transform_edt(~inside) - 0.5
        inside_dist = distance_transform_edt(inside) - 0.5
        d = np.where(inside, -inside_dist, outside_dist) / scale
    else:
        d = np.full(inside.shape, np.inf)
    d = d[scale // 2 :: scale, scale // 2 :: scale]
    alpha = np.rint(255.0 - 255.0 * (d / RADIUS + CUTOFF))
    return np.clip(alpha, 0, 255).astype(np.uint8)


def outline_to_glyph(o: _Outline) -> Glyph:
    if o.box is None or o.coverage is None:
        # like fontnik: an empty outline keeps its advance and a zero box
        return Glyph(o.codepoint, None, 0, 0, 0, -o.ascender, o.advance)
    xmin, ymin, xmax, ymax = o.box
    width, height = xmax - xmin, ymax - ymin
    s = SUPERSAMPLE
    canvas = np.zeros(((height + 2 * BUFFER) * s, (width + 2 * BUFFER) * s), dtype=bool)
    # supersampled cell (0, 0) has its top-left corner at (xmin - BUFFER, ymax + BUFFER), y up
    col = o.coverage_left - (xmin - BUFFER) * s
    row = (ymax + BUFFER) * s - o.coverage_top
    cov = o.coverage >= 128
    r0, c0 = max(row, 0), max(col, 0)
    r1 = min(row + cov.shape[0], canvas.shape[0])
    c1 = min(col + cov.shape[1], canvas.shape[1])
    if r1 > r0 and c1 > c0:
        canvas[r0:r1, c0:c1] = cov[r0 - row : r1 - row, c0 - col : c1 - col]
    alpha = signed_distance_alpha(canvas, s)
    return Glyph(o.codepoint, alpha.tobytes(), width, height, xmin, ymax - o.ascender, o.advance)


# --- the on-disk store -----------------------------------------------------------------------


class GlyphStore:
    """Glyph ranges rendered lazily and cached under ``cache_dir``; safe to share across threads.

    FreeType faces are not thread-safe, so each stack's face is used under its own lock; only the
    FreeType calls hold it, the distance fields are computed outside.
    """

    def __init__(self, cache_dir: Path, fonts: Mapping[str, FontSource] | None = None) -> None:
        self.cache_dir = Path(cache_dir) / f"v{FORMAT_VERSION}"
        self.fonts = dict(FONT_STACKS if fonts is None else fonts)
        self._faces: dict[str, tuple[freetype.Face, threading.Lock]] = {}
        self._guard = threading.Lock()
        self._range_locks: dict[tuple[str, int], threading.Lock] = {}

    @property
    def stacks(self) -> list[str]:
        return list(self.fonts)

    def resolve(self, fontstack: str) -> str:
        return resolve_stack(fontstack, self.fonts)

    def path_for(self, stack: str, start: int) -> Path:
        return self.cache_dir / stack / f"{start}-{start + RANGE_SIZE - 1}.pbf"

    def _face(self, stack: str) -> tuple[freetype.Face, threading.Lock]:
        with self._guard:
            if stack not in self._faces:
                path, index = _locate_face(self.fonts[stack])
                self._faces[stack] = (freetype.Face(path, index), threading.Lock())
            return self._faces[stack]

    def _range_lock(self, stack: str, start: int) -> threading.Lock:
        with self._guard:
            return self._range_locks.setdefault((stack, start), threading.Lock())

    def render(self, stack: str, start: int) -> bytes:
        """Render one range (no cache)."""
        face, lock = self._face(stack)
        glyphs: list[Glyph] = []
        for codepoint in range(start, start + RANGE_SIZE):
            with lock:
                outline = _load_outline(face, codepoint)
            if outline is not None:
                glyphs.append(outline_to_glyph(outline))
        return encode_range(stack, start, start + RANGE_SIZE - 1, glyphs)

    def get(self, fontstack: str, glyph_range: str) -> bytes:
        """The PBF for ``fontstack`` (may be ``"A,B"``) and ``"start-end"``; built on first use."""
        start, _ = parse_range(glyph_range)
        stack = self.resolve(fontstack)
        return self.get_range(stack, start)

    def get_range(self, stack: str, start: int) -> bytes:
        path = self.path_for(stack, start)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        with self._range_lock(stack, start):  # one thread renders, the others wait for its file
            try:
                return path.read_bytes()
            except FileNotFoundError:
                data = self.render(stack, start)
                atomic_write(path, data)
                log.info("rendered glyphs %s %s (%d bytes)", stack, path.name, len(data))
                return data

    def prebuild(
        self,
        stacks: Sequence[str] | None = None,
        starts: Sequence[int] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Render the given ranges (default: the CJK ranges of every stack) ahead of time.

        ``progress(done, total)`` is called after each range; returns how many were rendered.
        """
        stacks = list(stacks) if stacks is not None else self.stacks
        starts = list(starts) if starts is not None else default_ranges()
        for stack in stacks:
            if stack not in self.fonts:
                raise FontstackNotFound(message="未知字体 / unknown font stack")
        total, done, rendered = len(stacks) * len(starts), 0, 0
        for stack in stacks:
            for start in starts:
                if start % RANGE_SIZE:
                    raise InvalidGlyphRange(message=f"range start {start} is not a multiple of 256")
                if not self.path_for(stack, start).is_file():
                    self.get_range(stack, start)
                    rendered += 1
                done += 1
                if progress is not None:
                    progress(done, total)
        return rendered


def default_ranges() -> list[int]:
    """Range starts a Chinese map uses: U+0000-U+9FFF (Latin to CJK) and the full-width forms."""
    return [*range(0, 0xA000, RANGE_SIZE), 0xFF00]


@lru_cache(maxsize=8)
def glyph_store(cache_dir: Path) -> GlyphStore:
    """One shared store per cache folder (its locks and open faces are per process)."""
    return GlyphStore(cache_dir)


def prebuild_label_ranges(conn: Any, store: GlyphStore, stack: str) -> int:
    """Render, ahead of the first map view, the glyph ranges of every label text the district
    uses (compound and building names, 坐落) plus Basic Latin; returns how many were rendered.
    A cold CJK range costs about a second, and a first view asks for dozens of them."""
    text = conn.execute(
        "SELECT string_agg(DISTINCT x, '') FROM (SELECT compound_name x FROM cad.parcel "
        "UNION SELECT name FROM cad.building UNION SELECT seat FROM cad.parcel) s"
    ).fetchone()[0] or ""
    starts = sorted({ord(c) // RANGE_SIZE * RANGE_SIZE for c in text} | {0})
    return store.prebuild([store.resolve(stack)], starts)

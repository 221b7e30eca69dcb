"""The CJK face documents are set in: Noto Sans CJK SC, cut down once to the characters they use.

WeasyPrint embeds a subset of every face a document uses, and subsetting the full Noto Sans CJK
collection (65,535 glyphs) costs about 25 ms per face and document: half the time of a one-page
certificate. Cut down once to GB 2312 (the 6,763 common hanzi and its symbols), Latin-1 and the
CJK and full-width punctuation, a face is subset about three times faster. A character outside
it (a rare character in a name) is still printed: the style sheet lists the full system face
after this one and Pango falls back to it character by character.

The reduced faces are built with fontTools on first use (a few seconds per weight) into
``<data dir>/cache/fonts``, named after the source file's size and mtime and ``SPEC``, so a
changed system font or character set builds new ones. Builders in parallel processes wait for
each other (a lock file) and publish atomically.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SOURCE_DIR = Path("/usr/share/fonts/opentype/noto")
SOURCES = {400: SOURCE_DIR / "NotoSansCJK-Regular.ttc", 700: SOURCE_DIR / "NotoSansCJK-Bold.ttc"}
SC_FACE = 2          # index of "Noto Sans CJK SC" in the collections
SPEC = "gb2312+latin1+punct/v1"


def _characters() -> list[int]:
    chars = set(range(0x20, 0x7F)) | set(range(0xA0, 0x100))
    chars |= set(range(0x2000, 0x2070)) | set(range(0x2100, 0x2200))   # punctuation, ², №, ℃
    chars |= set(range(0x2460, 0x2500))                                  # ①, ⑴ ...
    chars |= set(range(0x3000, 0x3040)) | set(range(0xFF00, 0xFFF0))    # CJK and full width
    for high in range(0xA1, 0xF8):                                       # GB 2312
        for low in range(0xA1, 0xFF):
            try:
                chars.add(ord(bytes((high, low)).decode("gb2312")))
            except UnicodeDecodeError:
                continue
    return sorted(chars)


def _name(source: Path) -> str:
    st = source.stat()
    key = f"{source.name}|{st.st_size}|{int(st.st_mtime)}|{SPEC}".encode()
    return f"{source.stem}-SC-{hashlib.sha256(key).hexdigest()[:12]}.otf"


def _build(source: Path, target: Path) -> None:
    from fontTools import subset
    from fontTools.ttLib import TTFont

    font = TTFont(source, fontNumber=SC_FACE, lazy=True, recalcBBoxes=False,
                  recalcTimestamp=False)
    options = subset.Options()
    options.layout_features = []          # no shaping features are needed for Han and Latin
    options.layout_closure = False
    options.hinting = True                # keeping hints is cheaper than removing them
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.drop_tables += ["GSUB", "GPOS", "BASE", "VORG", "vhea", "vmtx"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=_characters())
    subsetter.subset(font)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    font.save(tmp)
    os.replace(tmp, target)


def document_faces(cache_dir: Path | None = None) -> list[tuple[Path, int]]:
    """(font file, weight) of the reduced faces, built when missing; [] when the system font is
    not installed (the style sheet then names the system family only)."""
    if cache_dir is None:
        from cadastre.settings import get_settings

        cache_dir = get_settings().data_dir / "cache" / "fonts"
    faces: list[tuple[Path, int]] = []
    for weight, source in SOURCES.items():
        if not source.is_file():
            continue
        target = cache_dir / _name(source)
        if not target.is_file():
            cache_dir.mkdir(parents=True, exist_ok=True)
            with open(cache_dir / ".lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if not target.is_file():
                    log.info("building the document font %s (once)", target.name)
                    _build(source, target)
        faces.append((target, weight))
    return faces


_outline_lock = threading.Lock()


@lru_cache(maxsize=4)
def _outlines(path: Path, number: int) -> Any:
    from fontTools.ttLib import TTFont

    return TTFont(path, fontNumber=number, lazy=True)


def glyph_outline(char: str, weight: int = 400) -> tuple[str, float]:
    """SVG path data of ``char`` in the document face, in ems (y up, the baseline at 0), and its
    advance in ems: to draw text as shapes, with no font to embed. From the full system face
    when the reduced one lacks the character; ("", 1.0) when neither has it."""
    from fontTools.pens.svgPathPen import SVGPathPen
    from fontTools.pens.transformPen import TransformPen

    faces = [(path, 0) for path, w in document_faces() if w == weight]
    if weight in SOURCES and SOURCES[weight].is_file():
        faces.append((SOURCES[weight], SC_FACE))
    with _outline_lock:         # a lazily loaded font is not for threads at once
        for path, number in faces:
            font = _outlines(path, number)
            name = font.getBestCmap().get(ord(char))
            if name is None:
                continue
            glyphs = font.getGlyphSet()
            em = font["head"].unitsPerEm
            pen = SVGPathPen(glyphs, ntos=lambda v: f"{v:.4g}")
            glyphs[name].draw(TransformPen(pen, (1 / em, 0, 0, 1 / em, 0, 0)))
            return pen.getCommands(), glyphs[name].width / em
    return "", 1.0

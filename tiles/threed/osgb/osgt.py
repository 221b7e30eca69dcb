"""Run ``osgconv`` and read the scene structure from its ASCII output (.osgt): the reference
path (``--decoder osgconv``) and the fallback for files the native decoder refuses.

Why osgt, and not .obj, for geometry: ``osgconv x.osgb x.osgt`` decodes every OSG class and
version (PagedLOD ranges and child file names, Geode/Geometry, StateSet, Texture2D/Image), but
prints floats with 6 significant digits (1211.76: ±5 mm at 1 km from the SRS origin, ±5 cm at
10 km), which cannot meet a 0.05 m target in large productions. ``osgconv x.osgb x.obj`` prints
exact floats but drops the PagedLOD structure, and costs a second conversion plus a text file
2–3 times the binary. So the structure, counts and rounded values come from the osgt, and the
exact arrays are then read from the .osgb itself (``binary.py``): OSG writes every array as a
uint32 count followed by the raw little-endian elements, in the same order as the osgt; each
array is located by its count after the previous one and accepted only if its first and last
elements agree with the osgt's rounded values. Images are written ``UseExternal`` so the osgt
carries only their names (not base64 pixels), and their bytes are cut from the .osgb
(length-prefixed JPEG/PNG, never re-encoded).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from tiles.threed.errors import OsgbUnreadable, ToolMissing

OSGCONV_TIMEOUT = 300
_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')
_MISSING_IMAGE = re.compile(r"readImage\(\): file not found, filename: (.+?)\s*$", re.MULTILINE)
_FAIL_MARKERS = (b"checkStream", b"Error reading file", b"failed to load", b"read error")


def osgconv_path() -> str:
    exe = shutil.which("osgconv")
    if exe is None:
        raise ToolMissing(
            message="未找到 osgconv（apt-get install openscenegraph）/ osgconv not "
            "found: install Debian's openscenegraph package"
        )
    return exe


def run_osgconv(
    src: Path | list[Path],
    dst: Path,
    options: str | None = "WriteImageHint=UseExternal",
    timeout: int = OSGCONV_TIMEOUT,
) -> list[str]:
    """``osgconv [-O options] src… dst``; :class:`OsgbUnreadable` naming ``src`` on any
    failure (osgconv segfaults or prints stream errors on truncated files). Returns the names
    of external images osgconv could not find (it silently drops them from the scene).
    Several sources are read into one Group (one child per file, in order); the optimizer is
    off (``OSG_OPTIMIZER=OFF``) so nothing is merged or shared across them."""
    sources = src if isinstance(src, list) else [src]
    src = sources[0]
    cmd = [osgconv_path()]
    if options:
        cmd += ["-O", options]
    cmd += [str(s) for s in sources] + [str(dst)]
    env = {**os.environ, "OSG_OPTIMIZER": "OFF"}
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout, cwd=src.parent, env=env)
    except subprocess.TimeoutExpired as exc:
        raise OsgbUnreadable(message=f"osgconv 超时 / osgconv timed out on {src}") from exc
    err = proc.stderr or b""
    failed = proc.returncode != 0 or not dst.is_file() or any(m in err for m in _FAIL_MARKERS)
    if failed:
        tail = err.decode("utf-8", "replace").strip().splitlines()[-2:]
        reason = f"exit {proc.returncode}" if proc.returncode else "; ".join(tail)[:200]
        if proc.returncode < 0 or proc.returncode == 139:
            reason = f"osgconv crashed (signal {-proc.returncode if proc.returncode < 0 else 11})"
        raise OsgbUnreadable(
            message=f"无法读取（文件截断或损坏？）/ cannot read (truncated or "
            f"corrupt?) {src}: {reason}"
        )
    text = err.decode("utf-8", "replace")
    return _MISSING_IMAGE.findall(text)


class OsgNode:
    """A line of the osgt: ``name args…`` with an optional ``{ … }`` block.
    Numeric ``vector N { … }`` blocks keep their raw lines in ``data``."""

    __slots__ = ("name", "args", "children", "data")

    def __init__(self, name: str, args: list[str]) -> None:
        self.name = name
        self.args = args
        self.children: list[OsgNode] = []
        self.data: str | None = None

    def child(self, name: str) -> OsgNode | None:
        for c in self.children:
            if c.name == name:
                return c
        return None

    def value(self, name: str) -> list[str] | None:
        c = self.child(name)
        return c.args if c is not None else None

    def objects(self) -> list[OsgNode]:
        """Object children (``osg::X { … }``) of a property block."""
        return [c for c in self.children if "::" in c.name]

    def __repr__(self) -> str:
        return f"OsgNode({self.name!r}, {self.args!r}, {len(self.children)} children)"


def _tokens(line: str) -> list[str]:
    if '"' not in line:
        return line.split()
    return [m.group(1) if m.group(1) is not None else m.group(2) for m in _TOKEN.finditer(line)]


def parse_osgt(text: str) -> OsgNode:
    """Parse osgt text. Numeric blocks are jumped over with one ``find("}")`` (numbers never
    contain a brace) and kept as a raw string."""
    root = OsgNode("", [])
    stack = [root]
    pos, n = 0, len(text)
    while pos < n:
        end = text.find("\n", pos)
        if end < 0:
            end = n
        s = text[pos:end].strip()
        pos = end + 1
        if not s or s[0] == "#":
            continue
        if s == "}":
            if len(stack) > 1:
                stack.pop()
            continue
        if s.endswith("{"):
            toks = _tokens(s[:-1])
            node = OsgNode(toks[0] if toks else "", toks[1:])
            stack[-1].children.append(node)
            if (
                node.name in ("vector", "Data")
                and toks[1:2]
                and toks[1].isdigit()
                and stack[-1].name not in ("TextureAttributeList", "TextureModeList")
            ):
                close = text.find("}", pos)
                if close < 0:
                    close = n
                node.data = text[pos:close]
                nl = text.find("\n", close)
                pos = n if nl < 0 else nl + 1
                continue
            stack.append(node)
        else:
            toks = _tokens(s)
            if toks:
                stack[-1].children.append(OsgNode(toks[0], toks[1:]))
    return root


def read_structure(src: Path, work_dir: Path) -> tuple[OsgNode, list[str]]:
    """osgconv ``src`` to osgt in ``work_dir`` and parse it (the osgt is deleted); also the
    external images that could not be found."""
    dst = work_dir / (src.stem + ".osgt")
    missing = run_osgconv(src, dst)
    try:
        return parse_osgt(dst.read_text(encoding="utf-8", errors="replace")), missing
    finally:
        dst.unlink(missing_ok=True)

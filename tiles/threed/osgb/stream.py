"""The OpenSceneGraph binary stream (``.osgb``, osgDB "osg2" format): header and primitives.

No maintained Python or npm reader of this format exists (PyPI's ``openscenegraph`` 0.1 is an
sdist needing a C++20 build of OSG and wraps only the GL3 core; ``osgb23dtiles`` is a converter
shipping a prebuilt C++ library, not a reader), so this module follows osgDB 3.6.5
(``InputStream.cpp``, ``BinaryStreamOperator.h``) for the stream layer:

* header: magic ``0x6C910EA1 0x1AFB4545``, ``uint32`` type, file version (the SOVERSION of the
  writer, e.g. 80 for ContextCapture's OSG 3.0, 161 for OSG 3.6.5) and attributes
  (``0x1`` custom domains follow, ``0x2`` schema data, ``0x4`` "robust" binary brackets);
* then a compressor name (``"0"`` none, ``"zlib"``, ``"null"``) and, if compressed, the rest of
  the stream compressed;
* strings are ``int32`` length + bytes; bools one byte; GLenums ``uint32``;
* with brackets, every ``{`` is a block size (``int32``, ``int64`` after version 148) counted
  from the size field, which lets a reader jump to the end of an object.

What this layer cannot read raises :class:`OsgbUnsupported`, and the caller falls back to
``osgconv`` for that file.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
from numpy.typing import NDArray

MAGIC = struct.pack("<II", 0x6C910EA1, 0x1AFB4545)
_I32, _U32, _F32, _F64 = (
    struct.Struct("<i"),
    struct.Struct("<I"),
    struct.Struct("<f"),
    struct.Struct("<d"),
)
_U64 = struct.Struct("<Q")


class OsgbUnsupported(Exception):
    """The file uses something the native reader does not decode (class, compressor, schema)."""


class OsgbStream:
    """A cursor over the decompressed object stream of one .osgb."""

    def __init__(self, data: bytes) -> None:
        if len(data) < 24 or data[:8] != MAGIC:
            raise OsgbUnsupported("not a little-endian OSG binary stream")
        self.buf = memoryview(data)
        self.pos = 8
        self.type = self.u32()
        self.version = self.u32()
        attributes = self.u32()
        self.brackets = bool(attributes & 0x4)
        if attributes & 0x2:
            raise OsgbUnsupported("schema data")
        self.domains: dict[str, int] = {}
        if attributes & 0x1:
            for _ in range(self.u32()):
                name = self.string()
                self.domains[name] = self.i32()
        compressor = self.string()
        if compressor == "zlib":
            rest = zlib.decompress(bytes(self.buf[self.pos :]), 47)  # gzip or zlib header
            self.buf, self.pos = memoryview(rest), 0
        elif compressor == "null":
            size = self.i32()
            self.buf, self.pos = self.buf[self.pos : self.pos + size], 0
        elif compressor != "0":
            raise OsgbUnsupported(f"compressor {compressor!r}")
        self._blocks: list[tuple[int, int]] = []

    # ---------------------------------------------------------------- primitives
    def _take(self, n: int) -> int:
        p = self.pos
        if p + n > len(self.buf):
            raise OsgbUnsupported("truncated stream")
        self.pos = p + n
        return p

    def i32(self) -> int:
        return int(_I32.unpack_from(self.buf, self._take(4))[0])

    def u32(self) -> int:
        return int(_U32.unpack_from(self.buf, self._take(4))[0])

    def f32(self) -> float:
        return float(_F32.unpack_from(self.buf, self._take(4))[0])

    def f64(self) -> float:
        return float(_F64.unpack_from(self.buf, self._take(8))[0])

    def bool(self) -> bool:
        return self.buf[self._take(1)] != 0

    def u8(self) -> int:
        return int(self.buf[self._take(1)])

    def string(self) -> str:
        n = self.i32()
        if n < 0:
            raise OsgbUnsupported("negative string size")
        p = self._take(n)
        return bytes(self.buf[p : p + n]).decode("utf-8", "replace")

    def raw(self, n: int) -> bytes:
        p = self._take(n)
        return bytes(self.buf[p : p + n])

    def doubles(self, n: int) -> tuple[float, ...]:
        p = self._take(8 * n)
        return struct.unpack_from(f"<{n}d", self.buf, p)

    def floats(self, n: int) -> tuple[float, ...]:
        p = self._take(4 * n)
        return struct.unpack_from(f"<{n}f", self.buf, p)

    def array(self, count: int, dtype: str, ncomp: int) -> NDArray[np.generic]:
        """``count`` elements of ``ncomp`` × ``dtype``, exact (a view on the file bytes)."""
        size = np.dtype(dtype).itemsize * ncomp * count
        p = self._take(size)
        arr = np.frombuffer(self.buf, dtype, count=ncomp * count, offset=p)
        return arr.reshape(count, ncomp) if ncomp > 1 else arr

    # ---------------------------------------------------------------- brackets
    def begin(self) -> None:
        if not self.brackets:
            return
        start = self.pos
        if self.version > 148:
            size = int(_U64.unpack_from(self.buf, self._take(8))[0])
        else:
            size = self.i32()
        self._blocks.append((start, size))

    def end(self) -> None:
        if self.brackets and self._blocks:
            self._blocks.pop()

    def skip_block(self) -> None:
        """``advanceToCurrentEndBracket``: jump to the end of the innermost open block."""
        if self.brackets and self._blocks:
            start, size = self._blocks.pop()
            if start + size > len(self.buf) or size < 0:
                raise OsgbUnsupported("bad block size")
            self.pos = start + size

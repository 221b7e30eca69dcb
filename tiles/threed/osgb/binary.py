"""Exact arrays and embedded images cut from the .osgb bytes, guided by the osgt.

See ``osgt.py`` for why: the osgt gives structure and 6-digit values, the binary the exact bits.
An array is ``uint32 count`` + raw little-endian elements; it is searched after the previous one
(serialisation order) and accepted only if its first and last elements match the osgt's. An
image written ``IncludeFile`` is ``uint32 len, name, int32 hint, int32 decision (1), uint32 size``
+ the original file bytes (JPEG/PNG).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

JPEG, PNG = b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"
INCLUDE_DATA, INCLUDE_FILE, USE_EXTERNAL = 0, 1, 2


def _close(a: NDArray[np.float64], b: NDArray[np.float64]) -> bool:
    return bool(np.allclose(a, b, rtol=2e-5, atol=2e-5))


@dataclass
class EmbeddedImage:
    decision: int
    data: bytes | None  # file bytes when IncludeFile, else None

    @property
    def mime(self) -> str | None:
        if self.data is None:
            return None
        if self.data.startswith(JPEG):
            return "image/jpeg"
        if self.data.startswith(PNG):
            return "image/png"
        return None


class OsgbBytes:
    """The .osgb content with a forward cursor for arrays and one for images."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.cursor = 0
        self.image_cursor = 0

    def array(
        self,
        count: int,
        dtype: str,
        ncomp: int,
        first: NDArray[np.float64],
        last: NDArray[np.float64],
    ) -> NDArray[np.generic] | None:
        """The array of ``count`` elements (``ncomp`` × ``dtype`` each) whose first/last
        elements match; ``None`` if not found (e.g. a compressed .osgb)."""
        size = np.dtype(dtype).itemsize * ncomp * count
        key = struct.pack("<I", count)
        pos = self.cursor
        data = self.data
        while True:
            pos = data.find(key, pos)
            if pos < 0 or pos + 4 + size > len(data):
                return None
            start = pos + 4
            head = np.frombuffer(data, dtype, count=ncomp, offset=start).astype(np.float64)
            if _close(head, first):
                tail = np.frombuffer(
                    data, dtype, count=ncomp, offset=start + size - ncomp * np.dtype(dtype).itemsize
                )
                if _close(tail.astype(np.float64), last):
                    self.cursor = start + size
                    arr = np.frombuffer(data, dtype, count=ncomp * count, offset=start)
                    return arr.reshape(count, ncomp) if ncomp > 1 else arr
            pos += 1

    def image(self, name: str) -> EmbeddedImage | None:
        """The image record written after ``name``; ``None`` if the name is not in the file."""
        raw = name.encode("utf-8")
        key = struct.pack("<I", len(raw)) + raw
        pos = self.data.find(key, self.image_cursor)
        if pos < 0:
            pos = self.data.find(key)
            if pos < 0:
                return None
        p = pos + len(key)
        if p + 8 > len(self.data):
            return None
        _hint, decision = struct.unpack_from("<ii", self.data, p)
        p += 8
        self.image_cursor = p
        if decision != INCLUDE_FILE:
            return EmbeddedImage(decision, None)
        (size,) = struct.unpack_from("<I", self.data, p)
        if p + 4 + size > len(self.data):
            return EmbeddedImage(decision, None)
        self.image_cursor = p + 4 + size
        return EmbeddedImage(decision, self.data[p + 4 : p + 4 + size])

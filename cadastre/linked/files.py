"""What the file of a filed document may be: a PDF without active content, a PNG or a JPEG.

The type is read from the bytes and the file is parsed with the library for its format (pypdf,
Pillow), never trusted from its name or the declared content type. A PDF is refused when any
object reachable from its trailer carries JavaScript (``/JS``, ``/JavaScript`` actions, in the
names tree, ``/OpenAction``, ``/AA`` or annotations), a launch action, rich media or an XFA form;
an encrypted PDF is refused because it cannot be inspected. Every refusal has its own code and
nothing is stored (the caller checks before it stores).
"""

from __future__ import annotations

import warnings
from typing import BinaryIO

from PIL import Image
from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject

from cadastre.errors import InvalidInput

PDF, PNG, JPEG = "application/pdf", "image/png", "image/jpeg"
_MAGIC = ((b"%PDF-", PDF), (b"\x89PNG\r\n\x1a\n", PNG), (b"\xff\xd8\xff", JPEG))
_PIL_FORMAT = {PNG: "PNG", JPEG: "JPEG"}
# keys and action types that make a PDF run something when it is opened or clicked
_ACTIVE_KEYS = frozenset({"/JS", "/JavaScript", "/RichMedia", "/XFA"})
_ACTIVE_ACTIONS = frozenset({"/JavaScript", "/Launch", "/RichMediaExecute", "/ImportData"})
MAX_PDF_OBJECTS = 500_000


class FileRefused(InvalidInput):
    """The uploaded file is not a document we keep."""

    code = "FILE_REFUSED"



def size_of(stream: BinaryIO) -> int:
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(0)
    return size


def inspect(stream: BinaryIO, max_bytes: int) -> str:
    """The media type of the document in ``stream`` (seekable), or a refusal: empty, too large,
    not a PDF/PNG/JPEG, damaged, encrypted, or a PDF with active content."""
    size = size_of(stream)
    if size == 0:
        raise FileRefused("FILE_EMPTY", "文件为空 / the file is empty")
    if size > max_bytes:
        raise FileRefused("FILE_TOO_LARGE", f"文件超过 {max_bytes // 2**20} MB / "
                          f"file larger than {max_bytes // 2**20} MB")
    head = stream.read(16)
    stream.seek(0)
    media = next((m for magic, m in _MAGIC if head.startswith(magic)), None)
    if media is None:
        raise FileRefused("FILE_TYPE_UNSUPPORTED", "只接受 PDF、PNG 或 JPEG 文件 / "
                          "only PDF, PNG and JPEG files are accepted")
    try:
        if media == PDF:
            _check_pdf(stream)
        else:
            _check_image(stream, _PIL_FORMAT[media])
    finally:
        stream.seek(0)
    return media


def _damaged() -> FileRefused:
    return FileRefused("FILE_DAMAGED", "文件已损坏或格式不符 / the file is damaged or not what it "
                   "claims to be")


def _check_pdf(stream: BinaryIO) -> None:
    try:
        reader = PdfReader(stream, strict=False)
        if reader.is_encrypted:
            raise FileRefused("FILE_ENCRYPTED", "不接受加密的 PDF（无法检查其内容） / "
                              "encrypted PDFs are refused (their content cannot be checked)")
        if len(reader.pages) < 1:
            raise _damaged()
        if has_active_content(reader):
            raise FileRefused("FILE_ACTIVE_CONTENT", "PDF 含有 JavaScript 或其他可执行内容 / "
                              "the PDF carries JavaScript or other active content")
    except FileRefused:
        raise
    except Exception:         # a parser fed hostile bytes may fail in any way: not kept
        raise _damaged() from None


def has_active_content(reader: PdfReader) -> bool:
    """Whether any object reachable from the trailer is JavaScript, a launch action, rich media
    or an XFA form (names are compared decoded, so ``/Java#53cript`` is caught too)."""
    seen: set[tuple[int, int]] = set()
    stack: list[object] = [reader.trailer]
    visited = 0
    while stack:
        node = stack.pop()
        if isinstance(node, IndirectObject):
            ref = (node.idnum, node.generation)
            if ref in seen:
                continue
            seen.add(ref)
            node = node.get_object()
        visited += 1
        if visited > MAX_PDF_OBJECTS:
            raise _damaged()
        if isinstance(node, DictionaryObject):
            for key, value in node.items():
                if key in _ACTIVE_KEYS:
                    return True
                if key == "/S" and isinstance(value, NameObject) and value in _ACTIVE_ACTIONS:
                    return True
                stack.append(value)
        elif isinstance(node, ArrayObject):
            stack.extend(node)
    return False


def _check_image(stream: BinaryIO, expected: str) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(stream) as img:
                if img.format != expected:
                    raise _damaged()
                img.verify()
    except FileRefused:
        raise
    except Exception:         # UnidentifiedImageError, decompression bombs, truncated data …
        raise _damaged() from None

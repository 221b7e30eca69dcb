"""Streamed, safe reading of exchange XML messages (``<Message><Head/><Data/></Message>``).

- lxml's ``iterparse`` with entity resolution, DTD loading and network access off; a document
  that declares a DOCTYPE at all (the carrier of entity bombs and external entities) is refused;
- bounded memory: each row element is cleared once read, so a file of millions of rows is read
  in constant space;
- the encoding comes from the XML declaration (UTF-8 and GBK/GB18030 both occur in practice);
- a file is one message, a batch root holding several ``Message`` elements, or a zip of such
  files (members read in name order, decompressed size capped).

Rows are yielded as ``Row(msg, table, attrs, line)``; heads as ``Head(msg, fields)``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from lxml import etree

from cadastre.errors import InvalidInput

MAX_ZIP_MEMBERS = 2_000_000
MAX_DECOMPRESSED = 20 * 1024**3          # bytes read from a zip in total
MAX_RATIO = 200                          # decompressed / compressed per member


class ExchangeFormatError(InvalidInput):
    """The upload cannot be read as exchange messages (nothing is staged)."""

    code = "EXCHANGE_FORMAT"


@dataclass(frozen=True)
class Head:
    msg: int
    fields: dict[str, str]


@dataclass(frozen=True)
class Row:
    msg: int
    table: str
    attrs: dict[str, str]
    line: int


class _Counting:
    """A file wrapper that counts the bytes read (zip bomb cap)."""

    def __init__(self, fh: IO[bytes], cap: int) -> None:
        self.fh, self.cap, self.read_bytes = fh, cap, 0
        self.eof = False

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.read_bytes += len(data)
        if not data:
            self.eof = True
        if self.read_bytes > self.cap:
            raise ExchangeFormatError("ARCHIVE_TOO_LARGE", "压缩包解压后过大 / "
                                      "the archive expands too much")
        return data


def read_file(path: Path) -> Iterator[Head | Row]:
    """Every head and row of the messages in ``path`` (an .xml file or a zip of them)."""
    if zipfile.is_zipfile(path):
        yield from _read_zip(path)
        return
    with path.open("rb") as fh:
        yield from _read_stream(_Counting(fh, 1 << 62), path.name, 0)


def _read_zip(path: Path) -> Iterator[Head | Row]:
    with zipfile.ZipFile(path) as zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if len(infos) > MAX_ZIP_MEMBERS:
            raise ExchangeFormatError("ARCHIVE_TOO_MANY_FILES", "压缩包文件过多 / "
                                      "too many files in the archive")
        xml = sorted((i for i in infos if i.filename.lower().endswith(".xml")),
                     key=lambda i: i.filename)
        if not xml:
            raise ExchangeFormatError("EXCHANGE_EMPTY", "压缩包中没有 XML 报文 / "
                                      "no XML message in the archive")
        total, msg = 0, 0
        for info in xml:
            if info.file_size > max(info.compress_size, 1) * MAX_RATIO and \
                    info.file_size > 1 << 20:
                raise ExchangeFormatError("ARCHIVE_BOMB", "压缩比异常（疑似压缩炸弹） / "
                                          "suspicious compression ratio (zip bomb)")
            with zf.open(info) as fh:
                counting = _Counting(fh, MAX_DECOMPRESSED - total)
                last = msg
                for item in _read_stream(counting, Path(info.filename).name, msg):
                    last = item.msg
                    yield item
                msg = last + 1
                total += counting.read_bytes


CHUNK = 1 << 16


def _events(fh: _Counting, name: str) -> Iterator[tuple[str, etree._Element]]:
    """Parse events, fed in chunks: an error raised only when the input ends (at ``close``)
    means the document was cut off; one raised while feeding means it is malformed."""
    parser = etree.XMLPullParser(events=("start", "end"), resolve_entities=False,
                                 load_dtd=False, no_network=True, huge_tree=False,
                                 remove_comments=True, remove_pis=True)
    while True:
        data = fh.read(CHUNK)
        if not data:
            break
        try:
            parser.feed(data)
        except etree.XMLSyntaxError as exc:
            raise _syntax(exc, name, truncated=False) from None
        yield from parser.read_events()
    try:
        parser.close()
    except etree.XMLSyntaxError as exc:
        raise _syntax(exc, name, truncated=True) from None
    yield from parser.read_events()


def _read_stream(fh: _Counting, name: str, first_msg: int) -> Iterator[Head | Row]:
    depth, msg, root_tag, in_head, in_data = 0, first_msg - 1, None, False, False
    head: dict[str, str] = {}
    for event, elem in _events(fh, name):
        tag = elem.tag if isinstance(elem.tag, str) else ""
        if event == "start":
            depth += 1
            if depth == 1:
                if elem.getroottree().docinfo.doctype:
                    raise ExchangeFormatError(
                        "XML_DTD_FORBIDDEN", "报文不得包含 DTD 或实体声明 / "
                        "a message must not declare a DTD or entities", file=name)
                root_tag = tag
                if tag == "Message":
                    msg += 1
                elif tag not in ("Messages", "Batch"):
                    raise ExchangeFormatError("EXCHANGE_NOT_MESSAGE", "根元素不是 Message / "
                                              "the root element is not a Message", file=name)
            elif tag == "Message" and depth == 2 and root_tag != "Message":
                msg += 1
            elif tag == "Head":
                in_head, head = True, {}
            elif tag == "Data":
                in_data = True
            continue
        depth -= 1
        if in_head and tag != "Head":
            head[tag] = (elem.text or "").strip()
        elif tag == "Head":
            in_head = False
            yield Head(msg, head)
        elif in_data and tag != "Data":
            yield Row(msg, tag, {k.upper(): v for k, v in elem.attrib.items()},
                      elem.sourceline or 0)
        elif tag == "Data":
            in_data = False
        elem.clear(keep_tail=False)
        parent = elem.getparent()
        if parent is not None and not in_head:
            while elem.getprevious() is not None:
                del parent[0]
    if root_tag is None:
        raise ExchangeFormatError("EXCHANGE_EMPTY", "文件中没有报文 / "
                                  "the file holds no message", file=name)


def _syntax(exc: etree.XMLSyntaxError, name: str, truncated: bool) -> ExchangeFormatError:
    text = str(exc.msg or "").lower()
    line = exc.position[0] if exc.position else 0
    if "entity" in text or "doctype" in text:
        return ExchangeFormatError("XML_DTD_FORBIDDEN", "报文不得包含 DTD 或实体声明 / "
                                   "a message must not declare a DTD or entities",
                                   file=name, line=line)
    if truncated:
        return ExchangeFormatError("XML_TRUNCATED", "报文不完整（文件被截断） / "
                                   "the message is truncated", file=name, line=line)
    if "encoding" in text or "codec" in text or "utf-8" in text:
        return ExchangeFormatError(
            "XML_ENCODING", "报文编码无法识别（应为 UTF-8 或 GBK 并在声明中注明） / "
            "unreadable encoding (UTF-8, or GBK declared in the XML declaration)",
            file=name, line=line)
    return ExchangeFormatError("XML_MALFORMED", "报文不是格式正确的 XML / "
                               "the message is not well-formed XML", file=name, line=line)

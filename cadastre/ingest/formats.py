"""Format-specific preparation for the OGR reader: Shapefile sets and their encoding, and
cheap structural checks that tell a truncated GeoPackage/FlatGeobuf/GeoJSON from a damaged one.
"""

from __future__ import annotations

import codecs
import struct
from pathlib import Path

from cadastre.ingest.model import SurveyFormatError
from cadastre.ingest.ogr import OgrLayer

__all__ = [
    "shapefile_layers",
    "shapefile_encoding",
    "check_gpkg",
    "check_geojson_complete",
    "check_fgb_header",
]

_SHP_PARTS = (".shp", ".shx", ".dbf")
_CPG_ALIASES = {
    "UTF-8": "utf-8",
    "UTF8": "utf-8",
    "65001": "utf-8",
    "GBK": "gb18030",
    "936": "gb18030",
    "CP936": "gb18030",
    "GB2312": "gb18030",
    "GB18030": "gb18030",
    "ANSI 936": "gb18030",
    "CP 936": "gb18030",
    "54936": "gb18030",
}
#: dBASE language driver ids (byte 29) meaning code page 936 (Simplified Chinese).
_LDID_GBK = {0x4D, 0x7A}


def truncated(what: str) -> SurveyFormatError:
    return SurveyFormatError(
        "FILE_TRUNCATED",
        f"{what}文件不完整（可能上传中断）",
        f"the {what} file is truncated (interrupted upload?)",
    )


def shapefile_encoding(shp: Path, cpg: Path | None, dbf: Path) -> str:
    """.cpg if present, else the DBF language driver, else UTF-8 if the records decode."""
    if cpg is not None:
        text = cpg.read_text("ascii", errors="ignore").strip().upper()
        if text in _CPG_ALIASES:
            return _CPG_ALIASES[text]
        try:
            return codecs.lookup(text.lower()).name
        except LookupError:
            pass
    data = dbf.read_bytes()
    if len(data) > 32 and data[29] in _LDID_GBK:
        return "gb18030"
    header_len = struct.unpack_from("<H", data, 8)[0] if len(data) > 10 else 0
    try:
        data[header_len:].decode("utf-8")
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


def shapefile_layers(files: list[tuple[str, Path]]) -> list[OgrLayer]:
    """Group extracted files into Shapefile sets; SHP_MISSING_PART if a part is absent."""
    by_stem: dict[str, dict[str, Path]] = {}
    for name, path in files:
        stem, dot, suffix = name.rpartition(".")
        if not dot:
            continue
        by_stem.setdefault(stem.lower(), {})["." + suffix.lower()] = path
    layers: list[OgrLayer] = []
    names = {n.rpartition(".")[0].lower(): n.rpartition(".")[0] for n, _ in files}
    for stem, parts in sorted(by_stem.items()):
        if not set(parts) & set(_SHP_PARTS):
            continue
        missing = [p for p in _SHP_PARTS if p not in parts]
        if missing:
            label = names[stem].rsplit("/", 1)[-1]
            raise SurveyFormatError(
                "SHP_MISSING_PART",
                f"Shapefile“{label}”缺少{'、'.join(missing)}文件（.shp/.shx/.dbf缺一不可）",
                f"Shapefile '{label}' lacks {', '.join(missing)} (.shp, .shx and .dbf are all "
                "required)",
                missing=missing,
            )
        label = names[stem].rsplit("/", 1)[-1]
        encoding = shapefile_encoding(parts[".shp"], parts.get(".cpg"), parts[".dbf"])
        layers.append(OgrLayer(parts[".shp"], None, label, encoding))
    return layers


def check_gpkg(path: Path) -> None:
    """SQLite header: the file must be a whole number of pages and hold every page."""
    with open(path, "rb") as fh:
        header = fh.read(100)
    size = path.stat().st_size
    if len(header) < 100:
        raise truncated("GeoPackage")
    page_size = struct.unpack_from(">H", header, 16)[0]
    page_size = 65536 if page_size == 1 else page_size
    page_count = struct.unpack_from(">I", header, 28)[0]
    change_counter = struct.unpack_from(">I", header, 24)[0]
    valid_for = struct.unpack_from(">I", header, 92)[0]
    if page_size < 512 or size % page_size:
        raise truncated("GeoPackage")
    if valid_for == change_counter and page_count and size < page_count * page_size:
        raise truncated("GeoPackage")


def check_geojson_complete(path: Path) -> None:
    """A GeoJSON document ends with '}' (a cut-off upload does not)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        fh.seek(max(0, size - 64))
        tail = fh.read().rstrip(b" \t\r\n\x00")
    if not tail.endswith(b"}"):
        raise truncated("GeoJSON")


def check_fgb_header(path: Path) -> int:
    """Size of the FlatGeobuf header; FILE_TRUNCATED if the file ends inside it."""
    with open(path, "rb") as fh:
        head = fh.read(12)
    if len(head) < 12:
        raise truncated("FlatGeobuf")
    header_size = struct.unpack_from("<I", head, 8)[0]
    if path.stat().st_size < 12 + header_size:
        raise truncated("FlatGeobuf")
    return header_size

"""Format detection by content (magic bytes and text sniffing), and text decoding.

The extension is only a hint: content decides.  A recognisable survey format under the wrong
extension is read anyway (the caller records EXTENSION_MISMATCH); a recognisable non-survey
format (an image, a PDF, a web page) is reported as FORMAT_MISMATCH when its extension claims a
survey format and FORMAT_UNSUPPORTED otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cadastre.ingest.model import SurveyFormatError

__all__ = ["Sniffed", "sniff", "decode_text", "SURVEY_EXTENSIONS", "TEXT_TABLE_FORMATS"]

#: Survey format -> the extensions it normally has.
SURVEY_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "cn_coord_txt": (".txt",),
    "csv_points": (".csv", ".txt", ".dat"),
    "zip": (".zip",),
    "shp": (".shp",),
    "gpkg": (".gpkg",),
    "geojson": (".geojson", ".json"),
    "flatgeobuf": (".fgb",),
    "dxf": (".dxf",),
    "ifc": (".ifc",),
}
TEXT_TABLE_FORMATS = frozenset({"cn_coord_txt", "csv_points"})
_ALL_SURVEY_EXTS = frozenset(e for exts in SURVEY_EXTENSIONS.values() for e in exts)

# (magic, offset, label) of common non-survey files people upload by mistake.
_FOREIGN_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (b"%PDF-", "PDF document"),
    (b"\x1f\x8b", "gzip archive"),
    (b"Rar!\x1a\x07", "RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
    (b"II*\x00", "TIFF image"),
    (b"MM\x00*", "TIFF image"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "MS Office 97-2003 document"),
)
_DWG = re.compile(rb"^AC10[0-9]{2}")
_TXT_MARKERS = ("[属性描述]", "[地块坐标]")
_TXT_MARKER_BYTES = tuple(
    m.encode(enc) for m in _TXT_MARKERS for enc in ("utf-8", "gb18030", "utf-16-le", "utf-16-be")
)
_DXF_TEXT = re.compile(rb"^\s*(?:999\s*\r?\n[^\n]*\n\s*)?0\s*\r?\n\s*SECTION\s*\r?\n", re.S)
_SECTION_LINE = re.compile(rb"^\s*\[[^\]\r\n]{2,40}\]\s*$", re.M)
_TXT_POINT_LINE = re.compile(rb"^\s*\w{0,6}\d+\s*,\s*\d+\s*,\s*-?[\d.]+\s*,\s*-?[\d.]+\s*$", re.M)
_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$|^\s*[-+]?(nan|inf)\s*$", re.I)
_CSV_HEADER_WORDS = re.compile(
    r"点号|界址点|纵坐标|横坐标|北坐标|东坐标|northing|easting|point|\bX\b|\bY\b", re.I
)


@dataclass(frozen=True)
class Sniffed:
    format: str  # one of SURVEY_EXTENSIONS
    extension: str  # lower-case, with dot ("" if none)
    extension_matches: bool


def _strip_bom(head: bytes) -> bytes:
    for bom in (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"):
        if head.startswith(bom):
            return head[len(bom) :]
    return head


def _foreign_label(head: bytes) -> str | None:
    for magic, label in _FOREIGN_MAGIC:
        if head.startswith(magic):
            return label
    lowered = head.lstrip()[:64].lower()
    if lowered.startswith((b"<!doctype html", b"<html")):
        return "HTML page"
    return None


def _looks_like_csv(head: bytes) -> bool:
    text = (
        head.decode("utf-8", errors="ignore")
        if _is_utf8(head)
        else head.decode("gb18030", errors="ignore")
    )
    lines = [ln for ln in text.splitlines() if ln.strip()][:20]
    if len(lines) < 2:
        return False
    numeric_rows = 0
    for line in lines:
        fields = re.split(r"[,;\t]|\s+", line.strip())
        if sum(1 for f in fields if _NUMBER.match(f)) >= 2 and len(fields) >= 3:
            numeric_rows += 1
    has_header = bool(_CSV_HEADER_WORDS.search(lines[0]))
    return numeric_rows >= 2 or (has_header and numeric_rows >= 1)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multi-byte sequence cut by the end of the sniffed head is still UTF-8
        return exc.start >= len(data) - 3 and exc.reason == "unexpected end of data"
    return True


def _content_format(head: bytes) -> str | None:
    """Survey format recognised from the first bytes, or None."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(b"SQLite format 3\x00"):
        return "gpkg"
    if head.startswith(b"fgb\x03"):
        return "flatgeobuf"
    if head.startswith(b"\x00\x00\x27\x0a"):
        return "shp"
    if head.startswith(b"AutoCAD Binary DXF"):
        return "dxf"
    body = _strip_bom(head)
    if any(m in head for m in _TXT_MARKER_BYTES):
        return "cn_coord_txt"
    if body.lstrip().startswith(b"ISO-10303-21"):
        return "ifc"
    if _DXF_TEXT.match(body):
        return "dxf"
    if body.lstrip().startswith(b"{"):
        return "geojson"
    section = _SECTION_LINE.search(body)
    if b"\x00" not in body and section and _TXT_POINT_LINE.search(body):
        if _is_utf8(section.group(0)):
            return "cn_coord_txt"  # a TXT with unusual section names: the reader explains
        raise SurveyFormatError(
            "ENCODING_UNKNOWN",
            "文件像是坐标报盘TXT，但节名无法识别：请以UTF-8或GBK编码保存",
            "the file looks like a coordinate TXT but its section names are unreadable: "
            "save it as UTF-8 or GBK",
        )
    if b"\x00" not in body and _looks_like_csv(body):
        return "csv_points"
    return None


def sniff(head: bytes, name: str) -> Sniffed:
    """Detect the survey format of a file from its first bytes and its (original) name."""
    ext = ""
    if "." in name:
        ext = "." + name.rsplit(".", 1)[1].lower()
    if not head.strip(b" \t\r\n\x00\xef\xbb\xbf"):
        raise SurveyFormatError("FILE_EMPTY", "文件为空", "the file is empty")
    fmt = _content_format(head)
    if fmt is None:
        _raise_unrecognised(head, ext)
    assert fmt is not None
    matches = ext in SURVEY_EXTENSIONS[fmt] or (
        fmt in TEXT_TABLE_FORMATS and ext in (".txt", ".csv", ".dat")
    )
    return Sniffed(fmt, ext, matches)


def _raise_unrecognised(head: bytes, ext: str) -> None:
    if _DWG.match(head):
        raise SurveyFormatError(
            "FORMAT_UNSUPPORTED",
            "不支持DWG格式，请在CAD中另存为DXF后上传",
            "DWG is not supported; save the drawing as DXF and upload that",
        )
    label = _foreign_label(head)
    if label is not None:
        if ext in _ALL_SURVEY_EXTS:
            raise SurveyFormatError(
                "FORMAT_MISMATCH",
                f"文件扩展名为{ext}，但内容是{label}，不是测绘成果文件",
                f"the file is named {ext} but its content is a {label}, not survey data",
                detected=label,
            )
        raise SurveyFormatError(
            "FORMAT_UNSUPPORTED",
            f"不支持的文件类型（{label}）",
            f"unsupported file type ({label})",
            detected=label,
        )
    raise SurveyFormatError(
        "FORMAT_UNKNOWN",
        "无法识别文件格式（支持坐标TXT、CSV、DXF、Shapefile压缩包、GeoPackage、GeoJSON、"
        "FlatGeobuf、IFC）",
        "unrecognised file format (supported: coordinate TXT, CSV, DXF, zipped Shapefile, "
        "GeoPackage, GeoJSON, FlatGeobuf, IFC)",
    )


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode survey text: BOM, then strict UTF-8, then GB18030 (a superset of GBK/GB2312)."""
    if data.startswith(b"\xef\xbb\xbf"):
        candidates = ["utf-8-sig"]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        candidates = ["utf-16"]
    else:
        candidates = ["utf-8", "gb18030"]
    for encoding in candidates:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise SurveyFormatError(
        "ENCODING_UNKNOWN",
        "文本编码无法识别（应为UTF-8或GBK/GB18030）",
        "unknown text encoding (expected UTF-8 or GBK/GB18030)",
    )

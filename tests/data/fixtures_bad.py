"""The bad-input corpus: files a survey upload must reject (error code) or flag (issue code).

Imported by make_fixtures.py; writes ``bad/*`` and ``bad/EXPECTED.json``, which maps each file
to ``{"error": CODE}`` (read_survey raises SurveyFormatError with that code) or
``{"issue": CODE}`` (read_survey returns a dataset with that issue), optional ``kwargs`` for
read_survey, and ``why``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import make_fixtures as mf

Expectation = dict[str, object]
CASES: list[tuple[str, Callable[[Path], None], Expectation]] = []
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
    b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)


def case(
    name: str, why: str, error: str | None = None, issue: str | None = None, **kwargs: object
) -> Callable[[Callable[[Path], None]], Callable[[Path], None]]:
    def register(fn: Callable[[Path], None]) -> Callable[[Path], None]:
        exp: Expectation = {"error": error} if error else {"issue": issue}
        if kwargs:
            exp["kwargs"] = kwargs
        exp["why"] = why
        CASES.append((name, fn, exp))
        return fn

    return register


def raw(name: str, data: bytes, why: str, **exp: object) -> None:
    case(name, why, **exp)(lambda p: p.write_bytes(data))  # type: ignore[arg-type]


def txt(lines: list[str], header: list[str] | None = None, encoding: str = "utf-8") -> bytes:
    return "\n".join((header if header is not None else mf.txt_header()) + lines).encode(encoding)


def ring(names: list[str], pts: list[tuple[float, float]], close: bool = True) -> list[str]:
    rows = [f"{n},1,{n_:.3f},{e:.3f}" for n, (e, n_) in zip(names, pts, strict=True)]
    return rows + ([rows[0]] if close else [])


A = ["J1", "J2", "J3", "J4"]
GOOD_PARCEL = ["5,0.1200,330106001001GB00021,甲,面,,,0501,@", *ring(A, mf.RECT_A)]

# ----------------------------------------------------------------------------- generic
raw("empty.txt", b"", "zero bytes", error="FILE_EMPTY")
raw("blank_lines.txt", b"\r\n   \n\t\n", "only whitespace", error="FILE_EMPTY")
raw("bom_only.csv", b"\xef\xbb\xbf", "a UTF-8 BOM and nothing else", error="FILE_EMPTY")
raw("png_named.txt", PNG, "a PNG image uploaded as .txt", error="FORMAT_MISMATCH")
raw(
    "pdf_named.dxf",
    b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n",
    "a PDF uploaded as .dxf",
    error="FORMAT_MISMATCH",
)
raw(
    "html_error_page.zip",
    b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>",
    "a proxy error page saved as .zip",
    error="FORMAT_MISMATCH",
)
raw(
    "gzip_named.zip",
    b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + bytes(20),
    "a gzip stream named .zip",
    error="FORMAT_MISMATCH",
)
raw(
    "photo.jpg",
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64),
    "a JPEG photo",
    error="FORMAT_UNSUPPORTED",
)
raw(
    "drawing.dwg",
    b"AC1027" + bytes(120),
    "a DWG drawing (must be saved as DXF)",
    error="FORMAT_UNSUPPORTED",
)
raw("random.bin", random.Random(7).randbytes(4096), "random bytes", error="FORMAT_UNKNOWN")
raw(
    "notes.txt",
    "这是项目说明，不含坐标。\n联系人：测绘队\n".encode(),
    "prose, no coordinates",
    error="FORMAT_UNKNOWN",
)
raw(
    "too_large.txt",
    txt(GOOD_PARCEL),
    "valid TXT over a 100-byte limit",
    error="FILE_TOO_LARGE",
    max_bytes=100,
)

# ----------------------------------------------------------------------------- TXT
raw(
    "txt_invalid_bytes.txt",
    txt(GOOD_PARCEL, encoding="gbk").replace(b"0501", b"\xff\xfe\xff"),
    "bytes that are neither UTF-8 nor GBK",
    error="ENCODING_UNKNOWN",
)
raw(
    "txt_big5.txt",
    "\n".join(
        [
            "[屬性描述]",
            "坐標系=2000國家大地坐標系",
            "帶號=40",
            "[地塊坐標]",
            "5,0.12,1,甲,面,,,,@",
            *ring(A, mf.RECT_A),
        ]
    ).encode("big5"),
    "a TXT saved as Big5 (section names unreadable)",
    error="ENCODING_UNKNOWN",
)
raw(
    "txt_nan.txt",
    txt(GOOD_PARCEL[:2] + ["J2,1,nan,40512540.000"] + GOOD_PARCEL[3:]),
    "NaN northing",
    error="COORDINATE_NOT_FINITE",
)
raw(
    "txt_inf.txt",
    txt(GOOD_PARCEL[:2] + ["J2,1,3350500.000,inf"] + GOOD_PARCEL[3:]),
    "infinite easting",
    error="COORDINATE_NOT_FINITE",
)
raw(
    "txt_huge_coords.txt",
    txt(GOOD_PARCEL[:2] + ["J2,1,9.9e12,40512540.000"] + GOOD_PARCEL[3:]),
    "northing of 9.9e12 m",
    error="COORDINATE_OUT_OF_RANGE",
)
raw(
    "txt_northing_outside_china.txt",
    txt(["5,,1,甲,面,,,,@", *ring(A, [(e, n + 5_000_000) for e, n in mf.RECT_A])]),
    "northings near 8350 km (north of China)",
    error="COORDINATE_OUT_OF_RANGE",
)
raw(
    "txt_bad_zone_prefix.txt",
    txt(
        ["5,,1,甲,面,,,,@", *ring(A, [(e + 10_000_000, n) for e, n in mf.RECT_A])],
        header=mf.txt_header(zone=""),
    ),
    "eastings prefixed 50 (no such zone)",
    error="COORDINATE_OUT_OF_RANGE",
)
raw(
    "txt_no_coord_section.txt",
    "\n".join(mf.txt_header()[:-1]).encode(),
    "[属性描述] only",
    error="TXT_NO_PARCELS",
)
raw(
    "txt_no_header_line.txt",
    txt(ring(A, mf.RECT_A)),
    "points without a parcel line ending @",
    error="TXT_NO_PARCELS",
)
raw(
    "txt_two_point_ring.txt",
    txt(["2,,330106001001GB00021,甲,面,,,,@", *ring(A[:2], mf.RECT_A[:2], close=False)]),
    "an unclosed ring of only 2 points",
    issue="RING_TOO_FEW_POINTS",
)
raw(
    "txt_duplicate_parcels.txt",
    txt(GOOD_PARCEL + GOOD_PARCEL[:1] + ring(A, mf.RECT_B)),
    "the same 宗地代码 twice",
    issue="DUPLICATE_PARCEL_CODE",
)
raw(
    "txt_duplicate_point.txt",
    txt(GOOD_PARCEL[:3] + [GOOD_PARCEL[2].replace("J2", "J2a")] + GOOD_PARCEL[3:]),
    "a point repeated on the next line",
    issue="DUPLICATE_POINT",
)
raw(
    "txt_bowtie.txt",
    txt(
        [
            "5,,330106001001GB00021,甲,面,,,,@",
            *ring(A, [mf.RECT_A[0], mf.RECT_A[2], mf.RECT_A[1], mf.RECT_A[3]]),
        ]
    ),
    "a self-intersecting (bow-tie) ring",
    issue="GEOMETRY_INVALID",
)
raw(
    "txt_bad_line.txt",
    txt(GOOD_PARCEL[:3] + ["J2b,1,abc,def"] + GOOD_PARCEL[3:]),
    "a point line with text instead of numbers",
    issue="LINE_UNPARSEABLE",
)
raw(
    "txt_point_count_mismatch.txt",
    txt([GOOD_PARCEL[0].replace("5,", "12,", 1)] + GOOD_PARCEL[1:]),
    "header says 12 points, 5 follow",
    issue="POINT_COUNT_MISMATCH",
)
raw(
    "txt_invalid_parcel_code.txt",
    txt([GOOD_PARCEL[0].replace("330106", "999999")] + GOOD_PARCEL[1:]),
    "a 19-char 宗地代码 with an unknown county",
    issue="PARCEL_CODE_INVALID",
)
raw(
    "txt_unknown_datum.txt",
    txt(GOOD_PARCEL, header=mf.txt_header(system="WGS84")),
    "坐标系=WGS84",
    error="CRS_UNKNOWN",
)
raw(
    "txt_plain_no_zone.txt",
    txt(
        ["5,,1,甲,面,,,,@", *ring(A, [(e - 40_000_000, n) for e, n in mf.RECT_A])],
        header=mf.txt_header(zone=""),
    ),
    "empty 带号 and eastings without zone prefix",
    error="CRS_UNKNOWN",
)
raw(
    "txt_zone_mismatch.txt",
    txt(GOOD_PARCEL, header=mf.txt_header(zone="39")),
    "带号=39 but eastings prefixed 40",
    error="CRS_ZONE_MISMATCH",
)
raw(
    "txt_mixed_prefixes.txt",
    txt(
        GOOD_PARCEL + ["5,,2,乙,面,,,,@", *ring(A, [(e - 1_000_000, n) for e, n in mf.RECT_B])],
        header=mf.txt_header(zone=""),
    ),
    "zone 40 and zone 39 eastings in one file",
    error="CRS_MIXED",
)

# ----------------------------------------------------------------------------- CSV
raw(
    "csv_swapped_axes.csv",
    (
        "点号,X,Y\n" + "\n".join(f"J{i},{e:.3f},{n:.3f}" for i, (e, n) in enumerate(mf.RECT_A, 1))
    ).encode(),
    "X holds eastings and Y northings",
    error="AXES_SWAPPED",
)
raw(
    "csv_no_xy_columns.csv",
    "编号,名称,长度,宽度\n1,甲,12.5,30.1\n2,乙,13.5,31.1\n".encode(),
    "no X/Y columns",
    error="CSV_COLUMNS_MISSING",
)
raw(
    "csv_nan.csv",
    (
        "点号,X,Y\nJ1,3350500.000,40512500.000\nJ2,NaN,40512540.000\nJ3,3350530.000,40512540.000\n"
    ).encode(),
    "NaN in the X column",
    error="COORDINATE_NOT_FINITE",
)
raw(
    "csv_plain_no_srid.csv",
    mf.csv_plain_english().encode(),
    "plain eastings and no srid",
    error="CRS_UNKNOWN",
)

from fixtures_bad_containers import register_containers  # noqa: E402

register_containers(case, raw)


def write_all(bad: Path) -> None:
    expected: dict[str, Expectation] = {}
    for name, fn, exp in CASES:
        fn(bad / name)
        expected[name] = exp
    (bad / "EXPECTED.json").write_text(
        json.dumps(expected, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )

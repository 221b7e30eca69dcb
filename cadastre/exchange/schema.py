"""The exchange tables (TD/T 1066 names, national 接入/汇交 messages) mapped to the register.

Each mapping lists ``(attribute, column, type)``: the upper-case XML attribute, the register
column it fills and how its text is read. Attributes starting with ``X_`` are this project's
extensions (geometry of buildings, floors and units, elevations, the stable right id, a party's
role): the national messages carry no 3D geometry, and a round trip must keep it. Readers of
messages from other systems do without them (geometry falls back to the parent's outline).

Sources: ../shared/domain.md §2 and §2a (field lists of the access specification and vendors'
exchange classes); which tables a business code carries: ``data/exchange_tables.csv``.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cadastre.settings import PROJECT_ROOT

# value types: text, int, num (decimal), date (YYYY-MM-DD), ts (timestamp), wkt, code
TEXT, INT, NUM, DATE, TS, WKT = "text", "int", "num", "date", "ts", "wkt"

PARCEL_CODE = re.compile(r"^[0-9]{12}[GJZ][ABSXCDEFGHWY][0-9]{5}$")
BUILDING_CODE = re.compile(r"^[0-9]{12}[GJZ][ABSXCDEFGHWY][0-9]{5}F[0-9]{4}$")
UNIT_CODE = re.compile(r"^[0-9]{12}[GJZ][ABSXCDEFGHWY][0-9]{5}[FLQW][0-9]{8}$")
HOUSE_UNIT_CODE = re.compile(r"^[0-9]{12}[GJZ][ABSXCDEFGHWY][0-9]{5}F[0-9]{8}$")

Field = tuple[str, str, str]


@dataclass(frozen=True)
class TableSpec:
    name: str                       # KTT_ZDJBXX ...
    entity: str                     # parcel | parcel_point | building | floor | unit | party |
    #                                 right | application
    fields: tuple[Field, ...]
    required: tuple[str, ...]       # attributes that must be present and non-empty
    kind: str | None = None         # right kind (cad.right_record.kind) for right tables
    certificate: str = "BDCQZH"     # BDCQZH 权证号 or BDCDJZMH 证明号

    def attribute(self, column: str) -> str:
        return next(a for a, c, _ in self.fields if c == column)


RIGHT_COMMON: tuple[Field, ...] = (
    ("BDCDYH", "unit_code", TEXT), ("YWH", "business_no", TEXT),
    ("QLLX", "right_type", INT), ("DJLX", "registration_type", INT),
    ("DJYY", "registration_reason", TEXT), ("DJJG", "registry_office", TEXT),
    ("DBR", "registrar_name", TEXT), ("DJSJ", "registered_at", TS),
    ("QLQSSJ", "right_start", DATE), ("QLJSSJ", "right_end", DATE),
    ("QSZT", "status", INT), ("FJ", "remark", TEXT), ("X_QLID", "right_id", TEXT),
)
RIGHT_REQUIRED = ("BDCDYH", "YWH", "QLLX", "DJLX", "DJSJ", "QSZT")
OWNERSHIP_DETAIL: tuple[Field, ...] = (
    ("TDSYQSSJ", "land_use_start", DATE), ("TDSYJSSJ", "land_use_end", DATE),
    ("FDCJYJG", "transaction_price", NUM), ("GHYT", "house_use", TEXT),
    ("FWXZ", "house_nature", INT), ("FWJG", "structure", INT), ("SZC", "floor_label", TEXT),
    ("ZCS", "floors_total", INT), ("JZMJ", "building_area", NUM),
    ("ZYJZMJ", "exclusive_area", NUM), ("FTJZMJ", "shared_area", NUM),
    ("DYTDMJ", "land_area", NUM),
)


def _right(name: str, kind: str, detail: tuple[Field, ...], required: tuple[str, ...] = (),
           certificate: str = "BDCQZH") -> TableSpec:
    return TableSpec(name, "right", RIGHT_COMMON + ((certificate, "certificate_no", TEXT),)
                     + detail, RIGHT_REQUIRED + required, kind, certificate)


TABLES: dict[str, TableSpec] = {t.name: t for t in (
    TableSpec("KTT_ZDJBXX", "parcel", (
        ("ZDDM", "parcel_code", TEXT), ("ZL", "seat", TEXT), ("X_XMMC", "compound_name", TEXT),
        ("YT", "land_use", TEXT), ("QLLX", "right_type", INT), ("QLXZ", "right_nature", INT),
        ("ZDMJ", "registered_area", NUM), ("ZDSZB", "neighbour_north", TEXT),
        ("ZDSZD", "neighbour_east", TEXT), ("ZDSZN", "neighbour_south", TEXT),
        ("ZDSZX", "neighbour_west", TEXT), ("TFH", "map_sheet", TEXT),
        ("X_SRID", "srid", INT)), ("ZDDM", "YT", "QLLX")),
    TableSpec("ZD_K_103", "parcel_point", (
        ("BDCDYH", "unit_code", TEXT), ("XH", "seq", INT), ("ZDX", "ring_no", INT),
        ("XZB", "x_north", NUM), ("YZB", "y_east", NUM)), ("BDCDYH", "XH", "XZB", "YZB")),
    TableSpec("KTT_FW_ZRZ", "building", (
        ("ZRZH", "building_code", TEXT), ("JZWMC", "name", TEXT), ("XMMC", "project_name", TEXT),
        ("ZCS", "floors_total", INT), ("DSCS", "floors_above", INT),
        ("DXCS", "floors_below", INT), ("JZWGD", "height", NUM),
        ("X_DPGC", "ground_elevation", NUM), ("FWJG", "structure", INT),
        ("GHYT", "planned_use", TEXT), ("JGRQ", "completion_date", DATE),
        ("SCJZMJ", "floor_area", NUM), ("ZZDMJ", "footprint_area", NUM),
        ("X_SRID", "srid", INT), ("X_GEOM", "geom", WKT)), ("ZRZH", "ZCS")),
    TableSpec("KTT_FW_C", "floor", (
        ("ZRZH", "building_code", TEXT), ("CH", "floor_no", INT), ("MYC", "floor_label", TEXT),
        ("X_CDBG", "base_elevation", NUM), ("CG", "storey_height", NUM),
        ("CJZMJ", "floor_area", NUM), ("X_SRID", "srid", INT), ("X_GEOM", "geom", WKT)),
        ("ZRZH", "CH")),
    TableSpec("KTT_FW_H", "unit", (
        ("BDCDYH", "unit_code", TEXT), ("CH", "floor_no", INT), ("SJCS", "floor_count", INT),
        ("SHBW", "room_no", TEXT), ("ZL", "seat", TEXT), ("FWYT1", "use", TEXT),
        ("FWLX", "house_type", INT), ("FWXZ", "house_nature", INT), ("HX", "layout", TEXT),
        ("SCJZMJ", "building_area", NUM), ("SCTNJZMJ", "inner_area", NUM),
        ("SCFTJZMJ", "shared_area", NUM), ("FTXS", "shared_coefficient", NUM),
        ("FTTDMJ", "land_share_area", NUM), ("X_DBBG", "base_elevation", NUM),
        ("X_GD", "height", NUM), ("X_SRID", "srid", INT), ("X_GEOM", "geom", WKT)),
        ("BDCDYH", "SHBW", "FWYT1", "SCJZMJ")),
    TableSpec("ZTT_GY_QLR", "party", (
        ("BDCDYH", "unit_code", TEXT), ("BDCQZH", "certificate_no", TEXT), ("SXH", "seq", INT),
        ("QLRMC", "name", TEXT), ("ZJZL", "id_type", INT), ("ZJH", "id_number", TEXT),
        ("DH", "phone", TEXT), ("DZ", "address", TEXT), ("QLRLX", "party_type", INT),
        ("QLBL", "share", TEXT), ("GYFS", "co_ownership", INT), ("X_JS", "role", INT),
        ("X_QLID", "right_id", TEXT)),
        ("BDCDYH", "QLRMC", "ZJZL", "ZJH", "QLRLX")),
    _right("QLT_FW_FDCQ_YZ", "ownership", OWNERSHIP_DETAIL),
    _right("QLF_QL_JSYDSYQ", "land_use", OWNERSHIP_DETAIL),
    _right("QLF_QL_DYAQ", "mortgage", (
        ("DYFS", "mortgage_type", INT), ("DYBDCLX", "property_kind", INT),
        ("BDBZZQSE", "secured_amount", NUM), ("ZGZQSE", "max_amount", NUM),
        ("ZWLXQSSJ", "debt_start", DATE), ("ZWLXJSSJ", "debt_end", DATE),
        ("ZJJZWDYFW", "scope", TEXT)), ("DYFS",), "BDCDJZMH"),
    _right("QLF_QL_YGDJ", "pre_notice", (
        ("YGDJZL", "notice_kind", INT), ("QDJG", "price", NUM), ("GHYT", "house_use", TEXT),
        ("JZMJ", "building_area", NUM)), ("YGDJZL",), "BDCDJZMH"),
    _right("QLF_QL_CFDJ", "seizure", (
        ("CFJG", "authority", TEXT), ("CFLX", "seizure_type", INT), ("CFWJ", "document", TEXT),
        ("CFWH", "document_no", TEXT), ("CFQSSJ", "seizure_start", DATE),
        ("CFJSSJ", "seizure_end", DATE), ("CFFW", "scope", TEXT),
        ("JFWH", "release_document_no", TEXT), ("JFDJSJ", "released_at", TS)),
        ("CFJG", "CFLX"), "BDCDJZMH"),
    _right("QLF_QL_YYDJ", "objection", (
        ("YYSX", "matter", TEXT), ("ZXYYYY", "cancelled_reason", TEXT),
        ("ZXYYDJSJ", "cancelled_at", TS)), ("YYSX",), "BDCDJZMH"),
    _right("QLF_QL_DYIQ", "easement", (
        ("GYDBDCDYH", "servient_unit_code", TEXT), ("XYDBDCDYH", "dominant_unit_code", TEXT),
        ("DYQNR", "content", TEXT), ("X_DYQQSSJ", "easement_start", DATE),
        ("X_DYQJSSJ", "easement_end", DATE)), ("GYDBDCDYH", "XYDBDCDYH", "DYQNR"),
        "BDCDJZMH"),
    _right("QLF_QL_ZXDJ", "cancellation", (
        ("X_ZXQLID", "cancelled_right_id", TEXT), ("ZXYY", "reason", TEXT),
        ("ZXSJ", "cancelled_at", TS)), ("ZXYY", "ZXSJ"), "BDCDJZMH"),
    TableSpec("DJT_DJ_SLSQ", "application", (
        ("YWH", "business_no", TEXT), ("DJDL", "registration_type", INT),
        ("SLSJ", "accepted_at", TS)), ("YWH",)),
)}
RIGHT_TABLE_OF_KIND: dict[str, str] = {}
for _spec in TABLES.values():
    if _spec.kind:
        RIGHT_TABLE_OF_KIND.setdefault(_spec.kind, _spec.name)
RIGHT_TABLE_OF_KIND["land_use"] = "QLF_QL_JSYDSYQ"

# tables of the specification this importer reads past without storing (workflow records,
# documents, boundary rows re-derived from the parcel's outline)
IGNORED_TABLES = frozenset((
    "KTT_GY_JZD", "KTT_GY_JZX", "KTF_ZDBHQK", "KTT_FW_LJZ", "FJ_F_100", "DJF_DJ_SQR",
    "DJF_DJ_SJ", "DJF_DJ_SF", "DJF_DJ_SH", "DJF_DJ_SZ", "DJF_DJ_FZ", "DJF_DJ_GD"))

# dictionary values (TD/T 1066 code tables the register holds)
REGISTRATION_TYPES = frozenset((100, 200, 300, 400, 500, 600, 700, 800, 900))
RIGHT_STATUSES = frozenset((0, 1, 2))
PARTY_TYPES = frozenset((1, 2, 3, 4, 5, 6, 99))
ID_TYPES = frozenset((1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 99))
HEAD_FIELDS = ("BizMsgID", "ASID", "AreaCode", "RecType", "RightType", "RegType", "CreateDate",
               "RecFlowID", "RegOrgID", "ParcelID", "EstateNum", "PreEstateNum", "PreCertID",
               "CertCount", "ProofCount", "DigitalSign")
HEAD_REQUIRED = ("BizMsgID", "AreaCode", "RecType", "CreateDate", "RecFlowID")
REC_TYPE = re.compile(r"^[0-9]{7}$")


@cache
def business_tables() -> dict[str, dict[str, bool]]:
    """RecType → {table: required} from ``data/exchange_tables.csv``."""
    out: dict[str, dict[str, bool]] = {}
    path = Path(PROJECT_ROOT) / "data" / "exchange_tables.csv"
    with path.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            out.setdefault(row["rec_type"], {})[row["table"]] = row["required"] == "yes"
    return out


def known_table(name: str) -> bool:
    return name in TABLES or name in IGNORED_TABLES or any(
        name in t for t in business_tables().values())

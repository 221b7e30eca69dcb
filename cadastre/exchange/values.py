"""Attribute text of one exchange row → typed register values, with the problems found.

Problems name the table, the attribute and the row's place, never the value (error messages do
not echo input: a party's name or ID number must not end up in a report or a log).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from shapely import wkt as shapely_wkt
from shapely.errors import GEOSException

from cadastre.exchange import schema
from cadastre.exchange.schema import DATE, INT, NUM, TS, WKT, TableSpec

CHINA = timezone(timedelta(hours=8))
RIGHT_NS = uuid.UUID("8a4d3c47-5f7e-4d8e-9a0b-1f2e3d4c5b6a")
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")

MESSAGES: dict[str, tuple[str, str]] = {
    "REQUIRED_MISSING": ("缺少必填字段", "a required attribute is missing"),
    "BAD_VALUE": ("字段值格式错误", "an attribute value has the wrong format"),
    "BAD_CODE": ("编码不符合规则（宗地代码/自然幢号/不动产单元号）",
                 "a code is malformed (parcel, building or unit code)"),
    "UNKNOWN_DICTIONARY_VALUE": ("字典值不在代码表中", "a value is not in its code table"),
    "UNKNOWN_TABLE": ("未知的交换表", "unknown exchange table"),
    "GEOMETRY_INVALID": ("图形无效", "the geometry is invalid"),
    "FEATURE_DIFFERS": ("与已登记要素不一致，未导入（保留登记簿现有版本）",
                        "differs from the registered feature; not imported (the register's "
                        "version is kept)"),
}


@dataclass
class Converted:
    values: dict[str, Any] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)   # (code, attribute)


def parse_ts(text: str) -> datetime:
    t = text.strip().replace(" ", "T")
    if len(t) == 10:
        t += "T00:00:00"
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    value = datetime.fromisoformat(t)
    return value if value.tzinfo else value.replace(tzinfo=CHINA)


def parse_date(text: str) -> date:
    m = _DATE.match(text.strip())
    if not m:
        raise ValueError("date")
    return date(int(m[1]), int(m[2]), int(m[3]))


def _typed(kind: str, text: str) -> Any:
    if kind == INT:
        return int(text)
    if kind == NUM:
        d = Decimal(text)
        if not d.is_finite():
            raise ValueError("number")
        return str(d)
    if kind == DATE:
        return parse_date(text).isoformat()
    if kind == TS:
        return parse_ts(text).isoformat()
    if kind == WKT:
        g = shapely_wkt.loads(text)
        if g.is_empty or not g.is_valid or g.geom_type not in ("Polygon", "MultiPolygon"):
            raise ValueError("geometry")
        return text
    return text


def convert(spec: TableSpec, attrs: dict[str, str]) -> Converted:
    out = Converted()
    for attr in spec.required:
        if not (attrs.get(attr) or "").strip():
            out.problems.append(("REQUIRED_MISSING", attr))
    for attr, column, kind in spec.fields:
        text = attrs.get(attr)
        if text is None or not text.strip():
            continue
        try:
            out.values[column] = _typed(kind, text.strip() if kind != "text" else text)
        except (ValueError, ArithmeticError, InvalidOperation, GEOSException):
            out.problems.append(("GEOMETRY_INVALID" if kind == WKT else "BAD_VALUE", attr))
    _check_codes(spec, out)
    return out


def _bad(out: Converted, code: str, attr: str) -> None:
    out.problems.append((code, attr))


def _check_codes(spec: TableSpec, out: Converted) -> None:
    v = out.values
    checks = {"parcel": ("parcel_code", schema.PARCEL_CODE, "ZDDM"),
              "building": ("building_code", schema.BUILDING_CODE, "ZRZH"),
              "floor": ("building_code", schema.BUILDING_CODE, "ZRZH"),
              "unit": ("unit_code", schema.HOUSE_UNIT_CODE, "BDCDYH"),
              "right": ("unit_code", schema.UNIT_CODE, "BDCDYH"),
              "party": ("unit_code", schema.UNIT_CODE, "BDCDYH")}
    if spec.entity in checks:
        column, pattern, attr = checks[spec.entity]
        if column in v and not pattern.match(v[column]):
            _bad(out, "BAD_CODE", attr)
    if spec.entity == "parcel_point" and "unit_code" in v and not (
            schema.UNIT_CODE.match(v["unit_code"]) or schema.PARCEL_CODE.match(v["unit_code"])):
        _bad(out, "BAD_CODE", "BDCDYH")
    if spec.kind == "easement":
        for col, attr in (("servient_unit_code", "GYDBDCDYH"), ("dominant_unit_code",
                                                               "XYDBDCDYH")):
            if col in v and not schema.UNIT_CODE.match(v[col]):
                _bad(out, "BAD_CODE", attr)
    if spec.entity == "right":
        if "registration_type" in v and v["registration_type"] not in schema.REGISTRATION_TYPES:
            _bad(out, "UNKNOWN_DICTIONARY_VALUE", "DJLX")
        if "status" in v and v["status"] not in schema.RIGHT_STATUSES:
            _bad(out, "UNKNOWN_DICTIONARY_VALUE", "QSZT")
        if "right_id" in v:
            try:
                v["right_id"] = str(uuid.UUID(v["right_id"]))
            except ValueError:
                _bad(out, "BAD_VALUE", "X_QLID")
    if spec.entity == "party":
        if "party_type" in v and v["party_type"] not in schema.PARTY_TYPES:
            _bad(out, "UNKNOWN_DICTIONARY_VALUE", "QLRLX")
        if "id_type" in v and v["id_type"] not in schema.ID_TYPES:
            _bad(out, "UNKNOWN_DICTIONARY_VALUE", "ZJZL")
        if v.get("role", 1) not in (1, 2, 3, 4):
            _bad(out, "UNKNOWN_DICTIONARY_VALUE", "X_JS")
    if spec.entity == "parcel" and "land_use" in v and not re.fullmatch(r"[0-9A-Z]{2,6}",
                                                                       v["land_use"]):
        _bad(out, "UNKNOWN_DICTIONARY_VALUE", "YT")


def right_id_of(spec: TableSpec, values: dict[str, Any]) -> uuid.UUID:
    """The right's stable id: X_QLID when given, otherwise derived from what identifies the
    right (table, unit, business number, certificate) — so importing the same data twice finds
    the same ids."""
    if values.get("right_id"):
        return uuid.UUID(values["right_id"])
    key = "|".join((spec.name, values.get("unit_code", ""), values.get("business_no", ""),
                    values.get("certificate_no") or ""))
    return uuid.uuid5(RIGHT_NS, key)


def message_of(code: str) -> str:
    zh, en = MESSAGES.get(code, (code, code))
    return f"{zh} / {en}"

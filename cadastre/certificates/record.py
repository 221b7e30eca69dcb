"""A document's record as printed: the values by privacy-policy field name, and how dates,
terms, areas and amounts are written on certificates. Pure data: worker processes that only
render import this, not the database code that fills it (``cadastre.certificates.content``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any


@dataclass
class CertificateContent:
    """One document's record: ``record`` holds the printed values by policy field name."""

    kind: str                           # certificate | proof | query_result
    unit_code: str
    right_version_id: int | None
    right_id: str | None
    business_no: str | None
    registry_office: str
    house: bool                         # a house unit: floor-plan pages follow the parcel map
    record: dict[str, Any] = field(default_factory=dict)
    # query results: (title, column headers, rows) after the record table
    tables: list[tuple[str, list[str], list[list[str]]]] = field(default_factory=list)


def day(value: date | datetime | None) -> str:
    if value is None:
        return ""
    d = value.date() if isinstance(value, datetime) else value
    return f"{d.year}年{d.month:02d}月{d.day:02d}日"


def term(start: date | None, end: date | None) -> str:
    if start is None and end is None:
        return ""
    return f"{day(start) or '—'}起 {day(end) or '—'}止" if end else f"{day(start)}起"


def area(value: Decimal | float | None) -> str:
    return "" if value is None else f"{float(value):.2f}m²"


def money(value: Decimal | float | None) -> str:
    return "" if value is None else f"{float(value):.2f}万元"

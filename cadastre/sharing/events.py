"""The transactional outbox: an event row written in the same transaction as the change that
causes it (登簿, a case accepted or completed, a survey accepted), so an event exists exactly
when its change committed — a crash between commit and delivery loses nothing.

Event ids follow commit order: ``emit`` takes the audit chain's transaction lock, which every
event-writing transaction also takes for its audit row and holds until commit, so a dispatcher
reading ``event_id > cursor`` never skips an event that commits late. An event stores references
(immutable right versions, a case number, a submission id), never personal data: payloads are
rendered per subscriber from the privacy policy at delivery (``cadastre.sharing.payloads``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from cadastre import audit

CHANNEL = "share_event"

EVENT_TYPES: dict[str, tuple[str, str]] = {
    "transfer.recorded": ("转移登记已登簿（水电气网视联动过户）",
                          "a transfer was entered in the register"),
    "ownership.registered": ("首次登记已登簿", "a first registration was entered"),
    "ownership.cancelled": ("所有权或使用权已注销", "an ownership or land-use right was cancelled"),
    "right.changed": ("权利变更、更正或换证已登簿", "a right was changed, corrected or re-issued"),
    "mortgage.registered": ("抵押权已登记", "a mortgage was registered"),
    "mortgage.cancelled": ("抵押权已注销", "a mortgage was cancelled"),
    "mortgage.transferred": ("抵押权已转移", "a mortgage was transferred"),
    "pre_notice.registered": ("预告登记已登簿", "a pre-notice was registered"),
    "seizure.registered": ("查封已登记", "a seizure was registered"),
    "seizure.released": ("查封已解除", "a seizure was released"),
    "objection.registered": ("异议已登记", "an objection was registered"),
    "objection.cancelled": ("异议已注销", "an objection was cancelled"),
    "easement.registered": ("地役权已登记", "an easement was registered"),
    "case.accepted": ("办件已受理", "a case was accepted"),
    "case.completed": ("办件已办结", "a case was completed (archived or closed)"),
    "survey.accepted": ("测绘成果已入库", "a survey was accepted into the register"),
    "register.imported": ("存量登记数据已导入", "an import of existing registrations was accepted"),
    "certificate.issued": ("电子证书已签发", "an electronic certificate was issued"),
    "certificate.superseded": ("证书已失效", "a certificate was superseded"),
}


def emit(conn: psycopg.Connection, event_type: str, *, county: str | None,
         unit_codes: Iterable[str] = (), case_no: str | None = None,
         refs: Mapping[str, Any] | None = None) -> int:
    """Write an event in the caller's transaction; returns its id."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    # the lock is taken before the row (and its id) is made: ``l`` feeds the insert
    row = conn.execute(
        "WITH l AS (SELECT pg_advisory_xact_lock(%s)), "
        "e AS (INSERT INTO share.event (type, county_code, unit_codes, case_no, refs) "
        "SELECT %s::text, %s::char(6), %s::char(28)[], %s::text, %s::jsonb FROM l "
        "RETURNING event_id) "
        "SELECT event_id, pg_notify(%s, %s) FROM e",
        (audit.LOCK, event_type, county, list(unit_codes), case_no, Jsonb(dict(refs or {})),
         CHANNEL, event_type)).fetchone()
    assert row is not None
    return int(row[0])


def registration_event(registration_type: str, kind: str, entered_kinds: Iterable[str]) -> str:
    """The event a 登簿 of ``registration_type`` on right ``kind`` emits."""
    entered = set(entered_kinds)
    if registration_type == "transfer":
        return "mortgage.transferred" if kind == "mortgage" else "transfer.recorded"
    if registration_type == "cancellation":
        return "mortgage.cancelled" if kind == "mortgage" else (
            "ownership.cancelled" if kind in ("ownership", "land_use") else "right.changed")
    if registration_type == "seizure":
        return "seizure.registered" if "seizure" in entered else "seizure.released"
    if registration_type == "objection":
        return "objection.registered" if "objection" in entered else "objection.cancelled"
    if registration_type == "pre_notice":
        return "pre_notice.registered"
    if registration_type == "first":
        return {"mortgage": "mortgage.registered", "easement": "easement.registered"}.get(
            kind, "ownership.registered")
    return "right.changed"

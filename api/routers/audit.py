"""Auditors: the audit trail, its verification and export.

``/verify`` recomputes the whole HMAC chain (auditors; registrars may check the status too).
``/log`` streams the rows as JSON, JSON lines or CSV in seq order; the export is itself
recorded in the trail (who exported which period, how many rows).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from api.auditing import _key as audit_key
from api.auditing import record_sync
from api.auth import require
from api.state import app_state
from cadastre import audit
from cadastre.access.principal import Principal
from cadastre.access.privacy import Role
from cadastre.audit import serialize as audit_export
from cadastre.store.db import connect

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])

MEDIA = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson",
         "json": "application/json"}


@router.get("/verify", summary="校验审计链 / verify the audit chain")
def verify(request: Request, who: Principal = Depends(require(Role.AUDITOR, Role.REGISTRAR))
           ) -> dict[str, Any]:
    """Recompute every row's seal; the first row whose content, link or sequence is wrong."""
    key = audit_key(request)
    with connect(app_state(request).database_url) as conn:   # a transaction: streamed verify
        result = audit.verify(conn, key)
        conn.rollback()
    record_sync(request, who, "audit.verify", None, result.rows,
                "ok" if result.ok else "tampered")
    return {"ok": result.ok, "rows": result.rows, "head_seq": result.head_seq,
            "head_hash": result.head_hash, "first_bad_seq": result.first_bad_seq,
            "reason": result.reason}


@router.get("/log", summary="导出审计日志 / export the audit log",
            responses={200: {"content": {m: {} for m in MEDIA.values()}}})
def export_log(
    request: Request,
    since: str | None = Query(None, max_length=40, description="ISO date/time, inclusive"),
    until: str | None = Query(None, max_length=40, description="ISO date/time, exclusive"),
    format: Literal["json", "jsonl", "csv"] = Query("json"),  # noqa: A002 - API parameter name
    who: Principal = Depends(require(Role.AUDITOR)),
) -> StreamingResponse:
    start = audit_export.parse_time(since, "since")
    end = audit_export.parse_time(until, "until")
    target = f"{format}:{since or ''}..{until or ''}"
    url = app_state(request).database_url

    def body() -> Iterator[str]:
        n, outcome = 0, "aborted"
        try:
            with connect(url) as conn:
                if format == "csv":
                    yield "\ufeff" + audit_export.csv_header()
                elif format == "json":
                    yield "["
                for row in audit_export.rows(conn, start, end):
                    if format == "csv":
                        yield audit_export.csv_line(row)
                    elif format == "jsonl":
                        yield audit_export.json_line(row)
                    else:
                        yield ("," if n else "") + audit_export.json_line(row)
                    n += 1
                if format == "json":
                    yield "]\n"
                conn.rollback()
            outcome = "ok"
        finally:   # the auditor's export is audited too (also when the download broke off)
            record_sync(request, who, "audit.export", target, n, outcome)

    filename = f"audit-log.{format}"
    return StreamingResponse(body(), media_type=MEDIA[format], headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store"})

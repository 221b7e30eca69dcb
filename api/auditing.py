"""Writing the audit trail from request handlers: one call per non-public read or change."""

from __future__ import annotations

from fastapi import Request

from api.state import app_state
from cadastre import audit
from cadastre.access.principal import Principal
from cadastre.access.privacy import Role


def _key(request: Request) -> bytes:
    return app_state(request).audit_key


def entry(request: Request, who: Principal, action: str, target: str | None = None,
          result_count: int = 0, outcome: str = "ok") -> audit.Entry:
    key = _key(request)
    host = request.client.host if request.client else None
    return audit.Entry(
        actor=who.actor, role=who.role.value, action=action, target=target,
        purpose=who.purpose, case_ref=who.case_ref, result_count=result_count, outcome=outcome,
        client=audit.subject_hash(key, host, "client") if host else None,
    )


def needs_audit(who: Principal) -> bool:
    """Public reads are not logged (nothing private leaves); everything else is."""
    return who.role is not Role.PUBLIC


async def record(request: Request, who: Principal, action: str, target: str | None = None,
                 result_count: int = 0, outcome: str = "ok") -> None:
    """Append to the chain from an async route (uses the async pool)."""
    if not needs_audit(who) and outcome == "ok":
        return
    e = entry(request, who, action, target, result_count, outcome)
    async with app_state(request).pool.connection() as conn:
        await audit.append_async(conn, _key(request), e)


def record_sync(request: Request, who: Principal, action: str, target: str | None = None,
                result_count: int = 0, outcome: str = "ok", conn=None) -> None:  # type: ignore[no-untyped-def]
    """Append from a plain ``def`` route; pass ``conn`` to write inside the caller's transaction
    (changes: the audit row commits or rolls back with the change)."""
    if not needs_audit(who) and outcome == "ok":
        return
    e = entry(request, who, action, target, result_count, outcome)
    if conn is not None:
        audit.append(conn, _key(request), e)
        return
    with app_state(request).sync_pool.connection() as own:
        audit.append(own, _key(request), e)

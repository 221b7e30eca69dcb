"""Sharing by push and by pull, and the server's metrics.

- ``GET /api/v1/events?after=`` — the pull alternative for departments behind firewalls: the
  same events and payloads as their webhook, for their API key (grants, counties, holder).
- ``/api/v1/subscriptions`` — registrars manage the push subscriptions (the secret is shown once).
- ``GET /metrics`` — Prometheus text: job queue, event backlog and lag, deliveries per
  subscriber, running cases by light (counts only). From loopback or with a staff token.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from api.auditing import record_sync
from api.auth import Forbidden, principal, require
from api.state import app_state
from cadastre.access.principal import Principal
from cadastre.access.privacy import Role
from cadastre.errors import InvalidInput
from cadastre.sharing import metrics, payloads
from cadastre.sharing import subscriptions as subs
from cadastre.sharing.events import EVENT_TYPES

router = APIRouter(tags=["sharing"])
Registrar = Annotated[Principal, Depends(require(Role.REGISTRAR))]
Department = Annotated[Principal, Depends(require(Role.DEPARTMENT))]


@router.get("/api/v1/events", summary="事件拉取 / events for this API key (pull)")
def pull(request: Request, who: Department,
         after: int = Query(0, ge=0, le=2**62, description="上次收到的 event_id / cursor"),
         limit: int = Query(100, ge=1, le=500),
         types: str | None = Query(None, max_length=500,
                                   description="逗号分隔的事件类型 / comma-separated types")
         ) -> dict[str, Any]:
    wanted = [t for t in (types or "").split(",") if t]
    unknown = [t for t in wanted if t not in EVENT_TYPES]
    if unknown:
        raise InvalidInput("EVENT_TYPE_UNKNOWN", "未知事件类型 / unknown event type")
    state = app_state(request)
    items: list[dict[str, Any]] = []
    cursor = after
    with state.sync_pool.connection() as conn:
        holder = conn.execute("SELECT holder_hash FROM auth.api_key WHERE key_id::text = %s",
                              (who.subject,)).fetchone()
        holder_hash = bytes(holder[0]) if holder and holder[0] else None
        with conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                "SELECT event_id, type, occurred_at, county_code, unit_codes, case_no, refs "
                "FROM share.event WHERE event_id > %s AND (%s::text[] = '{}' OR type = ANY(%s)) "
                "AND (%s::char(6)[] = '{}' OR county_code = ANY(%s::char(6)[])) "
                "ORDER BY event_id LIMIT %s",
                (after, wanted, wanted, list(who.counties), list(who.counties), limit * 4)
            ).fetchall()
        for e in rows:
            cursor = e["event_id"]
            if payloads.concerns(conn, e, holder_hash):
                items.append(payloads.render(conn, state.cipher, e, who))
            if len(items) >= limit:
                break
        record_sync(request, who, "events.pull", None, len(items), conn=conn)
    return {"items": items, "next_after": cursor}


class SubscriptionBody(BaseModel):
    name: str = Field(min_length=2, max_length=64)
    url: str = Field(min_length=8, max_length=500)
    api_key: str = Field(min_length=2, max_length=100, description="API 密钥名称或编号")
    event_types: list[str] = Field(default_factory=list, max_length=len(EVENT_TYPES))
    counties: list[str] = Field(default_factory=list, max_length=50)
    max_attempts: int = Field(8, ge=1, le=50)


@router.post("/api/v1/subscriptions", status_code=201, summary="新增推送订阅 / add a subscription")
def add_subscription(request: Request, who: Registrar, body: SubscriptionBody
                     ) -> dict[str, Any]:
    state = app_state(request)
    with state.sync_pool.connection() as conn, conn.transaction():
        sub, secret = subs.add(conn, state.cipher, body.name, body.url, body.api_key,
                               body.event_types, body.counties, who.actor, body.max_attempts)
        record_sync(request, who, "subscription.add", sub.name, 1, conn=conn)
    return {**sub.as_dict(), "secret": secret}


@router.get("/api/v1/subscriptions", summary="推送订阅与投递情况 / subscriptions and deliveries")
def list_subscriptions(request: Request, who: Registrar) -> list[dict[str, Any]]:
    with app_state(request).sync_pool.connection() as conn:
        out = [{**s.as_dict(), "deliveries": metrics.delivery_counts(conn, s.subscription_id)}
               for s in subs.list_all(conn)]
        record_sync(request, who, "subscription.list", None, len(out), conn=conn)
    return out


@router.post("/api/v1/subscriptions/{name}/{action}", summary="暂停、恢复或删除订阅 / pause, "
             "resume or remove")
def change_subscription(request: Request, who: Registrar, name: str, action: str,
                        since: datetime | None = None) -> dict[str, Any]:
    with app_state(request).sync_pool.connection() as conn, conn.transaction():
        if action in ("pause", "resume"):
            out = subs.set_status(conn, name[:64], "paused" if action == "pause" else "active"
                                  ).as_dict()
        elif action == "remove":
            out = subs.remove(conn, name[:64]).as_dict()
        elif action == "replay" and since is not None:
            out = {"replayed": subs.replay(conn, name[:64], since)}
        else:
            raise InvalidInput("SUBSCRIPTION_ACTION", "操作须为 pause、resume、remove 或 replay"
                               "（需 since）/ action: pause, resume, remove, replay (with since)")
        record_sync(request, who, f"subscription.{action}", name[:64], 1, conn=conn)
    return out


@router.get("/metrics", response_class=PlainTextResponse, include_in_schema=False)
def prometheus(request: Request) -> PlainTextResponse:
    host = request.client.host if request.client else ""
    if host not in ("127.0.0.1", "::1", "testclient"):
        who = principal(request)
        if who.role not in (Role.REGISTRAR, Role.AUDITOR):
            raise Forbidden("FORBIDDEN", "指标仅限本机或工作人员 / metrics: loopback or staff only")
    with app_state(request).sync_pool.connection() as conn:
        text = metrics.prometheus(conn)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")

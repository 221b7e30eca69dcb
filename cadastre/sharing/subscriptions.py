"""Department subscriptions: where to push which events, under which API key's grants.

A subscription names an endpoint URL, the event types (empty = all), the counties (empty = the
key's), and the API key whose role, grants and counties shape every payload. Its signing secret
is generated here, shown once, and kept encrypted (it must be read back to sign).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import psycopg

from cadastre.access.pii import PiiCipher
from cadastre.errors import InvalidInput, NotFound
from cadastre.sharing.events import EVENT_TYPES


@dataclass(frozen=True)
class Subscription:
    subscription_id: uuid.UUID
    name: str
    url: str
    event_types: tuple[str, ...]
    counties: tuple[str, ...]
    api_key_id: uuid.UUID
    status: str
    last_event_id: int
    max_attempts: int
    created_at: datetime

    def as_dict(self) -> dict[str, object]:
        return {"subscription_id": str(self.subscription_id), "name": self.name, "url": self.url,
                "event_types": list(self.event_types), "counties": list(self.counties),
                "api_key_id": str(self.api_key_id), "status": self.status,
                "last_event_id": self.last_event_id, "max_attempts": self.max_attempts,
                "created_at": self.created_at.isoformat()}


_COLS = ("subscription_id, name, url, event_types, counties, api_key_id, status, last_event_id, "
         "max_attempts, created_at")


def _row(r: tuple) -> Subscription:   # type: ignore[type-arg]
    return Subscription(r[0], r[1], r[2], tuple(r[3]), tuple(c.strip() for c in r[4]), r[5],
                        r[6], r[7], r[8], r[9])


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 500:
        raise InvalidInput("SUBSCRIPTION_URL", "推送地址须为 http(s) 网址 / the endpoint must be "
                           "an http(s) URL")
    return url


def add(conn: psycopg.Connection, cipher: PiiCipher, name: str, url: str, api_key: str,
        event_types: Iterable[str] = (), counties: Iterable[str] = (), actor: str = "cli",
        max_attempts: int = 8, from_start: bool = False) -> tuple[Subscription, str]:
    """Create a subscription; returns it and its signing secret (shown once). It receives the
    events after now (``from_start``: every event kept)."""
    types = tuple(dict.fromkeys(t.strip() for t in event_types if t.strip()))
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise InvalidInput("EVENT_TYPE_UNKNOWN", f"未知事件类型 / unknown event type(s): "
                           f"{', '.join(unknown)}")
    key = conn.execute("SELECT key_id, counties FROM auth.api_key WHERE name = %s OR "
                       "key_id::text = %s", (api_key, api_key)).fetchone()
    if key is None:
        raise NotFound("API_KEY_NOT_FOUND", "无此 API 密钥 / no such API key")
    cty = tuple(dict.fromkeys(c.strip() for c in counties if c.strip()))
    if key[1] and any(c not in [k.strip() for k in key[1]] for c in cty):
        raise InvalidInput("SUBSCRIPTION_COUNTIES", "订阅的县区须在密钥范围内 / the counties "
                           "must lie in the key's counties")
    secret = secrets.token_urlsafe(32)
    start = 0 if from_start else conn.execute(
        "SELECT coalesce(max(event_id), 0) FROM share.event").fetchone()[0]  # type: ignore[index]
    try:
        row = conn.execute(
            f"INSERT INTO share.subscription (subscription_id, name, url, event_types, counties, "
            f"api_key_id, secret_enc, last_event_id, max_attempts, created_by) VALUES "
            f"(%s, %s, %s, %s, %s::char(6)[], %s, %s, %s, %s, %s) RETURNING {_COLS}",
            (uuid.uuid4(), name, _check_url(url), list(types), list(cty), key[0],
             cipher.encrypt(secret), start, max_attempts, actor)).fetchone()
    except psycopg.errors.UniqueViolation:
        raise InvalidInput("SUBSCRIPTION_EXISTS", "同名订阅已存在 / a subscription with that "
                           "name exists") from None
    except psycopg.errors.CheckViolation:
        raise InvalidInput("SUBSCRIPTION_NAME", "订阅名须为 2–64 位小写字母、数字或 ._- / "
                           "name: 2–64 of a-z 0-9 . _ -") from None
    assert row is not None
    return _row(row), secret


def list_all(conn: psycopg.Connection) -> list[Subscription]:
    return [_row(r) for r in conn.execute(f"SELECT {_COLS} FROM share.subscription ORDER BY name")]


def get(conn: psycopg.Connection, name_or_id: str) -> Subscription:
    row = conn.execute(f"SELECT {_COLS} FROM share.subscription WHERE name = %s OR "
                       "subscription_id::text = %s", (name_or_id, name_or_id)).fetchone()
    if row is None:
        raise NotFound("SUBSCRIPTION_NOT_FOUND", "无此订阅 / no such subscription")
    return _row(row)


def set_status(conn: psycopg.Connection, name_or_id: str, status: str) -> Subscription:
    sub = get(conn, name_or_id)
    conn.execute("UPDATE share.subscription SET status = %s WHERE subscription_id = %s",
                 (status, sub.subscription_id))
    return get(conn, name_or_id)


def remove(conn: psycopg.Connection, name_or_id: str) -> Subscription:
    sub = get(conn, name_or_id)
    conn.execute("DELETE FROM share.subscription WHERE subscription_id = %s",
                 (sub.subscription_id,))
    return sub


def replay(conn: psycopg.Connection, name_or_id: str, since: datetime,
           include_delivered: bool = False) -> int:
    """Deliver again the events since ``since``: dead letters (and, when asked, delivered
    ones) go back to pending, in their order. Returns how many."""
    sub = get(conn, name_or_id)
    statuses = ["dead", "delivered"] if include_delivered else ["dead"]
    cur = conn.execute(
        "UPDATE share.delivery d SET status = 'pending', attempts = 0, next_attempt_at = now(), "
        "last_error = NULL FROM share.event e WHERE e.event_id = d.event_id "
        "AND d.subscription_id = %s AND d.status = ANY(%s) AND e.occurred_at >= %s",
        (sub.subscription_id, statuses, since))
    return cur.rowcount

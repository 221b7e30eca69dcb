"""Keyset paging for staff lists (newest first): ``?limit=`` and the opaque ``next`` cursor of the
previous page, encoding the last row's timestamp and id."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Any

from cadastre.errors import InvalidInput


def encode_cursor(at: datetime, key: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{key}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, key = raw.split("|", 1)
        return datetime.fromisoformat(at), uuid.UUID(key)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("CURSOR_INVALID", "分页游标无效 / invalid paging cursor") from None


def keyset_page(rows: list[dict[str, Any]], limit: int, at_key: str, id_key: str
          ) -> dict[str, Any]:
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = encode_cursor(rows[-1][at_key], uuid.UUID(rows[-1][id_key])) if more and rows else None
    for r in rows:
        for k, v in r.items():
            if isinstance(v, datetime):
                r[k] = v.isoformat()
            elif isinstance(v, uuid.UUID):
                r[k] = str(v)
    return {"items": rows, "next": nxt}

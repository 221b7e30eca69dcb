"""The reporting queue (上报): every 登簿 puts its exchange message into ``xchg.outbound`` in the
same transaction (pending); a sender delivers pending messages (sent); the platform's responses
are read back (acknowledged, or rejected with its code). Messages still unacknowledged after a
limit are findings of the 上报 quality category.

Senders: ``DirectorySender`` drops ``Biz<BizMsgID>.xml`` under ``<root>/Biz/<county>/BizMsg``
and reads ``Rep<BizMsgID>.xml`` from ``<root>/RepMsg`` (the embedded setup, and what a file
gateway to the national platform picks up); ``HttpSender`` posts to a real endpoint.
"""

from __future__ import annotations

import os
import tempfile
import urllib.request
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import psycopg
from lxml import etree

from cadastre.access.pii import PiiCipher
from cadastre.exchange.values import CHINA
from cadastre.exchange.writer import version_message


class Sender(Protocol):
    def send(self, biz_msg_id: str, county: str, body: bytes) -> None: ...


class DirectorySender:
    def __init__(self, root: Path) -> None:
        self.root = root

    def send(self, biz_msg_id: str, county: str, body: bytes) -> None:
        folder = self.root / "Biz" / county / "BizMsg"
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".part-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
        os.replace(tmp, folder / f"Biz{biz_msg_id}.xml")   # a reader never sees half a file

    def responses(self) -> list[Path]:
        folder = self.root / "RepMsg"
        return sorted(folder.glob("Rep*.xml")) if folder.is_dir() else []


class HttpSender:
    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url, self.timeout = url, timeout

    def send(self, biz_msg_id: str, county: str, body: bytes) -> None:
        req = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/xml; charset=utf-8", "X-BizMsgID": biz_msg_id,
            "X-AreaCode": county})
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
            if resp.status >= 300:
                raise OSError(f"HTTP {resp.status}")


def next_biz_msg_id(conn: psycopg.Connection, county: str, at: datetime) -> str:
    """BizMsgID: 6-digit area code + YYMMDD + 6-digit sequence of that county and day."""
    day = at.astimezone(CHINA).date()
    row = conn.execute(
        "INSERT INTO xchg.message_seq (county_code, day, last_no) VALUES (%s, %s, 1) "
        "ON CONFLICT (county_code, day) DO UPDATE SET last_no = xchg.message_seq.last_no + 1 "
        "RETURNING last_no", (county, day)).fetchone()
    assert row is not None
    return f"{county}{day:%y%m%d}{int(row[0]):06d}"


def enqueue(conn: psycopg.Connection, cipher: PiiCipher, *, county: str, business_no: str,
            version_ids: Sequence[int], change_id: int | None, at: datetime) -> str | None:
    """The message of one 登簿, pending, in the caller's transaction; its BizMsgID (None when
    the business wrote no right version)."""
    if not version_ids:
        return None
    biz = next_biz_msg_id(conn, county, at)
    rec, body = version_message(conn, cipher, list(version_ids), business_no, biz, at)
    conn.execute(
        "INSERT INTO xchg.outbound (biz_msg_id, county_code, rec_type, business_no, change_id, "
        "body_enc) VALUES (%s, %s, %s, %s, %s, %s)",
        (biz, county, rec, business_no, change_id, cipher.encrypt(body.decode("utf-8"))))
    return biz


def enqueue_registration(conn: psycopg.Connection, cipher: PiiCipher, county: str,
                         business_no: str, registered: dict[str, Any], at: datetime
                         ) -> str | None:
    """The message of a case's 登簿 (``registered``: what ``workflow._register`` returned): the
    versions it entered, or, when it entered none (a release), the versions it closed."""
    versions = list(registered["version_ids"]) or [r[0] for r in conn.execute(
        "SELECT version_id FROM cad.right_record WHERE retired_by = %s ORDER BY version_id",
        (registered["change_id"],))]
    return enqueue(conn, cipher, county=county, business_no=business_no, version_ids=versions,
                   change_id=registered["change_id"], at=at)


def send_pending(conn: psycopg.Connection, cipher: PiiCipher, sender: Sender,
                 limit: int = 500) -> dict[str, int]:
    """Deliver pending messages (oldest first); a failed delivery stays pending."""
    sent = failed = 0
    rows = conn.execute(
        "SELECT biz_msg_id, county_code, body_enc FROM xchg.outbound WHERE state = 'pending' "
        "ORDER BY created_at, biz_msg_id LIMIT %s FOR UPDATE SKIP LOCKED", (limit,)).fetchall()
    for biz, county, body in rows:
        text = cipher.decrypt(body)
        assert text is not None
        try:
            sender.send(biz, county, text.encode("utf-8"))
        except OSError:
            failed += 1
            conn.execute("UPDATE xchg.outbound SET attempts = attempts + 1 WHERE biz_msg_id = %s",
                         (biz,))
            continue
        sent += 1
        conn.execute("UPDATE xchg.outbound SET state = 'sent', sent_at = clock_timestamp(), "
                     "attempts = attempts + 1 WHERE biz_msg_id = %s", (biz,))
    conn.commit()
    return {"sent": sent, "failed": failed}


_RESPONSE_PARSER = dict(resolve_entities=False, load_dtd=False, no_network=True,
                        huge_tree=False)


def parse_response(data: bytes) -> dict[str, str]:
    """A ``Rep`` message's fields (BizMsgID, SuccessFlag, ResponseCode, ResponseInfo …)."""
    parser = etree.XMLParser(**_RESPONSE_PARSER)  # type: ignore[arg-type]
    root = etree.fromstring(data, parser)
    if root.getroottree().docinfo.doctype:
        raise ValueError("DTD in a response")
    return {el.tag: (el.text or "").strip() for el in root.iter() if isinstance(el.tag, str)
            and len(el) == 0}


def read_responses(conn: psycopg.Connection, sender: DirectorySender) -> dict[str, int]:
    """Apply the platform's answers: SuccessFlag 1 → acknowledged, 2 → rejected. Read files
    move to ``RepMsg/done`` (unreadable ones to ``RepMsg/bad``)."""
    counts = {"acknowledged": 0, "rejected": 0, "unknown": 0, "bad": 0}
    for path in sender.responses():
        try:
            fields = parse_response(path.read_bytes())
        except (etree.XMLSyntaxError, ValueError):
            counts["bad"] += 1
            _move(path, "bad")
            continue
        state = {"1": "acknowledged", "2": "rejected"}.get(fields.get("SuccessFlag", ""))
        cur = conn.execute(
            "UPDATE xchg.outbound SET state = %s, answered_at = clock_timestamp(), "
            "response_code = %s, response_info = %s WHERE biz_msg_id = %s "
            "AND state IN ('sent', 'pending')",
            (state, fields.get("ResponseCode"), (fields.get("ResponseInfo") or "")[:500],
             fields.get("BizMsgID", ""))) if state else None
        if cur is not None and cur.rowcount == 1:
            counts[state] += 1  # type: ignore[index]
        else:
            counts["unknown"] += 1
        _move(path, "done")
    conn.commit()
    return counts


def _move(path: Path, folder: str) -> None:
    target = path.parent / folder
    target.mkdir(exist_ok=True)
    os.replace(path, target / path.name)


def overdue(conn: psycopg.Connection, older_than: timedelta) -> list[dict[str, Any]]:
    """Messages neither acknowledged nor rejected after ``older_than`` (上报 findings)."""
    cur = conn.execute(
        "SELECT biz_msg_id, business_no, state, created_at FROM xchg.outbound "
        "WHERE state IN ('pending', 'sent') AND created_at < clock_timestamp() - %s "
        "ORDER BY created_at", (older_than,))
    return [dict(zip(("biz_msg_id", "business_no", "state", "created_at"), r, strict=True))
            for r in cur.fetchall()]


def states(conn: psycopg.Connection) -> dict[str, int]:
    return {s: int(n) for s, n in conn.execute(
        "SELECT state, count(*) FROM xchg.outbound GROUP BY state")}

"""The audit chain itself: append, verify, and tamper detection by SQL (update, delete, re-link)."""

from __future__ import annotations

import os
import threading

import pytest

from cadastre import audit
from cadastre.store.db import connect

KEY = os.urandom(32)


def _fill(url: str, n: int) -> None:
    with connect(url) as conn:
        for i in range(n):
            audit.append(conn, KEY, audit.Entry(actor=f"acct-{i % 3}", role="registrar",
                                                action="unit.read", target=f"U{i:04d}",
                                                result_count=i))
        conn.commit()


def test_empty_log_verifies(fresh_db: str) -> None:
    with connect(fresh_db) as conn:
        result = audit.verify(conn, KEY)
    assert result.ok and result.rows == 0 and result.head_seq is None


def test_chain_verifies_and_exports(fresh_db: str) -> None:
    _fill(fresh_db, 25)
    with connect(fresh_db) as conn:
        result = audit.verify(conn, KEY, batch=7)
        rows = list(audit.export(conn))
    assert result.ok and result.rows == 25 and result.head_seq == 25
    assert [r["seq"] for r in rows] == list(range(1, 26))
    assert rows[0]["prev_hash"] == "00" * 32
    assert rows[1]["prev_hash"] == rows[0]["row_hash"] and result.head_hash == rows[-1]["row_hash"]


def test_wrong_key_fails(fresh_db: str) -> None:
    _fill(fresh_db, 3)
    with connect(fresh_db) as conn:
        result = audit.verify(conn, os.urandom(32))
    assert not result.ok and result.first_bad_seq == 1


@pytest.mark.parametrize(
    ("sql", "bad", "reason"),
    [
        ("UPDATE audit.log SET result_count = 999 WHERE seq = 7", 7, "altered"),
        ("UPDATE audit.log SET actor = 'someone-else' WHERE seq = 12", 12, "altered"),
        ("DELETE FROM audit.log WHERE seq = 5", 5, "missing"),
        ("UPDATE audit.log SET at = at - interval '1 day' WHERE seq = 3", 3, "altered"),
        # an attacker re-links row 9 to skip row 8: the seal of row 9 no longer matches
        ("UPDATE audit.log SET prev_hash = (SELECT prev_hash FROM audit.log WHERE seq = 8) "
         "WHERE seq = 9", 9, "link"),
    ],
)
def test_tampering_is_found(fresh_db: str, sql: str, bad: int, reason: str) -> None:
    _fill(fresh_db, 15)
    with connect(fresh_db) as conn:
        conn.execute(sql)
        conn.commit()
        result = audit.verify(conn, KEY)
    assert not result.ok
    assert result.first_bad_seq == bad
    assert reason in (result.reason or "")


def test_concurrent_appends_keep_one_chain(fresh_db: str) -> None:
    threads = [threading.Thread(target=_fill, args=(fresh_db, 20)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with connect(fresh_db) as conn:
        result = audit.verify(conn, KEY)
    assert result.ok and result.rows == 80

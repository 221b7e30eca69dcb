"""Public answers kept encoded by the rows they were made from (``api.answers``), and the pool's
connection check skipped for connections that just worked (``api.pooling``).

What-is-here and the 楼盘表 answer the anonymous public from a memo keyed by the digest of the
database rows: the database is asked every time, so a change of the register shows at once
(other rows, another key); the answer carries a strong ETag and ``no-cache``; nobody but the
anonymous public is ever answered from it. On a copy of the small district of its own (the
test changes a unit's registration status).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from fastapi.testclient import TestClient

from api import pooling
from api.answers import AnswerMemo, encode
from api.auth import issue_token
from cadastre.access.privacy import Role
from cadastre.settings import Settings
from tests.conftest import app_data_dir, client_for


@pytest.fixture(scope="module")
def answers_db(small_district) -> str:
    return small_district("answers")


@pytest.fixture(scope="module")
def client(answers_db: str, test_settings: Settings, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[TestClient]:
    data_dir = app_data_dir(test_settings, tmp_path_factory.mktemp("answers"))
    with client_for(answers_db, Settings(storage={"data_dir": data_dir}),
                    api={"rate_limit_enabled": False}) as c:   # (limits: their own tests)
        yield c


def test_public_answers_are_revalidated_and_never_stale(client: TestClient,
                                                        answers_db: str) -> None:
    with psycopg.connect(answers_db, autocommit=True) as conn:
        code, building, lon, lat = conn.execute("""
            SELECT u.unit_code::text, u.building_code::text, ST_X(c), ST_Y(c)
            FROM cad.unit u JOIN cad.unit_status s USING (unit_code)
            CROSS JOIN LATERAL (SELECT ST_PointOnSurface(ST_Transform(u.geom, 4326)) AS c) p
            WHERE u.valid_to IS NULL AND u.floor_count = 1
              AND s.registration_status = 'registered'
            ORDER BY u.unit_code LIMIT 1""").fetchone()
    memo = client.app.state.cadastre.answers
    here = f"/api/v1/here?lon={lon}&lat={lat}"
    table = f"/api/v1/buildings/{building}/table"
    plain = {"Accept-Encoding": "identity"}

    def units_of(body: dict) -> list[dict]:      # what-is-here's units, or the 楼盘表's
        return body["units"] if "units" in body else [u for f in body["floors"]
                                                      for u in f["units"]]

    def status_of(body: dict) -> str:
        return next(u["registration_status"] for u in units_of(body) if u["unit_code"] == code)

    first = {}
    for path in (here, table):
        a = client.get(path, headers=plain)
        hits = memo.hits
        b = client.get(path, headers=plain)
        assert a.status_code == b.status_code == 200
        assert memo.hits == hits + 1                       # the second from the memo
        assert a.content == b.content and a.headers["etag"] == b.headers["etag"]
        assert a.headers["cache-control"] == "no-cache"
        assert {"Authorization", "X-API-Key", "Accept-Encoding"} <= {
            v.strip() for v in a.headers["vary"].split(",")}
        assert status_of(a.json()) == "registered"
        # revalidation, and the gzip body under its own tag
        again = client.get(path, headers={**plain, "If-None-Match": a.headers["etag"]})
        assert again.status_code == 304 and not again.content
        gz = client.get(path, headers={"Accept-Encoding": "gzip"})
        assert gz.headers["content-encoding"] == "gzip" and gz.json() == a.json()
        assert gz.headers["etag"] == a.headers["etag"][:-1] + '-gz"'
        first[path] = a

    # the register changes: the very next answer says so, under another tag
    with psycopg.connect(answers_db, autocommit=True) as conn:
        conn.execute("UPDATE cad.unit_status SET registration_status = 'pre_sale' "
                     "WHERE unit_code = %s", (code,))
    for path in (here, table):
        r = client.get(path, headers={**plain, "If-None-Match": first[path].headers["etag"]})
        assert r.status_code == 200 and r.headers["etag"] != first[path].headers["etag"]
        assert status_of(r.json()) == "pre_sale"

    # a registrar is never answered from the memo (nor stored in it): their answer has fields
    # the public's has not, and no public tag
    token, _ = issue_token(client.app.state.cadastre.settings, Role.REGISTRAR, str(uuid.uuid4()))
    staff = {"Authorization": f"Bearer {token}", **plain}
    size = len(memo)
    for path in (here, table):
        r = client.get(path, headers=staff)
        assert r.status_code == 200 and "etag" not in r.headers
        assert any("mortgaged" in u for u in units_of(r.json()))    # encumbrances: staff
        public = client.get(path, headers=plain).json()
        assert not any("mortgaged" in u for u in units_of(public))
    assert len(memo) == size


def test_memo_keeps_recent_answers_within_its_bytes() -> None:
    answers = [encode({"n": i, "pad": "x" * 1000}, None, 1) for i in range(10)]
    memo = AnswerMemo(max_bytes=3 * answers[0].size + 10)
    for i, a in enumerate(answers[:3]):
        memo.put("k", bytes([i]), a)
    assert memo.get("k", bytes([0])) is answers[0]           # 0 is now the most recent
    memo.put("k", bytes([3]), answers[3])                    # evicts 1, the least recent
    assert memo.get("k", bytes([1])) is None
    assert [memo.get("k", bytes([i])) is not None for i in (0, 2, 3)] == [True] * 3
    assert memo.bytes <= memo.max_bytes and len(memo) == 3
    assert memo.get("other", bytes([0])) is None             # kinds do not share entries
    huge = encode({"pad": "x" * 10_000}, None, 1)
    memo.put("k", b"huge", huge)                             # larger than the memo: not kept
    assert memo.get("k", b"huge") is None and len(memo) == 3


def test_pool_check_skipped_only_for_connections_that_just_worked(answers_db: str) -> None:
    async def run() -> None:
        conn = await psycopg.AsyncConnection.connect(answers_db, autocommit=True)
        await conn.execute("SELECT 1")
        await pooling.returned(conn)
        await conn.close()                    # broken behind the pool's back
        await pooling.check(conn)             # just worked: not checked
        pooling._returned[conn] = time.monotonic() - pooling.BYPASS_SECONDS - 0.1
        with pytest.raises(psycopg.OperationalError):
            await pooling.check(conn)         # idle longer: checked, found broken
        fresh = await psycopg.AsyncConnection.connect(answers_db, autocommit=True)
        async with fresh:
            await pooling.check(fresh)        # never returned yet: checked, and fine

    # in a thread of its own: an earlier test of this process may have left an event loop
    # running in this one (Playwright's sync API does)
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()

"""The reporting queue (上报): each 登簿 queues its exchange message in its own transaction; the
directory-drop sender writes Biz<BizMsgID>.xml under /Biz/<county>/BizMsg; Rep messages are read
back (acknowledged / rejected); the HTTP sender posts to a real endpoint; unanswered messages
older than a limit are listed."""

from __future__ import annotations

import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest

from cadastre.access.pii import audit_key, load_cipher
from cadastre.cases import workflow as wf
from cadastre.exchange import queue
from cadastre.exchange.reader import Head, Row, read_file
from cadastre.settings import CasesSettings
from tests.combined_support import BUYER, enter, units


@pytest.fixture(scope="module")
def env(small_district, test_settings):
    url = small_district("xqueue")
    keys = wf.Keys(load_cipher(test_settings), audit_key(test_settings))
    return {"url": url, "keys": keys, "cases": CasesSettings(),
            "actor": wf.Actor("test", "registrar", "测试登簿员")}


def _rows(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("SELECT biz_msg_id, business_no, rec_type, state, change_id "
                        "FROM xchg.outbound ORDER BY created_at").fetchall()


def test_each_registration_queues_its_message_and_the_sender_delivers(env, tmp_path):
    cipher = env["keys"].cipher
    owned = units(env["url"], "owned", 2)
    mortgaged = units(env["url"], "mortgaged", 1)[0]
    with psycopg.connect(env["url"]) as conn:
        assert _rows(conn) == []
        transfer = enter(env, conn, 7, owned[0], [BUYER], {"transaction_price": "300"})
        seizure = enter(env, conn, 22, owned[1], request={"authority": "杭州市西湖区人民法院"})
        release = enter(env, conn, 12, mortgaged, request={"reason": "主债权消灭"})
        rows = _rows(conn)
        assert [r[0] for r in rows] == [transfer["biz_msg_id"], seizure["biz_msg_id"],
                                        release["biz_msg_id"]]
        assert [r[2].strip() for r in rows] == ["2000402", "8000101", rows[2][2]]
        assert rows[2][2] in ("4000101", "9000101")
        assert {r[3] for r in rows} == {"pending"}
        assert [r[4] for r in rows] == [transfer["change_id"], seizure["change_id"],
                                        release["change_id"]]
        biz = rows[0][0]
        assert len(biz) == 18 and biz.startswith(owned[0][:6])
        # stored encrypted: the buyer's name is not in the row
        raw = conn.execute("SELECT body_enc FROM xchg.outbound WHERE biz_msg_id = %s",
                           (biz,)).fetchone()[0]
        assert BUYER.name.encode() not in bytes(raw)

        drop = queue.DirectorySender(tmp_path / "exchange")
        assert queue.send_pending(conn, cipher, drop) == {"sent": 3, "failed": 0}
        assert queue.states(conn) == {"sent": 3}
        path = tmp_path / "exchange" / "Biz" / owned[0][:6] / "BizMsg" / f"Biz{biz}.xml"
        items = list(read_file(path))
        head = next(i for i in items if isinstance(i, Head))
        assert head.fields["BizMsgID"] == biz and head.fields["RecFlowID"] == rows[0][1]
        parties = [i for i in items if isinstance(i, Row) and i.table == "ZTT_GY_QLR"]
        assert BUYER.name in {p.attrs["QLRMC"] for p in parties}
        assert any(i.table == "QLT_FW_FDCQ_YZ" for i in items if isinstance(i, Row))

        rep = tmp_path / "exchange" / "RepMsg"
        rep.mkdir()
        (rep / f"Rep{rows[0][0]}.xml").write_text(
            f"<Response><BizMsgID>{rows[0][0]}</BizMsgID><SuccessFlag>1</SuccessFlag>"
            "<ResponseCode>0000</ResponseCode><ResponseInfo>成功</ResponseInfo></Response>")
        (rep / f"Rep{rows[1][0]}.xml").write_text(
            f"<Response><BizMsgID>{rows[1][0]}</BizMsgID><SuccessFlag>2</SuccessFlag>"
            "<ResponseCode>2003</ResponseCode><ResponseInfo>字段缺失</ResponseInfo></Response>")
        (rep / "Rep000000000000000000.xml").write_text(
            '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "y">]><Response/>')
        counts = queue.read_responses(conn, drop)
        assert counts == {"acknowledged": 1, "rejected": 1, "unknown": 0, "bad": 1}
        assert queue.states(conn) == {"acknowledged": 1, "rejected": 1, "sent": 1}
        assert conn.execute("SELECT response_code FROM xchg.outbound WHERE biz_msg_id = %s",
                            (rows[1][0],)).fetchone()[0] == "2003"
        late = queue.overdue(conn, timedelta(0))
        assert [m["biz_msg_id"] for m in late] == [rows[2][0]]
        assert queue.overdue(conn, timedelta(days=1)) == []


def test_http_sender_posts_the_message(env):
    got: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            got.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        unit = units(env["url"], "owned", 1, skip=5)[0]
        with psycopg.connect(env["url"]) as conn:
            out = enter(env, conn, 7, unit, [BUYER], {"transaction_price": "280"})
            sender = queue.HttpSender(f"http://127.0.0.1:{server.server_address[1]}/biz")
            assert queue.send_pending(conn, env["keys"].cipher, sender)["sent"] >= 1
            assert any(out["biz_msg_id"].encode() in body for body in got)
    finally:
        server.shutdown()

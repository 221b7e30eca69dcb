"""Events benchmark: registrations pushed to subscribers end to end.

    python -m bench.events [--registrations 10000] [--subscribers 3]

On a copy of the 2,000-parcel demo district (``bench_events``), three utilities subscribe to
``transfer.recorded``; real HTTP receivers (a separate process, standard library server) verify
each signature and note when it arrived. ``cadastre worker`` (another process) delivers while
this process enters ``--registrations`` ordinary transfers (open, review, 登簿) as fast as it can.
Printed: the registration rate, every delivery's lag from the event's commit to its arrival
(p50/p99; target p99 < 2 s), and the delivery throughput.

The peer, measured in the same run: the same receivers' round trip for a signed POST sent
directly in a loop (no database, no outbox), i.e. what one subscriber's ordered delivery
cannot beat; the ratio says what the outbox and payload rendering cost on top.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psycopg

from bench.common import console, percentile, scaled_demo
from cadastre.access import apikeys
from cadastre.access.pii import audit_key, load_cipher
from cadastre.cases import workflow as wf
from cadastre.cases.application import Application, PartyInput
from cadastre.cases.model import Action
from cadastre.settings import get_settings
from cadastre.sharing import subscriptions as subs
from cadastre.sharing.delivery import signature
from cadastre.store.db import embedded_cluster
from cadastre.store.migrate import migrate


def _receiver(port: int, log_path: str, secret_env: str) -> None:
    """A receiver process: appends ``event_id arrival`` lines, answers 204."""
    secret = os.environ.get(secret_env, "")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs"))
    from webhook_receiver import verify

    out = open(log_path, "a", buffering=1)   # noqa: SIM115 (open for the process's life)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            ok = verify(secret, self.headers.get("X-Cadastre-Signature", ""), body)
            out.write(f"{self.headers.get('Idempotency-Key')} {time.time():.6f} {int(ok)}\n")
            self.send_response(204 if ok else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, fmt: str, *args: object) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--registrations", type=int, default=10_000)
    ap.add_argument("--subscribers", type=int, default=3)
    args = ap.parse_args()
    settings = get_settings()
    scaled_demo(2000)
    cluster = embedded_cluster(settings)
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        admin.execute('DROP DATABASE IF EXISTS "bench_events" WITH (FORCE)')
        admin.execute('CREATE DATABASE "bench_events" TEMPLATE "bench_2000"')
    url = cluster.url("bench_events")
    migrate(url)
    cipher = load_cipher(settings)
    work = Path(settings.data_dir) / "bench-events"
    work.mkdir(parents=True, exist_ok=True)
    receivers = []
    with psycopg.connect(url) as conn:
        for i in range(args.subscribers):
            apikeys.create_key(conn, apikeys.hashing_key(settings), f"utility{i}", ["330106"],
                               ["unit.unit_code", "unit.seat", "party.name", "party.phone",
                                "party.role", "right.kind"])
            port = 19000 + i
            _, secret = subs.add(conn, cipher, f"utility{i}", f"http://127.0.0.1:{port}/hook",
                                 f"utility{i}", ["transfer.recorded"])
            log = work / f"receiver{i}.log"
            log.write_text("")
            os.environ[f"BENCH_SECRET_{i}"] = secret
            p = mp.Process(target=_receiver, args=(port, str(log), f"BENCH_SECRET_{i}"),
                           daemon=True)
            p.start()
            receivers.append((port, log, secret, p))
        conn.commit()
        units = [r[0].strip() for r in conn.execute(
            "SELECT r.unit_code FROM cad.right_record r WHERE r.kind = 'ownership' AND "
            "r.status = 1 AND NOT EXISTS (SELECT 1 FROM cad.right_record x WHERE x.unit_code = "
            "r.unit_code AND x.status = 1 AND x.kind IN ('seizure', 'pre_notice')) "
            "ORDER BY md5(r.unit_code) LIMIT %s", (args.registrations,))]
    time.sleep(1)
    # the peer: signed POSTs straight to one receiver, in order, over one connection
    port, _, secret, _ = receivers[0]
    body = json.dumps({"type": "peer", "units": [{"unit_code": units[0]}]}).encode()
    with httpx.Client() as client:
        lat = []
        for k in range(500):
            t = time.perf_counter()
            client.post(f"http://127.0.0.1:{port}/hook", content=body, headers={
                "Idempotency-Key": f"peer-{k}", "Content-Type": "application/json",
                "X-Cadastre-Signature": signature(secret, int(time.time()), body)})
            lat.append(time.perf_counter() - t)
    peer_rate = 1 / percentile(lat, 50)
    console.print(f"peer: direct signed POST p50 {percentile(lat, 50) * 1000:.2f} ms "
                  f"({peer_rate:.0f}/s per ordered subscriber)")
    env = {**os.environ, "DATABASE_URL": url}
    worker = subprocess.Popen([sys.executable, "-m", "api.cli", "worker", "--threads", "1"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    keys = wf.Keys(cipher, audit_key(settings))
    actor = wf.Actor("bench", "registrar", "基准登簿员")
    t0 = time.monotonic()
    with psycopg.connect(url) as conn:
        for i, unit in enumerate(units):
            buyer = PartyInput(f"基准买受人{i}", "11010519491231002X", phone="13800000000")
            o = wf.open_case(conn, settings.cases, keys, actor, Application(
                7, (unit,), (buyer,), request={"transaction_price": "300"}))
            wf.advance(conn, settings.cases, keys, actor, o.case_no, Action.REVIEW,
                       review=wf.Review("初审", "同意"))
            wf.advance(conn, settings.cases, keys, actor, o.case_no, Action.REGISTER)
            if (i + 1) % 1000 == 0:
                console.print(f"  {i + 1:,} registrations ({time.monotonic() - t0:.0f} s)")
    produce = time.monotonic() - t0
    expected = len(units) * len(receivers)
    deadline = time.monotonic() + 600
    while True:
        got = sum(sum(1 for _ in log.open()) for _, log, _, _ in receivers) - 500
        if got >= expected or time.monotonic() > deadline:
            break
        time.sleep(1)
    worker.terminate()
    with psycopg.connect(url) as conn:
        committed = {str(e): t.timestamp() for e, t in conn.execute(
            "SELECT event_id, occurred_at FROM share.event WHERE type = 'transfer.recorded'")}
    lags, arrivals, bad = [], [], 0
    for _, log, _, _ in receivers:
        for line in log.read_text().splitlines():
            key, at, ok = line.split()
            bad += ok == "0"
            if key in committed:
                lags.append(float(at) - committed[key])
                arrivals.append(float(at))
    span = max(arrivals) - min(committed.values()) if arrivals else float("nan")
    console.print(f"[bold]{len(units):,} transfers entered in {produce:.0f} s "
                  f"({len(units) / produce:.0f}/s)[/]; {len(lags):,} of {expected:,} deliveries"
                  f" arrived, {bad} with a bad signature")
    console.print(f"  lag commit → receiver: p50 {percentile(lags, 50) * 1000:.0f} ms, "
                  f"p99 {percentile(lags, 99) * 1000:.0f} ms"
                  f"{' ✓' if percentile(lags, 99) < 2 else ' ✗'} (target p99 < 2 s)")
    console.print(f"  throughput {len(lags) / span:.0f} deliveries/s over {span:.0f} s "
                  f"({len(lags) / span / len(receivers):.0f}/s per subscriber; the direct "
                  f"peer's ordered limit {peer_rate:.0f}/s)")
    for *_, p in receivers:
        p.terminate()


if __name__ == "__main__":
    main()

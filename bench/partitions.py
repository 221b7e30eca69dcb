"""Partitions by county (migration 0024): converting a database in place, and the hot reads
before and after.

    python -m bench.partitions --scale 2000 --runs 60 --rounds 3

1. The demo district of ``--scale`` parcels (``bench_<scale>``, built once by this checkout) is
   copied into ``bench_<scale>_flat``, a database built by the migrations before 0024 (the
   layout before partitions).
2. ``bench_<scale>_conv`` is a clone of it converted in place by migration 0024: the time it
   takes, and the register fingerprint (``cadastre.exchange.fingerprint``) before and after.
3. The hot reads (unit-code lookup with certificate and owner count, 楼盘表, what-is-here,
   search by address and by code) are timed on both, in alternating rounds: on the flat
   database by the peer, the code of the commit before 0024 (``git archive``), on the converted
   one by this checkout. Wall time (median) and CPU time per read (client + database backend).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import psycopg

from bench.common import console, scaled_demo
from cadastre.exchange.fingerprint import register_fingerprint
from cadastre.settings import PROJECT_ROOT, get_settings
from cadastre.store.db import embedded_cluster
from cadastre.store.migrate import migrate
from tests.partition_support import copy_register, migrate_before

MIGRATION = "cadastre/store/migrations/0024_county_partitions.sql"
READS = Path(__file__).with_name("partition_reads.py")


def _git(*args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=PROJECT_ROOT, check=True,
                          capture_output=True).stdout


def peer_checkout(folder: Path) -> str:
    """The ``cadastre`` package of the commit before the one that added migration 0024."""
    added = _git("log", "--diff-filter=A", "--format=%H", "--", MIGRATION).decode().split()
    ref = f"{added[-1]}^" if added else "HEAD"
    with tarfile.open(fileobj=BytesIO(_git("archive", ref, "cadastre"))) as tar:
        tar.extractall(folder, filter="data")
    return _git("rev-parse", "--short", ref).decode().strip()


def _databases(scale: int) -> tuple[str, str, float, bool]:
    """URLs of the flat and the converted database, the conversion's seconds, and whether
    the fingerprint is unchanged."""
    source = scaled_demo(scale)
    cluster = embedded_cluster(get_settings())
    flat, conv = f"bench_{scale}_flat", f"bench_{scale}_conv"
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (flat,)).fetchone()
        if not exists:
            admin.execute(f'CREATE DATABASE "{flat}"')
            with tempfile.TemporaryDirectory() as tmp:
                migrate_before(cluster.url(flat), 24, Path(tmp))
            copy_register(source, cluster.url(flat))
        admin.execute(f'DROP DATABASE IF EXISTS "{conv}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{conv}" TEMPLATE "{flat}"')
    with psycopg.connect(cluster.url(flat), autocommit=True) as conn:
        before = register_fingerprint(conn)
    t0 = time.perf_counter()
    migrate(cluster.url(conv))
    seconds = time.perf_counter() - t0
    for url in (cluster.url(flat), cluster.url(conv)):   # both freshly written: settle them
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
    with psycopg.connect(cluster.url(conv)) as conn:
        same = register_fingerprint(conn) == before
    return cluster.url(flat), cluster.url(conv), seconds, same


def _side(url: str, runs: int, pythonpath: str) -> dict[str, dict[str, float]]:
    p = subprocess.run([sys.executable, str(READS), url, str(runs)], capture_output=True,
                       text=True, env={**os.environ, "PYTHONPATH": pythonpath}, check=True)
    return json.loads(p.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=60, help="reads per round and kind")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per side")
    args = ap.parse_args()
    flat, conv, seconds, same = _databases(args.scale)
    console.print(f"migration 0024 on the {args.scale}-parcel district: {seconds:.1f} s, "
                  f"register fingerprint {'unchanged' if same else 'CHANGED'}")
    with tempfile.TemporaryDirectory() as peer:
        ref = peer_checkout(Path(peer))
        console.print(f"load average before: {os.getloadavg()}")
        rounds: dict[str, list[dict[str, dict[str, float]]]] = {"flat": [], "part": []}
        for _ in range(args.rounds):
            rounds["flat"].append(_side(flat, args.runs, peer))
            rounds["part"].append(_side(conv, args.runs, str(PROJECT_ROOT)))
        console.print(f"load average after: {os.getloadavg()}")
    console.print(f"peer: {ref} on the layout before 0024; this checkout on the converted "
                  f"database; median of {args.rounds} rounds × {args.runs} reads")
    console.print(f"{'read':<16}{'flat ms':>9}{'part ms':>9}{'ratio':>7}"
                  f"{'flat cpu ms':>13}{'part cpu ms':>13}{'ratio':>7}")
    for name in rounds["flat"][0]:
        def med(side: str, key: str, name: str = name) -> float:
            return statistics.median(r[name][key] for r in rounds[side])
        a, b = med("flat", "median_ms"), med("part", "median_ms")
        ca, cb = med("flat", "cpu_ms"), med("part", "cpu_ms")
        console.print(f"{name:<16}{a:>9.2f}{b:>9.2f}{b / a:>7.2f}{ca:>13.2f}{cb:>13.2f}"
                      f"{cb / ca:>7.2f}")


if __name__ == "__main__":
    main()

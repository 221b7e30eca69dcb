"""One side of ``bench.partitions``: the hot reads on one database, timed, as JSON on stdout.

Run as a script (``python bench/partition_reads.py URL RUNS``) so that ``PYTHONPATH`` decides
which code version's ``cadastre`` package does the reads: the peer (the layout before
migration 0024 and its code) or this checkout. Imports nothing from ``bench``.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from typing import Any

import psycopg

from cadastre.query import features as F
from cadastre.query import search as S


def _samples(conn: psycopg.Connection) -> dict[str, Any]:
    row = conn.execute("""
        SELECT u.unit_code, u.building_code,
               ST_X(ST_Transform(ST_PointOnSurface(u.geom), 4326)),
               ST_Y(ST_Transform(ST_PointOnSurface(u.geom), 4326)), p.seat
        FROM cad.unit u JOIN cad.parcel p ON p.parcel_code = u.parcel_code
        WHERE u.valid_to IS NULL AND p.valid_to IS NULL AND p.seat IS NOT NULL
        ORDER BY u.unit_code LIMIT 1 OFFSET 500""").fetchone()
    assert row is not None, "the district has no units"
    return {"unit": row[0].strip(), "building": row[1].strip(), "lon": row[2], "lat": row[3],
            "seat": row[4][:6]}


def _backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) of the PostgreSQL backend ``pid`` (same machine)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _measure(url: str, runs: int) -> dict[str, dict[str, float]]:
    with psycopg.connect(url) as sync:
        s = _samples(sync)
    sens = F.Sensitive(certificate_all=True, owner_count=True)
    out: dict[str, dict[str, float]] = {}
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        pid = conn.info.backend_pid
        reads = {
            "unit_code": lambda: F.unit(conn, s["unit"], sens),
            "building_table": lambda: F.building_table(conn, s["building"], sens),
            "what_is_here": lambda: F.here(conn, s["lon"], s["lat"]),
            "search_address": lambda: S.search(conn, S.parse_query(s["seat"]), ()),
            "search_code": lambda: S.search(conn, S.parse_query(s["unit"][:14]), ()),
        }
        for name, read in reads.items():
            for _ in range(3):
                await read()
            times = []
            cpu0, db0 = time.process_time(), _backend_cpu(pid)
            for _ in range(runs):
                t0 = time.perf_counter()
                await read()
                times.append(time.perf_counter() - t0)
            cpu = (time.process_time() - cpu0 + _backend_cpu(pid) - db0) / runs
            out[name] = {"median_ms": statistics.median(times) * 1000,
                         "cpu_ms": cpu * 1000}
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_measure(sys.argv[1], int(sys.argv[2])))))

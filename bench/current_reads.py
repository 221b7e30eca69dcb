"""Current-version reads: the query API's look-ups, timed and with their plans.

    python -m bench.current_reads --scale 20000 --runs 40 --json after.json
    PYTHONPATH=/path/to/older/checkout python -m bench.current_reads ... --json before.json
    python -m bench.current_reads --compare before.json after.json

Runs the real functions of ``cadastre.query`` and ``cadastre.access.owner`` (parcel, building,
unit and 楼盘表 details, what-is-here, address and code search, an owner's units with details,
the row counts of /health) on a scaled demo district, ``--runs`` times each, and records the
median time and every statement's plan (``auto_explain``: node types, relations, index names).
Run by two code versions on the same database, ``--compare`` prints the ratio of medians per
read and whether the plans are the same: how migration 0009's ``cad.*_current`` views were
checked against the ``valid_to IS NULL`` they replaced.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg

from bench.common import console, scaled_demo
from cadastre.access import owner
from cadastre.access.pii import load_cipher
from cadastre.query import features as F
from cadastre.query import search as S
from cadastre.settings import get_settings
from cadastre.store.admin import registry_counts


def _plan_shape(node: dict[str, Any]) -> list[str]:
    """The plan as ``node type(relation/index)`` strings, depth first."""
    name = node["Node Type"]
    target = node.get("Index Name") or node.get("Relation Name")
    out = [f"{name}({target})" if target else name]
    for child in node.get("Plans", []):
        out += _plan_shape(child)
    return out


def _samples(conn: psycopg.Connection) -> dict[str, Any]:
    row = conn.execute("""
        SELECT u.unit_code, u.building_code, u.parcel_code,
               ST_X(ST_Transform(ST_PointOnSurface(u.geom), 4326)),
               ST_Y(ST_Transform(ST_PointOnSurface(u.geom), 4326)), p.seat
        FROM cad.unit u JOIN cad.parcel p ON p.parcel_code = u.parcel_code
        WHERE u.valid_to IS NULL AND p.valid_to IS NULL AND p.seat IS NOT NULL
        ORDER BY u.unit_code LIMIT 1 OFFSET 500""").fetchone()
    assert row is not None, "the district has no units"
    codes = [r[0] for r in conn.execute(
        "SELECT DISTINCT unit_code FROM cad.right_record WHERE kind = 'ownership' "
        "AND valid_to IS NULL ORDER BY unit_code LIMIT 3")]
    return {"unit": row[0].strip(), "building": row[1].strip(), "parcel": row[2].strip(),
            "lon": row[3], "lat": row[4], "seat": row[5][:6], "owned": codes}


_EXPLAIN_ON = ("LOAD 'auto_explain'", "SET auto_explain.log_min_duration = 0",
               "SET auto_explain.log_level = notice", "SET auto_explain.log_format = json",
               "SET auto_explain.log_nested_statements = on")
_EXPLAIN_OFF = "SET auto_explain.log_min_duration = -1"

Read = Callable[[], Awaitable[Any]]


def _reads(s: dict[str, Any], conn: psycopg.AsyncConnection,
           sync: psycopg.Connection) -> dict[str, tuple[Read, Any]]:
    """name → (one read, the connection it runs on); the synchronous owner and /health reads
    run in a thread, as the server runs them."""
    sens = F.Sensitive(certificate_all=True, owner_count=True)
    cipher = load_cipher(get_settings())
    return {
        "parcel": (lambda: F.parcel(conn, s["parcel"]), conn),
        "building": (lambda: F.building(conn, s["building"]), conn),
        "unit": (lambda: F.unit(conn, s["unit"], sens), conn),
        "building_table": (lambda: F.building_table(conn, s["building"], sens), conn),
        "here": (lambda: F.here(conn, s["lon"], s["lat"]), conn),
        "search_address": (lambda: S.search(conn, S.parse_query(s["seat"]), ()), conn),
        "search_code": (lambda: S.search(conn, S.parse_query(s["unit"][:14]), ()), conn),
        "owner_units": (lambda: asyncio.to_thread(
            owner.unit_records, sync, cipher, s["owned"], True), sync),
        "health_counts": (lambda: asyncio.to_thread(registry_counts, sync), sync),
    }


async def _run(conn: Any, sql: str) -> None:
    if isinstance(conn, psycopg.AsyncConnection):
        await conn.execute(sql)  # type: ignore[arg-type]
    else:
        await asyncio.to_thread(conn.execute, sql)


async def _measure(read: Read, conn: Any, runs: int) -> tuple[float, list[list[str]]]:
    """Median milliseconds of ``runs`` reads (after one to warm up), and the plans of one more
    read's statements."""
    await read()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await read()
        times.append(time.perf_counter() - t0)
    captured: list[str] = []

    def keep(diag: Any) -> None:
        captured.append(diag.message_primary or "")

    conn.add_notice_handler(keep)
    for stmt in _EXPLAIN_ON:
        await _run(conn, stmt)
    await read()
    await _run(conn, _EXPLAIN_OFF)
    conn.remove_notice_handler(keep)
    plans = [_plan_shape(json.loads(m[m.index("{"):])["Plan"]) for m in captured if "{" in m]
    return statistics.median(times) * 1000, plans


async def _all(url: str, s: dict[str, Any], runs: int
               ) -> tuple[dict[str, float], dict[str, list[list[str]]]]:
    timings, plans = {}, {}
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        with psycopg.connect(url, autocommit=True) as sync:
            for name, (read, on) in _reads(s, conn, sync).items():
                timings[name], plans[name] = await _measure(read, on, runs)
    return timings, plans


def compare(before: Path, after: Path) -> None:
    a, b = json.loads(before.read_text()), json.loads(after.read_text())
    console.print(f"{'read':<16}{'before ms':>11}{'after ms':>10}{'ratio':>8}  plans")
    for name, ms in a["median_ms"].items():
        new = b["median_ms"][name]
        same = "same" if a["plans"][name] == b["plans"][name] else "DIFFERENT"
        console.print(f"{name:<16}{ms:>11.2f}{new:>10.2f}{new / ms:>8.2f}  {same}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = ap.parse_args()
    if args.compare:
        compare(*args.compare)
        return
    url = scaled_demo(args.scale)
    with psycopg.connect(url) as conn:
        s = _samples(conn)
    timings, plans = asyncio.run(_all(url, s, args.runs))
    for name, ms in timings.items():
        console.print(f"{name:<16}{ms:>9.2f} ms  ({len(plans[name])} statements)")
    if args.json:
        args.json.write_text(json.dumps({"median_ms": timings, "plans": plans}, indent=1))


if __name__ == "__main__":
    main()

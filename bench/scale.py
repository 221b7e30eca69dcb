"""Scale benchmark (issue #18): the 1,000,000-parcel district (~10 M units).

    python -m bench.scale                      # builds bench_1000000 once (cadastre.demo.scale)
    python -m bench.scale --scale 200000 --seconds 20 --tiles 1000

Prints, with the machine it ran on:
  * the district's build time (as recorded by the build, ``var/bench/builds.json``) and its
    database size, per big table;
  * point lookup (``/api/v1/here``), unit-code lookup (``/api/v1/units/{code}``) and 楼盘表
    (``/api/v1/buildings/{code}/table``) p50/p99 under ``--clients`` (8) concurrent clients
    (target p99 < 20 ms), and public search (``/api/v1/search``, target p99 < 100 ms), against
    the real server (``--workers`` processes, one per core by default) over HTTP on 127.0.0.1
    (rate limits off: eight clients from one address would otherwise be the designed 429s):
    first a cold pass (each sample path once: its pages are read from disk), then the steady
    state over the same paths for ``--seconds`` with ``wrk`` (Debian package; a C client, so
    the figures are the server's and not a Python client's share of the cores; httpx when wrk
    is missing), after ``--warmup`` seconds (5) of the same load that are not counted (each
    worker process meets each path once before its answer is known: the cold pass went to
    either worker);
  * parcel tiles cold and warm vs tipg on the same database (``bench.tiles.compare``; targets
    cold ≥ 2×, warm ≥ 20× tipg's throughput);
  * a full QA run over the whole district (``cadastre.qa.engine.check``, scope ``district``;
    target < 3 min).
Sample units, buildings and places are drawn at random over the whole district (fixed seed).
Every request loop is bounded in time and stops by itself; only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psycopg

from bench.common import BUILD_LOG, console, percentile, scaled_demo, wait_healthy, wrk_load
from cadastre.settings import PROJECT_ROOT, get_settings
from cadastre.store.cluster import free_port

TARGETS_MS = {"what_is_here": 20, "unit_code": 20, "building_table": 20, "search": 100}


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB memory, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}")


def samples(url: str, n: int, seed: int = 18) -> dict[str, list[str]]:
    """Request paths over the whole district: random units (code, building, a point inside)
    and search texts (compound names, seats, code prefixes)."""
    rng = random.Random(seed)
    with psycopg.connect(url) as conn:
        conn.execute("SELECT setseed(%s)", (0.18,))
        units = conn.execute(
            "SELECT u.unit_code, u.building_code, "
            "ST_X(ST_Transform(ST_PointOnSurface(u.geom), 4326)), "
            "ST_Y(ST_Transform(ST_PointOnSurface(u.geom), 4326)) "
            f"FROM cad.unit u TABLESAMPLE BERNOULLI (0.05) REPEATABLE ({seed}) "
            "WHERE u.valid_to IS NULL LIMIT %s", (n,)).fetchall()
        parcels = conn.execute(
            "SELECT parcel_code, seat, compound_name FROM cad.parcel "
            f"TABLESAMPLE BERNOULLI (0.5) REPEATABLE ({seed}) WHERE valid_to IS NULL "
            "LIMIT %s", (n,)).fetchall()
        version = conn.execute("SELECT version(), postgis_lib_version()").fetchone()
    texts: list[str] = []
    for code, seat, compound in parcels:
        texts.append(compound or seat[:6])
        texts.append(code.strip()[:14])
    rng.shuffle(texts)
    return {
        "what_is_here": [f"/api/v1/here?lon={lon:.7f}&lat={lat:.7f}" for _, _, lon, lat in units],
        "unit_code": [f"/api/v1/units/{u.strip()}" for u, _, _, _ in units],
        "building_table": [f"/api/v1/buildings/{b.strip()}/table" for _, b, _, _ in units],
        "search": [f"/api/v1/search?q={quote(t)}" for t in texts if t],
        "_version": [f"PostgreSQL {version[0].split()[1]}, PostGIS {version[1]}"]
        if version else ["?"],
    }


async def _load(base: str, paths: list[str], clients: int, seconds: float | None
                ) -> tuple[list[float], Counter[int], float]:
    """``clients`` concurrent clients (httpx) over ``paths``: each path once when ``seconds``
    is None (the cold pass: never requested before), else round and round for ``seconds``."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        deadline = time.monotonic() + (seconds or 0.0)

        async def worker(i: int) -> None:
            n = i
            while (n < len(paths)) if seconds is None else (time.monotonic() < deadline):
                path = paths[n % len(paths)]
                n += clients
                t0 = time.perf_counter()
                r = await client.get(path)
                latencies.append(time.perf_counter() - t0)
                statuses[r.status_code] += 1

        t0 = time.monotonic()
        await asyncio.gather(*(worker(i) for i in range(clients)))
        wall = time.monotonic() - t0
    return latencies, statuses, wall


def _server(url: str, workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    data_dir = get_settings().data_dir / "bench-scale"
    data_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory",
         "--no-proxy-headers", "--host", "127.0.0.1", "--port", str(port), "--log-level",
         "warning", "--workers", str(workers)], cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # CADASTRE_WORKERS as `cadastre serve --workers` sets it: each process sizes its pool
        env={**os.environ, "DATABASE_URL": url, "CADASTRE_DATA_DIR": str(data_dir),
             "CADASTRE_WORKERS": str(workers), "CADASTRE_RATE_LIMIT_ENABLED": "false"})
    return wait_healthy(proc, f"http://127.0.0.1:{port}", 120)


def reads(url: str, clients: int, seconds: float, workers: int, n: int = 400, seed: int = 18,
          warmup: float = 5.0) -> dict[str, dict[str, Any]]:
    """Per kind of read: a cold pass (each of ``n`` sample paths once, 8 httpx clients: pages
    read from disk for the first time), then the steady state over the same paths for
    ``seconds`` with wrk (or httpx when wrk is not installed)."""
    paths = samples(url, n, seed)
    console.print(f"  database: {paths.pop('_version')[0]}; server: {workers} worker process"
                  + ("es" if workers > 1 else "") + f"; {n} sample paths per kind, drawn over "
                  "the whole district")
    proc, base = _server(url, workers)
    out: dict[str, dict[str, Any]] = {}
    try:
        for kind, urls in paths.items():
            lat, st, wall = asyncio.run(_load(base, urls, clients, None))
            cold = {"n": len(lat), "p50_ms": percentile(lat, 50) * 1000,
                    "p99_ms": percentile(lat, 99) * 1000,
                    "ok": sum(c for s, c in st.items() if s == 200)}
            if warmup > 0:
                wrk_load(base, urls, clients, warmup)
            warm = wrk_load(base, urls, clients, seconds)
            client = "wrk"
            if warm is None:
                client = "httpx (wrk not installed)"
                lat, st, wall = asyncio.run(_load(base, urls, clients, seconds))
                warm = {"n": len(lat), "rps": len(lat) / wall,
                        "p50_ms": percentile(lat, 50) * 1000,
                        "p99_ms": percentile(lat, 99) * 1000,
                        "errors": sum(c for s, c in st.items() if s != 200)}
            out[kind] = {"cold": cold, "warm": warm, "client": client}
            console.print(f"  {kind:15s} cold (each path once): p50 {cold['p50_ms']:6.1f} ms  "
                          f"p99 {cold['p99_ms']:6.1f} ms  ok {cold['ok']}/{cold['n']}")
            console.print(f"  {'':15s} steady ({client}): {warm['rps']:7.0f} req/s  p50 "
                          f"{warm['p50_ms']:6.1f} ms  p99 {warm['p99_ms']:6.1f} ms  "
                          f"(target < {TARGETS_MS[kind]} ms)  errors {warm['errors']}")
    finally:
        proc.terminate()
        proc.wait(30)
    return out


def qa_run(url: str) -> tuple[float, int, dict[str, float]]:
    from cadastre.qa.engine import check
    from cadastre.qa.scope import Scope

    times: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        t0 = time.perf_counter()
        findings = check(conn, Scope("district"), get_settings().qa, timings=times)
        return time.perf_counter() - t0, len(findings), times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=1_000_000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=5.0,
                    help="seconds of steady load before the measured ones (not counted)")
    ap.add_argument("--tiles", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="server worker processes for the reads (default: one per core)")
    ap.add_argument("--seed", type=int, default=18,
                    help="sample seed (another seed: other units, not yet read, for the cold pass)")
    ap.add_argument("--skip-reads", action="store_true")
    ap.add_argument("--skip-tiles", action="store_true")
    ap.add_argument("--skip-qa", action="store_true")
    args = ap.parse_args()
    console.print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f}")
    url = scaled_demo(args.scale)
    name = f"bench_{args.scale}"
    built = json.loads(BUILD_LOG.read_text()).get(name) if BUILD_LOG.exists() else None
    with psycopg.connect(url) as conn:
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]  # type: ignore[index]
        units = conn.execute("SELECT count(*) FROM cad.unit WHERE valid_to IS NULL"
                             ).fetchone()[0]  # type: ignore[index]
        parcels = conn.execute("SELECT count(*) FROM cad.parcel WHERE valid_to IS NULL"
                               ).fetchone()[0]  # type: ignore[index]
    console.print(f"\ndistrict {name}: {parcels} current parcels, {units} current units")
    if built:
        console.print(f"  build: {built['seconds']:.0f} s = {built['seconds'] / 60:.1f} min "
                      f"with {built['workers']} workers (target < 60 min); phases "
                      + ", ".join(f"{k} {v:.0f} s" for k, v in built["phases"].items())
                      + (f"; resumed {built['resumed_chunks']} chunks"
                         if built.get("resumed_chunks") else ""))
    else:
        console.print("  build: not recorded (built before builds.json existed)")
    console.print(f"  database size: {size / 2**30:.1f} GiB")
    for table, b in (built or {}).get("tables", [])[:8]:
        console.print(f"    {table:26s} {b / 2**30:6.2f} GiB")

    if not args.skip_reads:
        console.print(f"\nreads over HTTP, {args.clients} concurrent clients, {args.seconds:.0f} s "
                      "each:")
        reads(url, args.clients, args.seconds, args.workers, seed=args.seed, warmup=args.warmup)

    if not args.skip_tiles:
        from bench.tiles import compare, report

        console.print(f"\nparcel tiles z12–z18 ({args.tiles}), concurrency {args.clients}:")
        results, _ = compare(url, args.tiles, args.clients, args.seconds)
        report(results)

    if not args.skip_qa:
        console.print("\nQA over the whole district (every enabled rule):")
        seconds, n, times = qa_run(url)
        console.print(f"  {seconds:.0f} s = {seconds / 60:.1f} min (target < 3 min), "
                      f"{n} findings")
        for rule, sec in sorted(times.items(), key=lambda kv: -kv[1])[:8]:
            console.print(f"    {rule:28s} {sec:6.1f} s")
    console.print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

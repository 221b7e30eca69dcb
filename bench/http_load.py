"""Bounded local load test (issue #21): N seconds at C connections over tiles, search and details
against a real server process on loopback, then the same load on a static file of the same
server as the peer (ratio printed). Rate limits stay on: 429s are counted apart as designed
answers; anything else that is not 2xx/304 is an error.

    python -m bench.http_load                     # 60 s, 64 connections, 2,000-parcel district
    python -m bench.http_load --seconds 20 --connections 32

Only 127.0.0.1 is contacted; the loop stops by itself after ``--seconds``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import mercantile
import psycopg
import typer

from bench.common import console, percentile, scaled_demo, wait_healthy
from cadastre.settings import PROJECT_ROOT, get_settings
from cadastre.store.cluster import free_port

OK = {200, 204, 304}


def _targets(url: str) -> dict[str, list[str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT parcel_code, ST_X(c), ST_Y(c), seat FROM (SELECT parcel_code, seat, "
            "ST_Transform(ST_PointOnSurface(geom), 4326) c FROM cad.parcel "
            "WHERE valid_to IS NULL ORDER BY parcel_code LIMIT 400) s").fetchall()
    tiles = sorted({f"/tiles/parcels,buildings,labels/16/{t.x}/{t.y}.mvt"
                    for _, lon, lat, _ in rows for t in [mercantile.tile(lon, lat, 16)]})
    return {"tiles": tiles,
            "search": [f"/api/v1/search?q={(seat or code)[:6]}" for code, _, _, seat in rows],
            "details": [f"/api/v1/parcels/{code.strip()}" for code, _, _, _ in rows]}


async def _run(base: str, urls: dict[str, list[str]], seconds: float, connections: int
               ) -> tuple[dict[str, list[float]], Counter[tuple[str, int]], int, float]:
    latencies: dict[str, list[float]] = defaultdict(list)
    statuses: Counter[tuple[str, int]] = Counter()
    failures = 0
    kinds = sorted(urls)       # an equal share of requests per kind, URLs spread within each
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30,
                                 headers={"Accept-Encoding": "gzip"}) as client:
        deadline = time.monotonic() + seconds

        async def worker(i: int) -> None:
            nonlocal failures
            n = i
            while time.monotonic() < deadline:
                kind = kinds[n % len(kinds)]
                url = urls[kind][(n // len(kinds) * 7919) % len(urls[kind])]
                n += connections
                t0 = time.monotonic()
                try:
                    r = await client.get(url)
                    statuses[(kind, r.status_code)] += 1
                    latencies[kind].append(time.monotonic() - t0)
                except httpx.HTTPError:
                    failures += 1

        started = time.monotonic()
        await asyncio.gather(*(worker(i) for i in range(connections)))
        wall = time.monotonic() - started
    return latencies, statuses, failures, wall


def _server(url: str, data_dir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory",
         "--no-proxy-headers", "--host", "127.0.0.1", "--port", str(port), "--log-level",
         "warning"], cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "DATABASE_URL": url, "CADASTRE_DATA_DIR": str(data_dir)})
    base = f"http://127.0.0.1:{port}"
    return wait_healthy(proc, base, 60)


def main(seconds: float = typer.Option(60.0, max=600), connections: int = 64,
         parcels: int = 2000) -> None:
    url = scaled_demo(parcels)
    data_dir = get_settings().data_dir / "bench-http"
    data_dir.mkdir(parents=True, exist_ok=True)
    urls = _targets(url)
    proc, base = _server(url, data_dir)
    try:
        with httpx.Client(base_url=base, timeout=60) as c:   # warm the tile cache
            for u in urls["tiles"]:
                c.get(u)
        console.print(f"load: {seconds:.0f} s at {connections} connections over "
                      f"{sum(map(len, urls.values()))} URLs (tiles, search, details)")
        lat, st, failures, wall = asyncio.run(_run(base, urls, seconds, connections))
        peer_lat, peer_st, peer_fail, peer_wall = asyncio.run(
            _run(base, {"static": ["/build.json"]}, min(seconds, 20), connections))
    finally:
        proc.terminate()
        proc.wait(30)
    total = sum(st.values())
    errors = failures + sum(n for (_, s), n in st.items() if s not in OK and s != 429)
    limited = sum(n for (_, s), n in st.items() if s == 429)
    for kind, values in sorted(lat.items()):
        ok = sum(n for (k, s), n in st.items() if k == kind and s in OK)
        console.print(f"  {kind:8} {len(values) / wall:8.0f} req/s  p50 "
                      f"{percentile(values, 50) * 1000:6.1f} ms  p99 "
                      f"{percentile(values, 99) * 1000:6.1f} ms  ok {ok}  "
                      f"429 {st[(kind, 429)]}")
    rps, peer_rps = total / wall, sum(peer_st.values()) / peer_wall
    console.print(f"  total    {rps:8.0f} req/s over {wall:.1f} s: {total} answers, "
                  f"{errors} errors, {limited} designed 429s")
    console.print(f"  peer     {peer_rps:8.0f} req/s (/build.json, static file, same server); "
                  f"ratio {rps / peer_rps:.2f}  (peer errors {peer_fail})")
    if errors:
        raise SystemExit(1)


if __name__ == "__main__":
    typer.run(main)

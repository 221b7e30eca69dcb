"""``cadastre serve --workers N`` with and without ``--pgbouncer``, same load, same run.

    python -m bench.pgbouncer --seconds 20 --connections 32 --workers 2 --rounds 2

The load of ``bench.http_load`` (tiles, search, parcel details on the 2,000-parcel district,
rate limits on) against a server whose workers connect directly (the peer) and against one
whose request pools go through pgbouncer in transaction pooling, in alternating order for
``--rounds`` rounds (the first side of a run meets colder caches). Prints requests per second,
p50/p99 per kind, and the ratio of the median totals; errors fail the run.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys

import httpx
import typer

from bench.common import console, percentile, scaled_demo, wait_healthy
from bench.http_load import OK, _run, _targets
from cadastre.settings import PROJECT_ROOT, get_settings
from cadastre.store.cluster import free_port


def _serve(url: str, workers: int, pgbouncer: bool) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    data_dir = get_settings().data_dir / "bench-http"
    data_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--workers",
         str(workers), *(["--pgbouncer"] if pgbouncer else [])],
        cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "DATABASE_URL": url, "CADASTRE_DATA_DIR": str(data_dir)})
    base = f"http://127.0.0.1:{port}"
    return wait_healthy(proc, base, 90)


def _side(url: str, urls: dict[str, list[str]], workers: int, pgbouncer: bool,
          seconds: float, connections: int) -> float:
    proc, base = _serve(url, workers, pgbouncer)
    try:
        with httpx.Client(base_url=base, timeout=60) as c:   # warm the tile cache
            for u in urls["tiles"]:
                c.get(u)
        lat, st, failures, wall = asyncio.run(_run(base, urls, seconds, connections))
    finally:
        proc.terminate()
        proc.wait(30)
    errors = failures + sum(n for (_, s), n in st.items() if s not in OK and s != 429)
    name = "pgbouncer" if pgbouncer else "direct"
    for kind, values in sorted(lat.items()):
        console.print(f"  {name:9} {kind:8} {len(values) / wall:7.0f} req/s  p50 "
                      f"{percentile(values, 50) * 1000:6.1f} ms  p99 "
                      f"{percentile(values, 99) * 1000:6.1f} ms  429 {st[(kind, 429)]}")
    rps = sum(st.values()) / wall
    console.print(f"  {name:9} total    {rps:7.0f} req/s, {errors} errors")
    if errors:
        raise SystemExit(1)
    return rps


def main(seconds: float = typer.Option(20.0, max=600), connections: int = 32,
         workers: int = 2, parcels: int = 2000, rounds: int = 2) -> None:
    url = scaled_demo(parcels)
    urls = _targets(url)
    console.print(f"{seconds:.0f} s at {connections} connections, {workers} workers, "
                  f"{rounds} rounds, load average {os.getloadavg()}")
    totals: dict[bool, list[float]] = {False: [], True: []}
    for r in range(rounds):
        for pooled in ((False, True) if r % 2 == 0 else (True, False)):
            totals[pooled].append(_side(url, urls, workers, pooled, seconds, connections))
    direct, pooled_rps = statistics.median(totals[False]), statistics.median(totals[True])
    console.print(f"median req/s: direct {direct:.0f}, pgbouncer {pooled_rps:.0f}; "
                  f"pgbouncer / direct: {pooled_rps / direct:.2f}  (load average "
                  f"{os.getloadavg()})")


if __name__ == "__main__":
    typer.run(main)

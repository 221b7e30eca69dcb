"""Shared set-up for benchmarks: a scaled demo district in its own database of the embedded
cluster (built once, reused), and small timing helpers."""

from __future__ import annotations

import statistics
import subprocess
import time

import psycopg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cadastre.access.pii import load_cipher
from cadastre.demo.load import load_demo
from cadastre.settings import get_settings
from cadastre.store.db import embedded_cluster
from cadastre.store.migrate import migrate

console = Console()


def scaled_demo(parcels: int, units: bool = True) -> str:
    """URL of database ``bench_<parcels>`` (``bench_<parcels>_lite`` without units and
    records) holding a demo district of that size."""
    settings = get_settings()
    cluster = embedded_cluster(settings)
    cluster.start()
    name = f"bench_{parcels}" + ("" if units else "_lite")
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            migrate(cluster.url(name))      # (built by an earlier version of the schema)
            return cluster.url(name)
        admin.execute(f'DROP DATABASE IF EXISTS "{name}_building"')
        admin.execute(f'CREATE DATABASE "{name}_building"')
    url = cluster.url(name + "_building")
    migrate(url)
    t0 = time.monotonic()
    with psycopg.connect(url) as conn, Progress(
            TextColumn(f"[bold]demo --scale {parcels}[/]"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("load", total=parcels)
        load_demo(conn, load_cipher(settings), parcels=parcels, units=units,
                  progress=lambda d, t: bar.update(task, completed=d))
    console.print(f"loaded {parcels} parcels in {time.monotonic() - t0:.0f} s")
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}_building" RENAME TO "{name}"')
    return cluster.url(name)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary(latencies: list[float], wall: float) -> dict[str, float]:
    return {"n": len(latencies), "rps": len(latencies) / wall if wall else float("nan"),
            "p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000,
            "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan")}


def wait_healthy(proc: subprocess.Popen, base: str,
                 timeout: float = 60) -> tuple[subprocess.Popen, str]:
    """``proc`` (a server started on ``base``) once its /health answers; killed if it never does."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("server did not start")

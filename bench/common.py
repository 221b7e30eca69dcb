"""Shared set-up for benchmarks: a scaled demo district in its own database of the embedded
cluster (built once, reused), and small timing helpers."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from cadastre.access.pii import load_cipher
from cadastre.demo.load import DEFAULT_SEED, load_demo
from cadastre.demo.scale import PARALLEL_FROM, build
from cadastre.settings import PROJECT_ROOT, get_settings
from cadastre.store.db import embedded_cluster
from cadastre.store.migrate import migrate

console = Console()
BUILD_LOG = PROJECT_ROOT / "var" / "bench" / "builds.json"   # how each scaled district was built


def scaled_demo(parcels: int, units: bool = True) -> str:
    """URL of database ``bench_<parcels>`` (``bench_<parcels>_lite`` without units and
    records) holding a demo district of that size. From ``PARALLEL_FROM`` parcels up (with
    units) it is built by the parallel builder (cadastre.demo.scale), its build time, phases and
    sizes kept in ``var/bench/builds.json``."""
    settings = get_settings()
    cluster = embedded_cluster(settings)
    cluster.start()
    name = f"bench_{parcels}" + ("" if units else "_lite")
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            migrate(cluster.url(name))      # (built by an earlier version of the schema)
            return cluster.url(name)
        if units and parcels >= PARALLEL_FROM:
            built = True
        else:
            built = False
            admin.execute(f'DROP DATABASE IF EXISTS "{name}_building"')
            admin.execute(f'CREATE DATABASE "{name}_building"')
    if built:   # the parallel builder: its own staging database, resumed if interrupted
        with Progress(TextColumn(f"[bold]demo --scale {parcels}[/]"), BarColumn(),
                      MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                      TimeRemainingColumn(), console=console) as bar:
            task = bar.add_task("load", total=parcels)
            report = build(cluster.url(name), load_cipher(settings), parcels, DEFAULT_SEED,
                           progress=lambda d, t: bar.update(task, completed=d, total=t))
        console.print(f"built {parcels} parcels in {report.stats.seconds:.0f} s "
                      f"({report.stats.units} units, {report.workers} workers; "
                      + ", ".join(f"{k} {v:.0f} s" for k, v in report.phases.items()) + ")")
        BUILD_LOG.parent.mkdir(parents=True, exist_ok=True)
        log = json.loads(BUILD_LOG.read_text()) if BUILD_LOG.exists() else {}
        log[name] = {"seconds": round(report.stats.seconds, 1), "workers": report.workers,
                     "phases": {k: round(v, 1) for k, v in report.phases.items()},
                     "parcels": report.stats.parcels, "units": report.stats.units,
                     "rights": report.stats.rights, "parties": report.stats.parties,
                     "resumed_chunks": report.resumed_chunks,
                     "database_bytes": report.database_bytes, "tables": report.sizes,
                     "restored_seconds": {k: round(v, 1) for k, v in report.restored.items()}}
        BUILD_LOG.write_text(json.dumps(log, indent=1))
        return cluster.url(name)
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


# wrk (Debian package ``wrk``, a load generator in C): the steady-state figures without a
# Python client taking its share of the two cores. Each connection cycles through the paths.
_WRK_LUA = """
local paths = {}
for line in io.lines(os.getenv("WRK_PATHS")) do paths[#paths + 1] = line end
local i = math.random(#paths)
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i], {["Accept-Encoding"] = "gzip"})
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK %d %d %.1f %.1f %.1f %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.connect + e.read + e.write + e.timeout + e.status))
end
"""


def wrk_load(base: str, paths: list[str], clients: int, seconds: float
             ) -> dict[str, float] | None:
    """Steady state with wrk (None when wrk is not installed)."""
    exe = shutil.which("wrk")
    if exe is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "paths.txt").write_text("\n".join(paths) + "\n")
        (Path(tmp) / "cycle.lua").write_text(_WRK_LUA)
        out = subprocess.run(
            [exe, "-t", "1", "-c", str(clients), "-d", f"{seconds:.0f}s", "--timeout", "30s",
             "-s", str(Path(tmp) / "cycle.lua"), base], capture_output=True, text=True,
            env={**os.environ, "WRK_PATHS": str(Path(tmp) / "paths.txt")}, timeout=seconds + 60)
    line = next((x for x in out.stdout.splitlines() if x.startswith("WRK ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {out.stdout[-500:]} {out.stderr[-500:]}")
    n, micros, p50, p99, worst, errors = line.split()[1:]
    return {"n": int(n), "rps": int(n) / (int(micros) / 1e6), "p50_ms": float(p50) / 1000,
            "p99_ms": float(p99) / 1000, "max_ms": float(worst) / 1000, "errors": int(errors)}

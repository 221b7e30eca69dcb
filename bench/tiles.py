"""Vector tile benchmark: our server vs tipg on the same database and the same tiles.

    python -m bench.tiles --scale 200000 --tiles 2000 --concurrency 8

Builds (once) a demo district of ``--scale`` parcels in the embedded cluster, installs tipg into
its own virtualenv under var/bench (it pins its own FastAPI), then requests the same list of
tiles (z12–z18 inside the data extent, fixed seed) from:
  * ours, cold: CADASTRE_TILE_CACHE=false, every tile rendered by PostGIS;
  * ours, warm: cache on, after one priming pass;
  * tipg: /collections/cad.parcel/tiles/WebMercatorQuad/{z}/{x}/{y} with the same columns
    (geom_3857, the public parcel fields, current rows only).
Prints throughput and p50/p99 for each and the ratios the issue asks for.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import mercantile
import psycopg

from bench.common import console, scaled_demo, summary, wrk_load
from cadastre.access.privacy import Role
from cadastre.query.layers import LAYERS
from cadastre.settings import PROJECT_ROOT

BENCH_DIR = PROJECT_ROOT / "var" / "bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tile_list(url: str, n: int, seed: int = 7) -> list[tuple[int, int, int]]:
    """n tiles, evenly over z12–z18, each containing at least one parcel centroid."""
    rng = random.Random(seed)
    with psycopg.connect(url) as conn:
        pts = conn.execute(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Transform(ST_Centroid(geom_3857), 4326) c "
            "FROM cad.parcel WHERE valid_to IS NULL ORDER BY version_id) s").fetchall()
    zooms = list(range(12, 19))
    out: list[tuple[int, int, int]] = []
    seen: set[tuple[int, int, int]] = set()
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 100 * n:     # a district too small for n distinct tiles at z15-z18
            raise SystemExit(f"the district has fewer than {n} distinct tiles; ask for fewer")
        z = zooms[len(out) % len(zooms)]
        lon, lat = rng.choice(pts)
        t = mercantile.tile(lon, lat, z)
        key = (t.z, t.x, t.y)
        if key in seen and z >= 15:
            continue
        seen.add(key)
        out.append(key)
    rng.shuffle(out)
    return out


def tcp_url(url: str) -> str:
    """The URL over TCP on 127.0.0.1 (tipg's settings refuse a URL without a host, such as the
    embedded cluster's Unix-socket one; the cluster listens on 127.0.0.1 too)."""
    from urllib.parse import quote

    from psycopg.conninfo import conninfo_to_dict

    d = conninfo_to_dict(url)
    host = str(d.get("host") or "127.0.0.1")
    if host.startswith("/"):
        host = "127.0.0.1"
    auth = quote(str(d.get("user") or ""), safe="")
    if d.get("password"):
        auth += ":" + quote(str(d["password"]), safe="")
    return f"postgresql://{auth}@{host}:{d.get('port') or 5432}/{d.get('dbname')}"


def tipg_python() -> Path:
    venv = BENCH_DIR / "tipg-venv"
    py = venv / "bin" / "python"
    if not py.exists():
        console.print("installing tipg into var/bench/tipg-venv …")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "tipg", "uvicorn"], check=True)
    return py


def start(cmd: list[str], env: dict[str, str], port: int, probe: str) -> subprocess.Popen:
    log = open(BENCH_DIR / f"server-{port}.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=5).status_code < 500:
                return proc
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"server on {port} did not start; see {log.name}")


async def run(urls: list[str], concurrency: int) -> tuple[list[float], float, list[int]]:
    latencies: list[float] = []
    sizes: list[int] = [0] * len(urls)
    queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    for item in enumerate(urls):
        queue.put_nowait(item)
    limits = httpx.Limits(max_connections=concurrency)

    async with httpx.AsyncClient(timeout=120, limits=limits,
                                 headers={"Accept-Encoding": "gzip"}) as client:
        async def worker() -> None:
            while True:
                try:
                    i, u = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                t0 = time.perf_counter()
                r = await client.get(u)
                latencies.append(time.perf_counter() - t0)
                if r.status_code not in (200, 204):
                    raise SystemExit(f"{u} → {r.status_code} {r.text[:200]}")
                # bytes on the wire (gzip) for this URL's index
                sizes[i] = int(r.headers.get("content-length") or len(r.content))

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    return latencies, wall, sizes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", type=int, default=200_000)
    ap.add_argument("--tiles", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20.0,
                    help="steady-state seconds under wrk (ours warm, tipg)")
    ap.add_argument("--lite", action="store_true",
                    help="district without units/records (same parcels; loads much faster)")
    args = ap.parse_args()
    db = scaled_demo(args.scale, units=not args.lite)
    results, sizes_by_zoom = compare(db, args.tiles, args.concurrency, args.seconds)
    console.print(f"\n{args.tiles} tiles z12–z18, concurrency {args.concurrency}, "
                  f"{args.scale} parcels")
    report(results)
    c, t = results["ours-cold"], results["tipg"]
    console.print(f"  our cold p99 {c['p99_ms']:.1f} ms vs tipg p50 {t['p50_ms']:.1f} ms "
                  f"(target: ≤)")
    for z in (14, 18):
        s = sorted(sizes_by_zoom.get(z, [0]))
        console.print(f"  z{z} tile bytes (gzip): p50 {s[len(s) // 2]}, max {s[-1]}")


def compare(db: str, n_tiles: int, concurrency: int, seconds: float = 20.0
            ) -> tuple[dict[str, dict[str, float]], dict[int, list[int]]]:
    """The same ``n_tiles`` parcel tiles from our server cold and warm and from tipg on
    database ``db``: a summary per server, and our cold tiles' sizes by zoom.

    Each server first gets every tile of the list once from ``concurrency`` httpx clients
    (``ours-cold``, ``ours-warm``, ``tipg``; for ours-warm after a priming pass). With wrk
    installed, ours-warm and tipg are then also loaded for ``seconds`` by ``concurrency`` wrk
    connections going round the list (``ours-warm-wrk``, ``tipg-wrk``): under the httpx client,
    Python on the same two cores, our warm server used a fifth of a core (the client was the
    limit), so the warm ratio is taken between the wrk figures, the same client on both sides
    (tipg, a few dozen tiles a second, never goes round the list)."""
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    tiles = tile_list(db, n_tiles)
    fields = [f.name for f in LAYERS["parcels"].visible(Role.PUBLIC)]
    results: dict[str, dict[str, float]] = {}
    sizes_by_zoom: dict[int, list[int]] = {}

    def steady(name: str, base: str, paths: list[str]) -> None:
        r = wrk_load(base, paths, concurrency, seconds)     # (None without wrk)
        if r is None:
            return
        if r["errors"]:
            raise SystemExit(f"{name}: {r['errors']} failed requests under wrk")
        results[f"{name}-wrk"] = {**r, "wrapped": float(r["n"] > len(paths))}

    # --- ours, cold and warm
    for mode in ("cold", "warm"):
        port = free_port()
        data_dir = BENCH_DIR / f"ours-{mode}"
        env = {"DATABASE_URL": db, "CADASTRE_PORT": str(port), "CADASTRE_DATA_DIR": str(data_dir),
               "CADASTRE_TILE_CACHE": "false" if mode == "cold" else "true",
               "CADASTRE_RATE_LIMIT_ENABLED": "false"}     # (tipg has none)
        proc = start([sys.executable, "-m", "api.cli", "serve"], env, port, "/health")
        try:
            paths = [f"/tiles/parcels/{z}/{x}/{y}.mvt" for z, x, y in tiles]
            base = f"http://127.0.0.1:{port}"
            urls = [base + p for p in paths]
            if mode == "warm":
                asyncio.run(run(urls, concurrency))  # prime the cache
            lat, wall, sizes = asyncio.run(run(urls, concurrency))
            results[f"ours-{mode}"] = summary(lat, wall)
            if mode == "cold":
                for (z, _, _), n in zip(tiles, sizes, strict=True):
                    sizes_by_zoom.setdefault(z, []).append(n)
            else:
                steady("ours-warm", base, paths)
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    # --- tipg on the same table
    py = tipg_python()
    port = free_port()
    env = {"DATABASE_URL": tcp_url(db), "TIPG_DB_SCHEMAS": json.dumps(["cad"]),
           "TIPG_DB_TABLES": json.dumps(["cad.parcel"]), "TIPG_MAX_FEATURES_PER_TILE": "20000"}
    proc = start([str(py), "-m", "uvicorn", "tipg.main:app", "--port", str(port),
                  "--log-level", "warning"], env, port, "/collections")
    try:
        q = f"?geom-column=geom_3857&properties={','.join(fields)}&filter=valid_to%20IS%20NULL"
        paths = [f"/collections/cad.parcel/tiles/WebMercatorQuad/{z}/{x}/{y}{q}"
                 for z, x, y in tiles]
        base = f"http://127.0.0.1:{port}"
        lat, wall, _ = asyncio.run(run([base + p for p in paths], concurrency))
        results["tipg"] = summary(lat, wall)
        steady("tipg", base, paths)
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    return results, sizes_by_zoom


def report(results: dict[str, dict[str, float]]) -> None:
    """Each server's figures and the two ratios the issue asks for."""
    for name, r in results.items():
        console.print(f"  {name:14s} {r['rps']:8.1f} tiles/s   p50 {r['p50_ms']:7.1f} ms   "
                      f"p99 {r['p99_ms']:7.1f} ms"
                      + ("   (went round the list)" if r.get("wrapped") else ""))
    t, c, w = results["tipg"], results["ours-cold"], results["ours-warm"]
    console.print(f"  cold ÷ tipg {c['rps'] / t['rps']:.2f}× (target ≥ 2; httpx, each tile once)")
    if "ours-warm-wrk" in results:
        ww, tw = results["ours-warm-wrk"], results["tipg-wrk"]
        console.print(f"  warm ÷ tipg {ww['rps'] / tw['rps']:.2f}× (target ≥ 20; wrk on both); "
                      f"with the httpx client {w['rps'] / t['rps']:.2f}× (the client's limit)")
    else:
        console.print(f"  warm ÷ tipg {w['rps'] / t['rps']:.2f}× (target ≥ 20; httpx: install "
                      "wrk for the server's figure rather than the Python client's)")


if __name__ == "__main__":
    main()

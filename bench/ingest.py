"""Survey ingest benchmark: load + validate a 100k-parcel GeoPackage vs ogr2ogr loading it.

    python -m bench.ingest --parcels 100000

The GeoPackage is exported (once) from the scaled demo database with ogr2ogr; our side is the
real path a survey takes: read_survey → staged in cad.survey_feature → every submission rule
(overlaps against the registry, gaps, areas, codes) → report. The peer is `ogr2ogr -f PostgreSQL`
loading the same file into the same database in the same run.
Targets (issue): 100k parcels validated and staged in < 60 s; load ≤ 2× ogr2ogr.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

from bench.common import console, scaled_demo
from cadastre.jobs import create_job
from cadastre.settings import PROJECT_ROOT, get_settings
from cadastre.survey.submission import create_submission, store_upload, validate_submission

BENCH_DIR = PROJECT_ROOT / "var" / "bench"


def pg_dsn(url: str) -> str:
    info = conninfo_to_dict(url)
    return " ".join(f"{k}={v}" for k, v in info.items() if k in
                    ("host", "port", "dbname", "user", "password"))


def export_gpkg(url: str, parcels: int) -> Path:
    out = BENCH_DIR / f"survey_{parcels}.gpkg"
    if not out.exists():
        sql = ("SELECT parcel_code AS ZDDM, seat AS ZL, land_use AS YT, registered_area AS ZDMJ, "
               "ST_GeometryN(geom, 1) AS geom FROM cad.parcel WHERE valid_to IS NULL "
               f"ORDER BY version_id LIMIT {parcels}")
        subprocess.run(["ogr2ogr", "-f", "GPKG", str(out), f"PG:{pg_dsn(url)}", "-sql", sql,
                        "-nln", "ZDJBXX", "-a_srs", "EPSG:4528"], check=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", type=int, default=200_000, help="registry size")
    ap.add_argument("--parcels", type=int, default=100_000, help="parcels in the survey")
    ap.add_argument("--lite", action="store_true",
                    help="district without units/records (same parcels; loads much faster)")
    args = ap.parse_args()
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    url = scaled_demo(args.scale, units=not args.lite)
    gpkg = export_gpkg(url, args.parcels)
    mb = gpkg.stat().st_size / 1e6
    console.print(f"survey: {gpkg.name}, {args.parcels} parcels, {mb:.1f} MB; "
                  f"load average {os.getloadavg()[0]:.2f} (2 cores)")
    with psycopg.connect(url, autocommit=True) as conn:
        # earlier runs' submissions: their staged features would only bloat the staging table
        # (autovacuum would clean up after them, but not before this run)
        conn.execute("DELETE FROM cad.survey_submission WHERE submitted_by = 'bench'")
        conn.execute("VACUUM cad.survey_feature")

    table = f"bench_ogr_{uuid.uuid4().hex[:6]}"
    t0 = time.perf_counter()
    subprocess.run(["ogr2ogr", "-f", "PostgreSQL", f"PG:{pg_dsn(url)}", str(gpkg),
                    "-nln", table, "-lco", "SCHEMA=public",
                    "--config", "PG_USE_COPY", "YES"], check=True, env=os.environ)
    ogr = time.perf_counter() - t0
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS public.{table}")

    s = get_settings()
    t0 = time.perf_counter()
    with gpkg.open("rb") as fh:
        upload = store_upload(fh, BENCH_DIR / "uploads")
    with psycopg.connect(url) as conn, conn.transaction():
        job = create_job(conn, "bench", "bench")
        sid = create_submission(conn, upload, gpkg.name, "bench", job, 4528)
    t: dict[str, float] = {"upload": time.perf_counter() - t0}
    report = validate_submission(url, sid, s.qa, job, timings=t)
    ours = time.perf_counter() - t0
    load = t["upload"] + t["read"] + t["stage"]
    console.print(f"\n  ogr2ogr load (same file, same database):  {ogr:7.1f} s")
    console.print(f"  ours load = upload + read + stage:        {load:7.1f} s  "
                  f"({t['upload']:.1f} + {t['read']:.1f} + {t['stage']:.1f})")
    console.print(f"  ours load ÷ ogr2ogr:                      {load / ogr:7.2f}×  (target ≤ 2)")
    console.print(f"  feature checks (codes, dupes, validity):  {t['checks']:7.1f} s")
    console.print(f"  validation rules:                         {t['rules']:7.1f} s")
    console.print(f"  report:                                   {t['report']:7.1f} s")
    console.print(f"  ours validated and staged, in all:        {ours:7.1f} s  (target < 60 s; "
                  f"{report['status']}, {len(report['errors'])} errors, "
                  f"{len(report['warnings'])} warnings)")
    for kind in ("errors", "warnings"):
        codes = Counter(e["code"] for e in report[kind])
        if codes:
            console.print(f"  {kind}: " + ", ".join(f"{c} ×{n}" for c, n in codes.most_common()))
    rules = {k[5:]: v for k, v in t.items() if k.startswith("rule:")}
    for k, v in sorted(rules.items(), key=lambda kv: -kv[1])[:8]:
        console.print(f"    {k:32s} {v:6.1f} s")
    console.print(f"  load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

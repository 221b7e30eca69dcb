"""QA benchmark: a full rule run over ~100k parcels of the scaled demo district.

    python -m bench.qa --scale 200000 --parcels 100000 [--lite] [--workers 1|2]

Runs every enabled rule over a bbox holding about --parcels current parcels and prints the time
per rule and in all. Target (issue): < 30 s for 100k parcels on this 2-core machine.
The peer, timed in the same run over the same bbox: one plain ``ST_Intersects`` self-join of
the parcels (the query a hand-written overlap check would start from), so the ratio says what a
whole QA run (every rule, exact findings) costs next to that single join.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter

import psycopg

from bench.common import console, scaled_demo
from cadastre.qa.engine import check
from cadastre.qa.scope import Scope
from cadastre.settings import get_settings

PEER = """
SELECT count(*) FROM cad.parcel a JOIN cad.parcel b
  ON a.geom_3857 && b.geom_3857 AND a.parcel_code < b.parcel_code
 AND ST_Intersects(a.geom, b.geom)
WHERE a.valid_to IS NULL AND b.valid_to IS NULL
  AND a.geom_3857 && ST_MakeEnvelope(%s, %s, %s, %s, 3857)"""


def bbox_for(conn: psycopg.Connection, parcels: int) -> tuple[float, float, float, float]:
    """The south-western part of the district holding about ``parcels`` current parcels."""
    row = conn.execute(
        "WITH p AS (SELECT geom_3857 FROM cad.parcel WHERE valid_to IS NULL "
        "ORDER BY ST_YMin(geom_3857), ST_XMin(geom_3857) LIMIT %s) "
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
        "(SELECT ST_Extent(geom_3857) e FROM p) s", (parcels,)).fetchone()
    return tuple(row)  # type: ignore[return-value]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", type=int, default=200_000)
    ap.add_argument("--parcels", type=int, default=100_000)
    ap.add_argument("--lite", action="store_true",
                    help="district without units/records (same parcels; loads much faster)")
    ap.add_argument("--workers", type=int, choices=(1, 2), default=None,
                    help="connections running rules at once (default: 2 for large scopes)")
    args = ap.parse_args()
    url = scaled_demo(args.scale, units=not args.lite)
    qa = get_settings().qa
    with psycopg.connect(url, autocommit=True) as conn:
        box = bbox_for(conn, args.parcels)
        scope = Scope("bbox", bbox_3857=box)
        n = conn.execute("SELECT count(*) FROM cad.parcel WHERE valid_to IS NULL AND "
                         "geom_3857 && ST_MakeEnvelope(%s, %s, %s, %s, 3857)", box).fetchone()[0]
        console.print(f"district {args.scale}{' (lite)' if args.lite else ''}, bbox with {n} "
                      f"parcels; load average {os.getloadavg()[0]:.2f} (2 cores)")
        conn.execute("SET jit = off")
        t0 = time.perf_counter()
        pairs = conn.execute(PEER, box).fetchone()[0]
        peer = time.perf_counter() - t0
        conn.execute("RESET jit")
        times: dict[str, float] = {}
        t0 = time.perf_counter()
        findings = check(conn, scope, qa, workers=args.workers, timings=times)
        total = time.perf_counter() - t0
    console.print(f"\n  peer: one ST_Intersects self-join:  {peer:6.1f} s  ({pairs} touching or "
                  "overlapping pairs)")
    console.print(f"  full QA run, {len(times) - 1} rules:       {total:6.1f} s  "
                  f"({len(findings)} findings; target < 30 s)")
    console.print(f"  QA run ÷ peer:                      {total / peer:6.2f}×")
    by_rule = Counter((f.rule_id, f.severity) for f in findings)
    console.print("  findings: " + ", ".join(f"{r} ({sev}) ×{n}" for (r, sev), n
                                             in by_rule.most_common()))
    console.print("  per rule (seconds of work; with 2 connections they overlap):")
    for rule, sec in sorted(times.items(), key=lambda kv: -kv[1]):
        console.print(f"    {rule:28s} {sec:6.1f} s")
    console.print(f"  load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

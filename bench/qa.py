"""QA benchmark: a full rule run over ~100k parcels of the scaled demo district.

    python -m bench.qa --scale 200000 --parcels 100000

Runs every enabled rule over a bbox holding about --parcels current parcels and prints the time
per rule and in all. Target (issue): < 30 s for 100k parcels on this 2-core machine.
"""

from __future__ import annotations

import argparse
import time

import psycopg

from bench.common import console, scaled_demo
from cadastre.qa.engine import check
from cadastre.qa.scope import Scope
from cadastre.settings import get_settings


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
    args = ap.parse_args()
    url = scaled_demo(args.scale, units=not args.lite)
    qa = get_settings().qa
    with psycopg.connect(url) as conn:
        box = bbox_for(conn, args.parcels)
        scope = Scope("bbox", bbox_3857=box)
        n = conn.execute("SELECT count(*) FROM cad.parcel WHERE valid_to IS NULL AND "
                         "geom_3857 && ST_MakeEnvelope(%s, %s, %s, %s, 3857)", box).fetchone()[0]
        times: dict[str, float] = {}
        last = [time.perf_counter(), ""]

        def progress(i: int, total: int, rule: str) -> None:
            now = time.perf_counter()
            if last[1]:
                times[last[1]] = now - last[0]
            last[:] = [now, rule]

        t0 = time.perf_counter()
        findings = check(conn, scope, qa, progress=progress)
        total = time.perf_counter() - t0
    console.print(f"QA over {n} parcels: {total:.1f} s, {len(findings)} findings "
                  f"(target < 30 s)")
    for rule, sec in sorted(times.items(), key=lambda kv: -kv[1]):
        console.print(f"  {rule:28s} {sec:6.1f} s")


if __name__ == "__main__":
    main()

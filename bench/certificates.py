"""Electronic certificates benchmark: N certificates issued and signed in one batch.

    python -m bench.certificates                  # 1,000 certificates, 2 worker processes
    python -m bench.certificates --count 200 --workers 1

The batch is what ``cadastre certificates issue`` runs (``cadastre.certificates.batch``): the
current ownership rights of consecutive units (whole buildings, as 交房即交证 hands them over),
each rendered (record page, parcel map, floor plans; PDF/A-3b), sealed with the office's PAdES
signature and stored, numbers and audit rows in the same transactions. On a copy of the
2,000-parcel demo district (``bench_2000``, built once) made for the run and dropped after.

Measured: wall time; CPU per certificate of all the batch's processes (this one and the
workers, sampled from /proc: load from other work on the machine does not count, so this is
the figure to compare between runs on a busy machine) and of this process alone (the database
side: reading the records, the maps' HTML, numbers, storing; the workers render and sign); the
load average before and after; peak memory of the process
tree sampled every 50 ms (``bench.osgb.TreeMemory``) as the largest sum of RSS (a shared library
counted once per process: an upper bound) and of PSS (shared pages shared out: what the tree
holds). Peer in the
same run: the owner's parcel map and floor plan PDFs of the same units rendered by
``cadastre.documents`` in one process (two unsigned documents per unit, the path of the owner
downloads), and pyHanko signing alone. Every 50th certificate is checked with pyHanko after the
run. Targets (issue #16): 1,000 in < 120 s, memory < 500 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

import psycopg
from psycopg.conninfo import conninfo_to_dict

from bench.common import console, scaled_demo
from bench.osgb import BENCH_DIR, TreeMemory
from cadastre.certificates import IssuingContext, store
from cadastre.certificates.batch import issue_batch
from cadastre.certificates.signing import check_signature
from cadastre.documents import floor_plan, parcel_map
from cadastre.settings import get_settings
from cadastre.store.db import embedded_cluster

RUN_DB = "bench_certificates_run"


def _copy(parcels: int) -> str:
    source = conninfo_to_dict(scaled_demo(parcels))["dbname"]     # (the URL names a socket)
    cluster = embedded_cluster(get_settings())
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{RUN_DB}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{RUN_DB}" TEMPLATE "{source}"')
    return cluster.url(RUN_DB)


def _drop() -> None:
    cluster = embedded_cluster(get_settings())
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{RUN_DB}" WITH (FORCE)')


def _versions(url: str, count: int) -> list[tuple[int, str]]:
    with psycopg.connect(url) as conn:
        return [(r[0], r[1].strip()) for r in conn.execute(
            "SELECT version_id, unit_code FROM cad.right_record WHERE kind = 'ownership' AND "
            "valid_to IS NULL AND status = 1 AND substr(unit_code, 20, 1) = 'F' "
            "ORDER BY unit_code LIMIT %s", (count,))]


def _peer(url: str, units: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds per unit: its parcel map and floor plan PDFs, one process (after a
    warm-up)."""
    with psycopg.connect(url) as conn:
        parcel_map.parcel_map_pdf(conn, units[0])
        started, cpu = time.perf_counter(), time.process_time()
        for code in units:
            parcel_map.parcel_map_pdf(conn, code)
            floor_plan.floor_plan_pdf(conn, code)
        return ((time.perf_counter() - started) / len(units),
                (time.process_time() - cpu) / len(units))


def _signing_alone(ctx: IssuingContext, url: str, unit: str, n: int = 50) -> float:
    """Seconds per signature of an unsigned document of about a certificate's size."""
    with psycopg.connect(url) as conn:
        pdf = parcel_map.parcel_map_pdf(conn, unit)
    signer = ctx.composer.signer
    signer.sign(pdf, "bench", "bench")
    started = time.perf_counter()
    for _ in range(n):
        signer.sign(pdf, "bench", "bench")
    return (time.perf_counter() - started) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--parcels", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--peer", type=int, default=40, help="units rendered by the peer")
    parser.add_argument("--keep", action="store_true", help="keep the run's database")
    args = parser.parse_args()

    settings = get_settings()
    url = _copy(args.parcels)
    try:
        versions = _versions(url, args.count)
        ctx = IssuingContext.from_settings(settings)
        workers = args.workers or settings.certificates.workers
        load_before = os.getloadavg()[0]
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        with TreeMemory() as memory:
            result = issue_batch(url, ctx, [v for v, _ in versions], actor="bench",
                                 workers=workers)
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        load_after = os.getloadavg()[0]
        cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
        with psycopg.connect(url) as conn:
            sample = [store.document(conn, r.certificate_id) for r in result.issued[::50]]
            sizes = conn.execute("SELECT avg(length(pdf)), sum(length(pdf)) FROM "
                                 "cad.certificate_document").fetchone()
        trust = ctx.composer.signer.trust_roots
        checked = [check_signature(pdf, trust).ok for pdf in sample]
        step = max(1, len(versions) // args.peer)
        peer, peer_cpu = _peer(url, [u for _, u in versions[::step]][:args.peer])
        sign = _signing_alone(ctx, url, versions[0][1])
    finally:
        if not args.keep:
            _drop()

    n = len(result.issued)
    per_cert = result.seconds / max(n, 1)
    cpu_per_cert = memory.cpu_seconds / max(n, 1)
    report = {
        "certificates": n, "skipped": len(result.skipped), "workers": workers,
        "cores": os.cpu_count(), "load_average_before_after": [round(load_before, 2),
                                                                round(load_after, 2)],
        "seconds": round(result.seconds, 1), "ms_per_certificate": round(per_cert * 1000),
        "cpu_seconds": round(memory.cpu_seconds, 1),
        "cpu_ms_per_certificate": round(cpu_per_cert * 1000),
        "main_process_cpu_seconds": round(cpu, 1), "peak_memory_mib": round(memory.peak / 2**20),
        "peak_memory_pss_mib": round(memory.peak_pss / 2**20),
        "signatures_checked": f"{sum(checked)}/{len(checked)} valid",
        "pdf_kib_avg": round(float(sizes[0] or 0) / 1024), "pdf_mib_total":
            round(float(sizes[1] or 0) / 2**20, 1),
        "peer_owner_pdfs_ms_per_unit": round(peer * 1000),
        "peer_owner_pdfs_cpu_ms_per_unit": round(peer_cpu * 1000),
        "ratio_certificate_vs_owner_pdfs": round(per_cert / peer, 2),
        "ratio_cpu_certificate_vs_owner_pdfs": round(cpu_per_cert / peer_cpu, 2),
        "signing_alone_ms": round(sign * 1000, 1),
        "target": "1,000 in < 120 s, < 500 MB",
    }
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    (BENCH_DIR / "certificates.json").write_text(json.dumps(report, indent=2))
    console.print_json(json.dumps(report))
    console.print(f"{n} certificates in {result.seconds:.1f} s ({per_cert * 1000:.0f} ms each, "
                  f"{workers} workers on {os.cpu_count()} cores, load average "
                  f"{load_before:.2f} → {load_after:.2f}), CPU {cpu_per_cert * 1000:.0f} ms "
                  f"per certificate (all processes of the batch), peak "
                  f"{memory.peak / 2**20:.0f} MiB RSS, {memory.peak_pss / 2**20:.0f} MiB PSS; "
                  f"peer: the owner's two PDFs {peer * 1000:.0f} ms ({peer_cpu * 1000:.0f} ms "
                  f"CPU) per unit in one process (ratio {per_cert / peer:.2f} wall, "
                  f"{cpu_per_cert / peer_cpu:.2f} CPU); signing alone {sign * 1000:.1f} ms")
    if n < len(versions) or not all(checked):
        raise SystemExit(1)


if __name__ == "__main__":
    main()

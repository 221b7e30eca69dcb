"""Registry import benchmark: an existing register as exchange XML staged, checked and accepted.

    python -m bench.import [--parcels 100000] [--rights 1000000]

The file (generated once under var/bench, streamed: one Message per parcel with its outline,
building, units, their ownership rights and parties) is imported into a fresh database of the
embedded cluster through the real path: stored, read (lxml, streamed), parties encrypted,
staged with COPY, every check, report, then the registrar's accept (one transaction). The peer,
measured in the same run, is lxml reading the same file without doing anything with it: the floor
of any XML import. Target (issue #17): 1,000,000 rights with parties and 100,000 parcels in
< 10 min, peak memory < 2 GB (this process's peak RSS; the database server's is its own).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import uuid
from pathlib import Path

import psycopg
from lxml import etree

from bench.common import console
from cadastre.access.pii import audit_key, load_cipher
from cadastre.exchange import apply
from cadastre.exchange.staging import create_batch, validate_batch
from cadastre.settings import PROJECT_ROOT, get_settings
from cadastre.store.db import embedded_cluster
from cadastre.store.migrate import migrate
from cadastre.store.uploads import store_upload

BENCH_DIR = PROJECT_ROOT / "var" / "bench"
COUNTY = "330106"


def generate(path: Path, parcels: int, rights: int) -> None:
    """``parcels`` parcels, each with one building of ``rights / parcels`` units, each unit
    owned by one person (a right and a party per unit)."""
    per = max(1, rights // parcels)
    tmp = path.with_suffix(".part")
    with etree.xmlfile(str(tmp), encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element("Messages"):
            n = 0
            for i in range(parcels):
                zd = f"{COUNTY}{1 + i // 90000:03d}001GB{1 + i % 90000:05d}"
                x0 = 40_500_000.0 + (i % 300) * 100
                y0 = 3_340_000.0 + (i // 300) * 100
                msg = etree.Element("Message")
                head = etree.SubElement(msg, "Head")
                for k, v in (("BizMsgID", f"{COUNTY}260601{i % 1_000_000:06d}"),
                             ("AreaCode", COUNTY), ("RecType", "1000402"),
                             ("CreateDate", "2026-06-01T10:00:00"), ("RecFlowID", f"B{i}")):
                    etree.SubElement(head, k).text = v
                data = etree.SubElement(msg, "Data")
                etree.SubElement(data, "KTT_ZDJBXX", ZDDM=zd, ZL=f"西湖区文三路{i}号",
                                 YT="0701", QLLX="3", QLXZ="102", ZDMJ="3600.00")
                for j, (x, y) in enumerate(((x0, y0 + 60), (x0 + 60, y0 + 60), (x0 + 60, y0),
                                            (x0, y0)), 1):
                    etree.SubElement(data, "ZD_K_103", BDCDYH=zd + "W00000000", XH=str(j),
                                     XZB=f"{y:.3f}", YZB=f"{x:.3f}")
                zrzh = zd + "F0001"
                etree.SubElement(
                    data, "KTT_FW_ZRZ", ZRZH=zrzh, ZCS="10", DSCS="10", JZWGD="30",
                    X_GEOM=f"POLYGON(({x0 + 10} {y0 + 10},{x0 + 10} {y0 + 50},{x0 + 50} "
                           f"{y0 + 50},{x0 + 50} {y0 + 10},{x0 + 10} {y0 + 10}))")
                for u in range(per):
                    n += 1
                    unit = f"{zrzh}{1 + u // 10:02d}{1 + u % 10:02d}"
                    cert = f"浙(2015)杭州市不动产权第{n:07d}号"
                    etree.SubElement(data, "KTT_FW_H", BDCDYH=unit, CH=str(1 + u // 10),
                                     SHBW=f"{1 + u // 10}{1 + u % 10:02d}", FWYT1="10",
                                     SCJZMJ="90.00")
                    etree.SubElement(data, "QLT_FW_FDCQ_YZ", BDCDYH=unit, YWH=f"2015{n:09d}",
                                     QLLX="4", DJLX="100", DJSJ="2015-03-02T09:30:00", QSZT="1",
                                     BDCQZH=cert, DJJG="登记中心", DBR="登簿员", JZMJ="90.00",
                                     TDSYQSSJ="2010-01-01", TDSYJSSJ="2079-12-31", GHYT="10")
                    etree.SubElement(data, "ZTT_GY_QLR", BDCDYH=unit, BDCQZH=cert, SXH="1",
                                     QLRMC=f"业主{n}", ZJZL="1", ZJH=f"330106{n:012d}",
                                     QLRLX="1")
                xf.write(msg)
    tmp.replace(path)


def parse_only(path: Path) -> float:
    """Seconds lxml takes to read the file, each element cleared once read (the peer)."""
    t0 = time.monotonic()
    for _, elem in etree.iterparse(str(path), events=("end",), resolve_entities=False,
                                   no_network=True):
        elem.clear(keep_tail=False)
        while elem.getprevious() is not None:
            del elem.getparent()[0]
    return time.monotonic() - t0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parcels", type=int, default=100_000)
    ap.add_argument("--rights", type=int, default=1_000_000)
    args = ap.parse_args()
    settings = get_settings()
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    path = BENCH_DIR / f"import_{args.parcels}_{args.rights}.xml"
    if not path.exists():
        t0 = time.monotonic()
        generate(path, args.parcels, args.rights)
        console.print(f"generated {path.name} ({path.stat().st_size / 2**20:.0f} MB) in "
                      f"{time.monotonic() - t0:.0f} s")
    cluster = embedded_cluster(settings)
    cluster.start()
    name = f"bench_import_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = cluster.url(name)
    try:
        migrate(url)
        cipher = load_cipher(settings)
        t0, cpu0 = time.monotonic(), time.process_time()
        with path.open("rb") as fh:
            upload = store_upload(fh, settings.data_dir / "uploads", max_bytes=1 << 40)
        with psycopg.connect(url) as conn:
            bid = create_batch(conn, upload, path.name, "bench")
            conn.commit()
        t_store = time.monotonic() - t0
        report = validate_batch(url, bid, cipher)
        t_validate = time.monotonic() - t0 - t_store
        assert report["status"] == "validated", report["error_counts"]
        with psycopg.connect(url) as conn:
            steps: dict[str, float] = {}
            out = apply.accept(conn, bid, "bench", audit_key(settings), timings=steps)
        total = time.monotonic() - t0
        t_accept = total - t_store - t_validate
        peak = peak_rss_mb()              # the import's peak, before the peer runs
        cpu = time.process_time() - cpu0  # this process's CPU (reading, converting, encrypting)
        load = os.getloadavg()[0]
        peer = parse_only(path)
        console.print(f"rights {out['written'].get('right')}, parties "
                      f"{out['written'].get('party')}, parcels {out['written'].get('parcel')}, "
                      f"units {out['written'].get('unit')}")
        console.print(f"store {t_store:.0f} s, read+stage+check {t_validate:.0f} s, "
                      f"accept {t_accept:.0f} s, total {total:.0f} s "
                      f"({'<' if total < 600 else '≥'} 10 min target)")
        console.print("accept steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items()))
        console.print(f"peer (lxml parse only) {peer:.0f} s → import / peer = "
                      f"{total / peer:.1f}×")
        console.print(f"peak RSS of the importing process {peak:.0f} MB (target < 2048 MB); "
                      f"its CPU {cpu:.0f} s = {cpu / max(args.rights, 1) * 1e6:.0f} µs per "
                      f"right; load average {load:.1f} at the end of the import")
    finally:
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()

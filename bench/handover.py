"""交房即交证 benchmark: a 3,000-unit project handed over in one batch.

    python -m bench.handover [--buildings 10] [--floors 30] [--per-floor 10] [--peer 200]

In its own database (``bench_handover``, a copy of the 2,000-parcel demo district, made afresh
each run) it writes a project of ``buildings × floors × per-floor`` flats, every one sold with a
filed sales contract (40 % with a mortgage contract, 30 % with pre-sale notices), then times the
batch (``cadastre.cases.handover``: the developer's first registration per building, then per
unit a transfer (+ mortgage) case opened, reviewed, entered and taken to 缮证, each unit all or
nothing in short committed chunks). Target: < 60 s for 3,000 units on this machine.

The peer, timed in the same run: ``--peer`` of the same project's flats taken through the same
four moves one by one as a registrar at the window would (each move its own transaction, the
rules checked at acceptance as for any window case), on a second copy of the project. The ratio
is per unit.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import psycopg
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench.common import console, scaled_demo
from cadastre.access.pii import audit_key, load_cipher
from cadastre.cases import handover, requirements
from cadastre.cases import workflow as wf
from cadastre.cases.model import Action
from cadastre.demo.project import build_project
from cadastre.settings import get_settings
from cadastre.store.db import embedded_cluster
from cadastre.store.migrate import migrate

ACTOR = wf.Actor("bench", "registrar", "基准登簿员")


def fresh_database(name: str) -> str:
    settings = get_settings()
    scaled_demo(2000)
    cluster = embedded_cluster(settings)
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE bench_2000')
    url = cluster.url(name)
    migrate(url)
    return url


def build(url: str, keys: wf.Keys, data_dir: Path, name: str, args: argparse.Namespace,
          buildings: int, seed: int) -> list[str]:
    with psycopg.connect(url) as conn, Progress(
            TextColumn(f"[bold]project {name}[/]"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("sales", total=buildings * args.floors * args.per_floor)
        built = build_project(conn, keys.cipher, data_dir, name=name, buildings=buildings,
                              floors=args.floors, per_floor=args.per_floor, seed=seed,
                              progress=lambda d, t: bar.update(task, completed=d, total=t))
        conn.commit()
    return built.unit_codes


def batch(url: str, keys: wf.Keys, name: str) -> tuple[float, handover.Totals]:
    settings = get_settings()
    with psycopg.connect(url) as conn:
        batch_id, _job = handover.start_batch(conn, name, ACTOR, run_here="bench")
    with Progress(TextColumn("[bold]交房即交证[/]"), BarColumn(), TextColumn("{task.description}"),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("", total=1.0)
        t0 = time.perf_counter()
        totals = handover.run_batch(url, settings.cases, keys, batch_id, ACTOR,
                                    progress=lambda f, step: bar.update(task, completed=f,
                                                                        description=step))
        return time.perf_counter() - t0, totals


def window(url: str, keys: wf.Keys, name: str, n: int) -> tuple[float, int]:
    """``n`` flats of the peer project: first registration of their building in one case, then
    each flat's transfer (+ mortgage) through the four moves, each move its own transaction."""
    settings = get_settings().cases
    with psycopg.connect(url, autocommit=True) as conn:
        p = handover.resolve_project(conn, name)
        building = p.buildings[0][0]
        units = [r[0].strip() for r in conn.execute(
            "SELECT unit_code FROM cad.unit_current WHERE building_code = %s "
            "ORDER BY unit_code LIMIT %s", (building, n))]
        day = wf.local_day(settings, datetime.now().astimezone())
        run = handover._Run(conn, settings, keys, ACTOR, uuid.uuid4(), None)   # no items
        run.first_registration(building, units, handover._developers(conn, building[:19]))
        done = 0
        t0 = time.perf_counter()
        for unit in units:
            contract = requirements.contract_of(conn, unit, day)
            assert contract is not None
            buyers = contract.of_role("buyer")
            mortgage = requirements.mortgage_contract_of(conn, unit, day, buyers)
            opened = wf.open_case(conn, settings, keys, ACTOR,
                                  handover._application(unit, contract, mortgage))
            wf.advance(conn, settings, keys, ACTOR, opened.case_no, Action.REVIEW,
                       review=handover.REVIEW)
            for action in (Action.REGISTER, Action.PREPARE):
                wf.advance(conn, settings, keys, ACTOR, opened.case_no, action)
            done += 1
        return time.perf_counter() - t0, done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--buildings", type=int, default=10)
    ap.add_argument("--floors", type=int, default=30)
    ap.add_argument("--per-floor", type=int, default=10)
    ap.add_argument("--peer", type=int, default=200)
    args = ap.parse_args()
    settings = get_settings()
    keys = wf.Keys(load_cipher(settings), audit_key(settings))
    url = fresh_database("bench_handover")
    with tempfile.TemporaryDirectory() as tmp:
        units = build(url, keys, Path(tmp), "基准交房项目", args, args.buildings, 2026)
        peer_units = build(url, keys, Path(tmp), "基准窗口项目", args,
                           max(1, -(-args.peer // (args.floors * args.per_floor))), 2027)
        seconds, totals = batch(url, keys, "基准交房项目")
        peer_seconds, peer_done = window(url, keys, "基准窗口项目", min(args.peer,
                                                                      len(peer_units)))
    per_unit = seconds / max(totals.done, 1)
    peer_per_unit = peer_seconds / max(peer_done, 1)
    ok = "✓" if seconds < 60 * len(units) / 3000 else "✗"
    console.print(f"batch: {len(units)} units, {totals.done} done, {totals.failed} failed in "
                  f"{seconds:.1f} s ({totals.done / seconds:.0f} units/s, "
                  f"{per_unit * 1000:.1f} ms per unit) {ok} target < 60 s per 3,000")
    console.print(f"peer: {peer_done} flats one move per transaction at the window in "
                  f"{peer_seconds:.1f} s ({peer_per_unit * 1000:.1f} ms per unit); "
                  f"ratio {peer_per_unit / per_unit:.2f}× (batch faster when > 1)")


if __name__ == "__main__":
    main()

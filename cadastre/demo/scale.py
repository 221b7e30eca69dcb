"""Parallel build of a large demo district (issue #18): ``cadastre demo --scale N`` from
``PARALLEL_FROM`` parcels up, and the benchmarks' scaled districts (``bench.common``).

**Same seed, same district, whatever the worker count.** A block (one 地籍子区) is the unit of
work. A cheap first pass (``plan``) draws, from an RNG seeded with (seed, block, "head"), each
block's kind and parcel counts until the parcel target is reached, numbers the compounds, picks
the block that carries the three planted defects (the first block of lots) and gives each row of
blocks its county. Everything else in a block is drawn from its own RNG seeded with (seed, block,
"body"), and every number a block hands out (version ids, party ids, business and certificate
numbers, company codes) is numbered within the block (``RegistryBuilder.begin_block``). So a
block's rows depend on (seed, block) only, and chunks of blocks are built by any number of worker
processes in any order. (The standard 2,000-parcel demo keeps its own sequential generator,
``cadastre.demo.load``: its content is what the tests were written against.)

**Counties.** ~10 M units are split by rows of blocks into counties (``COUNTIES``, about
``UNITS_PER_COUNTY`` units each) so that each county's partitions (migration 0024) stay near 2 M
rows; a small district is one county, 330106.

**Layout at scale.** The standard demo averages ~16 units a parcel; at scale the mix of block
kinds (``SCALE_WEIGHTS``: fewer compounds, more rows of lots) gives ~10 units a parcel, so
1,000,000 parcels make ~10 M units.

**Never an inconsistent register visible.** The district is built in a staging database
``<db>_building`` that nobody reads: migrated, its GiST/GIN indexes, the big tables' other
indexes (primary keys stay), exclusion constraints and the records' foreign keys dropped (one
index build after the load is much faster than millions of inserts into it; a key checked once by
one join is faster than a trigger per row), loaded by the workers with COPY, one transaction per
chunk, then the indexes and constraints are created again, the largest first, as many at once as
there are workers (every one validated: a duplicate code, an overlapping version or a record
without its right fails the build), ANALYZEd, and only then is it renamed to
``<db>`` (the old database, if any, is renamed away and dropped). A reader sees the old register or
the new one, never a part.

**Resumable.** Each chunk's transaction also records the chunk in ``demo_build.chunk``; the
indexes and constraints still to be created are rows of ``demo_build.deferred``, deleted as each is
made. Run the same build again (same parcels, seed and chunk size) after an interruption and it
goes on from the chunks and the constraints not yet done; a staging database of another build is
dropped and the build starts again.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import random
import re
import struct
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from shapely.geometry import Polygon

from cadastre.access.pii import PiiCipher
from cadastre.demo.layout import KINDS, ROAD, DistrictBuilder
from cadastre.demo.load import (
    LINE_COLS,
    PARCEL_COLS,
    POINT_COLS,
    SINK_DETAIL,
    SRID,
    DemoLoader,
    DemoStats,
    _ewkb,
    _map_sheet,
    _multi,
    _shift,
    copy_batch,
    demo_change_set,
)
from cadastre.demo.registry import RegistryBuilder, ts
from cadastre.register.boundary import clockwise, ring_points
from cadastre.register.subdistricts import seed_from_parcels
from cadastre.store.bulk import recreate_sql
from cadastre.store.migrate import migrate

PARALLEL_FROM = 20_000          # parcels: below, the standard sequential demo generator
CHUNK_BLOCKS = 96               # blocks per chunk (one worker transaction), ~1,000 parcels
SCALE_WEIGHTS = (0.25, 0.12, 0.05, 0.05, 0.53)   # block kinds at scale: ~10 units a parcel
UNITS_PER_PARCEL = 10           # what SCALE_WEIGHTS give, for sizing the counties
UNITS_PER_COUNTY = 2_000_000
COUNTIES = ("330106", "330105", "330108", "330102", "330109", "330110", "330111", "330112")
BULK_TABLES = ("cad.parcel", "cad.boundary_line", "cad.building", "cad.floor", "cad.lineage",
               "cad.right_party", *(f"cad.{t}" for t in SINK_DETAIL))

# their plain b-tree indexes too (random keys: hashes, uuids); not cad.right_record, which the
# unit-status trigger reads by unit code at every chunk, nor the trigger-kept tables
BTREE_TABLES = (*BULK_TABLES, "cad.unit", "cad.boundary_point", "pii.party")

Progress = Callable[[int, int], None]   # (parcels done, parcels total)


def _seed(seed: int, block: int, part: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}:{block}:{part}".encode(),
                                          digest_size=8).digest(), "big")


@dataclass(frozen=True)
class BlockHead:
    """What the first pass decides for one block."""

    block_id: int
    col: int
    row: int
    kind: str
    compound_n: int
    counts: tuple[int, ...]
    parcels: int
    defects: bool
    county: str


def plan(parcels: int, seed: int) -> list[BlockHead]:
    """The blocks of a district of ``parcels`` parcels (the last block may overshoot a little,
    as in the standard demo)."""
    grid = DistrictBuilder(parcels, seed).grid
    heads: list[tuple] = []
    produced = compound = 0
    defects_at: int | None = None
    i = 0
    while produced < parcels:
        col, row = i % grid, i // grid
        r = random.Random(_seed(seed, i, "head"))
        kind = r.choices(KINDS, weights=SCALE_WEIGHTS)[0]
        counts: tuple[int, ...] = ()
        if kind == "residential":
            compound += 1
            n = 1
        elif kind == "commercial":
            counts = (r.randint(2, 4),)
            n = counts[0]
        elif kind == "lot":
            counts = (r.randint(8, 13), r.randint(8, 13))
            n = sum(counts)
            if defects_at is None:
                defects_at = i
        else:
            n = 1
        heads.append((i, col, row, kind, compound, counts, n, i == defects_at))
        produced += n
        i += 1
    rows = heads[-1][2] + 1
    n_counties = max(1, min(len(COUNTIES),
                            round(parcels * UNITS_PER_PARCEL / UNITS_PER_COUNTY)))
    return [BlockHead(i, col, row, kind, compound, counts, n, defects,
                      COUNTIES[row * n_counties // rows])
            for i, col, row, kind, compound, counts, n, defects in heads]


def chunks(heads: Sequence[BlockHead], size: int = CHUNK_BLOCKS) -> list[range]:
    return [range(a, min(a + size, len(heads))) for a in range(0, len(heads), size)]


# ------------------------------------------------------------------ rows of one block


def _point_hex(x: float, y: float) -> str:
    return struct.pack("<BIIdd", 1, 0x20000001, SRID, x, y).hex()


def _line_hex(x0: float, y0: float, x1: float, y1: float) -> str:
    return struct.pack("<BIIIdddd", 1, 0x20000002, SRID, 2, x0, y0, x1, y1).hex()


def _fast_id(kind: str, key: str) -> str:
    """A deterministic UUID (as text) for a feature: md5 of kind and key (uuid5's sha1 and UUID
    object cost five times as much, for ~20 M features)."""
    h = hashlib.md5(f"{kind}:{key}".encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-3{h[13:16]}-8{h[17:20]}-{h[20:]}"


class _Rows:
    """The loader's writer for one chunk: rows per table, COPYed when the chunk is done."""

    def __init__(self) -> None:
        self.buf: dict[str, list[tuple]] = {}
        self.cols: dict[str, Sequence[str]] = {}

    def add(self, table: str, cols: Sequence[str], row: tuple) -> None:
        self.cols[table] = cols
        self.buf.setdefault(table, []).append(row)


class BlockLoader(DemoLoader):
    """The standard loader's rows for one block at a time, with per-block RNG and numbering."""

    def __init__(self, change_id: int, seed: int, parcels: int) -> None:  # no super(): no DB
        self.with_units = True
        self.seed = seed
        self.builder = DistrictBuilder(parcels, seed)
        self.target = parcels
        self.change_id = change_id
        self.rng = random.Random(0)
        self.reg = bank_registry(seed, change_id)
        self.w = _Rows()  # type: ignore[assignment]
        self.stats = DemoStats()
        self._defects_planted = True
        self._defect_block = None
        self._easements = 0

    _id = staticmethod(_fast_id)  # type: ignore[assignment]

    def build(self, head: BlockHead) -> None:
        rng = random.Random(_seed(self.seed, head.block_id, "body"))
        self.rng = self.builder.rng = rng
        self.reg.begin_block(head.block_id, rng)
        self.county = head.county
        parcels, retired = self.builder.block(head.block_id, head.col, head.row, head.kind,
                                              head.compound_n, head.counts or None,
                                              split=not head.defects)
        if head.defects:
            self._plant_defects(parcels)
        self._block(parcels, retired)
        self.reg.end_block()

    def _write_parcel(self, code: str, local: Polygon, seat: str, compound: str | None,
                      land_use: str, nb: dict[str, str], start: date, end: date | None,
                      registered: float | None = None) -> None:
        """As the standard loader's, with the boundary points' and lines' EWKB packed here."""
        poly = clockwise(_shift(local))
        area = registered if registered is not None else round(poly.area, 2)
        vfrom, vto = ts(start), ts(end) if end else None
        retired_by = self.change_id if end else None
        add = self.w.add
        add("cad.parcel", PARCEL_COLS, (
            _fast_id("parcel", code), code, seat, compound, land_use, 3,
            101 if land_use in ("0810", "08H2") else 102, area,
            nb.get("north"), nb.get("east"), nb.get("south"), nb.get("west"),
            _map_sheet(poly), SRID, _ewkb(_multi(poly)), vfrom, vto, self.change_id, retired_by))
        ring = ring_points(poly)
        county = code[:6]
        n = len(ring)
        markers = self.rng.choices((1, 2, 4), k=n)
        for k, (x, y) in enumerate(ring, start=1):
            nx, ny = ring[k % n]
            add("cad.boundary_point", POINT_COLS, (
                _fast_id("jzd", f"{code}:{k}"), code, f"J{k}", k, 1, markers[k - 1], 1,
                f"{y:.3f}", f"{x:.3f}", SRID, _point_hex(x, y), vfrom, vto, self.change_id,
                retired_by, county))
            add("cad.boundary_line", LINE_COLS, (
                _fast_id("jzx", f"{code}:{k}"), code, f"J{k}", f"J{k % n + 1}",
                round(((nx - x) ** 2 + (ny - y) ** 2) ** 0.5, 3), 1, 2, 1, SRID,
                _line_hex(x, y, nx, ny), vfrom, vto, self.change_id, retired_by))
        self.stats.boundary_points += n

    def take(self) -> tuple[dict, dict, list, dict]:
        """The chunk's rows (for ``copy_batch``), and a fresh buffer for the next chunk."""
        sink = self.reg.sink
        batch = (self.w.buf, self.w.cols, list(zip(sink.party_ids, sink.parties, strict=True)),
                 {name: getattr(sink, name) for name in ("rights", "right_parties",
                                                         *SINK_DETAIL.values())})
        self.w = _Rows()  # type: ignore[assignment]
        sink.renew()
        return batch


def bank_registry(seed: int, change_id: int) -> RegistryBuilder:
    """A registry builder whose banks (parties shared by every block) are the same in every
    process."""
    return RegistryBuilder(random.Random(_seed(seed, -1, "banks")), change_id, 1)


# ------------------------------------------------------------------ workers

_worker: dict[str, Any] = {}


def _init_worker(url: str, cipher: PiiCipher, heads: list[BlockHead], seed: int, parcels: int,
                 change_id: int) -> None:
    conn = psycopg.connect(url)
    conn.execute("SET cadastre.bulk_load = 'on'")   # no tile-cache queue: rebuilt after a load
    conn.execute("SET synchronous_commit = off")    # the build is re-run, not recovered
    conn.commit()
    _worker.update(conn=conn, cipher=cipher, heads=heads,
                   loader=BlockLoader(change_id, seed, parcels))


def _build_chunk(args: tuple[int, range]) -> tuple[int, dict[str, Any]]:
    """Generate one chunk of blocks and COPY it, recording it done, in one transaction."""
    n, blocks = args
    conn: psycopg.Connection = _worker["conn"]
    loader: BlockLoader = _worker["loader"]
    loader.stats = DemoStats()
    for b in blocks:
        loader.build(_worker["heads"][b])
    batch = loader.take()
    s = loader.stats
    stats = {"parcels": s.parcels, "retired_parcels": s.retired_parcels,
             "boundary_points": s.boundary_points, "buildings": s.buildings,
             "floors": s.floors, "units": s.units, "defects": s.defects}
    try:
        with conn.transaction(), conn.cursor() as cur:
            # the chunk first: a worker of an interrupted run that was still going may have
            # finished it meanwhile, and then this one is rolled back
            cur.execute("INSERT INTO demo_build.chunk (n, parcels, retired_parcels, "
                        "boundary_points, buildings, floors, units, defects) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        (n, s.parcels, s.retired_parcels, s.boundary_points, s.buildings,
                         s.floors, s.units, s.defects))
            if cur.rowcount == 0:
                raise _AlreadyDone
            copy_batch(cur, _worker["cipher"], *batch)
    except _AlreadyDone:
        pass
    return n, stats


class _AlreadyDone(Exception):
    pass


# ------------------------------------------------------------------ the build


@dataclass
class BuildReport:
    stats: DemoStats
    workers: int
    counties: list[str]
    resumed_chunks: int
    phases: dict[str, float] = field(default_factory=dict)   # seconds per phase
    sizes: list[tuple[str, int]] = field(default_factory=list)   # (table, bytes), largest first
    database_bytes: int = 0
    restored: dict[str, float] = field(default_factory=dict)   # seconds per index/constraint


def url_for(url: str, dbname: str) -> str:
    return make_conninfo(url, dbname=dbname)


def _dbname(url: str) -> str:
    return str(conninfo_to_dict(url).get("dbname") or "")


STATE_SQL = """
CREATE SCHEMA demo_build;
CREATE TABLE demo_build.meta (parcels integer, seed bigint, chunk_blocks integer,
                              change_id bigint, started_at timestamptz DEFAULT now());
CREATE TABLE demo_build.chunk (n integer PRIMARY KEY, parcels integer, retired_parcels integer,
                               boundary_points integer, buildings integer, floors integer,
                               units integer, defects text[]);
CREATE TABLE demo_build.deferred (id serial PRIMARY KEY, phase integer, tbl text, name text,
                                  definition text);
"""


def _staging_state(url: str, parcels: int, seed: int, chunk_blocks: int) -> int | None:
    """The change id of a resumable build of the same district in ``url``, else None."""
    try:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT parcels, seed, chunk_blocks, change_id "
                               "FROM demo_build.meta").fetchone()
    except psycopg.Error:
        return None
    if row and row[:3] == (parcels, seed, chunk_blocks):
        return int(row[3])
    return None


def _prepare(url: str, cipher: PiiCipher, parcels: int, seed: int, counties: list[str],
             chunk_blocks: int = CHUNK_BLOCKS) -> int:
    """Migrate the staging database, drop what is built after the load (recorded), add the
    counties' partitions, and write the change set and the banks. Returns the change id."""
    migrate(url)
    with psycopg.connect(url) as conn, conn.transaction(), conn.cursor() as cur:
        cur.execute(STATE_SQL)
        for c in counties:
            cur.execute("SELECT cad.county_add(%s)", (c,))
        change_id = demo_change_set(cur, parcels, seed)
        cur.execute("INSERT INTO demo_build.meta (parcels, seed, chunk_blocks, change_id) "
                    "VALUES (%s, %s, %s, %s)", (parcels, seed, chunk_blocks, change_id))
        _defer(cur)
        reg = bank_registry(seed, change_id)
        copy_batch(cur, cipher, {}, {}, list(zip(reg.bank_ids, reg.banks, strict=True)),
                   {name: [] for name in ("rights", "right_parties", *SINK_DETAIL.values())})
    return change_id


def _defer(cur: psycopg.Cursor) -> None:
    """Drop the GiST/GIN indexes, the bulk tables' other indexes (``BTREE_TABLES``; primary
    keys stay), the exclusion constraints and the bulk tables' foreign keys, recording each
    definition (phase 1: indexes and exclusions, 2: foreign keys)."""
    schemas = ["cad", "pii"]
    exclusions = cur.execute(
        """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
           FROM pg_constraint WHERE contype = 'x'
             AND connamespace IN (SELECT oid FROM pg_namespace WHERE nspname = ANY(%s))""",
        (schemas,)).fetchall()
    indexes = cur.execute(
        """SELECT i.indrelid::regclass::text, i.indexrelid::regclass::text,
                  pg_get_indexdef(i.indexrelid)
           FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
           JOIN pg_am am ON am.oid = c.relam
           WHERE c.relnamespace IN (SELECT oid FROM pg_namespace WHERE nspname = ANY(%s))
             AND (am.amname IN ('gist', 'gin')
                  OR am.amname = 'btree' AND i.indrelid = ANY(%s::regclass[]))
             AND NOT c.relispartition
             AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)""",
        (schemas, list(BTREE_TABLES))).fetchall()
    fkeys = cur.execute(
        """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
           FROM pg_constraint WHERE contype = 'f' AND conparentid = 0
             AND conrelid = ANY(%s::regclass[])""", (list(BULK_TABLES),)).fetchall()
    for table, name, definition in fkeys:
        cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        cur.execute("INSERT INTO demo_build.deferred (phase, tbl, name, definition) "
                    "VALUES (2, %s, %s, %s)", (table, name, definition))
    for table, name, definition in exclusions:
        cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        cur.execute("INSERT INTO demo_build.deferred (phase, tbl, name, definition) "
                    "VALUES (1, %s, %s, %s)", (table, name, definition))
    for table, name, definition in indexes:
        cur.execute(f"DROP INDEX {name}")
        cur.execute("INSERT INTO demo_build.deferred (phase, tbl, name, definition) "
                    "VALUES (1, %s, %s, NULL)", (table, recreate_sql(definition)))


_INDEX_SQL = re.compile(r"^(CREATE (?:UNIQUE )?INDEX )(\S+) ON (?:ONLY )?(\S+)( USING .*)$",
                        re.S)


def _split_partitioned(conn: psycopg.Connection) -> None:
    """Turn each deferred index of a partitioned table into its parent index (``ON ONLY``,
    no data, made now) and one deferred item per partition (its index, attached to the
    parent's), in one transaction: a partition's items then lock that partition only, and two
    connections build two partitions at once (a parent-level CREATE INDEX would wait for every
    partition's exclusion constraint, and they for it)."""
    with conn.transaction():
        rows = conn.execute(
            "SELECT d.id, d.tbl, d.name FROM demo_build.deferred d JOIN pg_class c "
            "ON c.oid = d.tbl::regclass WHERE d.definition IS NULL AND c.relkind = 'p'"
        ).fetchall()
        for id_, table, statement in rows:
            m = _INDEX_SQL.match(statement)
            if m is None:
                continue
            create, index, _, using = m.groups()
            schema = table.split(".")[0]
            conn.execute(f"{create}{index} ON ONLY {table}{using}")
            parts = conn.execute("SELECT inhrelid::regclass::text FROM pg_inherits "
                                 "WHERE inhparent = %s::regclass", (table,)).fetchall()
            for (part,) in parts:
                child = f"{part.split('.')[-1]}_{index}"[:63]
                conn.execute(
                    "INSERT INTO demo_build.deferred (phase, tbl, name, definition) "
                    "VALUES (1, %s, %s, NULL)",
                    (part, f"{create}{child} ON {part}{using};\n"
                           f"ALTER INDEX {schema}.{index} ATTACH PARTITION {schema}.{child}"))
            conn.execute("DELETE FROM demo_build.deferred WHERE id = %s", (id_,))


def _restore(url: str, workers: int) -> dict[str, float]:
    """Create the deferred indexes and constraints again, ``workers`` at a time (phase by
    phase), each in one transaction with its deletion from ``demo_build.deferred`` (so an
    interrupted restore resumes exactly). Items on the same table (a partition counts as its
    own table) run one after the other in one task — they would wait for each other's locks
    anyway —, the tasks largest first. Returns seconds by name."""
    with psycopg.connect(url, autocommit=True) as conn:
        _split_partitioned(conn)
        items = conn.execute(
            "SELECT id, phase, tbl, name, definition, "
            "(SELECT coalesce(sum(pg_relation_size(c.oid)), 0) FROM pg_class c "
            " WHERE c.oid = d.tbl::regclass OR c.oid IN (SELECT inhrelid FROM pg_inherits "
            " WHERE inhparent = d.tbl::regclass)) "
            "FROM demo_build.deferred d ORDER BY phase, id").fetchall()

    took: dict[str, float] = {}

    def make(item: tuple) -> None:
        id_, _, table, name, definition, _ = item
        t0 = time.monotonic()
        with psycopg.connect(url) as c, c.transaction():
            c.execute("SET LOCAL maintenance_work_mem = '1GB'")
            if definition is None:        # an index: `name` holds its statement(s)
                c.execute(name)
            elif definition.startswith("EXCLUDE USING gist") and " WITH (" not in definition:
                # an exclusion constraint checks every row against its index as it is built; a
                # GiST index built without buffering checks faster (-30 % here). The option is
                # reset afterwards (no rebuild): the constraint is then as the migrations made it
                head, where, pred = definition.partition(" WHERE (")
                c.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {head} '
                          f'WITH (buffering = off){where}{pred}')
                schema = table.split(".")[0]
                c.execute(f'ALTER INDEX {schema}."{name}" RESET (buffering)')
            else:
                c.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
            c.execute("DELETE FROM demo_build.deferred WHERE id = %s", (id_,))
        label = name.split(" ON ")[0].split()[-1] if definition is None else name
        took[f"{table} {label}"] = time.monotonic() - t0

    def run(task: list[tuple]) -> None:
        for item in task:
            make(item)

    for phase in (1, 2):
        tasks: dict[str, list[tuple]] = {}
        for item in items:
            if item[1] == phase:
                # phase 2 (foreign keys) all read cad.right_record: one task per table is fine
                tasks.setdefault(item[2], []).append(item)
        ordered = sorted(tasks.values(), key=lambda t: -t[0][5])
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            list(pool.map(run, ordered))
    return took


def _finish(url: str) -> DemoStats:
    with psycopg.connect(url) as conn:
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT setval(pg_get_serial_sequence('cad.right_record', 'version_id'),"
                        " (SELECT max(version_id) FROM cad.right_record))")
            seed_from_parcels(conn, ROAD / 2, "cadastre demo")
            row = cur.execute(
                "SELECT sum(parcels), sum(retired_parcels), sum(boundary_points), "
                "sum(buildings), sum(floors), sum(units), "
                "array(SELECT unnest(defects) FROM demo_build.chunk ORDER BY n) "
                "FROM demo_build.chunk").fetchone()
            assert row is not None
            p, r, bp, b, f, u = (int(v or 0) for v in row[:6])
            stats = DemoStats(parcels=p, retired_parcels=r, boundary_points=bp, buildings=b,
                              floors=f, units=u, defects=list(row[6] or []))
            stats.parties = cur.execute("SELECT count(*) FROM pii.party").fetchone()[0]  # type: ignore[index]
            stats.rights = cur.execute("SELECT count(*) FROM cad.right_record").fetchone()[0]  # type: ignore[index]
            cur.execute("DROP SCHEMA demo_build CASCADE")
        conn.autocommit = True
        for t in ("cad.parcel", "cad.boundary_point", "cad.boundary_line", "cad.building",
                  "cad.floor", "cad.unit", "cad.right_record", "cad.right_party", "pii.party",
                  "cad.unit_status", "cad.ownership_detail", "cad.mortgage_detail"):
            conn.execute(f"ANALYZE {t}")
    return stats


def switch(admin_url: str, staging: str, target: str) -> None:
    """Put the finished staging database in the target's place: the old one (if any) renamed
    away, the staging one renamed to the target, the old one dropped."""
    with psycopg.connect(admin_url, autocommit=True) as admin:
        old = f"{target}_old"
        admin.execute(f'DROP DATABASE IF EXISTS "{old}" WITH (FORCE)')
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                               (target,)).fetchone()
        if exists:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = %s AND pid <> pg_backend_pid()", (target,))
            admin.execute(f'ALTER DATABASE "{target}" RENAME TO "{old}"')
        admin.execute(f'ALTER DATABASE "{staging}" RENAME TO "{target}"')
        if exists:
            admin.execute(f'DROP DATABASE IF EXISTS "{old}" WITH (FORCE)')


def table_sizes(url: str) -> tuple[int, list[tuple[str, int]]]:
    """Database size and the largest tables (partitions summed into their table), bytes."""
    with psycopg.connect(url) as conn:
        total = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]  # type: ignore[index]
        rows = conn.execute(
            """SELECT coalesce(p.inhparent, c.oid)::regclass::text AS t,
                      sum(pg_total_relation_size(c.oid))::bigint
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               LEFT JOIN pg_inherits p ON p.inhrelid = c.oid
               WHERE n.nspname IN ('cad', 'pii') AND c.relkind = 'r'
               GROUP BY 1 ORDER BY 2 DESC LIMIT 12""").fetchall()
    return int(total), [(str(t), int(b)) for t, b in rows]


def build(url: str, cipher: PiiCipher, parcels: int, seed: int, workers: int | None = None,
          progress: Progress | None = None, switch_to_target: bool = True,
          chunk_blocks: int = CHUNK_BLOCKS) -> BuildReport:
    """Build the district of ``parcels`` parcels for database ``url`` in ``<db>_building``
    and (``switch_to_target``) rename it to ``<db>``. ``chunk_blocks``: blocks per worker
    transaction (the content does not depend on it; a resumed build must use the same)."""
    workers = workers or os.cpu_count() or 1
    target = _dbname(url)
    staging = f"{target}_building"
    admin_url = url_for(url, "postgres")
    staging_url = url_for(url, staging)
    phases: dict[str, float] = {}
    t0 = time.monotonic()
    heads = plan(parcels, seed)
    counties = sorted({h.county for h in heads}, key=COUNTIES.index)
    jobs = chunks(heads, chunk_blocks)
    change_id = _staging_state(staging_url, parcels, seed, chunk_blocks)
    if change_id is None:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{staging}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{staging}"')
        change_id = _prepare(staging_url, cipher, parcels, seed, counties, chunk_blocks)
    phases["prepare"] = time.monotonic() - t0
    with psycopg.connect(staging_url) as conn:
        done = {r[0]: r[1] for r in conn.execute("SELECT n, parcels FROM demo_build.chunk")}
    resumed = len(done)
    total = sum(h.parcels for h in heads)
    finished = sum(done.values())
    if progress:
        progress(finished, total)
    todo = [(n, r) for n, r in enumerate(jobs) if n not in done]
    t1 = time.monotonic()
    if todo:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(workers, _init_worker,
                      (staging_url, cipher, heads, seed, parcels, change_id)) as pool:
            for _, s in pool.imap_unordered(_build_chunk, todo):
                finished += s["parcels"]
                if progress:
                    progress(finished, total)
    phases["load"] = time.monotonic() - t1
    t2 = time.monotonic()
    restored = _restore(staging_url, workers)
    phases["indexes_constraints"] = time.monotonic() - t2
    t3 = time.monotonic()
    stats = _finish(staging_url)
    phases["analyze"] = time.monotonic() - t3
    if switch_to_target:
        switch(admin_url, staging, target)
    final_url = url if switch_to_target else staging_url
    size, sizes = table_sizes(final_url)
    stats.seconds = time.monotonic() - t0
    return BuildReport(stats, workers, counties, resumed, phases, sizes, size, restored)


"""Generate the demo district deterministically and stream it into PostGIS with COPY.

``load_demo(url, cipher, parcels=2000)`` writes ≥ 2,000 parcels, their boundary points and lines,
buildings with floors and units, parties (encrypted) and registration records, plus three planted
defects (an overlap, a sliver gap, an area discrepancy) listed in ``cad.demo_defect``.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import psycopg
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, box

from cadastre.access.pii import PiiCipher
from cadastre.codes import county_of
from cadastre.demo.layout import (
    ROAD,
    BuildingPlan,
    DistrictBuilder,
    ParcelPlan,
    RetiredParcel,
    mm,
)
from cadastre.demo.people import Person
from cadastre.demo.registry import DEMO_NS, DEMO_TODAY, RegistryBuilder, ts
from cadastre.register.boundary import clockwise, ring_points
from cadastre.register.subdistricts import seed_from_parcels
from cadastre.store.bulk import deferred_indexes

COUNTY = "330106"          # 浙江省杭州市西湖区
SRID = 4528                # CGCS2000 / 3-degree Gauss-Kruger zone 40 (CM 120°E, prefixed easting)
ORIGIN_E, ORIGIN_N = 40_502_000.0, 3_347_000.0   # ≈ 120.02°E, 30.25°N
DEFAULT_SEED = 20260630
FLUSH_ROWS = 50_000

Progress = Callable[[int, int], None]   # (parcels done, parcels total)


@dataclass
class DemoStats:
    parcels: int = 0
    retired_parcels: int = 0
    boundary_points: int = 0
    buildings: int = 0
    floors: int = 0
    units: int = 0
    parties: int = 0
    rights: int = 0
    defects: list[str] = field(default_factory=list)
    seconds: float = 0.0


PARCEL_COLS = ("feature_id", "parcel_code", "seat", "compound_name", "land_use", "right_type",
               "right_nature", "registered_area", "neighbour_north", "neighbour_east",
               "neighbour_south", "neighbour_west", "map_sheet", "srid", "geom", "valid_from",
               "valid_to", "change_id", "retired_by")
POINT_COLS = ("feature_id", "parcel_code", "point_no", "seq", "ring_no", "marker_type",
              "point_type", "x_north", "y_east", "srid", "geom", "valid_from", "valid_to",
              "change_id", "retired_by", "county_code")
LINE_COLS = ("feature_id", "parcel_code", "start_point_no", "end_point_no", "length",
             "line_category", "line_position", "line_nature", "srid", "geom", "valid_from",
             "valid_to", "change_id", "retired_by")
BUILDING_COLS = ("feature_id", "building_code", "name", "project_name", "floors_total",
                 "floors_above", "floors_below", "height", "ground_elevation", "structure",
                 "planned_use", "completion_date", "floor_area", "footprint_area", "srid", "geom",
                 "valid_from", "change_id")
FLOOR_COLS = ("feature_id", "building_code", "floor_no", "floor_label", "base_elevation",
              "storey_height", "floor_area", "srid", "geom", "valid_from", "change_id")
UNIT_COLS = ("feature_id", "unit_code", "floor_no", "floor_count", "room_no", "seat", "use",
             "house_type", "house_nature", "layout", "building_area", "inner_area",
             "shared_area", "shared_coefficient", "land_share_area", "base_elevation", "height",
             "srid", "geom", "valid_from", "change_id", "county_code")
RIGHT_COLS = ("version_id", "right_id", "kind", "unit_code", "business_no", "registration_type",
              "right_type", "registration_reason", "certificate_no", "registry_office",
              "registrar_name", "registered_at", "right_start", "right_end", "status", "remark",
              "valid_from", "valid_to", "change_id", "retired_by", "county_code")
DETAIL_COLS = {
    "ownership_detail": ("right_version_id", "land_use_start", "land_use_end",
                         "transaction_price", "house_use", "house_nature", "structure",
                         "floor_label", "floors_total", "building_area", "exclusive_area",
                         "shared_area", "land_area"),
    "mortgage_detail": ("right_version_id", "mortgage_type", "property_kind", "secured_amount",
                        "max_amount", "debt_start", "debt_end", "scope"),
    "pre_notice_detail": ("right_version_id", "notice_kind", "price", "house_use",
                          "building_area"),
    "seizure_detail": ("right_version_id", "authority", "seizure_type", "document",
                       "document_no", "seizure_start", "seizure_end", "scope",
                       "release_document_no", "released_at"),
    "objection_detail": ("right_version_id", "matter", "cancelled_reason", "cancelled_at"),
    "easement_detail": ("right_version_id", "servient_unit_code", "dominant_unit_code",
                        "content", "easement_start", "easement_end"),
    "cancellation_detail": ("right_version_id", "cancelled_right_id", "reason", "cancelled_at"),
}
SINK_DETAIL = {"ownership_detail": "ownership", "mortgage_detail": "mortgage",
               "pre_notice_detail": "pre_notice", "seizure_detail": "seizure",
               "objection_detail": "objection", "easement_detail": "easement",
               "cancellation_detail": "cancellation"}


def _ewkb(geom: shapely.Geometry) -> str:
    return shapely.to_wkb(shapely.set_srid(geom, SRID), hex=True, include_srid=True)


def _shift(poly: Polygon) -> Polygon:
    """Local metres → zone coordinates, rounded to the millimetre."""
    return Polygon([(mm(x + ORIGIN_E), mm(y + ORIGIN_N)) for x, y in poly.exterior.coords])


def _multi(poly: Polygon) -> MultiPolygon:
    return MultiPolygon([poly])


def _map_sheet(poly: Polygon) -> str:
    """A 1:500 map sheet number (图幅号) from the polygon's centroid."""
    row = (int(poly.centroid.y) // 500) % 1000
    col = (int(poly.centroid.x) // 500) % 1000
    return f"H51G{row:03d}{col:03d}"


def _fid(kind: str, key: str) -> uuid.UUID:
    return uuid.uuid5(DEMO_NS, f"{kind}:{key}")


def _copy(cur: psycopg.Cursor, table: str, cols: Sequence[str], rows: Iterable[tuple]) -> None:
    with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
        for row in rows:
            cp.write_row(row)


class _Writer:
    """Buffers rows per table and COPYs each batch in a background thread, so PostgreSQL
    ingests one batch while Python generates the next (two cores, both busy)."""

    def __init__(self, cur: psycopg.Cursor, cipher: PiiCipher) -> None:
        self.cur = cur
        self.cipher = cipher
        self.buf: dict[str, list[tuple]] = {}
        self.cols: dict[str, Sequence[str]] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-copy")
        self._pending: Future[None] | None = None

    def add(self, table: str, cols: Sequence[str], row: tuple) -> None:
        self.cols[table] = cols
        self.buf.setdefault(table, []).append(row)

    def size(self) -> int:
        return sum(len(v) for v in self.buf.values())

    def flush(self, reg: RegistryBuilder, wait: bool = False) -> None:
        sink = reg.sink
        batch = (self.buf, dict(self.cols), list(zip(sink.party_ids, sink.parties, strict=True)),
                 {name: getattr(sink, name) for name in ("rights", "right_parties",
                                                         *SINK_DETAIL.values())})
        self.buf = {}
        sink.renew()
        self.wait()
        self._pending = self._pool.submit(copy_batch, self.cur, self.cipher, *batch)
        if wait:
            self.wait()

    def wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()  # re-raises a COPY error here


def copy_batch(cur: psycopg.Cursor, c: PiiCipher, buf: dict[str, list[tuple]],
               cols: dict[str, Sequence[str]], parties: list[tuple[uuid.UUID, Person]],
               records: dict[str, list[tuple]]) -> None:
    """COPY one batch: parties (encrypted here), the spatial tables in dependency order, then
    the records with their county (the partition key) taken from the unit code."""
    party_rows = [
        (pid, p.party_type, p.id_type, c.encrypt(p.name), c.lookup_hash(p.name),
         c.encrypt(p.id_number), c.lookup_hash(p.id_number), c.encrypt(p.phone),
         c.lookup_hash(p.phone), c.encrypt(p.address))
        for pid, p in parties
    ]
    _copy(cur, "pii.party", ("party_id", "party_type", "id_type", "name_enc", "name_hash",
                             "id_number_enc", "id_number_hash", "phone_enc", "phone_hash",
                             "address_enc"), party_rows)
    order = ("cad.parcel", "cad.boundary_point", "cad.boundary_line", "cad.lineage",
             "cad.building", "cad.floor", "cad.unit", "cad.demo_defect")
    for table in order:
        if buf.get(table):
            _copy(cur, table, cols[table], buf[table])
    # the partition key: a right's county is its unit's, its holders' and details' its own
    county = {r[0]: county_of(r[3]) for r in records["rights"]}
    _copy(cur, "cad.right_record", RIGHT_COLS,
          ((*r, county[r[0]]) for r in records["rights"]))
    _copy(cur, "cad.right_party", ("right_version_id", "party_id", "role", "seq", "share",
                                   "co_ownership", "county_code"),
          ((*r, county[r[0]]) for r in records["right_parties"]))
    for table, tcols in DETAIL_COLS.items():
        _copy(cur, f"cad.{table}", (*tcols, "county_code"),
              ((*r, county[r[0]]) for r in records[SINK_DETAIL[table]]))


class DemoLoader:
    def __init__(self, cur: psycopg.Cursor, cipher: PiiCipher, target: int, seed: int,
                 units: bool = True) -> None:
        self.cur = cur
        self.with_units = units
        self.rng = random.Random(seed)
        self.builder = DistrictBuilder(target, seed)
        self.target = target
        self.change_id: int = demo_change_set(cur, target, seed)
        first = cur.execute("SELECT coalesce(max(version_id), 0) + 1 FROM cad.right_record")
        self.reg = RegistryBuilder(self.rng, self.change_id, first.fetchone()[0])  # type: ignore
        self.w = _Writer(cur, cipher)
        self.stats = DemoStats()
        self._defects_planted = False
        self._defect_block: list[ParcelPlan] | None = None
        self._easements = 0

    county = COUNTY

    def _code(self, district: int, subdistrict: int, seq: int) -> str:
        return _parcel_code(district, subdistrict, seq, self.county)

    @staticmethod
    def _id(kind: str, key: str) -> uuid.UUID | str:
        return _fid(kind, key)

    # ------------------------------------------------------------------ run
    def run(self, progress: Progress | None = None) -> DemoStats:
        t0 = time.monotonic()
        for parcels, retired in self.builder.iter_blocks():
            if not self._defects_planted and self._can_plant(parcels, retired):
                self._plant_defects(parcels)
            self._block(parcels, retired)
            if self.w.size() + len(self.reg.sink.rights) > FLUSH_ROWS:
                self.w.flush(self.reg)
            if progress:
                progress(min(self.stats.parcels, self.target), self.target)
        self.w.flush(self.reg, wait=True)
        self.cur.execute(
            "SELECT setval(pg_get_serial_sequence('cad.right_record', 'version_id'), "
            "(SELECT max(version_id) FROM cad.right_record))"
        )
        self.stats.seconds = time.monotonic() - t0
        return self.stats

    # -------------------------------------------------------------- defects
    @staticmethod
    def _can_plant(parcels: list[ParcelPlan], retired: list[RetiredParcel]) -> bool:
        return bool(parcels) and parcels[0].kind == "lot" and not retired and len(parcels) >= 12

    def _plant_defects(self, parcels: list[ParcelPlan]) -> None:
        """Overlap (0–1), sliver gap (3–4) and an area discrepancy (6), all in one lot block."""
        a = parcels[0].polygon
        x0, y0, x1, y1 = a.bounds
        parcels[0].polygon = _rect_keep_nodes(a, x1 + 0.8)      # 0.8 m into its east neighbour
        g = parcels[3].polygon
        gx0, gy0, gx1, gy1 = g.bounds
        parcels[3].polygon = _rect_keep_nodes(g, gx1 - 0.15)    # 15 cm gap to its neighbour
        parcels[0].kind = parcels[3].kind = parcels[6].kind = "lot-defect"
        self._defects = {
            "overlap": (0, 1, round(0.8 * (y1 - y0), 3)),
            "sliver_gap": (3, 4, round(0.15 * (gy1 - gy0), 3)),
            "area_discrepancy": (6, 6, 0.12),
        }
        self._defects_planted = True
        self._defect_block = parcels

    # --------------------------------------------------------------- blocks
    def _block(self, parcels: list[ParcelPlan], retired: list[RetiredParcel]) -> None:
        rng = self.rng
        seq = 0
        retired_codes: list[tuple[RetiredParcel, str, date, date]] = []
        for r in retired:
            seq += 1
            r.sequence = seq
        for p in parcels:
            seq += 1
            p.sequence = seq
        split_dates: dict[int, date] = {}
        for r in retired:
            code = self._code(r.district, r.subdistrict, r.sequence)
            born = date(2001, 1, 1) + timedelta(days=rng.randrange(0, 3650))
            split = born + timedelta(days=rng.randrange(1500, 5500))
            split = min(split, DEMO_TODAY - timedelta(days=30))
            for i in r.children:
                split_dates[i] = split
            retired_codes.append((r, code, born, split))
            self._write_parcel(code, r.polygon, r.seat, None, r.land_use, {}, born, split)
            self.stats.retired_parcels += 1
        for i, p in enumerate(parcels):
            code = self._code(p.district, p.subdistrict, p.sequence)
            p_from = split_dates.get(i) or self._parcel_start(p)
            area = round(_shift(p.polygon).area, 2)
            registered = area
            if self._defect_block is parcels and i == 6:
                registered = round(area * 1.12, 2)
            self._write_parcel(code, p.polygon, p.seat, p.compound_name, p.land_use,
                               p.neighbours, p_from, None, registered)
            self.stats.parcels += 1
            if self.with_units:
                self._rights_for_parcel(p, code, p_from, area)
            for b in p.buildings:
                self._write_building(p, code, b, p_from)
        for r, code, _born, _split in retired_codes:
            for i in r.children:
                child = self._code(parcels[i].district, parcels[i].subdistrict,
                                     parcels[i].sequence)
                self.w.add("cad.lineage", ("entity", "parent_feature_id", "child_feature_id",
                                           "event", "change_id"),
                           ("parcel", self._id("parcel", code), self._id("parcel", child), "split",
                            self.change_id))
        if self._defect_block is parcels:
            codes = [self._code(p.district, p.subdistrict, p.sequence) for p in parcels]
            for kind, (i, j, measure) in self._defects.items():
                pair = [codes[i]] if i == j else [codes[i], codes[j]]
                self.w.add("cad.demo_defect", ("kind", "parcel_codes", "measure", "note"),
                           (kind, pair, measure, "planted by cadastre demo"))
                self.stats.defects.append(f"{kind}: {', '.join(pair)} ({measure})")
            self._defect_block = None
        # a few easements between neighbouring lots (通行地役权)
        lots = [p for p in parcels if p.kind == "lot"]
        if len(lots) > 2 and rng.random() < 0.15:
            s, d = lots[0], lots[1]
            self.reg.easement(
                self._code(s.district, s.subdistrict, s.sequence) + "W00000000",
                self._code(d.district, d.subdistrict, d.sequence) + "W00000000",
                date(2015, 1, 1) + timedelta(days=rng.randrange(0, 3000)),
            )

    def _parcel_start(self, p: ParcelPlan) -> date:
        years = [b.completion_year for b in p.buildings]
        first = min(years) - 3 if years else 2005
        return date(first, 1, 1) + timedelta(days=self.rng.randrange(0, 360))

    # ---------------------------------------------------------------- parcel
    def _write_parcel(self, code: str, local: Polygon, seat: str, compound: str | None,
                      land_use: str, nb: dict[str, str], start: date, end: date | None,
                      registered: float | None = None) -> None:
        poly = clockwise(_shift(local))  # 界址点 are numbered clockwise from the north-west
        fid = self._id("parcel", code)
        area = registered if registered is not None else round(poly.area, 2)
        vfrom, vto = ts(start), ts(end) if end else None
        retired_by = self.change_id if end else None
        self.w.add("cad.parcel", PARCEL_COLS, (
            fid, code, seat, compound, land_use, 3, 101 if land_use in ("0810", "08H2") else 102,
            area,
            nb.get("north"), nb.get("east"), nb.get("south"), nb.get("west"),
            _map_sheet(poly),
            SRID, _ewkb(_multi(poly)), vfrom, vto, self.change_id, retired_by))
        ring = ring_points(poly)
        for k, (x, y) in enumerate(ring, start=1):
            self.w.add("cad.boundary_point", POINT_COLS, (
                self._id("jzd", f"{code}:{k}"), code, f"J{k}", k, 1,
                self.rng.choice((1, 2, 4)), 1, f"{y:.3f}", f"{x:.3f}", SRID,
                _ewkb(Point(x, y)), vfrom, vto, self.change_id, retired_by, county_of(code)))
            nx, ny = ring[k % len(ring)]
            line = shapely.LineString([(x, y), (nx, ny)])
            self.w.add("cad.boundary_line", LINE_COLS, (
                self._id("jzx", f"{code}:{k}"), code, f"J{k}", f"J{k % len(ring) + 1}",
                round(line.length, 3), 1, 2, 1, SRID, _ewkb(line), vfrom, vto, self.change_id,
                retired_by))
            self.stats.boundary_points += 1

    # -------------------------------------------------------------- building
    def _write_building(self, p: ParcelPlan, parcel_code: str, b: BuildingPlan,
                        parcel_from: date) -> None:
        bcode = f"{parcel_code}F{b.building_no:04d}"
        completion = date(b.completion_year, 1, 1) + timedelta(days=self.rng.randrange(0, 360))
        vfrom = ts(max(completion, parcel_from))
        fp = _shift(b.footprint)
        floor_area = round(fp.area * (b.floors_above + b.floors_below), 2)
        self.w.add("cad.building", BUILDING_COLS, (
            self._id("zrz", bcode), bcode, b.name, p.compound_name,
            b.floors_above + b.floors_below, b.floors_above, b.floors_below, b.height,
            b.ground_elevation, b.structure, b.planned_use, completion, floor_area,
            round(fp.area, 2), SRID, _ewkb(_multi(fp)), vfrom, self.change_id))
        self.stats.buildings += 1
        fp_wkb = _ewkb(_multi(fp))
        if not self.with_units:   # a lighter district (parcels, boundaries, buildings only)
            return
        for f in b.floors:
            self.w.add("cad.floor", FLOOR_COLS, (
                self._id("c", f"{bcode}:{f.floor_no}"), bcode, f.floor_no,
                f"{f.floor_no}" if f.floor_no > 0 else f"地下{-f.floor_no}",
                f.base_elevation, f.storey_height, round(fp.area, 2), SRID, fp_wkb, vfrom,
                self.change_id))
            self.stats.floors += 1
        new_compound = p.kind == "residential" and b.completion_year >= 2025
        org_owner = p.kind in ("commercial", "school")
        unit_wkb = _unit_wkb(b.units)
        for u, geom_hex in zip(b.units, unit_wkb, strict=True):
            ucode = f"{bcode}{u.house_no:04d}"
            room = u.room_no if u.room_no != "全幢" else ""
            seat = (f"{p.compound_name}{b.building_no}幢{u.room_no}室" if p.compound_name
                    and p.kind == "residential" else f"{p.seat}{room}")
            coef = round(u.shared_area / u.inner_area, 6) if u.inner_area else 0
            self.w.add("cad.unit", UNIT_COLS, (
                self._id("h", ucode), ucode, u.floor_no, u.floor_count, u.room_no, seat, u.use,
                1, 0, "三室两厅" if u.use == "11" and u.building_area > 110 else None,
                u.building_area, u.inner_area, u.shared_area, coef, None, u.base_elevation,
                u.height, SRID, geom_hex, vfrom, self.change_id, county_of(ucode)))
            self.stats.units += 1
            factory: Callable[[], Person] | None = None
            if org_owner:
                factory = self._org_owner_factory(p)
            self.reg.unit_records(ucode, completion, u.use, b.structure, str(u.floor_no),
                                  b.floors_above, u.building_area, u.inner_area, u.shared_area,
                                  new_compound, factory)

    def _org_owner_factory(self, p: ParcelPlan) -> Callable[[], Person]:
        rng = self.rng

        def make() -> Person:
            if p.kind == "school" or rng.random() < 0.5:
                n = rng.randrange(1, 10**6)
                return self.reg.people.organisation(f"杭州{n:06d}科技有限公司")
            return self.reg.people.person()

        return make

    # ---------------------------------------------------------------- rights
    def _rights_for_parcel(self, p: ParcelPlan, code: str, start: date, area: float) -> None:
        land = code + "W00000000"
        people = self.reg.people
        if p.kind == "residential":
            completion = min(b.completion_year for b in p.buildings)
            dev = people.organisation(people.developer_name(p.block_id))
            ended = None
            if completion < 2025:
                ended = min(date(completion, 9, 1), DEMO_TODAY)
                if ended <= start:
                    ended = start + timedelta(days=200)
            self.reg.land_use_right(land, dev, start, ended, area)
        elif p.kind == "commercial":
            self.reg.land_use_right(land, people.organisation(f"{p.compound_name}置业有限公司"),
                                    start, None, area, years=40)
        elif p.kind in ("school", "park"):
            name = p.compound_name or "杭州市西湖区人民政府"
            holder = people.organisation(f"杭州市{name}" if p.kind == "school"
                                         else "杭州市西湖区园林和文物局", 3 if p.kind == "school"
                                         else 4)
            self.reg.land_use_right(land, holder, start, None, area, years=50)


def demo_change_set(cur: psycopg.Cursor, parcels: int, seed: int) -> int:
    """The change set every row of a generated district is written under; its id."""
    row = cur.execute(
        "INSERT INTO cad.change_set (kind, created_at, actor, note) "
        "VALUES ('demo', %s, 'cadastre demo', %s) RETURNING id",
        (ts(date(2026, 6, 30)), f"demo district, {parcels} parcels, seed {seed}"),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _unit_wkb(units: list) -> list[str]:
    """EWKB hex of every unit's plan rectangle, vectorised (units are most of the rows)."""
    b = np.array([u.bounds for u in units], dtype=float)
    boxes = shapely.box(np.round(b[:, 0] + ORIGIN_E, 3), np.round(b[:, 1] + ORIGIN_N, 3),
                        np.round(b[:, 2] + ORIGIN_E, 3), np.round(b[:, 3] + ORIGIN_N, 3),
                        ccw=False)
    multi = shapely.multipolygons(boxes, indices=np.arange(len(units)))
    return list(shapely.to_wkb(shapely.set_srid(multi, SRID), hex=True, include_srid=True))


def _parcel_code(district: int, subdistrict: int, seq: int, county: str = COUNTY) -> str:
    return f"{county}{district:03d}{subdistrict:03d}GB{seq:05d}"


def _rect_keep_nodes(poly: Polygon, new_x1: float) -> Polygon:
    """Move the east edge of an axis-aligned parcel to ``new_x1`` (mm), keeping other nodes."""
    x0, y0, x1, y1 = poly.bounds
    if new_x1 > x1:
        grown = poly.union(box(x1, y0, mm(new_x1), y1))
        return Polygon([(mm(x), mm(y)) for x, y in grown.exterior.coords])
    pts = [(x, y) for x, y in poly.exterior.coords[:-1] if x < new_x1 or x == x1]
    pts = [(mm(new_x1) if x == x1 else x, y) for x, y in pts]
    return Polygon(pts)


def ensure_empty(cur: psycopg.Cursor | psycopg.Connection) -> None:
    """Refuse to load a demo into a registry that has parcels."""
    existing = cur.execute("SELECT count(*) FROM cad.parcel").fetchone()
    if existing and existing[0]:
        from cadastre.errors import InvalidInput

        raise InvalidInput("DEMO_NOT_EMPTY", "数据库已有宗地数据 / the registry is not empty; "
                           "use `cadastre demo --reset`")


def load_demo(conn: psycopg.Connection, cipher: PiiCipher, parcels: int = 2000,
              seed: int = DEFAULT_SEED, progress: Progress | None = None,
              units: bool = True) -> DemoStats:
    """Load the demo into an empty, migrated database in one transaction. ``units=False``
    leaves out floors, units, parties and records (same parcels and buildings, much faster)."""
    with conn.transaction(), conn.cursor() as cur:
        # the tile cache is rebuilt after a bulk load: don't queue per-feature invalidations
        cur.execute("SET LOCAL cadastre.bulk_load = 'on'")
        ensure_empty(cur)
        loader = DemoLoader(cur, cipher, parcels, seed, units)
        cur.execute("SELECT cad.county_add(%s)", (COUNTY,))   # the district's own partitions
        with deferred_indexes(cur):
            stats = loader.run(progress)
        # its blocks are its cadastral subdistricts, up to the middle of the roads around them
        seed_from_parcels(conn, ROAD / 2, "cadastre demo")
        stats.parties = cur.execute("SELECT count(*) FROM pii.party").fetchone()[0]  # type: ignore
        stats.rights = cur.execute("SELECT count(*) FROM cad.right_record").fetchone()[0]  # type: ignore
    with conn.cursor() as cur:
        for t in ("cad.parcel", "cad.boundary_point", "cad.boundary_line", "cad.building",
                  "cad.floor", "cad.unit", "cad.right_record", "cad.right_party", "pii.party",
                  "cad.unit_status"):
            cur.execute(f"ANALYZE {t}")
    return stats

"""A new development project for 交房即交证 (handover) demos, tests and the benchmark.

Next to the demo district: one residential parcel whose developer holds the land use right,
``buildings`` towers of ``floors`` × ``per_floor`` flats just completed (no ownership registered
yet), and what the departments filed under their codes through the document library
(``cadastre.linked.filing``, files stored by hash): a planning permit and a pre-sale permit for
the project, a completion acceptance filing per building, a sales contract filing (网签备案) per
sold flat and a mortgage contract for a share of them. Some buyers already hold a purchase
pre-notice (and their lender a mortgage pre-notice) registered during the pre-sale.

Like the demo district, the spatial units and the pre-sale history are written directly as a
``demo`` change set; the handover itself then goes through the registration cases.
"""

from __future__ import annotations

import io
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import shapely
from pypdf import PdfWriter
from shapely.geometry import MultiPolygon, box

from cadastre.access.pii import PiiCipher
from cadastre.cases.numbers import Office, certificate_number
from cadastre.demo.load import COUNTY, SRID
from cadastre.demo.people import BANKS, PeopleFactory, Person
from cadastre.linked.documents import DocumentInput, DocumentParty
from cadastre.linked.filing import file_upload
from cadastre.register import rights as reg
from cadastre.register.numbering import next_parcel_sequence
from cadastre.register.parties import insert_party
from cadastre.register.rights import Holder
from cadastre.register.versions import new_change, replace_boundary

ZONE = f"{COUNTY}090001GB"           # 地籍区 090, 子区 001: new development land
HOUSING = "杭州市住房保障和房产管理局"
PLANNING = "杭州市规划和自然资源局"
Progress = Callable[[int, int], None]


@dataclass
class BuiltProject:
    parcel_code: str
    name: str
    building_codes: list[str] = field(default_factory=list)
    unit_codes: list[str] = field(default_factory=list)
    sold: list[str] = field(default_factory=list)           # units with a contract filing
    mortgaged: list[str] = field(default_factory=list)      # … and a mortgage contract
    pre_noticed: list[str] = field(default_factory=list)
    developer: uuid.UUID | None = None


def pdf_document(title: str, lines: Sequence[str] = ()) -> bytes:
    """A one-page PDF standing for a scanned document (its title makes each one unique)."""
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.add_metadata({"/Title": title, "/Subject": " ".join(lines)[:200]})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _party(p: Person, role: str) -> DocumentParty:
    return DocumentParty(p.name, p.id_number, role, p.id_type, p.party_type)


class _Builder:
    def __init__(self, conn: psycopg.Connection, cipher: PiiCipher, data_dir: Path, seed: int,
                 name: str) -> None:
        self.conn, self.cipher, self.data_dir = conn, cipher, data_dir
        self.rng = random.Random(seed)
        self.people = PeopleFactory(self.rng)
        self.name = name
        self.now = datetime.now(UTC)
        self.change = 0                       # the demo change set of the project
        self.developer: Person | None = None
        self.area = 0.0

    def file(self, code: str, doc: DocumentInput) -> None:
        body = pdf_document(f"{doc.doc_type} {doc.doc_no}", (doc.issuer, code))
        file_upload(self.conn, self.cipher, self.data_dir, code, doc, io.BytesIO(body),
                    max_bytes=20 * 2**20, posted_by="demo:project")

    def parcel_code(self) -> str:
        rows = self.conn.execute("SELECT DISTINCT right(parcel_code, 5)::int FROM cad.parcel "
                                 "WHERE parcel_code LIKE %s", (ZONE + "%",)).fetchall()
        return f"{ZONE}{next_parcel_sequence(r[0] for r in rows):05d}"

    def origin(self) -> tuple[float, float]:
        row = self.conn.execute("SELECT ST_XMax(ST_Extent(geom)), ST_YMin(ST_Extent(geom)) "
                                "FROM cad.parcel WHERE srid = %s", (SRID,)).fetchone()
        if row is None or row[0] is None:
            return 40_502_000.0, 3_347_000.0
        return round(float(row[0]) + 80.0, 3), round(float(row[1]), 3)


def _wkb(geom: shapely.Geometry) -> str:
    multi = geom if isinstance(geom, MultiPolygon) else MultiPolygon([geom])
    return shapely.to_wkb(shapely.set_srid(multi, SRID), hex=True, include_srid=True)


def build_project(conn: psycopg.Connection, cipher: PiiCipher, data_dir: Path, *,
                  name: str = "和园新城", buildings: int = 3, floors: int = 25,
                  per_floor: int = 4, seed: int = 15_2026, mortgage_share: float = 0.4,
                  pre_notice_share: float = 0.3, unsold: int = 0,
                  progress: Progress | None = None) -> BuiltProject:
    """Write the project and file its documents; every flat but the last ``unsold`` is sold."""
    b = _Builder(conn, cipher, data_dir, seed, name)
    with conn.transaction():
        built = _spatial(b, buildings, floors, per_floor)
        _land_right(b, built)
    sold = built.unit_codes[:len(built.unit_codes) - unsold] if unsold else built.unit_codes
    _project_documents(b, built)
    total = len(sold)
    for i, unit in enumerate(sold, start=1):
        with conn.transaction():
            _sale(b, built, unit, mortgage_share, pre_notice_share)
        if progress and (i % 50 == 0 or i == total):
            progress(i, total)
    return built


def _spatial(b: _Builder, buildings: int, floors: int, per_floor: int) -> BuiltProject:
    conn = b.conn
    code = b.parcel_code()
    x0, y0 = b.origin()
    length, depth, gap = per_floor * 10.0, 12.0, 20.0
    width = 20.0 + buildings * (length + gap)
    parcel = box(x0, y0, x0 + width, y0 + 60.0)
    change = new_change(conn, "demo", "demo:project", f"project {b.name}")
    conn.execute(
        "INSERT INTO cad.parcel (feature_id, parcel_code, seat, compound_name, land_use, "
        "right_type, right_nature, registered_area, neighbour_north, neighbour_east, "
        "neighbour_south, neighbour_west, srid, geom, valid_from, change_id) VALUES (%s, %s, "
        "%s, %s, '0701', 3, 102, %s, '规划道路', '规划道路', '规划道路', '相邻宗地', %s, "
        "%s::geometry, %s, %s)",
        (uuid.uuid4(), code, f"西湖区新城路1号{b.name}", b.name, round(parcel.area, 2), SRID,
         _wkb(parcel), b.now, change))
    replace_boundary(conn, code, parcel, SRID, b.now, change)
    b.change, b.area = change, round(parcel.area, 2)
    built = BuiltProject(code, b.name)
    storey = 3.0
    for n in range(1, buildings + 1):
        bcode = f"{code}F{n:04d}"
        bx = x0 + 20.0 + (n - 1) * (length + gap)
        fp = box(bx, y0 + 20.0, bx + length, y0 + 20.0 + depth)
        conn.execute(
            "INSERT INTO cad.building (feature_id, building_code, name, project_name, "
            "floors_total, floors_above, floors_below, height, ground_elevation, structure, "
            "planned_use, completion_date, floor_area, footprint_area, srid, geom, valid_from, "
            "change_id) VALUES (%s, %s, %s, %s, %s, %s, 0, %s, 8.0, 3, '11', %s, %s, %s, %s, "
            "%s::geometry, %s, %s)",
            (uuid.uuid4(), bcode, f"{b.name}{n}幢", b.name, floors, floors, floors * storey,
             b.now.date() - timedelta(days=20), round(fp.area * floors, 2), round(fp.area, 2),
             SRID, _wkb(fp), b.now, change))
        built.building_codes.append(bcode)
        floor_rows, unit_rows = [], []
        house = 0
        for f in range(1, floors + 1):
            base = 8.0 + (f - 1) * storey
            floor_rows.append((uuid.uuid4(), bcode, f, str(f), base, storey,
                               round(fp.area, 2), SRID, _wkb(fp), b.now, change))
            for i in range(per_floor):
                house += 1
                cell = box(bx + i * 10.0, y0 + 20.0, bx + (i + 1) * 10.0, y0 + 20.0 + depth)
                area = round(cell.area, 2)
                inner = round(area / 1.18, 2)
                ucode = f"{bcode}{house:04d}"
                unit_rows.append((uuid.uuid4(), ucode, f, f"{f}{i + 1:02d}",
                                  f"{b.name}{n}幢{f}{i + 1:02d}室", area, inner,
                                  round(area - inner, 2), round((area - inner) / inner, 6),
                                  base, storey, SRID, _wkb(cell), b.now, change))
                built.unit_codes.append(ucode)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO cad.floor (feature_id, building_code, floor_no, floor_label, "
                "base_elevation, storey_height, floor_area, srid, geom, valid_from, change_id) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::geometry, %s, %s)", floor_rows)
            cur.executemany(
                "INSERT INTO cad.unit (feature_id, unit_code, county_code, floor_no, "
                "floor_count, room_no, seat, use, house_type, house_nature, building_area, "
                "inner_area, shared_area, shared_coefficient, base_elevation, height, srid, "
                "geom, valid_from, change_id) VALUES (%s, %s, left(%s, 6), %s, 1, %s, %s, '11', "
                "1, 0, %s, %s, %s, %s, %s, %s, %s, %s::geometry, %s, %s)",
                [(r[0], r[1], r[1], *r[2:]) for r in unit_rows])
    return built


def _land_right(b: _Builder, built: BuiltProject) -> None:
    dev = b.people.organisation(f"杭州{b.name}置业有限公司")
    built.developer = insert_party(b.conn, b.cipher, name=dev.name, id_number=dev.id_number,
                                   id_type=dev.id_type, party_type=dev.party_type)
    b.developer = dev
    start = b.now.date() - timedelta(days=900)
    office = Office(COUNTY, "杭州市不动产登记服务中心西湖分中心", "浙", "杭州市")
    reg.enter(b.conn, change=b.change, at=b.now - timedelta(days=900),
              kind="land_use", unit_code=f"{built.parcel_code}W00000000",
              business_no=f"DEMO-{built.parcel_code}", registration_type=100, right_type=3,
              holders=[Holder(built.developer, 1)],
              detail_values={"land_use_start": start,
                             "land_use_end": start.replace(year=start.year + 70),
                             "land_area": b.area},
              reason="出让", certificate_no=certificate_number(b.conn, office, start.year, False),
              office=office.name, registrar="登簿员甲", right_start=start,
              right_end=start.replace(year=start.year + 70))


def _project_documents(b: _Builder, built: BuiltProject) -> None:
    today = b.now.date()
    with b.conn.transaction():
        b.file(built.parcel_code, DocumentInput(
            "planning_permit", f"建字第330106{b.rng.randrange(10**6):06d}号", PLANNING,
            today - timedelta(days=800)))
        b.file(built.parcel_code, DocumentInput(
            "presale_permit", f"杭售许字({today.year - 1})第{b.rng.randrange(1000):03d}号",
            HOUSING, today - timedelta(days=500), unit_codes=tuple(built.unit_codes)))
        for n, bcode in enumerate(built.building_codes, start=1):
            b.file(bcode, DocumentInput(
                "completion_acceptance", f"竣备字({today.year})第{n:03d}{b.rng.randrange(999)}号",
                "杭州市城乡建设委员会", today - timedelta(days=15)))


def _sale(b: _Builder, built: BuiltProject, unit: str, mortgage_share: float,
          pre_notice_share: float) -> None:
    rng, today = b.rng, b.now.date()
    buyer = b.people.person()
    price = Decimal(f"{rng.uniform(220, 680):.2f}")
    signed = today - timedelta(days=rng.randrange(60, 400))
    dev = b.developer
    assert dev is not None
    b.file(unit, DocumentInput("sales_contract", f"WQ{unit[-12:]}{rng.randrange(10**4):04d}",
                               HOUSING, signed, price=price,
                               parties=(_party(buyer, "buyer"), _party(dev, "seller"))))
    built.sold.append(unit)
    lender = None
    if rng.random() < mortgage_share:
        lender = b.people.organisation(rng.choice(BANKS))
        loan = (price * Decimal("0.6")).quantize(Decimal("0.01"))
        b.file(unit, DocumentInput(
            "mortgage_contract", f"DY{unit[-12:]}{rng.randrange(10**4):04d}", lender.name,
            signed + timedelta(days=10), secured_amount=loan, debt_start=signed,
            debt_end=signed.replace(year=signed.year + 30),
            parties=(_party(lender, "lender"), _party(buyer, "borrower"))))
        built.mortgaged.append(unit)
    if rng.random() < pre_notice_share:
        _pre_sale_notices(b, unit, buyer, lender, price, signed)
        built.pre_noticed.append(unit)


def _pre_sale_notices(b: _Builder, unit: str, buyer: Person, lender: Person | None,
                      price: Decimal, signed: date) -> None:
    """预告登记 of the pre-sale (and the lender's mortgage pre-notice), as the demo's history."""
    at = datetime(signed.year, signed.month, signed.day, 10, tzinfo=UTC) + timedelta(days=3)
    pid = insert_party(b.conn, b.cipher, name=buyer.name, id_number=buyer.id_number)
    reg.enter(b.conn, change=b.change, at=at, kind="pre_notice",
              unit_code=unit, business_no=f"DEMO-YG-{unit[-9:]}", registration_type=700,
              right_type=4, holders=[Holder(pid, 1)],
              detail_values={"notice_kind": 1, "price": price}, reason="预售商品房买卖")
    if lender is not None:
        bank = insert_party(b.conn, b.cipher, name=lender.name, id_number=lender.id_number,
                            id_type=8, party_type=2)
        reg.enter(b.conn, change=b.change, at=at + timedelta(days=5),
                  kind="pre_notice", unit_code=unit, business_no=f"DEMO-YD-{unit[-9:]}",
                  registration_type=700, right_type=23, holders=[Holder(bank, 1), Holder(pid, 2)],
                  detail_values={"notice_kind": 3, "price": price * Decimal("0.6")},
                  reason="预售商品房抵押权预告")

"""Registration records for the demo district: owners, transfers, mortgages, pre-notices,
seizures, objections, easements and cancellations, with some history.

Works on plain row tuples so the loader can stream them into PostgreSQL with COPY.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from cadastre.demo.people import BANKS, COURTS, PeopleFactory, Person

DEMO_NS = uuid.UUID("6c1a4a0e-4d51-4d0a-9d43-3b0d1f3a2e10")
DEMO_TODAY = date(2026, 6, 30)
REGISTRY_OFFICE = "杭州市不动产登记服务中心西湖分中心"
REGISTRARS = ("登簿员甲", "登簿员乙", "登簿员丙")
VERSION_STRIDE = 10_000    # version ids a block may use in block mode


def ts(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, 9, 30, tzinfo=UTC)


@dataclass
class RecordSink:
    """Rows per table, with version ids allocated here so links can be written by COPY."""

    next_version: int
    rights: list[tuple] = field(default_factory=list)
    right_parties: list[tuple] = field(default_factory=list)
    ownership: list[tuple] = field(default_factory=list)
    mortgage: list[tuple] = field(default_factory=list)
    pre_notice: list[tuple] = field(default_factory=list)
    seizure: list[tuple] = field(default_factory=list)
    objection: list[tuple] = field(default_factory=list)
    easement: list[tuple] = field(default_factory=list)
    cancellation: list[tuple] = field(default_factory=list)
    parties: list[Person] = field(default_factory=list)
    party_ids: list[uuid.UUID] = field(default_factory=list)

    def renew(self) -> None:
        """Start new lists (the old ones may still be being written by the COPY thread)."""
        for name in ("rights", "right_parties", "ownership", "mortgage", "pre_notice", "seizure",
                     "objection", "easement", "cancellation", "parties", "party_ids"):
            setattr(self, name, [])


class RegistryBuilder:
    def __init__(self, rng: random.Random, change_id: int, first_version: int) -> None:
        self.rng = rng
        self.people = PeopleFactory(rng)
        self.change_id = change_id
        self.sink = RecordSink(first_version)
        self._business = 0
        self._cert: dict[int, int] = {}
        self._party_n = 0
        self._block: int | None = None
        self.banks = [self.people.organisation(b) for b in BANKS]
        self.bank_ids = [self._party_uuid() for _ in self.banks]
        self._orgs_emitted = False

    def begin_block(self, block_id: int, rng: random.Random) -> None:
        """Block mode (the parallel builder, cadastre.demo.scale): everything numbered from here
        on is numbered within block ``block_id`` — version ids from ``block_id × VERSION_STRIDE``,
        party ids, business and certificate numbers, company codes — and drawn from ``rng``, so a
        block's rows depend only on (seed, block) and never on the blocks built before it. The
        banks (emitted once by the builder) are not emitted again."""
        self._block = block_id
        self.rng = rng
        self.people.rng = rng
        self.people.begin_block(block_id)
        self.sink.next_version = block_id * VERSION_STRIDE + 1
        self._business = 0
        self._cert = {}
        self._party_n = 0
        self._orgs_emitted = True

    def end_block(self) -> None:
        assert self._block is not None
        if self.sink.next_version > (self._block + 1) * VERSION_STRIDE:
            raise RuntimeError(f"block {self._block}: more than {VERSION_STRIDE} records")

    # ------------------------------------------------------------ helpers
    def _party_uuid(self) -> uuid.UUID:
        self._party_n += 1
        if self._block is not None:
            return uuid.UUID(int=(0x5C << 120) | (self._block << 40) | self._party_n)
        return uuid.uuid5(DEMO_NS, f"party-{self._party_n}")

    def _uuid(self, key: str) -> uuid.UUID:
        """The demo's name-based id of ``key``; in block mode an md5-based one (uuid5's sha1
        and checks cost several times as much, for ~15 M rights at scale)."""
        if self._block is not None:
            return uuid.UUID(bytes=hashlib.md5(key.encode()).digest())
        return uuid.uuid5(DEMO_NS, key)

    def _emit_fixed_orgs(self) -> None:
        if not self._orgs_emitted:
            self.sink.parties.extend(self.banks)
            self.sink.party_ids.extend(self.bank_ids)
            self._orgs_emitted = True

    def new_party(self, person: Person) -> uuid.UUID:
        pid = self._party_uuid()
        self.sink.parties.append(person)
        self.sink.party_ids.append(pid)
        return pid

    def _business_no(self, d: date) -> str:
        self._business += 1
        if self._block is not None:
            return f"{d.year}{self._block:06d}{self._business:05d}"
        return f"{d.year}{self._business:08d}"

    def _certificate(self, d: date, proof: bool) -> str:
        kind = "不动产证明" if proof else "不动产权"
        n = self._cert.get(d.year, 0) + 1
        self._cert[d.year] = n
        if self._block is not None:
            # block × 10,000 + n (a block has fewer than VERSION_STRIDE records): never a repeat
            # of another block's number, and 9 digits at most below block 100,000 (~1.05 M
            # parcels), the longest sequence cad.certificate_number_parts reads as well formed
            digits = f"{self._block * VERSION_STRIDE + n:07d}"
            return f"浙({d.year})杭州市{kind}第{digits}号"
        return f"浙({d.year})杭州市{kind}第{n:07d}号"

    def _right(self, kind: str, unit_code: str, djlx: int, qllx: int, reason: str,
               registered: date, ended: date | None, cert: str | None,
               right_start: date | None = None, right_end: date | None = None,
               right_id: uuid.UUID | None = None) -> int:
        s = self.sink
        vid = s.next_version
        s.next_version += 1
        rid = right_id or self._uuid(f"right-{vid}")
        status = 2 if ended else 1
        s.rights.append((
            vid, rid, kind, unit_code, self._business_no(registered), djlx, qllx, reason, cert,
            REGISTRY_OFFICE, self.rng.choice(REGISTRARS), ts(registered), right_start, right_end,
            status, None, ts(registered), ts(ended) if ended else None, self.change_id,
            self.change_id if ended else None,
        ))
        return vid

    def _link(self, vid: int, party: uuid.UUID, role: int, seq: int = 1,
              share: str | None = None, co: int | None = 0) -> None:
        self.sink.right_parties.append((vid, party, role, seq, share, co))

    def _owners(self, vid: int) -> list[uuid.UUID]:
        """One owner, or a couple owning jointly (共同共有)."""
        if self.rng.random() < 0.45:
            a, b = self.new_party(self.people.person()), self.new_party(self.people.person())
            self._link(vid, a, 1, 1, None, 1)
            self._link(vid, b, 1, 2, None, 1)
            return [a, b]
        a = self.new_party(self.people.person())
        self._link(vid, a, 1, 1, "100%", 0)
        return [a]

    def _rand_date(self, start: date, end: date) -> date:
        if end <= start:
            return start
        return start + timedelta(days=self.rng.randrange(0, (end - start).days))

    # ------------------------------------------------------------ land
    def land_use_right(self, land_code: str, holder: Person, start: date,
                       ended: date | None, area: float, years: int = 70) -> None:
        self._emit_fixed_orgs()
        vid = self._right("land_use", land_code, 100, 3, "出让", start, ended,
                          self._certificate(start, False), start,
                          date(start.year + years, start.month, min(start.day, 28)))
        pid = self.new_party(holder)
        self._link(vid, pid, 1)
        self.sink.ownership.append((vid, start, date(start.year + years, start.month,
                                    min(start.day, 28)), None, None, None, None, None, None,
                                    None, None, None, round(area, 2)))

    def easement(self, servient_land: str, dominant_land: str, start: date) -> None:
        vid = self._right("easement", servient_land, 100, 19, "设立地役权", start, None,
                          self._certificate(start, True), start, None)
        self.sink.easement.append((vid, servient_land, dominant_land,
                                   "通行地役权：需役地权利人可经供役地东侧通道通行", start, None))

    # ------------------------------------------------------------ houses
    def unit_records(self, unit_code: str, completion: date, house_use: str, structure: int,
                     floor_label: str, floors_total: int, area: float, inner: float,
                     shared: float, new_compound: bool, owner_factory: Callable[[], Person]
                     | None = None) -> None:
        self._emit_fixed_orgs()
        rng = self.rng
        if new_compound:
            # pre-sale contracts registered as 预告登记 before the building's first registration
            if rng.random() < 0.6:
                d = self._rand_date(completion - timedelta(days=500), DEMO_TODAY)
                vid = self._right("pre_notice", unit_code, 700, 4, "预售商品房买卖", d, None,
                                  self._certificate(d, True))
                buyer = self.new_party(self.people.person())
                self._link(vid, buyer, 1)
                price = round(area * rng.uniform(3.5, 6.5), 2)
                self.sink.pre_notice.append((vid, 1, price, house_use, area))
                if rng.random() < 0.4:  # 预售商品房抵押权预告
                    d2 = d + timedelta(days=rng.randrange(5, 40))
                    if d2 < DEMO_TODAY:
                        vid2 = self._right("pre_notice", unit_code, 700, 23, "预售商品房抵押权预告",
                                           d2, None, self._certificate(d2, True))
                        self._link(vid2, rng.choice(self.bank_ids), 1)
                        self._link(vid2, buyer, 2)
                        self.sink.pre_notice.append((vid2, 3, round(price * 0.6, 2), house_use,
                                                     area))
            return
        if rng.random() > 0.9:
            return  # unsold or not yet registered
        first = self._rand_date(completion + timedelta(days=120),
                                min(completion + timedelta(days=900), DEMO_TODAY))
        transfer: date | None = None
        if rng.random() < 0.14 and (DEMO_TODAY - first).days > 400:
            transfer = self._rand_date(first + timedelta(days=365), DEMO_TODAY)
        right_id = self._uuid(f"ownership-{unit_code}-1")
        vid = self._right("ownership", unit_code, 200, 4, "买卖", first, transfer,
                          self._certificate(first, False), completion, None, right_id)
        owners = ([self.new_party(owner_factory())] if owner_factory else self._owners(vid))
        if owner_factory:
            self._link(vid, owners[0], 1)
        self._ownership_detail(vid, house_use, structure, floor_label, floors_total, area,
                               inner, shared, first)
        self._mortgages(unit_code, owners, first, transfer)
        if transfer:
            vid2 = self._right("ownership", unit_code, 200, 4, "买卖", transfer, None,
                               self._certificate(transfer, False), completion, None,
                               self._uuid(f"ownership-{unit_code}-2"))
            owners = self._owners(vid2)
            self._ownership_detail(vid2, house_use, structure, floor_label, floors_total, area,
                                   inner, shared, transfer)
            self._mortgages(unit_code, owners, transfer, None)
        start = transfer or first
        if rng.random() < 0.004:
            d = self._rand_date(start, DEMO_TODAY)
            vid3 = self._right("seizure", unit_code, 800, 99, "财产保全", d, None, None, d,
                               date(d.year + 3, d.month, min(d.day, 28)))
            self.sink.seizure.append((vid3, rng.choice(COURTS), rng.choice((1, 1, 2, 5)),
                                      "民事裁定书",
                                      f"({d.year})浙0106民初{rng.randrange(1000, 9999)}号",
                                      d, date(d.year + 3, d.month, min(d.day, 28)),
                                      "该不动产全部", None, None))
        if rng.random() < 0.0015:
            d = self._rand_date(start, DEMO_TODAY)
            vid4 = self._right("objection", unit_code, 600, 99, "利害关系人认为登记有误", d, None,
                               self._certificate(d, True))
            self._link(vid4, self.new_party(self.people.person()), 4)
            self.sink.objection.append((vid4, "对该不动产的权利归属提出异议", None, None))

    def _ownership_detail(self, vid: int, use: str, structure: int, floor_label: str,
                          floors_total: int, area: float, inner: float, shared: float,
                          d: date) -> None:
        price = round(area * self.rng.uniform(1.2, 5.5), 2)
        self.sink.ownership.append((vid, None, None, price, use, 0, structure, floor_label,
                                    floors_total, area, inner, shared, None))

    def _mortgages(self, unit_code: str, owners: list[uuid.UUID], start: date,
                   end: date | None) -> None:
        rng = self.rng
        if rng.random() > 0.36:
            return
        d = self._rand_date(start, min(start + timedelta(days=60), end or DEMO_TODAY))
        closed: date | None = None
        if end is not None:
            closed = end - timedelta(days=rng.randrange(1, 30))
        elif rng.random() < 0.1 and (DEMO_TODAY - d).days > 200:
            closed = self._rand_date(d + timedelta(days=100), DEMO_TODAY)
        if closed is not None and closed <= d:
            closed = None
        vid = self._right("mortgage", unit_code, 100, 23, "抵押贷款", d, closed,
                          self._certificate(d, True), d, date(d.year + 20, d.month, min(d.day, 28)))
        bank = rng.choice(self.bank_ids)
        self._link(vid, bank, 1)
        for i, o in enumerate(owners, start=1):
            self._link(vid, o, 2, i)
        amount = round(rng.uniform(40, 400), 2)
        self.sink.mortgage.append((vid, 1, 2, amount, None, d,
                                   date(d.year + 20, d.month, min(d.day, 28)), "主债权及利息"))
        if closed is not None:
            cid = self._uuid(f"right-{vid}")
            vc = self._right("cancellation", unit_code, 400, 23, "主债权消灭", closed, None, None)
            self.sink.cancellation.append((vc, cid, "主债权消灭，抵押权注销", ts(closed)))

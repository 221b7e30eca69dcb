"""The business catalogue (``reg.business_type``, seeded by migration 0008 from the provincial
time-limit table): limits, registration type, the right kinds a business writes, the review steps
it needs, what it issues, and the application materials (``reg.material``). A county may promise
a shorter limit (``reg.county_limit``); changes are audited by the caller.

Combined businesses (migration 0016) are recipes: ordered constituent registrations
(``reg.business_part``), each a plain business of the catalogue, with the roles that case parties
take in it; some businesses need a valid document filed by another department
(``reg.business_document``); ``sale`` marks the businesses that sell a unit (防止一房两卖).

Business types and recipes are migration data (no code edits them); each connection keeps the
ones it has read (``get``, ``parts``), as a batch reads them for every unit. County limits and
materials, which staff edit, are always read fresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

import psycopg

from cadastre.errors import InvalidInput, NotFound


@dataclass(frozen=True)
class Material:
    code: str
    name_zh: str
    name_en: str
    required: bool


@dataclass(frozen=True)
class BusinessType:
    seq: int
    name_zh: str
    name_en: str
    registration_type: str
    djlx: int
    right_kinds: tuple[str, ...]
    statutory_days: int
    promised_days: int
    review_steps: int
    writes_register: bool
    issues: str                 # certificate | proof | none
    note: str | None
    sale: bool = False          # sells the unit: one open sale per unit

    @property
    def same_day(self) -> bool:
        return self.promised_days == 0

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "name": {"zh": self.name_zh, "en": self.name_en},
                "registration_type": self.registration_type, "djlx": self.djlx,
                "right_kinds": list(self.right_kinds), "statutory_days": self.statutory_days,
                "promised_days": self.promised_days, "review_steps": self.review_steps,
                "writes_register": self.writes_register, "issues": self.issues,
                "sale": self.sale, "note": self.note}


_COLS = ("seq, name_zh, name_en, registration_type, djlx, right_kinds, statutory_days, "
         "promised_days, review_steps, writes_register, issues, note, sale")


def _row(r: tuple[Any, ...]) -> BusinessType:
    return BusinessType(r[0], r[1], r[2], r[3], r[4], tuple(r[5]), r[6], r[7], r[8], r[9], r[10],
                        r[11], r[12])


def all_types(conn: psycopg.Connection) -> list[BusinessType]:
    return [_row(r) for r in conn.execute(f"SELECT {_COLS} FROM reg.business_type ORDER BY seq")]


_READ: WeakKeyDictionary[psycopg.Connection, dict[tuple[Any, ...], Any]] = WeakKeyDictionary()


def _known(conn: psycopg.Connection) -> dict[tuple[Any, ...], Any]:
    found = _READ.get(conn)
    if found is None:
        found = _READ[conn] = {}
    return found


def get(conn: psycopg.Connection, seq: int) -> BusinessType:
    known = _known(conn)
    bt = known.get(("type", seq))
    if bt is None:
        row = conn.execute(f"SELECT {_COLS} FROM reg.business_type WHERE seq = %s",
                           (seq,)).fetchone()
        if row is None:
            raise NotFound("BUSINESS_TYPE_UNKNOWN", "无此登记业务类型 / no such business type")
        bt = known[("type", seq)] = _row(row)
    return bt  # type: ignore[no-any-return]


def limits(conn: psycopg.Connection, bt: BusinessType, county: str) -> tuple[int, int]:
    """(promised, statutory) working days for ``county``: its own promise if it made one."""
    row = conn.execute("SELECT promised_days FROM reg.county_limit WHERE county_code = %s "
                       "AND business_type = %s", (county, bt.seq)).fetchone()
    return (row[0] if row else bt.promised_days), bt.statutory_days


def set_county_limit(conn: psycopg.Connection, county: str, seq: int, promised_days: int,
                     actor: str) -> None:
    """A county's own promised limit (at most the statutory one); running cases accepted later
    use it, cases already accepted keep the limit they were accepted under."""
    bt = get(conn, seq)
    if not (0 <= promised_days <= bt.statutory_days):
        raise InvalidInput("LIMIT_INVALID", f"承诺时限须在 0 至 {bt.statutory_days} 个工作日之间 "
                           f"/ the promised limit must be 0..{bt.statutory_days} working days")
    conn.execute("INSERT INTO reg.county_limit (county_code, business_type, promised_days, "
                 "set_by) VALUES (%s, %s, %s, %s) ON CONFLICT (county_code, business_type) DO "
                 "UPDATE SET promised_days = EXCLUDED.promised_days, set_by = EXCLUDED.set_by, "
                 "set_at = now()", (county, seq, promised_days, actor))


def materials(conn: psycopg.Connection, seq: int) -> list[Material]:
    return [Material(*r) for r in conn.execute(
        "SELECT code, name_zh, name_en, required FROM reg.material WHERE business_type = %s "
        "ORDER BY ord, code", (seq,))]


def set_material(conn: psycopg.Connection, seq: int, material: Material, order: int = 50
                 ) -> None:
    get(conn, seq)
    conn.execute("INSERT INTO reg.material (business_type, code, name_zh, name_en, required, "
                 "ord) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (business_type, code) DO "
                 "UPDATE SET name_zh = EXCLUDED.name_zh, name_en = EXCLUDED.name_en, "
                 "required = EXCLUDED.required, ord = EXCLUDED.ord",
                 (seq, material.code, material.name_zh, material.name_en, material.required,
                  order))


# ------------------------------------------------------------------ combined businesses
@dataclass(frozen=True)
class Part:
    """One constituent registration of a combined business, in 登簿 order."""

    seq: int
    key: str
    business: BusinessType
    roles: dict[str, str]        # case party role → role in this part (unassigned parties)
    acts_on: str | None          # 'initial': the right current before the case
    name_zh: str
    name_en: str

    def as_dict(self, last: bool) -> dict[str, Any]:
        return {"seq": self.seq, "key": self.key, "business_type": self.business.seq,
                "name": {"zh": self.name_zh, "en": self.name_en},
                "registration_type": self.business.registration_type, "last": last,
                "roles": dict(self.roles)}


def parts(conn: psycopg.Connection, seq: int) -> list[Part]:
    """The recipe of a combined business (empty for a plain one), in order."""
    known = _known(conn)
    found = known.get(("parts", seq))
    if found is None:
        rows = conn.execute(
            "SELECT p.seq, p.part_key, p.part_type, p.roles, p.acts_on, p.name_zh, p.name_en, "
            "EXISTS (SELECT 1 FROM reg.business_part n WHERE n.business_type = p.part_type) "
            "FROM reg.business_part p WHERE p.business_type = %s ORDER BY p.seq",
            (seq,)).fetchall()
        if any(r[7] for r in rows):
            raise InvalidInput("RECIPE_INVALID", "合并业务的组成部分不能再是合并业务 / a part of "
                               "a combined business cannot itself be combined")
        found = known[("parts", seq)] = [
            Part(r[0], r[1], get(conn, r[2]), dict(r[3]), r[4], r[5], r[6]) for r in rows]
    return list(found)


def sale_types(conn: psycopg.Connection) -> list[int]:
    """Businesses that sell a unit (a transfer of ownership or land use, a purchase pre-notice,
    and the combined businesses that contain one)."""
    known = _known(conn)
    if ("sale",) not in known:
        known[("sale",)] = [r[0] for r in conn.execute(
            "SELECT seq FROM reg.business_type WHERE sale ORDER BY seq")]
    return list(known[("sale",)])


@dataclass(frozen=True)
class DocumentNeed:
    doc_type: str
    scope: str                   # unit | building (filed under the building or its parcel)
    fills: bool                  # parties and price come from it when the application has none


def document_needs(conn: psycopg.Connection, seqs: list[int]) -> list[DocumentNeed]:
    """The documents the businesses ``seqs`` need (a combined business and its parts)."""
    known, key = _known(conn), ("needs", *seqs)
    if key not in known:
        known[key] = [DocumentNeed(*r) for r in conn.execute(
            "SELECT DISTINCT doc_type, scope, fills FROM reg.business_document "
            "WHERE business_type = ANY(%s) ORDER BY doc_type", (seqs,))]
    return list(known[key])

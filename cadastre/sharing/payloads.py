"""An event as one subscriber may see it: rendered at delivery from the versions the event names,
through the one privacy policy for the subscriber's role and API-key grants (``view``).

A utility granted ``party.name`` and ``party.phone`` gets the new holder's name and phone with a
transfer (水电气联动过户); without the grants it gets the unit and its location only. A bank's
key that acts for the bank (``holder_hash``) gets the events of its own mortgages only
(``concerns``).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from cadastre.access.pii import PiiCipher
from cadastre.access.principal import Principal, view
from cadastre.sharing.events import EVENT_TYPES

_RIGHT = """
SELECT r.version_id, r.right_id::text AS id, r.kind, r.unit_code, r.business_no,
       r.registration_type, r.right_type, r.certificate_no, r.registered_at, r.right_start,
       r.right_end, r.status, r.valid_from, r.valid_to
FROM cad.right_record r WHERE r.version_id = ANY(%s) ORDER BY r.version_id
"""
_PARTIES = """
SELECT rp.right_version_id, rp.role, rp.seq, rp.share, p.party_type, p.id_type, p.name_enc,
       p.phone_enc, p.id_number_hash
FROM cad.right_party rp JOIN pii.party p USING (party_id)
WHERE rp.right_version_id = ANY(%s) ORDER BY rp.right_version_id, rp.role, rp.seq
"""
_UNIT = """
SELECT u.unit_code, u.seat, u.use, u.building_area, u.floor_no, u.room_no,
       coalesce(u.seat, p.seat) AS location
FROM cad.unit u LEFT JOIN cad.parcel p ON p.parcel_code = u.parcel_code AND p.valid_to IS NULL
WHERE u.unit_code = ANY(%s::char(28)[]) AND u.valid_to IS NULL
"""


def _versions(event: dict[str, Any]) -> list[int]:
    refs = event.get("refs") or {}
    return [int(v) for v in (refs.get("versions") or []) + (refs.get("closed") or [])]


def concerns(conn: psycopg.Connection, event: dict[str, Any], holder_hash: bytes | None) -> bool:
    """Whether an event is for a key that acts for the organisation ``holder_hash``: it must
    hold (role 1) one of the event's right versions. Keys without a holder get every event."""
    if holder_hash is None:
        return True
    versions = _versions(event)
    if not versions:
        return False
    row = conn.execute("SELECT 1 FROM cad.right_party rp JOIN pii.party p USING (party_id) "
                       "WHERE rp.right_version_id = ANY(%s) AND rp.role = 1 "
                       "AND p.id_number_hash = %s LIMIT 1", (versions, holder_hash)).fetchone()
    return row is not None


def render(conn: psycopg.Connection, cipher: PiiCipher, event: dict[str, Any],
           who: Principal) -> dict[str, Any]:
    """The event's JSON for ``who``: what happened, the units (natural attributes) and the
    rights with their parties, each field as the policy lets ``who`` have it."""
    zh, en = EVENT_TYPES[event["type"]]
    out: dict[str, Any] = {
        "event_id": event["event_id"], "type": event["type"],
        "description": {"zh": zh, "en": en},
        "occurred_at": event["occurred_at"].isoformat(),
        "county_code": (event.get("county_code") or "").strip() or None,
    }
    case = view(who, "case", {"case_no": event["case_no"]}) if event.get("case_no") else {}
    if case:
        out["case"] = case
    units = [c.strip() for c in event.get("unit_codes") or []]
    with conn.cursor(row_factory=dict_row) as cur:
        out["units"] = [view(who, "unit", {**u, "unit_code": u["unit_code"].strip(),
                                           "seat": u["location"]})
                        for u in cur.execute(_UNIT, (units,)).fetchall()] if units else []
        versions = _versions(event)
        rights = cur.execute(_RIGHT, (versions,)).fetchall() if versions else []
        parties = cur.execute(_PARTIES, (versions,)).fetchall() if versions else []
    entered = set(int(v) for v in (event.get("refs") or {}).get("versions") or [])
    out["rights"] = []
    for r in rights:
        rec = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()
               if k != "version_id"}
        rec["unit_code"] = rec["unit_code"].strip()
        item = view(who, "right", rec)
        item["change"] = "entered" if r["version_id"] in entered else "closed"
        item["parties"] = [view(who, "party", {
            "role": p["role"], "seq": p["seq"], "share": p["share"],
            "party_type": p["party_type"], "id_type": p["id_type"],
            "name": cipher.decrypt(p["name_enc"]), "phone": cipher.decrypt(p["phone_enc"])})
            for p in parties if p["right_version_id"] == r["version_id"]]
        out["rights"].append(item)
    # (refs hold no personal data: a certificate's kind, status and dates, see
    # cadastre.certificates.issue.announce)
    for key in ("submission_id", "business_type", "stage", "certificate"):
        if key in (event.get("refs") or {}):
            out[key] = event["refs"][key]
    return out

"""The one field-level privacy policy: which field of which entity may leave the server, for whom,
and how it is masked.

Every path out (JSON, OGC API, tile properties, 3D metadata, PDFs, CSV, errors, logs) asks this
module. A field that is not listed here is private: ``visible_fields`` never returns it and
``apply`` drops it. The law (不动产登记暂行条例 Art. 8, 26–28) lets the public see a property's
natural attributes (自然状况: location, boundaries, area, use), never who owns it; interested
parties (利害关系人) also see encumbrance status; owners see their own rights.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any


class Role(StrEnum):
    PUBLIC = "public"            # anonymous
    OWNER = "owner"              # verified right holder, scoped to their own units
    INTERESTED = "interested"    # 利害关系人, with a stated purpose per query
    REGISTRAR = "registrar"      # 登记机构工作人员
    SURVEYOR = "surveyor"        # survey team uploading surveys
    DEPARTMENT = "department"    # another department's system (API key)
    AUDITOR = "auditor"          # reads the audit trail


class Access(Enum):
    FULL = "full"
    MASKED = "masked"


# ------------------------------------------------------------------ maskers
def mask_name(name: str | None) -> str | None:
    """张三丰 → 张**; organisations keep their first two characters."""
    if not name:
        return name
    keep = 2 if len(name) > 4 else 1
    return name[:keep] + "*" * max(2, len(name) - keep)


def mask_id_number(value: str | None) -> str | None:
    """First 6 + last 4 (110105********1234)."""
    if not value:
        return value
    if len(value) <= 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def mask_phone(value: str | None) -> str | None:
    """13812341234 → 138****1234."""
    if not value:
        return value
    if len(value) < 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_certificate(value: str | None) -> str | None:
    """浙(2021)杭州市不动产权第0012345号 → 浙(2021)杭州市不动产权第***2345号."""
    if not value:
        return value
    digits = [i for i, ch in enumerate(value) if ch.isdigit()]
    if len(digits) <= 4:
        return value
    hide = set(digits[-7:-4]) if len(digits) >= 7 else set(digits[:-4])
    return "".join("*" if i in hide else ch for i, ch in enumerate(value))


Masker = Callable[[Any], Any]


@dataclass(frozen=True)
class FieldRule:
    access: Mapping[Role, Access]
    masker: Masker | None = None
    # what a role may see when the caller's grant names the field (API keys of departments
    # with a legal basis, e.g. utilities moving an account at a transfer: 水电气联动过户)
    on_grant: Mapping[Role, Access] = field(default_factory=dict)

    def for_role(self, role: Role, granted: bool = False) -> Access | None:
        if granted and role in self.on_grant:
            return self.on_grant[role]
        return self.access.get(role)


_ALL = tuple(Role)
_STAFF = (Role.REGISTRAR,)


def _rule(full: Iterable[Role], masked: Iterable[Role] = (), masker: Masker | None = None,
          full_on_grant: Iterable[Role] = ()) -> FieldRule:
    access = {r: Access.FULL for r in full}
    access.update({r: Access.MASKED for r in masked})
    if masked and masker is None:
        raise ValueError("a masked field needs a masker")
    return FieldRule(access, masker, {r: Access.FULL for r in full_on_grant})


NATURAL = _rule(_ALL)                                   # 自然状况: everyone
ENCUMBRANCE = _rule((Role.OWNER, Role.INTERESTED, Role.REGISTRAR, Role.DEPARTMENT))
STAFF_ONLY = _rule(_STAFF)
SURVEY = _rule((Role.REGISTRAR, Role.SURVEYOR, Role.DEPARTMENT))
_OWN_DETAIL = _rule((Role.OWNER, Role.REGISTRAR))       # details of a right: holder + registry

POLICY: dict[str, dict[str, FieldRule]] = {
    "parcel": {
        "id": NATURAL, "parcel_code": NATURAL, "seat": NATURAL, "compound_name": NATURAL,
        "land_use": NATURAL, "right_type": NATURAL, "registered_area": NATURAL,
        "neighbour_north": NATURAL, "neighbour_east": NATURAL, "neighbour_south": NATURAL,
        "neighbour_west": NATURAL, "map_sheet": NATURAL, "valid_from": NATURAL,
        "valid_to": NATURAL,
        "land_use_label": NATURAL, "right_type_label": NATURAL,   # labels (cadastre.labels)
        "computed_area": SURVEY, "area_difference": SURVEY, "right_nature": SURVEY,
        "srid": SURVEY, "version_id": STAFF_ONLY, "change_id": STAFF_ONLY,
    },
    "boundary_point": {
        "id": NATURAL, "parcel_code": NATURAL, "point_no": NATURAL, "seq": NATURAL,
        "ring_no": NATURAL, "marker_type": NATURAL, "point_type": NATURAL, "x_north": NATURAL,
        "y_east": NATURAL,
        "valid_from": NATURAL, "valid_to": NATURAL,
    },
    "building": {
        "id": NATURAL, "building_code": NATURAL, "parcel_code": NATURAL, "name": NATURAL,
        "project_name": NATURAL, "floors_total": NATURAL, "floors_above": NATURAL,
        "floors_below": NATURAL, "height": NATURAL, "structure": NATURAL,
        "planned_use": NATURAL, "completion_date": NATURAL, "completion_year": NATURAL,
        "floor_area": NATURAL, "footprint_area": NATURAL, "ground_elevation": NATURAL,
        "valid_from": NATURAL, "valid_to": NATURAL,
        "seat": NATURAL,   # the 坐落 of its parcel
        "structure_label": NATURAL, "planned_use_label": NATURAL,
    },
    "floor": {
        "building_code": NATURAL, "floor_no": NATURAL, "floor_label": NATURAL,
        "base_elevation": NATURAL, "storey_height": NATURAL, "floor_area": NATURAL,
        "unit_count": NATURAL,
    },
    "unit": {
        "id": NATURAL, "unit_code": NATURAL, "building_code": NATURAL, "parcel_code": NATURAL,
        "floor_no": NATURAL, "floor_count": NATURAL, "room_no": NATURAL, "seat": NATURAL,
        "use": NATURAL, "house_type": NATURAL, "house_nature": NATURAL, "layout": NATURAL,
        "building_area": NATURAL, "inner_area": NATURAL, "shared_area": NATURAL,
        "shared_coefficient": NATURAL, "base_elevation": NATURAL, "height": NATURAL,
        "registration_status": NATURAL, "valid_from": NATURAL, "valid_to": NATURAL,
        "use_label": NATURAL, "registration_status_label": NATURAL, "floor_label": NATURAL,
        "house_type_label": NATURAL, "house_nature_label": NATURAL,
        "floor_span": NATURAL,   # [lowest, highest] floor of a unit over several floors
        # encumbrance status (限制/提示事项): not for the anonymous public
        "mortgaged": ENCUMBRANCE, "seized": ENCUMBRANCE, "pre_noticed": ENCUMBRANCE,
        "objected": ENCUMBRANCE, "encumbrance_labels": ENCUMBRANCE,
        "certificate_no": _rule((Role.OWNER, Role.REGISTRAR), (Role.DEPARTMENT,),
                                mask_certificate),
        "owner_count": STAFF_ONLY,
    },
    "right": {
        "id": _rule((Role.OWNER, Role.REGISTRAR, Role.AUDITOR)),
        "kind": ENCUMBRANCE, "unit_code": ENCUMBRANCE, "status": ENCUMBRANCE,
        "registration_type": ENCUMBRANCE, "right_type": ENCUMBRANCE,
        "registered_at": ENCUMBRANCE, "right_start": ENCUMBRANCE, "right_end": ENCUMBRANCE,
        "valid_from": ENCUMBRANCE, "valid_to": ENCUMBRANCE,
        "business_no": _rule((Role.OWNER, Role.REGISTRAR)),
        "registration_reason": _rule((Role.OWNER, Role.REGISTRAR)),
        "certificate_no": _rule((Role.OWNER, Role.REGISTRAR), (Role.DEPARTMENT,),
                                mask_certificate),
        "registry_office": ENCUMBRANCE, "registrar_name": STAFF_ONLY,
        "kind_label": ENCUMBRANCE, "status_label": ENCUMBRANCE,
        "registration_type_label": ENCUMBRANCE, "right_type_label": ENCUMBRANCE,
        "in_force": ENCUMBRANCE, "version_id": STAFF_ONLY,
        "secured_amount": _rule((Role.OWNER, Role.REGISTRAR)),
        "remark": STAFF_ONLY,
        "priority": ENCUMBRANCE,      # 顺位 of a mortgage in force
    },
    "party": {
        "id": STAFF_ONLY,
        "party_type": _rule((Role.OWNER, Role.REGISTRAR)),
        "name": _rule((Role.OWNER, Role.REGISTRAR), (Role.DEPARTMENT,), mask_name,
                      full_on_grant=(Role.DEPARTMENT,)),
        "id_type": _rule((Role.OWNER, Role.REGISTRAR)),
        "id_number": _rule((Role.REGISTRAR,), (Role.OWNER, Role.DEPARTMENT), mask_id_number),
        "phone": _rule((Role.REGISTRAR,), (Role.OWNER,), mask_phone,
                       full_on_grant=(Role.DEPARTMENT,)),
        "address": STAFF_ONLY,
        "role": _rule((Role.OWNER, Role.REGISTRAR, Role.DEPARTMENT)),   # 权利人/义务人
        "case_role": STAFF_ONLY,     # 申请人/权利人/义务人 of a registration case
        "case_part": STAFF_ONLY,     # … and the part of a combined case it belongs to
        "seq": STAFF_ONLY,
        "share": _rule((Role.OWNER, Role.REGISTRAR)),
        "co_ownership": _rule((Role.OWNER, Role.REGISTRAR)),
        "party_type_label": _rule((Role.OWNER, Role.REGISTRAR)),
        "id_type_label": _rule((Role.OWNER, Role.REGISTRAR)),
        "role_label": _rule((Role.OWNER, Role.REGISTRAR)),
        "co_ownership_label": _rule((Role.OWNER, Role.REGISTRAR)),
        # a party named by a filed document (买受人, 出卖人, 抵押权人 …)
        "document_role": STAFF_ONLY, "document_role_label": STAFF_ONLY,
    },
    # electronic certificates, proofs and query results (cadastre.certificates): what the holder's
    # document prints (the owner's own), and what the public verification page may show about it
    "certificate": {
        # the document and its state: public (一证一码 verification)
        "kind": NATURAL, "status": NATURAL, "issued_at": NATURAL, "superseded_by": NATURAL,
        "superseded_at": NATURAL, "revoked_at": NATURAL, "signer": NATURAL, "as_of": NATURAL,
        # natural attributes printed on it
        "unit_code": NATURAL, "seat": NATURAL, "use": NATURAL, "area": NATURAL,
        "registry_office": NATURAL,
        # the number: like right.certificate_no
        "number": _rule((Role.OWNER, Role.REGISTRAR), (Role.DEPARTMENT,), mask_certificate),
        # what the record says about the right and who holds it: the holder's document only
        "holders": _OWN_DETAIL, "co_ownership": _OWN_DETAIL, "obligors": _OWN_DETAIL,
        "right_nature": _OWN_DETAIL, "term": _OWN_DETAIL, "other": _OWN_DETAIL,
        "remark": _OWN_DETAIL, "business_no": _OWN_DETAIL, "registered_at": _OWN_DETAIL,
        # a proof's right (抵押权, 查封 …) is an encumbrance: not for the anonymous public
        "right_kind": ENCUMBRANCE, "right_type": ENCUMBRANCE,
        "revoked_reason": STAFF_ONLY, "prepared_by": STAFF_ONLY, "issued_by": STAFF_ONLY,
        "right_version_id": STAFF_ONLY,
    },
    # registration cases (办件): the public progress query (一号查询, with the query code) shows
    # the case's progress only; everything else is for registry staff
    "case": {
        **{f: NATURAL for f in ("case_no", "business_type_label", "stage", "stage_label",
                                "applied_at", "accepted_at", "promised_due_date", "light",
                                "light_label", "paused", "registered_at", "closed_at",
                                "calendar_warning")},
        **{f: STAFF_ONLY for f in (
            "county_code", "business_type", "channel", "unit_codes", "yellow_at", "due_at",
            "statutory_due_at", "paused_since", "calendar_incomplete", "assignee",
            "certificate_no", "working_days_used", "statutory_overdue", "remaining_workdays",
            "target_right_id", "request", "reason", "promised_days", "statutory_days",
            "start_day", "paused_days", "change_id", "created_by", "transitions", "reviews",
            "pauses", "materials", "parts")},
    },
    # documents other departments filed under a code (一码关联): what they are is for registry
    # staff and departments; prices, amounts, debt terms and who filed them for staff only
    # (their parties are ``party`` records)
    "document": {
        **{f: _rule((Role.REGISTRAR, Role.DEPARTMENT)) for f in (
            "id", "doc_type", "doc_type_label", "doc_no", "issuer", "issued_on", "valid_from",
            "valid_until", "code", "code_kind", "status", "revoked_at", "in_force",
            "posted_at", "media_type", "size_bytes", "sha256", "links")},
        **{f: STAFF_ONLY for f in ("price", "secured_amount", "debt_start", "debt_end",
                                   "amount", "posted_by")},
    },
    # the answer to the department that filed (or revoked) a document
    "document_receipt": {f: _rule((Role.REGISTRAR, Role.DEPARTMENT)) for f in (
        "document_id", "doc_type", "doc_no", "code", "code_kind", "status", "sha256",
        "size_bytes", "media_type")},
    # 交房即交证 batches: progress per building and the units that failed (codes, no persons)
    "handover": {f: STAFF_ONLY for f in (
        "batch_id", "project", "parcel_codes", "status", "error_code", "created_by",
        "created_at", "finished_at", "job", "totals", "buildings", "failures", "links")},
    # kind-specific details of a right (cad.*_detail tables): the right holder and the registry
    "right_detail": {
        # ownership / land use (房地产权, 建设用地使用权)
        "land_use_start": _OWN_DETAIL, "land_use_end": _OWN_DETAIL,
        "transaction_price": _OWN_DETAIL, "house_use": _OWN_DETAIL,
        "house_nature": _OWN_DETAIL, "structure": _OWN_DETAIL, "floor_label": _OWN_DETAIL,
        "floors_total": _OWN_DETAIL, "building_area": _OWN_DETAIL,
        "exclusive_area": _OWN_DETAIL, "shared_area": _OWN_DETAIL, "land_area": _OWN_DETAIL,
        "co_ownership": _OWN_DETAIL,
        # mortgage (抵押权)
        "mortgage_type": _OWN_DETAIL, "property_kind": _OWN_DETAIL,
        "secured_amount": _OWN_DETAIL, "max_amount": _OWN_DETAIL, "debt_start": _OWN_DETAIL,
        "debt_end": _OWN_DETAIL, "scope": _OWN_DETAIL,
        # pre-notice (预告登记)
        "notice_kind": _OWN_DETAIL, "price": _OWN_DETAIL,
        # seizure (查封登记)
        "authority": _OWN_DETAIL, "seizure_type": _OWN_DETAIL, "document": _OWN_DETAIL,
        "document_no": _OWN_DETAIL, "seizure_start": _OWN_DETAIL, "seizure_end": _OWN_DETAIL,
        # objection (异议登记)
        "matter": _OWN_DETAIL,
        # easement (地役权)
        "servient_unit_code": _OWN_DETAIL, "dominant_unit_code": _OWN_DETAIL,
        "content": _OWN_DETAIL, "easement_start": _OWN_DETAIL, "easement_end": _OWN_DETAIL,
        # release of a seizure, cancellation of an objection, 注销登记
        "release_document_no": _OWN_DETAIL, "released_at": _OWN_DETAIL,
        "cancelled_reason": _OWN_DETAIL, "cancelled_at": _OWN_DETAIL,
        "cancelled_right_id": _OWN_DETAIL, "reason": _OWN_DETAIL,
        # labels (cadastre.labels)
        "house_use_label": _OWN_DETAIL, "structure_label": _OWN_DETAIL,
        "house_nature_label": _OWN_DETAIL,
        "mortgage_type_label": _OWN_DETAIL, "property_kind_label": _OWN_DETAIL,
        "notice_kind_label": _OWN_DETAIL, "seizure_type_label": _OWN_DETAIL,
    },
}


def _entity(entity: str) -> dict[str, FieldRule]:
    try:
        return POLICY[entity]
    except KeyError:
        raise KeyError(f"no privacy policy for entity {entity!r}") from None


def access(entity: str, field: str, role: Role, grants: Collection[str] = ()) -> Access | None:
    """How ``role`` may see ``entity.field``; None = not at all (also for unknown fields).
    ``grants``: the caller's ``entity.field`` grants (API keys), which may open a field the
    policy lets that role have on grant."""
    rule = _entity(entity).get(field)
    return rule.for_role(role, f"{entity}.{field}" in grants) if rule else None


def visible_fields(entity: str, role: Role, candidates: Iterable[str] | None = None,
                   grants: Collection[str] = ()) -> tuple[str, ...]:
    """Fields of ``entity`` that ``role`` may receive (in ``candidates`` order if given)."""
    rules = _entity(entity)
    names = list(candidates) if candidates is not None else list(rules)
    return tuple(n for n in names if n in rules
                 and rules[n].for_role(role, f"{entity}.{n}" in grants) is not None)


def grantable(entity: str, field: str, role: Role) -> bool:
    """Whether a grant of ``entity.field`` gives ``role`` anything (by default or on grant)."""
    rule = _entity(entity).get(field)
    return rule is not None and (role in rule.access or role in rule.on_grant)


@functools.cache
def _plan(entity: str, role: Role) -> dict[str, Masker | None]:
    """What ``role`` sees of ``entity`` without grants: field → None (as stored) or its masker;
    a field not in it is never sent. (POLICY is a constant: computed once per entity and role.)"""
    plan: dict[str, Masker | None] = {}
    for key, rule in _entity(entity).items():
        how = rule.for_role(role)
        if how is Access.FULL:
            plan[key] = None
        elif how is Access.MASKED:
            assert rule.masker is not None
            plan[key] = rule.masker
    return plan


def apply(entity: str, role: Role, record: Mapping[str, Any],
          grants: Collection[str] = ()) -> dict[str, Any]:
    """The record as ``role`` may see it: unknown or forbidden fields dropped, masks applied."""
    if not grants:   # every route's hot path (a 楼盘表 is hundreds of unit records)
        plan = _plan(entity, role)
        return {k: v if (m := plan[k]) is None else m(v)
                for k, v in record.items() if k in plan}
    rules = _entity(entity)
    out: dict[str, Any] = {}
    for key, value in record.items():
        rule = rules.get(key)
        if rule is None:
            continue
        how = rule.for_role(role, bool(grants) and f"{entity}.{key}" in grants)
        if how is Access.FULL:
            out[key] = value
        elif how is Access.MASKED:
            assert rule.masker is not None
            out[key] = rule.masker(value)
    return out


def policy_table() -> list[dict[str, str]]:
    """The policy as rows (entity, field, and per role full/masked/-), for docs and tests."""
    rows = []
    for entity, fields in POLICY.items():
        for name, rule in fields.items():
            row = {"entity": entity, "field": name}
            for role in Role:
                how = rule.access.get(role)
                row[role.value] = how.value if how else "-"
                if role in rule.on_grant:
                    row[role.value] += f" ({rule.on_grant[role].value} if granted)"
            rows.append(row)
    return rows


def policy_markdown() -> str:
    """The policy as a Markdown table (docs/privacy-policy.md is this, kept in sync by a test)."""
    roles = [role.value for role in Role]
    lines = ["# Field privacy policy / 字段隐私策略", "",
             "Generated from `cadastre/access/privacy.py` (`python -m cadastre.access.privacy > "
             "docs/privacy-policy.md`). `full` = sent as stored, `masked` = sent masked "
             "(张**, 110105********1234, 138****1234), `-` = never sent. A field not listed is "
             "private.", "",
             "| entity | field | " + " | ".join(roles) + " |",
             "|---|---|" + "---|" * len(roles)]
    lines += [f"| {r['entity']} | {r['field']} | " + " | ".join(r[x] for x in roles) + " |"
              for r in policy_table()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(policy_markdown(), end="")

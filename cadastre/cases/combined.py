"""登簿 of a case as its parts, in the recipe's order, in the caller's transaction.

A plain business is one part; a combined one (``catalogue.parts``) is several: each part is
planned against the register as the parts before it left it, then applied, so the register
after 登簿 is exactly the sequence of registrations applied one by one (the seller's mortgage
released last in 三合一 sees the buyer's mortgage already registered). Part ``k`` is entered at
``at`` + (k − 1) µs, so versions a case writes and closes again keep a positive lifetime. A
refusal of any part raises ``RuleViolation`` naming the part and the rule; the caller's
transaction then rolls everything back. ``check`` runs the whole sequence inside a savepoint
and rolls it back: the law's answer at acceptance, nothing written.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from cadastre.cases import entry, rules
from cadastre.cases.application import part_request
from cadastre.cases.catalogue import Part
from cadastre.cases.numbers import Office
from cadastre.cases.rules import RuleViolation
from cadastre.register import rights as reg
from cadastre.register.versions import new_change


@dataclass(frozen=True)
class PartResult:
    part: Part
    facts: entry.CaseFacts
    result: entry.EntryResult


def implicit_part(facts: entry.CaseFacts) -> Part:
    """A plain business as the one part of its own recipe."""
    bt = facts.business
    return Part(1, "", bt, {}, None, bt.name_zh, bt.name_en)


def part_facts(facts: entry.CaseFacts, part: Part, target: uuid.UUID | None = None
               ) -> entry.CaseFacts:
    """What ``part`` registers: its own parties and those of the whole case in the role the
    recipe gives them, the request keys it takes, and the right it acts on."""
    if not part.key:
        return facts
    parties = tuple(p for p in facts.parties if p.part == part.key) + tuple(
        dataclasses.replace(p, role=part.roles[p.role]) for p in facts.parties
        if p.part is None and p.role in part.roles)
    request = part_request(facts.request, part)
    named = request.pop("target_right_id", None)
    return dataclasses.replace(facts, business=part.business, parties=parties, request=request,
                               target_right_id=uuid.UUID(named) if named else target)


def _initial_targets(conn: psycopg.Connection, facts: entry.CaseFacts, parts: Sequence[Part]
                     ) -> dict[int, uuid.UUID]:
    """Parts that act on the right of their kind current before the case (the seller's
    mortgage): resolved before any part changes the register."""
    out: dict[int, uuid.UUID] = {}
    for part in parts:
        if part.acts_on != "initial" or len(facts.unit_codes) != 1:
            continue
        named = part_request(facts.request, part).get("target_right_id")
        if named:
            continue
        kind = part.business.right_kinds[0]
        try:
            right = rules.single(reg.current(conn, facts.unit_codes, [kind], lock=True), None)
        except RuleViolation as exc:
            raise named_violation(exc, part) from None
        out[part.seq] = right.right_id
    return out


def named_violation(exc: RuleViolation, part: Part) -> RuleViolation:
    """The rule's own code, its message prefixed with the part that was refused."""
    if not part.key:
        return exc
    zh, _, en = exc.message.partition(" / ")
    return RuleViolation(exc.code, f"第{part.seq}步「{part.name_zh}」：{zh} / part {part.seq} "
                         f"({part.name_en}): {en}", part=part.key, part_seq=part.seq,
                         **exc.details)


AfterPart = Callable[[PartResult], None]


def enter(conn: psycopg.Connection, facts: entry.CaseFacts, parts: Sequence[Part], *,
          change: int, at: datetime, office: Office, registrar: str,
          after_part: AfterPart | None = None) -> list[PartResult]:
    """Plan and apply every part in order (the caller's transaction); ``after_part`` runs after
    each part is applied (its event)."""
    targets = _initial_targets(conn, facts, parts)
    out: list[PartResult] = []
    for k, part in enumerate(parts):
        pf = part_facts(facts, part, targets.get(part.seq))
        try:
            ops = entry.plan(conn, pf, lock=True)
        except RuleViolation as exc:
            raise named_violation(exc, part) from None
        result = entry.apply(conn, pf, ops, change=change, at=at + timedelta(microseconds=k),
                             office=office, registrar=registrar)
        done = PartResult(part, pf, result)
        out.append(done)
        if after_part is not None:
            after_part(done)
    return out


def check(conn: psycopg.Connection, facts: entry.CaseFacts, parts: Sequence[Part], *,
          at: datetime, office: Office) -> None:
    """Run the whole sequence and roll it back (a savepoint): raises what 登簿 would raise."""
    with conn.transaction():
        change = new_change(conn, "registration", "check", f"case {facts.case_no} (check)")
        enter(conn, facts, parts, change=change, at=at, office=office, registrar="check")
        raise psycopg.Rollback()

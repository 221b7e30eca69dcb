"""A case's life: opening (受理, or 申请 online), its moves through the stages, pauses of the
clock, and 登簿. Every call is one transaction that writes the case row, a transition row and an
audit-chain entry together; 登簿 writes the register in that same transaction (all or nothing).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.types.json import Jsonb

from cadastre import audit
from cadastre.access.pii import PiiCipher
from cadastre.cases import application as appl
from cadastre.cases import catalogue, certify, clock, combined, entry, requirements, rules
from cadastre.cases.model import CLOSED, MOVES, Action, PauseReason, Stage
from cadastre.cases.numbers import case_number, office
from cadastre.codes import county_of
from cadastre.errors import InvalidInput, NotFound
from cadastre.exchange import queue as reporting
from cadastre.qa import registration as registration_qa
from cadastre.register.versions import new_change
from cadastre.settings import CasesSettings
from cadastre.sharing import events
from cadastre.store.db import atomic

if TYPE_CHECKING:
    from cadastre.certificates.issue import IssuingContext

_QUERY_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


class CaseStateError(InvalidInput):
    """The case is not in a stage (or clock state) that allows the action."""

    code = "CASE_STATE"


@dataclass(frozen=True)
class Keys:
    """The keys a move needs; with ``documents`` (the office's signer), 缮证 renders and signs
    the electronic certificates and 发证 issues them. Without it (the demo's history, tools that
    only move stages) the stages move and owners get electronic copies on request later."""

    cipher: PiiCipher
    audit_key: bytes
    documents: IssuingContext | None = None


@dataclass(frozen=True)
class Actor:
    """Who acts: ``actor`` as the audit chain records it, ``role``, the staff member's display
    name (登簿人 DBR on the register), and their county scope (empty = everywhere)."""

    actor: str
    role: str
    name: str
    counties: tuple[str, ...] = ()
    account_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Opened:
    case_id: uuid.UUID
    case_no: str
    query_code: str          # given once to the applicant (受理回执), stored only as a hash
    stage: Stage


def query_code_hash(cipher: PiiCipher, case_no: str, code: str) -> bytes:
    msg = f"progress\x00{case_no}\x00{code.strip().upper()}".encode()
    return hmac.new(cipher.lookup_key, msg, hashlib.sha256).digest()


def _now(conn: psycopg.Connection, at: datetime | None) -> datetime:
    if at is not None:
        return at
    row = conn.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def _record(conn: psycopg.Connection, keys: Keys, actor: Actor, case_id: uuid.UUID,
            case_no: str, from_stage: str | None, to_stage: str, action: str, at: datetime,
            note: str | None = None) -> None:
    """The transition and its audit row. Called inside a pipeline by the moves: the writes
    before it (stage, clock) go out with the audit head read, in one round trip; an error in
    any of them surfaces there, inside the move's transaction."""
    conn.execute("INSERT INTO reg.case_transition (case_id, from_stage, to_stage, action, actor, "
                 "at, note) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                 (case_id, from_stage, to_stage, action, actor.actor, at, note))
    audit.append_in_transaction(conn, keys.audit_key, audit.Entry(
        actor.actor, actor.role, f"case.{action}", case_no))


# ------------------------------------------------------------------ opening a case
def open_case(conn: psycopg.Connection, settings: CasesSettings, keys: Keys, actor: Actor,
              app: appl.Application, at: datetime | None = None, *, max_units: int = 50,
              precheck: bool = True) -> Opened:
    """受理 at the window (stage accepted, the clock starts now) or 申请 online (stage applied;
    the online pre-review counts against the limit, so the clock starts too).

    The law's answer comes now (rules, documents; nothing written) unless ``precheck`` is off
    for a caller that enters the case in the same transaction (the handover batch)."""
    if app.channel not in ("window", "online"):
        raise InvalidInput("CHANNEL_INVALID", "渠道须为 window 或 online / channel must be "
                           "window or online")
    units = appl.check_units(app.unit_codes, max_units)
    with atomic(conn):
        bt = catalogue.get(conn, app.business_type)
        parts = catalogue.parts(conn, bt.seq)
        appl.check_parties(app.parties, [p.key for p in parts])
        request = appl.clean_request(bt, app.request, parts)
        county = county_of(units[0])
        if actor.counties and county not in actor.counties:
            raise NotFound("UNIT_NOT_FOUND", "无此不动产单元 / no such unit in your counties")
        clock.calendar.ensure(conn, settings)
        now = _now(conn, at)
        linked: tuple[appl.PartyLink, ...] = ()
        if not app.parties and not app.linked:    # 网签+预告: parties from the filing
            linked, request = requirements.fill(conn, _seqs(bt, parts), units, request,
                                                local_day(settings, now))
        case_id = uuid.uuid4()
        if bt.sale:
            rules.require_no_open_case(conn, units, catalogue.sale_types(conn), None)
        case_no = case_number(conn, county, now.year)
        code = "".join(secrets.choice(_QUERY_ALPHABET) for _ in range(8))
        promised, statutory = catalogue.limits(conn, bt, county)
        stage = Stage.ACCEPTED if app.channel == "window" else Stage.APPLIED
        conn.execute(
            "INSERT INTO reg.case (case_id, case_no, county_code, business_type, channel, "
            "stage, unit_codes, target_right_id, request, query_code_hash, applied_at, "
            "accepted_at, clock_from, promised_days, statutory_days, assignee, created_by) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (case_id, case_no, county, bt.seq, app.channel, stage, list(units),
             app.target_right_id, Jsonb(request),
             query_code_hash(keys.cipher, case_no, code), now,
             now if stage is Stage.ACCEPTED else None, now, promised, statutory,
             actor.account_id, actor.actor))
        appl.store_parties(conn, keys.cipher, case_id, app.parties, app.linked + linked)
        _store_materials(conn, bt.seq, case_id, app.materials, now)
        if bt.writes_register and precheck:   # the law's answer now, not at 登簿
            facts = _facts(conn, case_id)
            if parts:
                combined.check(conn, facts, parts, at=now,
                               office=office(conn, county, settings))
            else:
                entry.plan(conn, facts, lock=False)
            _check_documents(conn, settings, facts, parts, now)
        with conn.pipeline():       # the writes that end the move go out together (_record)
            clock.recompute(conn, settings, case_id)
            _record(conn, keys, actor, case_id, case_no, None, stage,
                    "accept" if stage is Stage.ACCEPTED else "apply", now)
            if stage is Stage.ACCEPTED:
                events.emit(conn, "case.accepted", county=county, unit_codes=units,
                            case_no=case_no, refs={"business_type": bt.seq,
                                                   "stage": stage.value})
    return Opened(case_id, case_no, code, stage)


def _seqs(bt: catalogue.BusinessType, parts: Sequence[catalogue.Part]) -> list[int]:
    return [bt.seq, *(p.business.seq for p in parts)]


def local_day(settings: CasesSettings, at: datetime) -> date:
    return at.astimezone(ZoneInfo(settings.timezone)).date()


def _check_documents(conn: psycopg.Connection, settings: CasesSettings, facts: entry.CaseFacts,
                     parts: Sequence[catalogue.Part], at: datetime) -> None:
    """The filed documents the case rests on (一码关联), at acceptance and at 登簿."""
    day = local_day(settings, at)
    requirements.require_documents(conn, _seqs(facts.business, parts), facts.unit_codes, day)
    if facts.business.sale:
        requirements.require_contract_buyers(
            conn, facts.unit_codes, [p.party_id for p in facts.parties if p.role == "holder"],
            day)


def _store_materials(conn: psycopg.Connection, seq: int, case_id: uuid.UUID,
                     received: Sequence[str], at: datetime) -> None:
    codes = list(dict.fromkeys(received))
    if not codes:
        return
    row = conn.execute(
        "WITH m AS (INSERT INTO reg.case_material (case_id, code, name_zh, name_en, status, at) "
        "SELECT %s, code, name_zh, name_en, 'received', %s FROM reg.material "
        "WHERE business_type = %s AND code = ANY(%s) RETURNING 1) SELECT count(*) FROM m",
        (case_id, at, seq, codes)).fetchone()
    if row is None or row[0] != len(codes):
        raise InvalidInput("MATERIAL_UNKNOWN", "该业务没有此申请材料 / not a material of "
                           "this business")


# ------------------------------------------------------------------ reading one case
@dataclass(frozen=True)
class CaseRow:
    case_id: uuid.UUID
    case_no: str
    county_code: str
    business_type: int
    stage: Stage
    paused_since: datetime | None
    clock_from: datetime | None
    registered_at: datetime | None


def _lock(conn: psycopg.Connection, case_no: str, actor: Actor) -> CaseRow:
    row = conn.execute(
        "SELECT case_id, case_no, county_code, business_type, stage, paused_since, clock_from, "
        "registered_at FROM reg.case WHERE case_no = %s FOR UPDATE", (case_no,)).fetchone()
    if row is None or (actor.counties and row[2] not in actor.counties):
        raise NotFound("CASE_NOT_FOUND", "无此案件 / no such case")
    return CaseRow(row[0], row[1], row[2], row[3], Stage(row[4]), row[5], row[6], row[7])


def _facts(conn: psycopg.Connection, case_id: uuid.UUID) -> entry.CaseFacts:
    row = conn.execute("SELECT case_no, business_type, unit_codes, target_right_id, request "
                       "FROM reg.case WHERE case_id = %s", (case_id,)).fetchone()
    assert row is not None
    parties = tuple(entry.CaseParty(*p) for p in conn.execute(
        "SELECT party_id, role, seq, share, co_ownership, part FROM reg.case_party "
        "WHERE case_id = %s ORDER BY role, part NULLS FIRST, seq", (case_id,)))
    return entry.CaseFacts(case_id, row[0], catalogue.get(conn, row[1]),
                           tuple(c.strip() for c in row[2]), row[3], dict(row[4]), parties)


# ------------------------------------------------------------------ moves
@dataclass(frozen=True)
class Review:
    step: str            # 初审 / 复审 / 核定 …
    opinion: str
    passed: bool = True


def advance(conn: psycopg.Connection, settings: CasesSettings, keys: Keys, actor: Actor,
            case_no: str, action: Action, *, note: str | None = None,
            reason: str | None = None, review: Review | None = None,
            at: datetime | None = None) -> dict[str, Any]:
    """Move the case by ``action``; returns what changed (stage, and for 登簿 the versions and
    certificate numbers written)."""
    move = MOVES[action]
    with atomic(conn):
        case = _lock(conn, case_no, actor)
        if case.stage not in move.sources:
            raise CaseStateError(message=f"案件处于{case.stage.value}阶段，不能执行 {action.value} "
                                 f"/ the case is {case.stage.value}; {action.value} is not "
                                 "possible")
        if move.needs_reason and not (reason and reason.strip()):
            raise InvalidInput("REASON_REQUIRED", "须说明理由 / a reason is required")
        bt = catalogue.get(conn, case.business_type)
        now = _now(conn, at)
        out: dict[str, Any] = {"case_no": case_no, "from": case.stage.value,
                               "to": move.target.value}
        if action is Action.REVIEW:
            if review is None or not review.step.strip() or not review.opinion.strip():
                raise InvalidInput("REVIEW_REQUIRED", "审核须写明环节和意见 / a review needs a "
                                   "step and an opinion")
            conn.execute("INSERT INTO reg.case_review (case_id, step, reviewer, opinion, passed, "
                         "at) VALUES (%s, %s, %s, %s, %s, %s)",
                         (case.case_id, review.step.strip()[:40], actor.actor,
                          review.opinion.strip()[:2000], review.passed, now))
        elif action in (Action.REGISTER, Action.CONCLUDE):
            _ready_for_entry(conn, case, bt, action)
        elif action is Action.PREPARE and bt.issues == "none":
            raise CaseStateError(message="该业务不发证 / this business issues no certificate")
        elif action is Action.ARCHIVE and case.stage is Stage.REGISTERED and bt.issues != "none":
            raise CaseStateError(message="须先缮证、发证 / prepare and issue the certificate first")
        if action is Action.REGISTER:
            out.update(_register(conn, settings, actor, case, now))
            # 上报: the exchange message of this 登簿, queued in its transaction
            out["biz_msg_id"] = reporting.enqueue_registration(
                conn, keys.cipher, case.county_code, case_no, out, now)
            out["certificates_superseded"] = certify.supersede_closed(
                conn, out["closed_right_ids"], case_no, now, actor=actor.actor,
                key=keys.audit_key)
        elif action is Action.PREPARE and keys.documents is not None:
            out["certificates"] = certify.prepare(conn, keys.documents, case.case_id, case_no,
                                                  actor=actor.actor)
        elif action is Action.ISSUE and keys.documents is not None:
            out["certificates"] = certify.issue(conn, keys.documents, case_no,
                                                actor=actor.actor, at=now)
        with conn.pipeline():       # the writes that end the move go out together (_record)
            _set_stage(conn, settings, case, move.target, now,
                       reason if move.needs_reason else None,
                       stops_clock=action in (Action.REGISTER, Action.CONCLUDE))
            if action is Action.ACCEPT:
                conn.execute("UPDATE reg.case SET accepted_at = %s, assignee = coalesce("
                             "assignee, %s) WHERE case_id = %s",
                             (now, actor.account_id, case.case_id))
            _record(conn, keys, actor, case.case_id, case_no, case.stage, move.target,
                    action.value, now, (note or reason or (review.opinion if review else None)))
            if action is Action.ACCEPT or move.target in CLOSED:
                events.emit(conn, "case.accepted" if action is Action.ACCEPT else
                            "case.completed", county=case.county_code, case_no=case_no,
                            refs={"business_type": case.business_type,
                                  "stage": move.target.value})
    return out


def _ready_for_entry(conn: psycopg.Connection, case: CaseRow, bt: catalogue.BusinessType,
                     action: Action) -> None:
    if (action is Action.REGISTER) != bt.writes_register:
        raise CaseStateError(message="该业务" + ("须登簿 / this business is entered in the "
                             "register" if bt.writes_register else "不登簿，请办结 / this "
                             "business is concluded, not entered"))
    if case.paused_since is not None:
        raise CaseStateError("CASE_PAUSED", "案件暂停中，请先恢复 / the case is paused; resume "
                             "it first")
    passed = conn.execute("SELECT count(*) FROM reg.case_review WHERE case_id = %s AND passed",
                          (case.case_id,)).fetchone()
    if passed is None or passed[0] < bt.review_steps:
        raise CaseStateError("REVIEW_MISSING", f"须经 {bt.review_steps} 个审核环节通过 / "
                             f"{bt.review_steps} passed review step(s) needed")


def _register(conn: psycopg.Connection, settings: CasesSettings, actor: Actor, case: CaseRow,
              now: datetime) -> dict[str, Any]:
    """登簿: every part in order under one change set, each with its event, in this
    transaction; a combined case also records what each part wrote."""
    facts = _facts(conn, case.case_id)
    bt = facts.business
    parts = catalogue.parts(conn, bt.seq)
    change = new_change(conn, "registration", actor.actor, f"case {case.case_no}")

    def emit(done: combined.PartResult) -> None:
        pbt, r = done.part.business, done.result
        refs: dict[str, Any] = {"versions": list(r.version_ids),
                                "closed": list(r.closed_version_ids), "change_id": change,
                                "business_type": pbt.seq}
        if parts:
            refs.update({"combined": bt.seq, "part": done.part.key})
        events.emit(conn, events.registration_event(pbt.registration_type, pbt.right_kinds[0],
                                                    r.entered_kinds),
                    county=case.county_code, unit_codes=facts.unit_codes, case_no=case.case_no,
                    refs=refs)

    results = combined.enter(conn, facts, parts or [combined.implicit_part(facts)],
                             change=change, at=now, office=office(conn, case.county_code,
                                                                  settings),
                             registrar=actor.name, after_part=emit)
    _check_documents(conn, settings, facts, parts, now)   # still filed and valid
    # registration quality rules on what was just written: blocking ones refuse the 登簿
    out_findings = registration_qa.check_entry(conn, facts.unit_codes, case.case_no, actor.actor)
    certs = [c for done in results for c in done.result.certificate_nos]
    for done in results if parts else ():
        r = done.result
        conn.execute("INSERT INTO reg.case_part (case_id, seq, part_key, part_type, "
                     "version_ids, closed_ids, certificate_nos) VALUES (%s, %s, %s, %s, %s, "
                     "%s, %s)", (case.case_id, done.part.seq, done.part.key,
                                 done.part.business.seq, list(r.version_ids),
                                 list(r.closed_version_ids), list(r.certificate_nos)))
    conn.execute("UPDATE reg.case SET change_id = %s, certificate_no = %s WHERE case_id = %s",
                 (change, certs[0] if certs else None, case.case_id))
    out: dict[str, Any] = {
        "change_id": change,
        "version_ids": [v for d in results for v in d.result.version_ids],
        "certificate_nos": certs,
        "closed_right_ids": [str(x) for d in results for x in d.result.closed_right_ids],
        "quality_findings": len(out_findings)}
    if parts:
        out["parts"] = [{"seq": d.part.seq, "key": d.part.key,
                         "business_type": d.part.business.seq,
                         "version_ids": list(d.result.version_ids),
                         "certificate_nos": list(d.result.certificate_nos)} for d in results]
    return out


def _set_stage(conn: psycopg.Connection, settings: CasesSettings, case: CaseRow, stage: Stage,
               now: datetime, reason: str | None, stops_clock: bool) -> None:
    closes = stage in CLOSED
    if closes and case.paused_since is not None:
        _end_pause(conn, settings, case, None, now)
    conn.execute(
        "UPDATE reg.case SET stage = %(stage)s, updated_at = now(), "
        "reason = coalesce(%(reason)s, reason), "
        "closed_at = CASE WHEN %(closes)s THEN %(now)s ELSE closed_at END, "
        "registered_at = CASE WHEN %(stops)s THEN %(now)s ELSE registered_at END, "
        "working_days_used = CASE WHEN %(stops)s THEN greatest(0, "
        "  reg.wd_idx((%(now)s AT TIME ZONE %(tz)s)::date) - reg.wd_idx(start_day) "
        "  - paused_days) ELSE working_days_used END "
        "WHERE case_id = %(case)s",
        {"stage": stage.value, "reason": (reason or "").strip()[:2000] or None, "closes": closes,
         "now": now, "stops": stops_clock, "tz": settings.timezone, "case": case.case_id})


# ------------------------------------------------------------------ pauses
def pause(conn: psycopg.Connection, settings: CasesSettings, keys: Keys, actor: Actor,
          case_no: str, reason: PauseReason, note: str | None = None,
          missing: Sequence[str] = (), at: datetime | None = None) -> int:
    """Stop the clock (补正 with the complete list of missing materials, 公告, 实地查看 …)."""
    with conn.transaction():
        case = _lock(conn, case_no, actor)
        if case.clock_from is None or case.registered_at is not None or case.stage in CLOSED:
            raise CaseStateError(message="案件时钟未在运行 / the case's clock is not running")
        if case.paused_since is not None:
            raise CaseStateError("CASE_PAUSED", "案件已暂停 / the case is already paused")
        if reason is PauseReason.SUPPLEMENT and not missing:
            raise InvalidInput("MATERIALS_REQUIRED", "补正须一次性列明所缺材料 / a 补正 lists "
                               "every missing material at once")
        now = _now(conn, at)
        row = conn.execute("INSERT INTO reg.case_pause (case_id, reason, note, started_at, "
                           "started_by) VALUES (%s, %s, %s, %s, %s) RETURNING id",
                           (case.case_id, reason.value, note, now, actor.actor)).fetchone()
        assert row is not None
        pause_id = int(row[0])
        known = {m.code: m for m in catalogue.materials(conn, case.business_type)}
        for code in dict.fromkeys(missing):
            m = known.get(code)
            if m is None:
                raise InvalidInput("MATERIAL_UNKNOWN", "该业务没有此申请材料 / not a material "
                                   "of this business")
            conn.execute("INSERT INTO reg.case_material (case_id, code, name_zh, name_en, "
                         "status, pause_id, at) VALUES (%s, %s, %s, %s, 'missing', %s, %s) "
                         "ON CONFLICT (case_id, code) DO UPDATE SET status = 'missing', "
                         "pause_id = EXCLUDED.pause_id, at = EXCLUDED.at",
                         (case.case_id, m.code, m.name_zh, m.name_en, pause_id, now))
        conn.execute("UPDATE reg.case SET paused_since = %s, updated_at = now() "
                     "WHERE case_id = %s", (now, case.case_id))
        _record(conn, keys, actor, case.case_id, case_no, case.stage, case.stage,
                f"pause.{reason.value}", now, note)
    return pause_id


def resume(conn: psycopg.Connection, settings: CasesSettings, keys: Keys, actor: Actor,
           case_no: str, note: str | None = None, at: datetime | None = None) -> int:
    """Restart the clock; the paused working days move the deadlines. Returns those days."""
    with conn.transaction():
        case = _lock(conn, case_no, actor)
        if case.paused_since is None:
            raise CaseStateError(message="案件未暂停 / the case is not paused")
        now = _now(conn, at)
        days = _end_pause(conn, settings, case, actor.actor, now)
        clock.recompute(conn, settings, case.case_id)
        _record(conn, keys, actor, case.case_id, case_no, case.stage, case.stage, "resume",
                now, note)
    return days


def _end_pause(conn: psycopg.Connection, settings: CasesSettings, case: CaseRow, by: str | None,
               now: datetime) -> int:
    row = conn.execute(
        "UPDATE reg.case_pause SET ended_at = %(now)s, ended_by = %(by)s, days = greatest(0, "
        "reg.wd_idx((%(now)s AT TIME ZONE %(tz)s)::date) "
        "- reg.wd_idx((started_at AT TIME ZONE %(tz)s)::date)) "
        "WHERE case_id = %(case)s AND ended_at IS NULL RETURNING id, days",
        {"now": now, "by": by, "tz": settings.timezone, "case": case.case_id}).fetchone()
    assert row is not None
    conn.execute("UPDATE reg.case_material SET status = 'supplied', at = %s "
                 "WHERE pause_id = %s AND status = 'missing'", (now, row[0]))
    conn.execute("UPDATE reg.case SET paused_since = NULL, paused_days = paused_days + %s, "
                 "updated_at = now() WHERE case_id = %s", (row[1], case.case_id))
    return int(row[1])


def assign(conn: psycopg.Connection, keys: Keys, actor: Actor, case_no: str,
           account_id: uuid.UUID) -> None:
    with conn.transaction():
        case = _lock(conn, case_no, actor)
        now = _now(conn, None)
        conn.execute("UPDATE reg.case SET assignee = %s, updated_at = now() WHERE case_id = %s",
                     (account_id, case.case_id))
        _record(conn, keys, actor, case.case_id, case_no, case.stage, case.stage, "assign", now,
                str(account_id))

"""交房即交证: a development project handed over as a batch.

For a project (a parcel's buildings, or every building carrying a project name), per building:
the developer's first registration of its units (one case, the developer being the holder of
the parcel's current land use right; it needs the building's completion acceptance filing),
then per sold unit a transfer from the filed sales contract — with the buyer's lender's
mortgage where a mortgage contract is filed (business 31, transfer + mortgage in one 登簿) —
opened, reviewed, entered and taken to 缮证 (its certificate number reserved at 登簿). Every unit
is all or nothing (a savepoint): a defect (no contract, a seizure …) is recorded on the unit's
row of ``reg.handover_item`` with the rule's code, and the rest go on. Units are committed in
short chunks (``CHUNK_SECONDS``), so a commit's disk flush is shared while the audit chain's
lock is never held for long. Runs as a durable job (``handover_batch``): a run interrupted
midway is resumed by the next attempt, which skips what is done.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import psycopg

from cadastre.cases import requirements
from cadastre.cases import workflow as wf
from cadastre.cases.application import Application, PartyLink
from cadastre.cases.model import Action
from cadastre.cases.rules import violation
from cadastre.codes import county_of, land_code_of, validate_parcel_code
from cadastre.errors import CadastreError, InvalidInput, NotFound
from cadastre.jobs import create_job
from cadastre.linked.reads import ValidDocument
from cadastre.settings import CasesSettings
from cadastre.store.db import batch_item, connect

FIRST, TRANSFER, TRANSFER_MORTGAGE = 5, 7, 31
REVIEW = wf.Review("初审", "交房即交证批量办理：材料经部门共享核验 / handover batch: documents "
                   "verified from the departments' filings")
Progress = Callable[[float, str], None]
CHUNK_SECONDS = 0.25


@dataclass(frozen=True)
class Project:
    label: str
    parcel_codes: tuple[str, ...]
    county: str
    buildings: tuple[tuple[str, str], ...]      # (building code, name)


def resolve_project(conn: psycopg.Connection, project: str) -> Project:
    """A parcel code (its current buildings) or a project name (XMMC: every current building
    carrying it)."""
    project = project.strip()
    if not project or len(project) > 100:
        raise InvalidInput("PROJECT_INVALID", "项目应为宗地代码或项目名称 / the project is a "
                           "parcel code or a project name")
    if len(project) == 19 and not validate_parcel_code(project):
        where, arg = "parcel_code = %s", project
    else:
        where, arg = "project_name = %s", project
    rows = conn.execute(f"SELECT building_code, coalesce(name, building_code) FROM "
                        f"cad.building_current WHERE {where} ORDER BY building_code",
                        (arg,)).fetchall()
    if not rows:
        raise NotFound("PROJECT_NOT_FOUND", "无此项目（宗地代码或项目名称下没有现势幢） / no such "
                       "project (no current building under that parcel code or name)")
    counties = {county_of(r[0]) for r in rows}
    if len(counties) > 1:
        raise InvalidInput("PROJECT_COUNTIES", "项目的幢分属多个县区 / the project's buildings "
                           "lie in several counties")
    parcels = tuple(sorted({r[0][:19] for r in rows}))
    return Project(project, parcels, counties.pop(), tuple((r[0], r[1]) for r in rows))


def start_batch(conn: psycopg.Connection, project: str, actor: wf.Actor,
                run_here: str | None = None) -> tuple[uuid.UUID, uuid.UUID]:
    """A batch with one pending row per unit of the project, and its job (committed)."""
    with conn.transaction():
        p = resolve_project(conn, project)
        if actor.counties and p.county not in actor.counties:
            raise NotFound("PROJECT_NOT_FOUND", "无此项目 / no such project in your counties")
        running = conn.execute("SELECT batch_id FROM reg.handover_batch WHERE parcel_codes && "
                               "%s::char(19)[] AND status IN ('queued', 'running') LIMIT 1",
                               (list(p.parcel_codes),)).fetchone()
        if running:
            raise InvalidInput("BATCH_RUNNING", "该项目已有进行中的批量办理 / a batch for this "
                               f"project is already running: {running[0]}")
        batch_id = uuid.uuid4()
        job_id = create_job(conn, "handover_batch", actor.actor,
                            {"batch_id": str(batch_id), "actor": actor.actor,
                             "name": actor.name, "counties": list(actor.counties),
                             "account_id": str(actor.account_id) if actor.account_id else None},
                            run_here=run_here)
        conn.execute("INSERT INTO reg.handover_batch (batch_id, project, parcel_codes, "
                     "county_code, job_id, created_by) VALUES (%s, %s, %s::char(19)[], %s, %s, "
                     "%s)", (batch_id, p.label, list(p.parcel_codes), p.county, job_id,
                             actor.actor))
        conn.execute("INSERT INTO reg.handover_item (batch_id, unit_code, building_code) "
                     "SELECT %s, unit_code, building_code FROM cad.unit_current "
                     "WHERE building_code = ANY(%s::char(24)[])",
                     (batch_id, [b for b, _ in p.buildings]))
    return batch_id, job_id


def actor_of(payload: dict[str, Any]) -> wf.Actor:
    """The staff member who started the batch (from the job's payload)."""
    account = payload.get("account_id")
    return wf.Actor(payload["actor"], "registrar", payload.get("name") or "登记员",
                    tuple(payload.get("counties") or ()), uuid.UUID(account) if account else None)


# ------------------------------------------------------------------ running a batch
@dataclass
class Totals:
    units: int = 0
    done: int = 0
    failed: int = 0

    @property
    def finished(self) -> int:
        return self.done + self.failed


class _Run:
    def __init__(self, conn: psycopg.Connection, settings: CasesSettings, keys: wf.Keys,
                 actor: wf.Actor, batch_id: uuid.UUID, progress: Progress | None) -> None:
        self.conn, self.settings, self.keys, self.actor = conn, settings, keys, actor
        self.batch_id, self.progress = batch_id, progress
        self.totals = Totals()

    # ---- items
    def _set(self, units: Sequence[str], status: str, **values: Any) -> None:
        cols = "".join(f", {k} = %({k})s" for k in values)
        self.conn.execute(f"UPDATE reg.handover_item SET status = %(status)s, "
                          f"updated_at = now(){cols} WHERE batch_id = %(batch)s "
                          f"AND unit_code = ANY(%(units)s::char(28)[])",
                          {"status": status, "batch": self.batch_id, "units": list(units),
                           **values})
        if status == "done":
            self.totals.done += len(units)
        elif status == "failed":
            self.totals.failed += len(units)

    def _fail(self, units: Sequence[str], exc: CadastreError) -> None:
        with self.conn.transaction():
            self._set(units, "failed", error_code=exc.code, error=exc.message[:500])

    def _tick(self, step: str) -> None:
        if self.progress is not None:
            self.progress(self.totals.finished / max(self.totals.units, 1), step[-80:])

    # ---- one case through to 缮证, in the caller's transaction
    def _through(self, app: Application, max_units: int = 50) -> tuple[str, str | None]:
        row = self.conn.execute("SELECT clock_timestamp()").fetchone()
        assert row is not None
        at: datetime = row[0]
        step = timedelta(microseconds=10)      # each move after the one before
        opened = wf.open_case(self.conn, self.settings, self.keys, self.actor, app, at=at,
                              max_units=max_units, precheck=False)
        wf.advance(self.conn, self.settings, self.keys, self.actor, opened.case_no,
                   Action.REVIEW, review=REVIEW, at=at + step)
        out = wf.advance(self.conn, self.settings, self.keys, self.actor, opened.case_no,
                         Action.REGISTER, at=at + 2 * step)
        wf.advance(self.conn, self.settings, self.keys, self.actor, opened.case_no,
                   Action.PREPARE, at=at + 3 * step)
        certs = out.get("certificate_nos") or []
        return opened.case_no, (certs[0] if certs else None)

    # ---- the developer's first registration of a building
    def first_registration(self, building: str, units: list[str],
                           developer: tuple[uuid.UUID, ...]) -> list[str]:
        """The units of ``building`` now owned by the developer (those already owned before
        are left as they are)."""
        owned = {r[0].strip() for r in self.conn.execute(
            "SELECT unit_code FROM cad.right_current WHERE unit_code = ANY(%s::char(28)[]) "
            "AND kind = 'ownership' AND status = 1", (units,))}
        bare = [u for u in units if u not in owned]
        if bare:
            if not developer:
                self._fail(bare, violation("BASE_RIGHT_MISSING", "开发企业的国有建设用地使用权 / "
                                           "the developer's land use right"))
                return sorted(owned)
            app = Application(FIRST, tuple(bare), linked=tuple(
                PartyLink(p, "holder") for p in developer),
                request={"reason": "首次登记（交房即交证）"},
                materials=("application_form", "completion_acceptance"))
            try:
                with batch_item(self.conn):
                    case_no, _ = self._through(app, max_units=len(bare))
                    self.conn.execute("UPDATE reg.handover_item SET first_case_no = %s "
                                      "WHERE batch_id = %s AND unit_code = ANY(%s::char(28)[])",
                                      (case_no, self.batch_id, bare))
            except CadastreError as exc:
                self._fail(bare, exc)
                return sorted(owned)
        return [u for u in units if u in owned or u in bare]

    # ---- one sold unit
    def hand_over(self, unit: str, day: Any) -> None:
        contract = requirements.contract_of(self.conn, unit, day)
        if contract is None:
            self._fail([unit], violation("DOCUMENT_REQUIRED", f"商品房买卖合同（网签备案） / "
                                         f"sales contract filing: {unit}"))
            return
        buyers = contract.of_role("buyer")
        if self._already_theirs(unit, buyers):
            with self.conn.transaction():
                self._set([unit], "done", error_code=None, error=None)
            return
        mortgage = requirements.mortgage_contract_of(self.conn, unit, day, buyers)
        try:
            with batch_item(self.conn):
                case_no, cert = self._through(_application(unit, contract, mortgage))
                self._set([unit], "done", case_no=case_no, certificate_no=cert,
                          error_code=None, error=None)
        except CadastreError as exc:
            self._fail([unit], exc)

    def _already_theirs(self, unit: str, buyers: list[uuid.UUID]) -> bool:
        """Whether the unit's current owners are the contract's buyers (handed over before)."""
        row = self.conn.execute(_ALREADY, (unit, buyers)).fetchone()
        return bool(row and row[0])


_ALREADY = """
WITH o AS (SELECT DISTINCT p.id_number_hash AS h FROM cad.right_current r
           JOIN cad.right_party rp ON rp.right_version_id = r.version_id AND rp.role = 1
           JOIN pii.party p ON p.party_id = rp.party_id
           WHERE r.unit_code = %s AND r.kind = 'ownership' AND r.status = 1),
     b AS (SELECT DISTINCT id_number_hash AS h FROM pii.party WHERE party_id = ANY(%s))
SELECT EXISTS (SELECT 1 FROM o) AND NOT EXISTS (SELECT h FROM o EXCEPT SELECT h FROM b)
       AND NOT EXISTS (SELECT h FROM b EXCEPT SELECT h FROM o)
"""


def _application(unit: str, contract: ValidDocument, mortgage: ValidDocument | None
                 ) -> Application:
    """The buyer's application from the filings: the contract's buyers as holders and its
    price; the mortgage contract's lender as the mortgagee of the buyer's mortgage."""
    links = tuple(PartyLink(p, "holder") for p in contract.of_role("buyer"))
    request: dict[str, Any] = {"reason": "买卖（交房即交证）"}
    if contract.price is not None:
        request["transaction_price"] = str(contract.price)
    if mortgage is None:
        return Application(TRANSFER, (unit,), linked=links, request=request,
                           materials=("application_form", "sales_contract"))
    links += tuple(PartyLink(p, "mortgagee", "buyer_mortgage")
                   for p in mortgage.of_role("lender"))
    request["buyer_mortgage"] = {"mortgage_type": 1, "secured_amount": str(
        mortgage.secured_amount), "debt_start": str(mortgage.debt_start),
        "debt_end": str(mortgage.debt_end)}
    return Application(TRANSFER_MORTGAGE, (unit,), linked=links, request=request,
                       materials=("application_form", "sales_contract", "loan_contract",
                                  "mortgage_contract"))


def _developers(conn: psycopg.Connection, parcel_code: str) -> tuple[uuid.UUID, ...]:
    """Holders of the current land use right on the parcel (the developer)."""
    return tuple(r[0] for r in conn.execute(
        "SELECT p.party_id FROM cad.right_current r JOIN cad.right_party p ON "
        "p.right_version_id = r.version_id AND p.role = 1 WHERE r.unit_code = %s AND "
        "r.kind = 'land_use' AND r.status = 1 ORDER BY p.seq", (land_code_of(parcel_code),)))


def run_batch(url: str, settings: CasesSettings, keys: wf.Keys, batch_id: uuid.UUID,
              actor: wf.Actor, progress: Progress | None = None,
              now: datetime | None = None) -> Totals:
    """Hand the project over (resuming after what an earlier attempt finished). The cases stop
    at 缮证 with their numbers reserved; the signed documents of a whole project are made by a
    certificates batch in worker processes (``cadastre certificates issue --all``), not one by
    one inside these chunks."""
    keys = replace(keys, documents=None)
    # the batch repeats the same point reads and writes thousands of times: one generic plan
    # each (planning anew for every unit was a fifth of the server's time)
    with connect(url, autocommit=True, plan_cache_mode="force_generic_plan") as conn:
        row = conn.execute("SELECT parcel_codes FROM reg.handover_batch WHERE batch_id = %s",
                           (batch_id,)).fetchone()
        if row is None:
            raise NotFound("BATCH_NOT_FOUND", "无此批量办理 / no such handover batch")
        conn.execute("UPDATE reg.handover_batch SET status = 'running' WHERE batch_id = %s",
                     (batch_id,))
        run = _Run(conn, settings, keys, actor, batch_id, progress)
        counts = conn.execute("SELECT count(*), count(*) FILTER (WHERE status = 'done'), "
                              "count(*) FILTER (WHERE status = 'failed') FROM "
                              "reg.handover_item WHERE batch_id = %s", (batch_id,)).fetchone()
        assert counts is not None
        run.totals = Totals(*counts)
        developers = {p.strip(): _developers(conn, p.strip()) for p in row[0]}
        day = wf.local_day(settings, now or datetime.now().astimezone())
        buildings = conn.execute(
            "SELECT i.building_code, array_agg(i.unit_code ORDER BY i.unit_code) FROM "
            "reg.handover_item i WHERE i.batch_id = %s AND i.status = 'pending' "
            "GROUP BY i.building_code ORDER BY i.building_code", (batch_id,)).fetchall()
        for building, units in buildings:
            building = building.strip()
            units = [u.strip() for u in units]
            run._tick(building)
            ready = run.first_registration(building, units, developers[building[:19]])
            i = 0
            while i < len(ready):
                with conn.transaction():        # a chunk; each unit a savepoint in it
                    started = time.monotonic()
                    while True:
                        run.hand_over(ready[i], day)
                        i += 1
                        if i == len(ready) or time.monotonic() - started >= CHUNK_SECONDS:
                            break
                run._tick(building)
        conn.execute("UPDATE reg.handover_batch SET status = 'done', finished_at = now() "
                     "WHERE batch_id = %s", (batch_id,))
    return run.totals


def fail_batch(url: str, batch_id: uuid.UUID, code: str) -> None:
    with connect(url, autocommit=True) as conn:
        conn.execute("UPDATE reg.handover_batch SET status = 'failed', error_code = %s, "
                     "finished_at = now() WHERE batch_id = %s", (code, batch_id))

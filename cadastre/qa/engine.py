"""Run quality rules over a scope; store runs and findings; mark findings; sample for review."""

from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg

from cadastre.errors import InvalidInput, NotFound
from cadastre.qa.registration_rules import SCOPE_FILTER
from cadastre.qa.rules import RULES, RULES_BY_ID, Rule
from cadastre.qa.scope import Scope, ScopeTables
from cadastre.settings import QaSettings
from cadastre.store.db import scalar

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Finding:
    rule_id: str
    category: str
    severity: str
    subject: tuple[str, ...]
    measure: float | None
    message: str
    geom_wkb: bytes | None            # EPSG:3857

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule_id, "category": self.category, "severity": self.severity,
                "subject": list(self.subject), "measure": self.measure, "message": self.message}


def rules_for(scope: Scope, qa: QaSettings, only: Iterable[str] | None = None) -> list[Rule]:
    chosen = [RULES_BY_ID[r] for r in only] if only else list(RULES)
    unknown = [r for r in (only or []) if r not in RULES_BY_ID]
    if unknown:
        raise InvalidInput("QA_RULE_UNKNOWN", f"未知规则 / unknown rules: {', '.join(unknown)}")
    out = []
    for rule in chosen:
        if rule.id in qa.disabled_rules:
            continue
        if scope.is_submission and rule.registry_only:
            continue
        if not scope.is_submission and rule.submission_only:
            continue
        out.append(rule)
    return out


# Work memory of a QA session: the rules hash and sort whole scopes (a district's boundary
# points, its vertices) and should not spill to disk.
WORK_MEM = "256MB"
# Local buffers for the scope's temp tables (settable only before a session's first temp table).
TEMP_BUFFERS = "256MB"
# a QA run's planner settings (restored afterwards). No JIT: it compiles every rule's plan for
# seconds and wins nothing on geometry functions. Records, holders, details and units are
# partitioned by county alike (0024): joins on the county key are made county by county (a
# 1M-parcel district: hash tables of ~2 M units instead of one of 10 M spilling to disk), and
# so are groupings by a code. Random reads priced as what they are for a register that is
# read from memory or SSD (1.1, not the spinning-disk 4): probes of an all-visible index, e.g.
# the current units' codes (116 MB a county) instead of their 2 GB of rows (1M parcels: record
# without unit 26 -> 21 s alone; the district 248 -> 234 s).
SESSION = {"work_mem": WORK_MEM, "jit": "off", "enable_partitionwise_join": "on",
           "enable_partitionwise_aggregate": "on", "random_page_cost": "1.1"}
# Scopes with at least this many parcels run their rules on several connections at once
# (QaSettings.workers).
PARALLEL_MIN_PARCELS = 20_000
_UNITS_OR_BUILDINGS = ("subject_buildings", "subject_units")
# building a scope's temp tables, in the rules' cost units (about GEOM_SPIKE's, ~10 s for a
# 1M-parcel district): a second connection builds its copy only for more work than that
_SCOPE_COST = 20


# Over the whole register the record and unit rules' scope filter (``SCOPE_FILTER``: "the
# code's parcel is one of the subject parcels") is true. Written out as such, those statements
# read none of the scope's temp tables, so a connection can run them without building its own
# copy of the scope (a 1M-parcel district: ~10 s of CPU a connection).
_WHOLE_REGISTER_FILTER = re.compile(
    re.escape(SCOPE_FILTER).replace(re.escape("{col}"), r"[\w.]+"))
_SCOPE_TABLE = re.compile(r"\b(subject|context|replaced)\b")


def rule_sql(rule: Rule, scope: Scope) -> str:
    """The rule's statement, with the WITH-clause of buildings/units in front if it uses them."""
    sql = _WHOLE_REGISTER_FILTER.sub("true", rule.sql) if scope.whole_register else rule.sql
    if not scope.ctes() or not any(name in sql for name in _UNITS_OR_BUILDINGS):
        return sql
    body = sql.lstrip()
    if body[:4].upper() == "WITH":
        return scope.ctes() + ",\n" + body[4:]
    return scope.ctes() + "\n" + body


def needs_scope_tables(rule: Rule, scope: Scope) -> bool:
    """Whether the rule's statement reads the temp tables of ``ScopeTables``."""
    sql = rule_sql(rule, scope)
    return bool(_SCOPE_TABLE.search(sql)) or (
        scope.is_submission and any(name in sql for name in _UNITS_OR_BUILDINGS))


def run_rule(conn: psycopg.Connection, rule: Rule, scope: Scope, qa: QaSettings,
             params: dict[str, Any] | None = None, part: int = 0, parts: int = 1
             ) -> list[Finding]:
    """One rule's findings (or those of one of its ``parts``); the scope's temp tables must
    exist on ``conn`` (see ``check``)."""
    bound = {**(params if params is not None else scope.sql_params()), **qa.tolerances(),
             "part": part, "parts": parts}
    # a part's share of the subject parcels: a range of their numbers (``sid``, 1..size)
    size = int(bound.get("subject_size") or 0)
    bound["sid_lo"], bound["sid_hi"] = size * part // parts, size * (part + 1) // parts
    if parts == 1:
        bound["sid_hi"] = max(size, 1 << 62)
    if rule.settings:
        saved = [(name, scalar(conn, "SELECT current_setting(%s)", (name,)))
                 for name, _ in rule.settings]
        for name, value in rule.settings:
            conn.execute("SELECT set_config(%s, %s, false)", (name, value))
    try:
        rows = conn.execute(rule_sql(rule, scope), bound).fetchall()  # type: ignore[arg-type]
    finally:
        if rule.settings and conn.info.transaction_status != psycopg.pq.TransactionStatus.INERROR:
            for name, value in saved:
                conn.execute("SELECT set_config(%s, %s, false)", (name, value))
    out = []
    for subject, measure, message, geom in rows:
        g = None
        if geom is not None:
            g = bytes.fromhex(geom) if isinstance(geom, str) else bytes(geom)
        out.append(Finding(rule.id, rule.category, rule.severity, tuple(subject or ()),
                           float(measure) if measure is not None else None, message, g))
    return out


@contextmanager
def _session(conn: psycopg.Connection) -> Iterator[None]:
    """``SESSION``'s settings on ``conn`` for a QA run (restored afterwards), and large local
    buffers for the temp tables if this session has not used temp tables yet."""
    saved = conn.execute("SELECT " + ", ".join(f"current_setting('{name}')" for name in SESSION),
                         ).fetchone()
    try:
        with conn.transaction():
            conn.execute(f"SET temp_buffers = '{TEMP_BUFFERS}'")
    except psycopg.errors.InvalidParameterValue:
        pass    # temp tables were used before in this session: keep its buffers
    for name, value in SESSION.items():
        conn.execute(f"SET {name} = '{value}'")
    try:
        yield
    finally:
        if saved and conn.info.transaction_status != psycopg.pq.TransactionStatus.INERROR:
            conn.execute("SELECT " + ", ".join(f"set_config('{name}', %s, false)"
                                                for name in SESSION), saved)


def second_connection(conn: psycopg.Connection) -> psycopg.Connection | None:
    """Another connection to the same database that sees the same data: only when ``conn``
    has written nothing uncommitted (a second session could not see it)."""
    if conn.info.transaction_status not in (psycopg.pq.TransactionStatus.IDLE,
                                            psycopg.pq.TransactionStatus.INTRANS):
        return None
    if scalar(conn, "SELECT pg_current_xact_id_if_assigned()") is not None:
        return None
    params: dict[str, Any] = {**conn.info.get_parameters(), "application_name": "cadastre-qa",
                              "connect_timeout": 10}
    if conn.info.password:
        params["password"] = conn.info.password
    try:
        return psycopg.connect(**params)
    except psycopg.OperationalError:
        return None


class _Run:
    """The work of one ``check``: (rule, part) jobs, slowest first, taken by the connections
    as they come free; findings and timings collected under a lock. The first connection builds
    the scope's temp tables at once and takes the jobs that read them first; the others build
    their copy only when nothing is left but such jobs (over the whole register most rules of
    records and units read none)."""

    def __init__(self, scope: Scope, qa: QaSettings, rules: list[Rule], parts: int,
                 progress: Progress | None, timings: dict[str, float]) -> None:
        self.scope, self.qa, self.rules, self.progress = scope, qa, rules, progress
        self.jobs = sorted(((r, part, min(parts, r.parts)) for r in rules
                            for part in range(min(parts, r.parts))),
                           key=lambda job: -job[0].cost / job[2])
        self.lock = threading.Lock()
        self.results: dict[tuple[str, int], list[Finding]] = {}
        self.timings = timings
        self.started: set[str] = set()
        self.needs = {r.id: needs_scope_tables(r, scope) for r in rules}
        self.built = False

    def work(self, conn: psycopg.Connection, first: bool = True) -> None:
        """Run jobs on ``conn`` until none are left, with the scope's temp tables set up at
        once (``first``) or when a job needs them."""
        with _session(conn), conn.transaction():
            tables = self._tables(conn) if first else None
            try:
                while job := self._next(tables is not None):
                    rule, part, parts = job
                    if tables is None and self.needs[rule.id]:
                        tables = self._tables(conn)
                    params = tables.params if tables is not None else self.scope.sql_params()
                    t0 = time.perf_counter()
                    found = run_rule(conn, rule, self.scope, self.qa, params, part, parts)
                    with self.lock:
                        self.results[(rule.id, part)] = found
                    self._time(rule.id, time.perf_counter() - t0, sum)
            finally:
                if tables is not None:
                    tables.__exit__()

    def _tables(self, conn: psycopg.Connection) -> ScopeTables:
        t0 = time.perf_counter()
        tables = ScopeTables(conn, self.scope).__enter__()
        self._time("scope", time.perf_counter() - t0, max)
        with self.lock:
            self.built = True
        return tables

    def stop(self) -> None:
        with self.lock:
            self.jobs.clear()

    def _next(self, has_tables: bool) -> tuple[Rule, int, int] | None:
        """The slowest job left whose need of the scope's tables matches ``has_tables``, else
        the slowest job left; none for a connection without the tables when the jobs left
        would cost less than building them (another connection has them)."""
        with self.lock:
            if not self.jobs:
                return None
            i = next((k for k, (rule, _, _) in enumerate(self.jobs)
                      if self.needs[rule.id] == has_tables), None)
            if i is None and not has_tables and self.built and sum(
                    rule.cost / parts for rule, _, parts in self.jobs) < _SCOPE_COST:
                return None     # leave the last small jobs to a connection that has the tables
            job = self.jobs.pop(i or 0)
            if job[0].id not in self.started:
                self.started.add(job[0].id)
                if self.progress:
                    self.progress(len(self.started) - 1, len(self.rules), job[0].id)
            return job

    def _time(self, key: str, seconds: float, how: Callable[[list[float]], float]) -> None:
        with self.lock:
            self.timings[key] = how([self.timings.get(key, 0.0), seconds])

    def findings(self) -> list[Finding]:
        return [f for rule in self.rules for part in range(rule.parts)
                for f in self.results.get((rule.id, part), [])]


def check(conn: psycopg.Connection, scope: Scope, qa: QaSettings,
          only: Iterable[str] | None = None, progress: Progress | None = None,
          workers: int | None = None, timings: dict[str, float] | None = None
          ) -> list[Finding]:
    """All findings of the enabled rules over the scope (nothing stored), in rule order.

    The scope is materialised as temp tables on each connection whose rules read them
    (``ScopeTables``).
    ``workers``: 1 runs every rule on ``conn``; N runs them on ``conn`` and N - 1 more
    connections at once, the slowest rules first and the slowest split in parts (``Rule.parts``)
    so that the connections finish together. By default ``qa.workers`` are used for scopes of
    at least ``PARALLEL_MIN_PARCELS`` parcels when ``conn`` holds no uncommitted writes (other
    sessions could not see them).
    ``timings`` (optional) receives each rule's seconds (summed over its parts) and the
    scope's set-up (``"scope"``, the slowest connection's).
    """
    rules = rules_for(scope, qa, only)
    if workers is None:
        large = len(rules) > 1 and _scope_size(conn, scope) >= PARALLEL_MIN_PARCELS
        workers = qa.workers if large else 1
    with ExitStack() as stack:
        others: list[psycopg.Connection] = []
        for _ in range(min(workers, len(rules)) - 1):
            other = second_connection(conn)
            if other is None:
                break
            others.append(stack.enter_context(other))
        run = _Run(scope, qa, rules, 1 + len(others), progress,
                   timings if timings is not None else {})
        if not others:
            run.work(conn)
        else:
            with ThreadPoolExecutor(len(others), thread_name_prefix="qa") as pool:
                helpers = [pool.submit(run.work, other, False) for other in others]
                try:
                    run.work(conn)
                except BaseException:
                    run.stop()                # the helpers end after their current jobs
                    wait(helpers)
                    raise
                for helper in helpers:
                    helper.result()
    if progress:
        progress(len(rules), len(rules), "done")
    return run.findings()


def _scope_size(conn: psycopg.Connection, scope: Scope) -> int:
    """Parcels in the scope, estimated cheaply (decides whether a second connection pays)."""
    if scope.is_submission:
        row = conn.execute("SELECT count(*) FROM cad.survey_feature WHERE submission_id = %s "
                           "AND kind = 'parcel'", (scope.submission,)).fetchone()
        return int(row[0]) if row else 0
    if scope.codes:
        return len(scope.codes)
    params = scope.sql_params()
    row = conn.execute("SELECT count(*) FROM cad.parcel WHERE valid_to IS NULL AND "
                       "(%(bbox)s::geometry IS NULL OR geom_3857 && %(bbox)s::geometry)",
                       params).fetchone()
    return int(row[0]) if row else 0


def run_qa(conn: psycopg.Connection, scope: Scope, qa: QaSettings, started_by: str,
           only: Iterable[str] | None = None, progress: Progress | None = None,
           job_id: uuid.UUID | None = None) -> uuid.UUID:
    """Check and store a run with its findings; returns the run id."""
    rules = rules_for(scope, qa, only)
    run_id = uuid.uuid4()
    findings = check(conn, scope, qa, [r.id for r in rules], progress)
    with conn.transaction():
        conn.execute(
            "INSERT INTO cad.qa_run (run_id, scope, rules, job_id, started_by, finished_at) "
            "VALUES (%s, %s, %s, %s, %s, now())",
            (run_id, json.dumps(scope.describe()),
             json.dumps({"rules": {r.id: r.version for r in rules}, "tolerances":
                         qa.tolerances()}), job_id, started_by))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO cad.qa_finding (finding_id, run_id, rule_id, category, severity, "
                "subject, measure, message, geom_3857) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, "
                "ST_SetSRID(%s::geometry, 3857))",
                [(uuid.uuid4(), run_id, f.rule_id, f.category, f.severity, list(f.subject),
                  f.measure, f.message, f.geom_wkb) for f in findings])
    return run_id


def set_status(conn: psycopg.Connection, finding_id: uuid.UUID, status: str, reason: str | None,
               by: str) -> None:
    if status not in ("open", "resolved", "accepted"):
        raise InvalidInput("QA_STATUS", "状态应为 open/resolved/accepted / status must be "
                           "open, resolved or accepted")
    if status == "accepted" and not (reason and reason.strip()):
        raise InvalidInput("QA_REASON_REQUIRED", "接受问题须说明理由 / accepting needs a reason")
    cur = conn.execute(
        "UPDATE cad.qa_finding SET status = %s, status_reason = %s, status_by = %s, "
        "status_at = now() WHERE finding_id = %s", (status, reason, by, finding_id))
    if cur.rowcount == 0:
        raise NotFound("QA_FINDING_NOT_FOUND", "无此问题 / no such finding")


def draw_sample(conn: psycopg.Connection, fraction: float, since: Any, by: str,
                seed: int | None = None) -> tuple[uuid.UUID, list[str]]:
    """A random sample (e.g. 5 %) of registrations since a date, recorded as a review run."""
    rows = [r[0] for r in conn.execute(
        "SELECT business_no FROM cad.right_record WHERE registered_at >= %s AND status IN (1, 2) "
        "ORDER BY business_no", (since,))]
    if not rows:
        raise InvalidInput("QA_SAMPLE_EMPTY", "该期间没有登记业务 / no registrations since then")
    k = max(1, round(len(rows) * fraction))
    picked = sorted(random.Random(seed).sample(rows, k))
    run_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO cad.qa_run (run_id, scope, rules, started_by, finished_at) "
        "VALUES (%s, %s, %s, %s, now())",
        (run_id, json.dumps({"kind": "sample", "since": str(since), "fraction": fraction,
                             "population": len(rows)}),
         json.dumps({"sample": picked}), by))
    return run_id, picked

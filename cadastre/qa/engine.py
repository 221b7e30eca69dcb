"""Run quality rules over a scope; store runs and findings; mark findings; sample for review."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from shapely import wkb

from cadastre.errors import InvalidInput, NotFound
from cadastre.qa.rules import RULES, RULES_BY_ID, Rule
from cadastre.qa.scope import Scope
from cadastre.settings import QaSettings

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


def run_rule(conn: psycopg.Connection, rule: Rule, scope: Scope, qa: QaSettings
             ) -> list[Finding]:
    glue = "" if rule.sql.lstrip().startswith(",") else "\n"
    sql = scope.ctes() + glue + rule.sql
    params = {**scope.sql_params(), **qa.tolerances()}
    rows = conn.execute(sql, params).fetchall()  # type: ignore[arg-type]
    out = []
    for subject, measure, message, geom in rows:
        g = None
        if geom is not None:
            g = bytes.fromhex(geom) if isinstance(geom, str) else bytes(geom)
        out.append(Finding(rule.id, rule.category, rule.severity, tuple(subject or ()),
                           float(measure) if measure is not None else None, message, g))
    return out


def check(conn: psycopg.Connection, scope: Scope, qa: QaSettings,
          only: Iterable[str] | None = None, progress: Progress | None = None) -> list[Finding]:
    """All findings of the enabled rules over the scope (nothing stored)."""
    rules = rules_for(scope, qa, only)
    findings: list[Finding] = []
    for i, rule in enumerate(rules, start=1):
        if progress:
            progress(i - 1, len(rules), rule.id)
        findings.extend(run_rule(conn, rule, scope, qa))
    if progress:
        progress(len(rules), len(rules), "done")
    return findings


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


def finding_geometry(f: Finding) -> Any:
    return wkb.loads(f.geom_wkb) if f.geom_wkb else None

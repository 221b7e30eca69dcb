"""Registration quality rules at 登簿: run over the case's units inside the 登簿's transaction,
after the register was written. A finding of a blocking rule refuses the registration with the
rule's id as its code (the transaction rolls back: nothing is written); the other findings are
recorded as a QA run of the registration (``cad.qa_run`` scope kind ``registration``).
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Sequence
from typing import Any

import psycopg

from cadastre.cases.rules import RuleViolation
from cadastre.qa.registration_rules import BLOCKING, CASE_SQL, REGISTRATION_RULES
from cadastre.settings import QaSettings, get_settings

# process rules (time limits, reporting) are checked over the register, not at 登簿
AT_ENTRY = tuple(r for r in REGISTRATION_RULES if r.category not in ("time_limit", "reporting"))


def check_entry(conn: psycopg.Connection, units: Sequence[str], case_no: str, actor: str,
                qa: QaSettings | None = None) -> list[dict[str, Any]]:
    """Findings of the registration rules on ``units``; raises ``RuleViolation`` for the first
    blocking one, records the others (returned)."""
    qa = qa or get_settings().qa
    params = {**qa.tolerances(), "units": [u.ljust(28) for u in units]}
    rules = tuple(r for r in AT_ENTRY if r.id not in qa.disabled_rules)
    if not rules:
        return []
    # each rule its own prepared statement on its generic plan, all in one round trip: planning
    # them anew costs several times their execution (more so over county partitions), and one
    # UNION of them all gets a generic plan hundreds of times slower than its parts. Not prepared
    # on connections that must not prepare (a transaction-pooling bouncer in between).
    prepare = conn.prepare_threshold is not None
    with conn.pipeline():
        conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursors = [conn.execute(_statement(i, r.id), params, prepare=prepare)
                   for i, r in enumerate(rules)]
        conn.execute("SET LOCAL plan_cache_mode = DEFAULT")
    rows = [row for cur in cursors for row in cur.fetchall()]   # rule order
    found: list[dict[str, Any]] = []
    for i, subject, measure, message in rows:
        rule = rules[i]
        if rule.id in BLOCKING:
            raise RuleViolation(rule.id, f"{rule.title_zh} / {rule.title_en}",
                                rule=rule.id, category=rule.category)
        found.append({"rule": rule.id, "category": rule.category,
                      "severity": rule.severity, "subject": list(subject or ()),
                      "measure": measure, "message": message})
    if found:
        run_id = uuid.uuid4()
        conn.execute(
            "INSERT INTO cad.qa_run (run_id, scope, rules, started_by, finished_at) "
            "VALUES (%s, %s, %s, %s, now())",
            (run_id, json.dumps({"kind": "registration", "case_no": case_no}),
             json.dumps({r.id: r.version for r in AT_ENTRY}), actor))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO cad.qa_finding (finding_id, run_id, rule_id, category, severity, "
                "subject, measure, message) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [(uuid.uuid4(), run_id, f["rule"], f["category"], f["severity"], f["subject"],
                  f["measure"], f["message"]) for f in found])
    return found


@functools.cache
def _statement(pos: int, rule_id: str) -> str:
    """A rule's check, its rows tagged with the rule's position."""
    return (f"SELECT {pos} AS rule_pos, q.subject, q.measure, q.message FROM ({CASE_SQL[rule_id]}) "
            "AS q(subject, measure, message, geom)")

"""Operational metrics in the Prometheus text format: the job queue, the event backlog and its
delivery lag per subscriber, failures, and running cases by light. Counts and ages only."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import psycopg

from cadastre.cases.clock import light_filter_sql


def delivery_counts(conn: psycopg.Connection, subscription_id: uuid.UUID) -> dict[str, int]:
    rows = conn.execute("SELECT status, count(*) FROM share.delivery WHERE subscription_id = %s "
                        "GROUP BY status", (subscription_id,)).fetchall()
    return {status: int(n) for status, n in rows}


def _line(name: str, value: float | int | None, labels: dict[str, str] | None = None) -> str:
    lab = ""
    if labels:
        lab = "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
    return f"{name}{lab} {0 if value is None else value}"


def _block(name: str, kind: str, help_text: str, lines: Iterable[str]) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *lines]


def prometheus(conn: psycopg.Connection) -> str:
    out: list[str] = []
    jobs = conn.execute("SELECT kind, status, count(*) FROM cad.job "
                        "WHERE status IN ('queued', 'running') GROUP BY 1, 2").fetchall()
    out += _block("cadastre_jobs", "gauge", "Background jobs waiting or running.",
                  [_line("cadastre_jobs", n, {"kind": k, "status": s}) for k, s, n in jobs]
                  or [_line("cadastre_jobs", 0, {"status": "queued"})])
    failed = conn.execute("SELECT count(*) FROM cad.job WHERE status = 'failed' AND "
                          "updated_at > now() - interval '1 day'").fetchone()
    out += _block("cadastre_jobs_failed_24h", "gauge", "Jobs failed in the last 24 hours.",
                  [_line("cadastre_jobs_failed_24h", failed[0] if failed else 0)])
    last = conn.execute("SELECT coalesce(max(event_id), 0) FROM share.event").fetchone()
    out += _block("cadastre_events_last_id", "counter", "Id of the newest event (outbox).",
                  [_line("cadastre_events_last_id", last[0] if last else 0)])
    subs = conn.execute("""
        SELECT s.name, s.status,
               count(d.id) FILTER (WHERE d.status = 'pending') AS pending,
               count(d.id) FILTER (WHERE d.status = 'dead') AS dead,
               count(d.id) FILTER (WHERE d.status = 'delivered') AS delivered,
               coalesce(sum(greatest(d.attempts - 1, 0)) FILTER (WHERE d.attempts > 1), 0)
                   AS retries,
               extract(epoch FROM now() - min(e.occurred_at) FILTER (WHERE d.status = 'pending'))
                   AS lag,
               (SELECT coalesce(max(event_id), 0) FROM share.event) - s.last_event_id AS unfanned
        FROM share.subscription s
        LEFT JOIN share.delivery d ON d.subscription_id = s.subscription_id
        LEFT JOIN share.event e ON e.event_id = d.event_id
        GROUP BY s.subscription_id ORDER BY s.name""").fetchall()
    for metric, idx, kind, text in (
            ("cadastre_deliveries_pending", 2, "gauge", "Events waiting for a subscriber."),
            ("cadastre_deliveries_dead", 3, "gauge", "Dead letters per subscriber."),
            ("cadastre_deliveries_delivered", 4, "counter", "Events delivered per subscriber."),
            ("cadastre_delivery_retries", 5, "counter", "Failed attempts before success or "
             "dead letter, per subscriber."),
            ("cadastre_delivery_lag_seconds", 6, "gauge", "Age of the oldest undelivered event "
             "per subscriber."),
            ("cadastre_events_not_fanned_out", 7, "gauge", "Events not yet considered for a "
             "subscriber.")):
        out += _block(metric, kind, text, [_line(metric, round(float(r[idx] or 0), 3),
                                                 {"subscription": r[0], "status": r[1]})
                                           for r in subs])
    lights = conn.execute(
        "SELECT " + ", ".join(f"count(*) FILTER (WHERE {light_filter_sql(x, 'c', 'now()')})"
                              for x in ("green", "yellow", "red")) +
        " FROM reg.case c WHERE c.registered_at IS NULL AND c.closed_at IS NULL "
        "AND c.clock_from IS NOT NULL").fetchone()
    out += _block("cadastre_cases_running", "gauge", "Running registration cases by light.",
                  [_line("cadastre_cases_running", n, {"light": x})
                   for x, n in zip(("green", "yellow", "red"), lights or (0, 0, 0), strict=True)])
    return "\n".join(out) + "\n"

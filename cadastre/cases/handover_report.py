"""What a 交房即交证 batch has done: totals, progress per building, and the units that were not
handed over with the rule's code and message (unit codes only, never a person). Read by the
API, the CLI's progress display and the viewer.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row

from cadastre.errors import NotFound
from cadastre.jobs import get_job

MAX_FAILURES = 500

_BATCH = """
SELECT batch_id, project, parcel_codes, county_code, job_id, status, error_code, created_by,
       created_at, finished_at
FROM reg.handover_batch WHERE batch_id = %s
"""

_BUILDINGS = """
SELECT i.building_code, coalesce(b.name, i.building_code) AS name, count(*) AS units,
       count(*) FILTER (WHERE i.status = 'done') AS done,
       count(*) FILTER (WHERE i.status = 'failed') AS failed,
       count(*) FILTER (WHERE i.status = 'pending') AS pending
FROM reg.handover_item i
LEFT JOIN cad.building_current b ON b.building_code = i.building_code
WHERE i.batch_id = %s
GROUP BY i.building_code, b.name ORDER BY i.building_code
"""

_FAILURES = """
SELECT unit_code, building_code, error_code, error, updated_at
FROM reg.handover_item WHERE batch_id = %s AND status = 'failed'
ORDER BY unit_code LIMIT %s
"""


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.strip() if isinstance(v, str) and k.endswith("_code") else
                str(v) if isinstance(v, uuid.UUID) else v) for k, v in row.items()}


def batch_status(conn: psycopg.Connection, batch_id: uuid.UUID,
                 counties: Sequence[str] = ()) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    batch = cur.execute(_BATCH, (batch_id,)).fetchone()
    if batch is None or (counties and batch["county_code"] not in counties):
        raise NotFound("BATCH_NOT_FOUND", "无此批量办理 / no such handover batch")
    out = _clean(batch)
    out["parcel_codes"] = [p.strip() for p in batch["parcel_codes"]]
    out.pop("county_code")
    buildings = [_clean(r) for r in cur.execute(_BUILDINGS, (batch_id,))]
    out["buildings"] = buildings
    out["totals"] = {k: sum(b[k] for b in buildings)
                     for k in ("units", "done", "failed", "pending")}
    out["failures"] = [_clean(r) for r in cur.execute(_FAILURES, (batch_id, MAX_FAILURES))]
    job_id = out.pop("job_id")
    out["job"] = get_job(conn, uuid.UUID(job_id)).as_dict() if job_id else None
    out["links"] = {"self": f"/api/v1/handover-batches/{batch_id}"}
    return out


def recent_batches(conn: psycopg.Connection, counties: Sequence[str] = (), limit: int = 20
                   ) -> list[dict[str, Any]]:
    rows = conn.cursor(row_factory=dict_row).execute(
        "SELECT batch_id, project, status, created_at, finished_at FROM reg.handover_batch "
        "WHERE (%(c)s::text[] IS NULL OR county_code = ANY(%(c)s::text[])) "
        "ORDER BY created_at DESC LIMIT %(n)s",
        {"c": list(counties) or None, "n": limit}).fetchall()
    return [{**_clean(r), "links": {"self": f"/api/v1/handover-batches/{r['batch_id']}"}}
            for r in rows]

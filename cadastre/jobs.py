"""Background jobs with progress that the API and CLI can read while the job runs.

Progress is written through its own autocommit connection, so it is visible even while the job's
main work sits in an uncommitted transaction.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from cadastre.errors import CadastreError, NotFound
from cadastre.store.db import connect

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobState:
    job_id: uuid.UUID
    kind: str
    status: str
    progress: float
    step: str | None
    error_code: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"job_id": str(self.job_id), "kind": self.kind, "status": self.status,
                "progress": round(self.progress, 4), "step": self.step,
                "error": {"code": self.error_code, "message": self.error}
                if self.error_code else None,
                "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat()}


def create_job(conn: psycopg.Connection, kind: str, created_by: str) -> uuid.UUID:
    job_id = uuid.uuid4()
    conn.execute("INSERT INTO cad.job (job_id, kind, status, created_by) VALUES "
                 "(%s, %s, 'queued', %s)", (job_id, kind, created_by))
    return job_id


def get_job(conn: psycopg.Connection, job_id: uuid.UUID) -> JobState:
    row = conn.execute("SELECT job_id, kind, status, progress, step, error_code, error, "
                       "created_at, updated_at FROM cad.job WHERE job_id = %s",
                       (job_id,)).fetchone()
    if row is None:
        raise NotFound("JOB_NOT_FOUND", "无此任务 / no such job")
    return JobState(*row)


class JobTracker:
    """Context manager around a job's work: running → done, or failed with the error's code."""

    def __init__(self, url: str, job_id: uuid.UUID) -> None:
        self.url = url
        self.job_id = job_id
        self._conn: psycopg.Connection | None = None

    def __enter__(self) -> JobTracker:
        self._conn = connect(self.url, autocommit=True)
        self._conn.execute("UPDATE cad.job SET status = 'running', updated_at = now() "
                           "WHERE job_id = %s", (self.job_id,))
        return self

    def update(self, progress: float, step: str) -> None:
        assert self._conn is not None
        self._conn.execute("UPDATE cad.job SET progress = %s, step = %s, updated_at = now() "
                           "WHERE job_id = %s", (max(0.0, min(1.0, progress)), step, self.job_id))

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        assert self._conn is not None
        try:
            if exc is None:
                self._conn.execute("UPDATE cad.job SET status = 'done', progress = 1, "
                                   "updated_at = now() WHERE job_id = %s", (self.job_id,))
            else:
                code = exc.code if isinstance(exc, CadastreError) else "INTERNAL_ERROR"
                message = (exc.message if isinstance(exc, CadastreError)
                           else "内部错误 / internal error")
                if not isinstance(exc, CadastreError):
                    log.exception("job %s failed", self.job_id, exc_info=exc)
                self._conn.execute("UPDATE cad.job SET status = 'failed', error_code = %s, "
                                   "error = %s, updated_at = now() WHERE job_id = %s",
                                   (code, message, self.job_id))
        finally:
            self._conn.close()

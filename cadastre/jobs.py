"""Background jobs in PostgreSQL: a durable queue with progress that the API and CLI can read.

A job is a row of ``cad.job`` (kind, JSON payload, status, progress). ``enqueue`` writes it in
the caller's transaction (so a survey submission and its validation job exist together or not at
all) and wakes the workers (NOTIFY). Workers — threads inside ``cadastre serve`` and separate
``cadastre worker`` processes — claim jobs with ``SELECT … FOR UPDATE SKIP LOCKED`` and hold a
lease that a heartbeat renews. A worker that dies leaves an expired lease: ``recover`` (run by
every worker at start and then periodically) puts the job back in the queue while attempts
remain, else marks it failed with ``JOB_INTERRUPTED``. Never "running" for ever.

Why not a queue library: the jobs need progress rows the API already serves, enqueueing in the
same transaction as the domain row, and a handful of kinds; a lease + SKIP LOCKED is the whole
mechanism (about 150 lines), without a second schema or worker model to operate.

Progress is written through its own autocommit connection, so it is visible even while the job's
main work sits in an uncommitted transaction.
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from cadastre.errors import CadastreError, NotFound
from cadastre.store.db import connect

log = logging.getLogger(__name__)
LEASE_SECONDS = 60          # a worker that stops renewing its lease for this long is gone
CHANNEL = "job_queued"


def configure(lease_seconds: int) -> None:
    """The lease length of this process's workers and trackers (settings: job_lease_seconds)."""
    global LEASE_SECONDS
    LEASE_SECONDS = lease_seconds


def _heartbeat_seconds() -> float:
    return max(0.5, LEASE_SECONDS / 4)


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
    attempts: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"job_id": str(self.job_id), "kind": self.kind, "status": self.status,
                "progress": round(self.progress, 4), "step": self.step,
                "error": {"code": self.error_code, "message": self.error}
                if self.error_code else None, "attempts": self.attempts,
                "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat()}


def create_job(conn: psycopg.Connection, kind: str, created_by: str,
               payload: Mapping[str, Any] | None = None, max_attempts: int = 3,
               run_here: str | None = None) -> uuid.UUID:
    """A job in the queue (in the caller's transaction); workers see it at commit.

    ``run_here``: the caller runs it itself (a CLI with a progress bar) and holds its lease under
    this name; should the caller die, the lease expires and a worker takes the job over."""
    job_id = uuid.uuid4()
    if run_here is None:
        conn.execute("INSERT INTO cad.job (job_id, kind, status, created_by, payload, "
                     "max_attempts) VALUES (%s, %s, 'queued', %s, %s, %s)",
                     (job_id, kind, created_by, Jsonb(dict(payload or {})), max_attempts))
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, kind))
    else:
        conn.execute("INSERT INTO cad.job (job_id, kind, status, created_by, payload, "
                     "max_attempts, attempts, leased_by, lease_until) VALUES (%s, %s, "
                     "'running', %s, %s, %s, 1, %s, now() + make_interval(secs => %s))",
                     (job_id, kind, created_by, Jsonb(dict(payload or {})), max_attempts,
                      run_here, LEASE_SECONDS))
    return job_id


def set_payload(conn: psycopg.Connection, job_id: uuid.UUID, payload: Mapping[str, Any]) -> None:
    """The job's payload, once the rows it names exist (same transaction as ``create_job``)."""
    conn.execute("UPDATE cad.job SET payload = %s WHERE job_id = %s",
                 (Jsonb(dict(payload)), job_id))


def get_job(conn: psycopg.Connection, job_id: uuid.UUID) -> JobState:
    row = conn.execute("SELECT job_id, kind, status, progress, step, error_code, error, "
                       "created_at, updated_at, attempts FROM cad.job WHERE job_id = %s",
                       (job_id,)).fetchone()
    if row is None:
        raise NotFound("JOB_NOT_FOUND", "无此任务 / no such job")
    return JobState(*row)


class JobTracker:
    """Context manager around a job's work: running → done, or failed with the error's code.
    ``update`` reports progress (and renews the lease)."""

    def __init__(self, url: str, job_id: uuid.UUID) -> None:
        self.url = url
        self.job_id = job_id
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> JobTracker:
        self._conn = connect(self.url, autocommit=True)
        self._conn.execute("UPDATE cad.job SET status = 'running', updated_at = now() "
                           "WHERE job_id = %s", (self.job_id,))
        return self

    def update(self, progress: float, step: str) -> None:
        assert self._conn is not None
        with self._lock:
            self._conn.execute(
                "UPDATE cad.job SET progress = %s, step = %s, updated_at = now(), "
                "lease_until = now() + make_interval(secs => %s) WHERE job_id = %s",
                (max(0.0, min(1.0, progress)), step, LEASE_SECONDS, self.job_id))

    def heartbeat(self) -> None:
        assert self._conn is not None
        with self._lock:
            self._conn.execute("UPDATE cad.job SET lease_until = now() + make_interval(secs => "
                               "%s) WHERE job_id = %s AND status = 'running'",
                               (LEASE_SECONDS, self.job_id))

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        assert self._conn is not None
        try:
            with self._lock:
                if exc is None:
                    self._conn.execute(
                        "UPDATE cad.job SET status = 'done', progress = 1, updated_at = now(), "
                        "finished_at = now(), leased_by = NULL WHERE job_id = %s",
                        (self.job_id,))
                else:
                    code = exc.code if isinstance(exc, CadastreError) else "INTERNAL_ERROR"
                    message = (exc.message if isinstance(exc, CadastreError)
                               else "内部错误 / internal error")
                    if not isinstance(exc, CadastreError):
                        log.exception("job %s failed", self.job_id, exc_info=exc)
                    self._conn.execute(
                        "UPDATE cad.job SET status = 'failed', error_code = %s, error = %s, "
                        "updated_at = now(), finished_at = now(), leased_by = NULL "
                        "WHERE job_id = %s", (code, message, self.job_id))
        finally:
            self._conn.close()


# ------------------------------------------------------------------ the queue
@dataclass(frozen=True)
class ClaimedJob:
    job_id: uuid.UUID
    kind: str
    payload: dict[str, Any]
    attempts: int


Handler = Callable[[ClaimedJob], None]

_CLAIM = """
UPDATE cad.job j SET status = 'running', leased_by = %(worker)s, attempts = j.attempts + 1,
       lease_until = now() + make_interval(secs => %(lease)s), updated_at = now()
WHERE j.job_id = (
    SELECT job_id FROM cad.job
    WHERE status = 'queued' AND run_after <= now() AND kind = ANY(%(kinds)s)
    ORDER BY run_after, created_at
    FOR UPDATE SKIP LOCKED LIMIT 1)
RETURNING j.job_id, j.kind, j.payload, j.attempts
"""

_RECOVER = """
UPDATE cad.job SET
    status = CASE WHEN attempts < max_attempts THEN 'queued' ELSE 'failed' END,
    error_code = CASE WHEN attempts < max_attempts THEN error_code ELSE 'JOB_INTERRUPTED' END,
    error = CASE WHEN attempts < max_attempts THEN error
                 ELSE '任务执行中断（进程退出），重试次数已用完 / the worker running the job '
                      'stopped and no attempts are left' END,
    step = CASE WHEN attempts < max_attempts THEN 'requeued after an interrupted attempt'
                ELSE step END,
    run_after = now(), leased_by = NULL, lease_until = NULL, updated_at = now(),
    finished_at = CASE WHEN attempts < max_attempts THEN NULL ELSE now() END
WHERE status = 'running' AND (lease_until IS NULL OR lease_until < now())
RETURNING job_id, status
"""


def claim(conn: psycopg.Connection, worker: str, kinds: list[str]) -> ClaimedJob | None:
    row = conn.execute(_CLAIM, {"worker": worker, "lease": LEASE_SECONDS, "kinds": kinds}
                       ).fetchone()
    return ClaimedJob(row[0], row[1], dict(row[2]), row[3]) if row else None


def recover(conn: psycopg.Connection) -> list[tuple[uuid.UUID, str]]:
    """Jobs whose worker stopped (lease expired): back to the queue, or failed with a reason."""
    rows = conn.execute(_RECOVER).fetchall()
    for job_id, status in rows:
        log.warning("job %s: interrupted attempt, now %s", job_id, status)
    return [(r[0], r[1]) for r in rows]


class Worker:
    """Runs queued jobs of the kinds in ``handlers`` one at a time, until ``stop``."""

    def __init__(self, url: str, handlers: Mapping[str, Handler], name: str | None = None,
                 poll_seconds: float = 5.0) -> None:
        self.url = url
        self.handlers = dict(handlers)
        self.name = name or f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
        self.poll = poll_seconds
        self.stopping = threading.Event()

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        kinds = sorted(self.handlers)
        while not self.stopping.is_set():
            try:
                with connect(self.url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    recover(conn)
                    while not self.stopping.is_set():
                        job = claim(conn, self.name, kinds)
                        if job is not None:
                            self._run(job)
                            continue
                        recover(conn)
                        for _ in conn.notifies(timeout=self.poll, stop_after=1):
                            pass
            except psycopg.Error:
                log.exception("job worker %s: database error, retrying", self.name)
                self.stopping.wait(5.0)

    def _run(self, job: ClaimedJob) -> None:
        """Run one claimed job; its handler tracks progress and outcome (``JobTracker``), the
        worker renews the lease meanwhile and fails the job if the handler left it running."""
        done = threading.Event()

        def heartbeat() -> None:
            try:
                with connect(self.url, autocommit=True) as conn:
                    while not done.wait(_heartbeat_seconds()):
                        conn.execute("UPDATE cad.job SET lease_until = now() + make_interval("
                                     "secs => %s) WHERE job_id = %s AND status = 'running'",
                                     (LEASE_SECONDS, job.job_id))
            except psycopg.Error:
                log.warning("job %s: heartbeat stopped", job.job_id)

        pulse = threading.Thread(target=heartbeat, daemon=True, name=f"lease-{job.job_id}")
        pulse.start()
        try:
            self.handlers[job.kind](job)
        except Exception as exc:
            if not isinstance(exc, CadastreError):
                log.exception("job %s (%s) failed", job.job_id, job.kind)
            _fail_if_running(self.url, job.job_id, exc)
        finally:
            done.set()
            pulse.join(timeout=5)


def _fail_if_running(url: str, job_id: uuid.UUID, exc: Exception) -> None:
    code = exc.code if isinstance(exc, CadastreError) else "INTERNAL_ERROR"
    message = exc.message if isinstance(exc, CadastreError) else "内部错误 / internal error"
    with connect(url, autocommit=True) as conn:
        conn.execute("UPDATE cad.job SET status = 'failed', error_code = %s, error = %s, "
                     "updated_at = now(), finished_at = now(), leased_by = NULL "
                     "WHERE job_id = %s AND status = 'running'", (code, message, job_id))

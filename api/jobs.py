"""The kinds of background job and the workers that run them.

Each kind reads what it needs from the job's payload (ids, options; never personal data), so any
worker — a thread of ``cadastre serve`` or a ``cadastre worker`` process — can run it, and run it
again after an interrupted attempt. Outbox delivery (``cadastre.sharing``) runs beside them.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

from cadastre.jobs import ClaimedJob, Handler, JobTracker, Worker, configure
from cadastre.qa.engine import run_qa
from cadastre.qa.report import scope_from_options
from cadastre.settings import Settings
from cadastre.store.db import connect
from cadastre.survey.submission import validate_submission


def handlers(settings: Settings, url: str) -> dict[str, Handler]:
    def survey_validation(job: ClaimedJob) -> None:
        validate_submission(url, uuid.UUID(job.payload["submission_id"]), settings.qa,
                            job.job_id)

    def qa_run(job: ClaimedJob) -> None:
        p = job.payload
        scope = scope_from_options(p.get("bbox"), p.get("parcels"))
        with JobTracker(url, job.job_id) as tracker, connect(url) as conn:
            run_qa(conn, scope, settings.qa, p.get("actor", "worker"), only=p.get("rules"),
                   job_id=job.job_id,
                   progress=lambda i, n, r: tracker.update(i / max(n, 1), r))
            conn.commit()

    def build_3d(job: ClaimedJob) -> None:
        from tiles.threed.build import build_dataset
        from tiles.threed.compress import Compression

        p = job.payload
        with JobTracker(url, job.job_id) as tracker:
            def progress(done: int, total: int, current: str) -> None:
                tracker.update(done / max(total, 1), Path(current).name[-60:])

            compression = Compression(p.get("compress") or "none", p.get("texture_quality"))
            build_dataset(settings.data_dir, Path(p["source"]), p["name"], srs=p.get("srs"),
                          origin=p.get("origin"), replace=bool(p.get("replace")),
                          progress=progress, workers=1, compression=compression,
                          height_datum=p.get("height_datum"))

    def unit_volumes(job: ClaimedJob) -> None:
        """Rebuild the 3D unit volumes after units changed (an accepted survey)."""
        from tiles.threed.registry import list_datasets
        from tiles.threed.unit_tiles import publish_unit_volumes

        with JobTracker(url, job.job_id) as tracker, connect(url) as conn:
            sets = [d for d in list_datasets(settings.data_dir) if d.kind == "units"]
            for i, ds in enumerate(sets):
                def progress(done: int, total: int, what: str, i: int = i,
                             name: str = ds.name) -> None:
                    share = (done / total) if total else 1.0
                    tracker.update((i + share) / max(len(sets), 1), f"{name}: {what}")

                # incremental: only the buildings whose units changed, then their cells
                publish_unit_volumes(conn, settings.data_dir, ds.name, progress=progress)

    def handover_batch(job: ClaimedJob) -> None:
        """交房即交证: a project's units handed over (resumes after an interrupted attempt)."""
        from cadastre.access.pii import audit_key, load_cipher
        from cadastre.cases import handover
        from cadastre.cases.workflow import Keys

        batch_id = uuid.UUID(job.payload["batch_id"])
        keys = Keys(load_cipher(settings), audit_key(settings))
        with JobTracker(url, job.job_id) as tracker:
            try:
                handover.run_batch(url, settings.cases, keys, batch_id,
                                   handover.actor_of(job.payload), progress=tracker.update)
            except Exception as exc:
                handover.fail_batch(url, batch_id, getattr(exc, "code", "INTERNAL_ERROR"))
                raise

    def exchange_import(job: ClaimedJob) -> None:
        """An exchange import batch read, staged and checked (nothing written to the register)."""
        from cadastre.access.pii import load_cipher
        from cadastre.exchange.staging import validate_batch

        validate_batch(url, uuid.UUID(job.payload["batch_id"]), load_cipher(settings),
                       job.job_id)

    return {"survey_validation": survey_validation, "qa_run": qa_run, "3d_build": build_3d,
            "unit_volumes": unit_volumes, "handover_batch": handover_batch,
            "exchange_import": exchange_import}


class WorkerThreads:
    """``n`` queue workers in threads of this process (``cadastre serve``)."""

    def __init__(self, settings: Settings, url: str, n: int) -> None:
        configure(settings.api.job_lease_seconds)
        self.workers = [Worker(url, handlers(settings, url)) for _ in range(n)]
        self.threads = [threading.Thread(target=w.run, daemon=True, name=f"job-worker-{i}")
                        for i, w in enumerate(self.workers)]

    def start(self) -> WorkerThreads:
        for t in self.threads:
            t.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        for w in self.workers:
            w.stop()
        for t in self.threads:
            t.join(timeout)

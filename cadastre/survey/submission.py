"""Survey submissions: immutable storage of the upload, staging, validation and its report.

Nothing here touches the registry tables: a submission only reaches them through
``cadastre.survey.apply.accept`` after a registrar's decision.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from queue import Queue
from typing import Any

import numpy as np
import psycopg
import shapely
from psycopg.adapt import Dumper
from psycopg.pq import Format

from cadastre.errors import InvalidInput, NotFound
from cadastre.ingest.checks import check_all_ranges, ensure_not_empty, finalize
from cadastre.ingest.ogr import BATCH_ROWS
from cadastre.jobs import JobTracker
from cadastre.qa.engine import check, second_connection
from cadastre.qa.scope import Scope
from cadastre.settings import QaSettings
from cadastre.store.db import connect, scalar

# the file store moved to cadastre.store.uploads (documents use it too); names kept here
from cadastre.store.uploads import MAX_UPLOAD_BYTES as MAX_UPLOAD_BYTES
from cadastre.store.uploads import StoredUpload
from cadastre.store.uploads import store_upload as store_upload
from cadastre.survey.acceptability import acceptance_issues
from cadastre.survey.options import SubmissionOptions
from cadastre.survey.placement import place_on_building
from cadastre.survey.report import (
    counts,
    feature_areas,
    reader_issues,
    with_advice,
    wkb_to_lonlat,
)


class DuplicateSubmission(InvalidInput):
    code = "DUPLICATE_SUBMISSION"


def create_submission(conn: psycopg.Connection, upload: StoredUpload, filename: str,
                      submitted_by: str, job_id: uuid.UUID, srid: int | None = None,
                      options: SubmissionOptions | None = None) -> uuid.UUID:
    existing = conn.execute(
        "SELECT submission_id, status FROM cad.survey_submission WHERE content_sha256 = %s "
        "AND status NOT IN ('rejected', 'failed', 'invalid')", (upload.sha256,)).fetchone()
    if existing:
        raise DuplicateSubmission(
            message=f"该文件已提交（{existing[1]}）/ this file was already submitted "
                    f"({existing[1]}): {existing[0]}", submission=str(existing[0]))
    sid = uuid.uuid4()
    conn.execute(
        "INSERT INTO cad.survey_submission (submission_id, filename, content_sha256, size_bytes,"
        " stored_path, srid, status, job_id, submitted_by, options) VALUES (%s, %s, %s, %s, %s, "
        "%s, 'received', %s, %s, %s)",
        (sid, Path(filename).name[:200], upload.sha256, upload.size, str(upload.path), srid,
         job_id, submitted_by, json.dumps((options or SubmissionOptions()).as_dict(),
                                          ensure_ascii=False)))
    return sid


def get_submission(conn: psycopg.Connection, sid: uuid.UUID) -> dict[str, Any]:
    row = conn.execute(
        "SELECT submission_id, filename, content_sha256, size_bytes, format, srid, status, "
        "job_id, submitted_by, submitted_at, error_count, warning_count, decided_by, "
        "decided_at, decision_reason, change_id, options FROM cad.survey_submission "
        "WHERE submission_id = %s", (sid,)).fetchone()
    if row is None:
        raise NotFound("SUBMISSION_NOT_FOUND", "无此提交 / no such survey submission")
    keys = ("submission_id", "filename", "sha256", "size_bytes", "format", "srid", "status",
            "job_id", "submitted_by", "submitted_at", "error_count", "warning_count",
            "decided_by", "decided_at", "decision_reason", "change_id", "options")
    return {k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in zip(keys, row,
                                                                          strict=True)}


Progress = Callable[[float, str], None]


def validate_submission(url: str, sid: uuid.UUID, qa: QaSettings, job_id: uuid.UUID,
                        progress: Progress | None = None,
                        timings: dict[str, float] | None = None) -> dict[str, Any]:
    """Read, stage and check a submission; store and return its report.

    ``timings`` (optional) receives the seconds of each stage: ``read`` (parse and normalise),
    ``stage`` (until every feature is in cad.survey_feature), ``checks`` (the readers' common
    feature checks), ``rules`` (with every rule's own under ``rule:<id>``) and ``report``."""
    from cadastre.ingest import SurveyFormatError, read_survey

    clock = [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        if timings is not None:
            timings[name] = now - clock[0]
        clock[0] = now

    with JobTracker(url, job_id) as job, connect(url) as conn:
        def step(p: float, what: str) -> None:
            job.update(p, what)
            if progress:
                progress(p, what)

        sub = get_submission(conn, sid)
        # a retried job (its worker stopped) starts over: what an earlier attempt staged goes
        conn.execute("DELETE FROM cad.survey_feature WHERE submission_id = %s", (sid,))
        conn.execute("UPDATE cad.survey_submission SET status = 'validating' "
                     "WHERE submission_id = %s", (sid,))
        conn.commit()
        step(0.05, "reading")
        stored_path = scalar(conn, "SELECT stored_path FROM cad.survey_submission WHERE "
                             "submission_id = %s", (sid,))
        options = SubmissionOptions.from_dict(sub["options"])

        def unreadable(exc: SurveyFormatError) -> dict[str, Any]:
            report: dict[str, Any] = {"submission": str(sid), "status": "invalid", "format": None,
                      "errors": with_advice([{"code": exc.code, "message": exc.message,
                                              "subject": [], "location": None}]),
                      "warnings": [], "counts": {}, "options": options.as_dict(),
                      "mapping": exc.details.get("field_reports") or [],
                      "placement": exc.details.get("placement")}
            _finish(conn, sid, report, None, None, "invalid")
            step(1.0, "done")
            return report

        stager = _Stager(conn, sid)       # stores features while the rest is read
        try:
            # a local plan is read whole, placed on its building, then staged
            data = read_survey(Path(stored_path), srid=sub["srid"], filename=sub["filename"],
                               options=options.reader_options(), checks=False,
                               on_features=None if options.anchor else stager.feed)
            if options.anchor is not None:
                data.metadata["placement"] = place_on_building(conn, data, options.anchor)
        except SurveyFormatError as exc:
            stager.abort()
            return unreadable(exc)
        except BaseException:
            stager.abort()
            raise
        lap("read")
        step(0.3, "staging")
        try:
            ensure_not_empty(data)            # (before its CRS is asked for)
            stager.finish(data)               # (range-checks what was not streamed)
        except SurveyFormatError as exc:
            stager.abort()
            return unreadable(exc)
        lap("stage")
        step(0.35, "checking features")
        finalize(data, ranges=False)  # codes, duplicates, validity (after staging: timed apart)
        lap("checks")
        step(0.4, "checking")
        issues = reader_issues(data)    # includes PARCEL_CODE_INVALID / UNIT_CODE_INVALID
        scope = Scope("submission", submission=sid)

        def qa_progress(i: int, n: int, rule: str) -> None:
            step(0.45 + 0.5 * (i / max(n, 1)), f"rule {rule}")

        rule_times: dict[str, float] = {}
        findings = check(conn, scope, qa, progress=qa_progress, timings=rule_times)
        lap("rules")
        if timings is not None:
            timings.update({f"rule:{k}": v for k, v in rule_times.items()})
        for f in findings:
            issues.append({"code": f.rule_id, "severity": f.severity, "message": f.message,
                           "subject": list(f.subject), "measure": f.measure,
                           "geometry": wkb_to_lonlat(f.geom_wkb)})
        step(0.96, "checking acceptance")
        issues += acceptance_issues(conn, sid, options.new_parcels)[0]   # what accept needs
        issues = with_advice(issues)
        errors = [i for i in issues if i["severity"] == "error"]
        warnings = [i for i in issues if i["severity"] != "error"]
        status = "invalid" if errors else "validated"
        report = {"submission": str(sid), "format": data.format, "srid": data.srid,
                  "counts": counts(data), "errors": errors, "warnings": warnings,
                  "status": status, "options": options.as_dict(),
                  "placement": data.metadata.get("placement"),
                  "mapping": data.metadata.get("field_reports") or [],
                  "areas": feature_areas(conn, sid, data.srid)}
        _finish(conn, sid, report, data.format, data.srid, status)
        lap("report")
        step(1.0, "done")
        return report


def _finish(conn: psycopg.Connection, sid: uuid.UUID, report: dict[str, Any], fmt: str | None,
            srid: int | None, status: str) -> None:
    conn.execute(
        "UPDATE cad.survey_submission SET status = %s, report = %s, format = %s, "
        "srid = coalesce(%s, srid), error_count = %s, warning_count = %s WHERE submission_id = %s",
        (status, json.dumps(report, ensure_ascii=False), fmt, srid, len(report["errors"]),
         len(report["warnings"]), sid))
    conn.commit()


def _binary_dumpers(cur: psycopg.Cursor[Any]) -> list[int | str]:
    """Column types of the staging COPY in binary format: geometry as EWKB bytes as they are
    (PostGIS reads WKB for binary input), props as JSON text already encoded (jsonb version 1)."""
    geometry = cur.execute("SELECT 'geometry'::regtype::oid").fetchone()[0]  # type: ignore[index]
    jsonb = cur.adapters.types["jsonb"].oid

    class Ewkb(Dumper):
        format = Format.BINARY
        oid = geometry

        def dump(self, obj: Any) -> bytes:
            return bytes(obj)

    class JsonText(Dumper):
        format = Format.BINARY
        oid = jsonb

        def dump(self, obj: Any) -> bytes:
            return b"\x01" + obj.encode()

    cur.adapters.register_dumper(None, Ewkb)      # by oid only: for this COPY's columns
    cur.adapters.register_dumper(None, JsonText)
    return ["uuid", "int4", "text", "text", jsonb, "int4", geometry]


class _Stager:
    """Writes a submission's features to cad.survey_feature with binary COPY while the file is
    still being read: ``feed`` (the reader's ``on_features``) queues batches, one or two
    connections copy them at once, ``finish`` adds what was not streamed and commits both, or
    ``abort`` rolls everything back. Refs are made unique the way the whole submission needs:
    a ref that occurs more than once gets its feature index appended (``"<ref> #<idx>"``).

    While staging runs, ``conn`` belongs to the stager's thread."""

    #: a second connection copies too when the first batch has this many features
    SECOND_STREAM_FEATURES = 10_000

    def __init__(self, conn: psycopg.Connection, sid: uuid.UUID) -> None:
        self.conn, self.sid = conn, sid
        self._reset()

    def _reset(self) -> None:
        self.queue: Queue[tuple[int, list[Any], int] | None] = Queue()
        self.streams: list[tuple[psycopg.Connection, Future[None]]] = []
        self.pool = ThreadPoolExecutor(2, thread_name_prefix="stage")
        self.fed = 0              # features queued, all with indices < fed
        self.srids: set[int] = set()
        self.refs: list[str] = []
        self.aborting = False

    def feed(self, first: int, feats: list[Any], srid: int) -> None:
        if first != self.fed:     # not the next features: leave it all to ``finish``
            return
        # coordinates PostGIS could not even project are refused before they are sent (as
        # the whole file's check would: batches come in order, so the first bad feature of
        # the first bad batch is the file's first)
        check_all_ranges(feats, srid)
        if not self.streams:      # ``conn`` is still ours here: clear, commit, hand it over
            self.conn.execute("DELETE FROM cad.survey_feature WHERE submission_id = %s",
                              (self.sid,))
            self.conn.commit()
            other = (second_connection(self.conn)
                     if len(feats) >= self.SECOND_STREAM_FEATURES else None)
            self._start(self.conn)
            if other is not None:
                self._start(other)
        self.srids.add(srid)
        self.refs.extend(f.ref[:300] for f in feats)
        self.fed += len(feats)
        self.queue.put((first, feats, srid))

    def finish(self, data: Any) -> None:
        """Stage whatever was not streamed, fix duplicate refs, commit."""
        if data.srid is None:
            self.abort()
            raise InvalidInput("CRS_UNKNOWN", "无法确定坐标系 / the survey's coordinate "
                               "system is unknown; give its EPSG code")
        if self.srids - {data.srid}:      # (cannot happen; but then start over)
            self.abort()
            self._reset()
        rest = data.features[self.fed:]
        for lo in range(0, len(rest), BATCH_ROWS):
            self.feed(self.fed, rest[lo:lo + BATCH_ROWS], data.srid)
        if not self.streams:              # no features at all
            self.conn.execute("DELETE FROM cad.survey_feature WHERE submission_id = %s",
                              (self.sid,))
        try:
            self._close()
        except BaseException:
            self.abort()
            raise
        for other, _ in self.streams[1:]:     # (so that ``conn`` sees their rows)
            other.commit()
            other.close()
        seen = Counter(self.refs)
        twice = [i for i, r in enumerate(self.refs) if seen[r] > 1]
        if twice:
            self.conn.execute("UPDATE cad.survey_feature SET ref = ref || ' #' || idx "
                              "WHERE submission_id = %s AND idx = ANY(%s)", (self.sid, twice))
        self.conn.commit()
        self.pool.shutdown()

    def abort(self) -> None:
        self.aborting = True
        try:
            self._close()
        except BaseException:  # noqa: BLE001,S110 - the staging is thrown away anyway
            pass
        for i, (conn, _) in enumerate(self.streams):
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.UNKNOWN:
                conn.rollback()
            if i:
                conn.close()
        self.streams = []
        self.pool.shutdown()

    def _start(self, conn: psycopg.Connection) -> None:
        self.streams.append((conn, self.pool.submit(self._copy, conn)))

    def _close(self) -> None:
        for _ in self.streams:
            self.queue.put(None)
        errors = [f.exception() for _, f in self.streams]
        for exc in errors:
            if exc is not None:
                raise exc

    def _copy(self, conn: psycopg.Connection) -> None:
        """One COPY on ``conn`` of the batches this stream takes from the queue. Geometries
        are encoded as EWKB by shapely a batch at a time."""
        dumps = json.JSONEncoder(ensure_ascii=False, default=str).encode
        with conn.cursor() as cur:
            types = _binary_dumpers(cur)
            with cur.copy("COPY cad.survey_feature (submission_id, idx, kind, ref, props, "
                          "srid, geom) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(types)
                while (item := self.queue.get()) is not None:
                    if self.aborting:
                        continue
                    first, feats, srid = item
                    geoms = np.empty(len(feats), dtype=object)
                    geoms[:] = [f.geometry for f in feats]
                    ewkb = shapely.to_wkb(shapely.set_srid(geoms, srid), include_srid=True)
                    for i, (f, g) in enumerate(zip(feats, ewkb, strict=True), start=first):
                        props = {k: v for k, v in f.properties.items() if k != "raw"}
                        cp.write_row((self.sid, i, f.kind, f.ref[:300], dumps(props), srid, g))
                if self.aborting:
                    raise _Aborted


class _Aborted(Exception):
    """Ends a staging COPY without committing it."""


def _stage(conn: psycopg.Connection, sid: uuid.UUID, data: Any) -> None:
    """Write all features of ``data`` to cad.survey_feature (see ``_Stager``)."""
    _Stager(conn, sid).finish(data)



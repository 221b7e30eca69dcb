"""Import batches: the upload stored by content hash, its rows read (streamed), converted and
staged with COPY, checked, and a report stored — like a survey submission.

Nothing here writes the register: a batch reaches ``cad.*`` only through
``cadastre.exchange.apply.accept`` after a registrar's decision.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from cadastre.access.pii import PiiCipher
from cadastre.errors import InvalidInput, NotFound
from cadastre.exchange import checks, schema
from cadastre.exchange.reader import ExchangeFormatError, Head, Row, read_file
from cadastre.exchange.tables import is_gpkg, ogr_zip_source, read_gpkg, read_ogr
from cadastre.exchange.values import convert, message_of, right_id_of
from cadastre.jobs import JobTracker
from cadastre.store.db import connect
from cadastre.store.uploads import StoredUpload

Progress = Callable[[float, str], None]
MAX_LISTED = 200            # issues listed one by one in a report (all are counted)
COPY_COLUMNS = ("batch_id", "n", "msg", "tbl", "entity", "code", "right_id", "attrs",
                "name_enc", "name_hash", "id_number_enc", "id_number_hash", "phone_enc",
                "phone_hash", "address_enc")
DEFAULT_SRID = 4528       # CGCS2000 / 3-degree Gauss-Kruger zone 40 (as the demo district)

BATCH_KEYS = ("batch_id", "filename", "sha256", "size_bytes", "srid", "status", "job_id",
              "submitted_by", "submitted_at", "error_count", "warning_count", "decided_by",
              "decided_at", "decision_reason", "change_id")


def create_batch(conn: psycopg.Connection, upload: StoredUpload, filename: str,
                 submitted_by: str, srid: int = DEFAULT_SRID,
                 job_id: uuid.UUID | None = None) -> uuid.UUID:
    if srid in (0, 3857, 4326, 4490) or conn.execute(
            "SELECT 1 FROM spatial_ref_sys WHERE srid = %s", (srid,)).fetchone() is None:
        raise InvalidInput("SRID_UNSUPPORTED", "坐标系须为已知的投影坐标系 / the coordinates "
                           "must be in a known projected CRS")
    bid = uuid.uuid4()
    conn.execute(
        "INSERT INTO xchg.import_batch (batch_id, filename, content_sha256, size_bytes, "
        "stored_path, srid, status, job_id, submitted_by) VALUES (%s, %s, %s, %s, %s, %s, "
        "'received', %s, %s)",
        (bid, Path(filename).name[:200], upload.sha256, upload.size, str(upload.path), srid,
         job_id, submitted_by))
    return bid


def get_batch(conn: psycopg.Connection, bid: uuid.UUID) -> dict[str, Any]:
    row = conn.execute(
        "SELECT batch_id, filename, content_sha256, size_bytes, srid, status, job_id, "
        "submitted_by, submitted_at, error_count, warning_count, decided_by, decided_at, "
        "decision_reason, change_id FROM xchg.import_batch WHERE batch_id = %s",
        (bid,)).fetchone()
    if row is None:
        raise NotFound("IMPORT_NOT_FOUND", "无此导入批次 / no such import batch")
    return {k: (str(v) if isinstance(v, uuid.UUID) else v)
            for k, v in zip(BATCH_KEYS, row, strict=True)}


def get_report(conn: psycopg.Connection, bid: uuid.UUID) -> dict[str, Any] | None:
    get_batch(conn, bid)
    row = conn.execute("SELECT report FROM xchg.import_batch WHERE batch_id = %s",
                       (bid,)).fetchone()
    return row[0] if row else None


class Issues:
    """Findings of one validation: counted per code, the first ``MAX_LISTED`` listed."""

    def __init__(self) -> None:
        self.errors: list[dict[str, Any]] = []
        self.warnings: list[dict[str, Any]] = []
        self.counts: Counter[str] = Counter()
        self.warning_counts: Counter[str] = Counter()

    def add(self, code: str, *, warning: bool = False, **where: Any) -> None:
        counts, listed = ((self.warning_counts, self.warnings) if warning
                          else (self.counts, self.errors))
        counts[code] += 1
        if len(listed) < MAX_LISTED:
            listed.append({"code": code, "message": message_of(code), **where})

    def add_many(self, code: str, n: int, warning: bool = False, **where: Any) -> None:
        for _ in range(min(n, MAX_LISTED)):
            self.add(code, warning=warning, **where)
        (self.warning_counts if warning else self.counts)[code] += max(0, n - MAX_LISTED)


class _Stager:
    def __init__(self, conn: psycopg.Connection, bid: uuid.UUID, cipher: PiiCipher) -> None:
        self.conn, self.bid, self.cipher = conn, bid, cipher
        self.buffer: list[tuple[Any, ...]] = []
        self.n = 0

    def add(self, row: Row, spec: schema.TableSpec, values: dict[str, Any]) -> None:
        self.n += 1
        code = values.get("parcel_code") or values.get("building_code") or \
            values.get("unit_code")
        if spec.entity == "parcel_point" and code:
            code = code[:19]
        right_id = right_id_of(spec, values) if spec.entity == "right" else None
        enc: tuple[Any, ...] = (None,) * 7
        if spec.entity == "party":
            c = self.cipher
            name, number = values.pop("name", ""), values.pop("id_number", "")
            phone, address = values.pop("phone", None), values.pop("address", None)
            enc = (c.encrypt(name.strip()), c.lookup_hash(name), c.encrypt(number.strip()),
                   c.lookup_hash(number), c.encrypt(phone), c.lookup_hash(phone),
                   c.encrypt(address))
        self.buffer.append((self.bid, self.n, row.msg, spec.name, spec.entity, code, right_id,
                            Jsonb(values), *enc))
        if len(self.buffer) >= 5000:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        with self.conn.cursor() as cur, cur.copy(
                f"COPY xchg.import_row ({', '.join(COPY_COLUMNS)}) FROM STDIN") as copy:
            copy.set_types(["uuid", "int8", "int4", "text", "text", "text", "uuid", "jsonb",
                            "bytea", "bytea", "bytea", "bytea", "bytea", "bytea", "bytea"])
            for r in self.buffer:
                copy.write_row(r)
        self.buffer = []


def _head_issues(head: Head, issues: Issues) -> None:
    for name in schema.HEAD_REQUIRED:
        if not head.fields.get(name):
            issues.add("HEAD_FIELD_MISSING", msg=head.msg, attribute=name)
    rec = head.fields.get("RecType", "")
    if rec and not schema.REC_TYPE.match(rec):
        issues.add("BAD_REC_TYPE", msg=head.msg)
    elif rec and rec not in schema.business_tables():
        issues.add("UNKNOWN_REC_TYPE", warning=True, msg=head.msg)


def validate_batch(url: str, bid: uuid.UUID, cipher: PiiCipher,
                   job_id: uuid.UUID | None = None,
                   progress: Progress | None = None) -> dict[str, Any]:
    """Read, stage and check a batch; store and return its report."""
    if job_id is not None:
        with JobTracker(url, job_id) as job:
            def both(p: float, what: str) -> None:
                job.update(p, what)
                if progress:
                    progress(p, what)
            return _validate(url, bid, cipher, both)
    return _validate(url, bid, cipher, progress or (lambda p, w: None))


def _items(path: Path) -> Iterator[Head | Row]:
    """Rows of the upload: XML messages (a file or a zip of them), a GeoPackage, or a zip of
    shapefiles / a File Geodatabase."""
    if is_gpkg(path):
        return read_gpkg(path)
    source = ogr_zip_source(path)
    return read_ogr(source) if source else read_file(path)


def _validate(url: str, bid: uuid.UUID, cipher: PiiCipher, step: Progress) -> dict[str, Any]:
    with connect(url) as conn:
        batch = get_batch(conn, bid)
        path = Path(conn.execute("SELECT stored_path FROM xchg.import_batch WHERE batch_id = "
                                 "%s", (bid,)).fetchone()[0])  # type: ignore[index]
        conn.execute("DELETE FROM xchg.import_row WHERE batch_id = %s", (bid,))
        conn.execute("UPDATE xchg.import_batch SET status = 'validating' WHERE batch_id = %s",
                     (bid,))
        conn.commit()
        issues, stager, tables = Issues(), _Stager(conn, bid, cipher), Counter[str]()
        size = max(path.stat().st_size, 1)
        step(0.02, "reading")
        try:
            for item in _items(path):
                if isinstance(item, Head):
                    _head_issues(item, issues)
                    continue
                tables[item.table] += 1
                spec = schema.TABLES.get(item.table)
                if spec is None:
                    if not schema.known_table(item.table):
                        issues.add("UNKNOWN_TABLE", msg=item.msg, line=item.line)
                    continue
                converted = convert(spec, item.attrs)
                for code, attr in converted.problems:
                    issues.add(code, table=spec.name, attribute=attr, msg=item.msg,
                               line=item.line)
                if not converted.problems:
                    stager.add(item, spec, converted.values)
                if stager.n % 50_000 == 0 and stager.n:
                    step(min(0.6, 0.6 * stager.n * 200 / size), f"staged {stager.n} rows")
            stager.flush()
        except ExchangeFormatError as exc:
            conn.rollback()
            conn.execute("DELETE FROM xchg.import_row WHERE batch_id = %s", (bid,))
            report = {"batch": str(bid), "status": "invalid", "errors": [
                {"code": exc.code, "message": exc.message, **exc.details}],
                "error_counts": {exc.code: 1}, "warnings": [], "warning_counts": {},
                "counts": {}, "tables": {}}
            _finish(conn, bid, report, "invalid")
            return report
        conn.execute("ANALYZE xchg.import_row")     # statistics for the checks' joins
        conn.commit()
        step(0.65, "checking")
        counts = checks.run(conn, bid, batch["srid"], issues)
        status = "invalid" if issues.counts else "validated"
        report = {"batch": str(bid), "status": status, "errors": issues.errors,
                  "error_counts": dict(issues.counts), "warnings": issues.warnings,
                  "warning_counts": dict(issues.warning_counts), "counts": counts,
                  "tables": dict(tables)}
        if status == "invalid":    # staged rows of a refused batch are not kept
            conn.execute("DELETE FROM xchg.import_row WHERE batch_id = %s", (bid,))
        _finish(conn, bid, report, status)
        step(1.0, "done")
        return report


def _finish(conn: psycopg.Connection, bid: uuid.UUID, report: dict[str, Any],
            status: str) -> None:
    conn.execute(
        "UPDATE xchg.import_batch SET status = %s, report = %s, error_count = %s, "
        "warning_count = %s WHERE batch_id = %s",
        (status, json.dumps(report, ensure_ascii=False, default=str),
         sum(report["error_counts"].values()), sum(report["warning_counts"].values()), bid))
    conn.commit()

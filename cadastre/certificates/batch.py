"""Issuing many electronic certificates at once (交房即交证, the demo's existing rights, the
benchmark): rendering and signing run in worker processes, the database work in this one.

Workers come from a fork server that has imported nothing (``_worker_context``). Chunk by
chunk, the workers always have the next chunk queued: this process claims chunk k+1 (numbers and
serials, one short transaction) and hands it over, reads chunk k+2 (the records and the annex
HTML, on a second connection; the parcel map of a parcel met for the first time is written here,
once for all workers, whose documents copy its pages), then stores and issues chunk k (one
transaction, audit rows included). A chunk in which a document fails is stored item by item,
so a bad item costs nothing but itself (reported as skipped with its error code).
"""

from __future__ import annotations

import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field

import psycopg

from cadastre.certificates import content as records
from cadastre.certificates.compose import Composer, DocumentParts, SignedDocument
from cadastre.certificates.issue import (
    Claim,
    IssuingContext,
    claim,
    issue_certificate,
    store_signed,
)
from cadastre.certificates.store import CertificateRecord
from cadastre.certificates.worker import compose, start
from cadastre.errors import CadastreError

Progress = Callable[[int, int], None]


class _InProcess(Executor):
    """One worker: no processes, the caller's composer."""

    def __init__(self, composer: Composer) -> None:
        self.composer = composer

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        future: Future[SignedDocument] = Future()
        try:
            future.set_result(self.composer.compose(*args))
        except Exception as exc:    # reported with the item, like a worker's failure
            future.set_exception(exc)
        return future


def _worker_context() -> multiprocessing.context.BaseContext:
    """Workers forked by a fork server that has imported nothing: a worker loads only what it
    runs (``cadastre.certificates.worker``), not the parent's main module (the CLI with all its
    commands, or a benchmark), and nothing is forked from a process with database threads."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([])
    return context


@dataclass
class BatchResult:
    issued: list[CertificateRecord] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)   # (right version, error code)
    seconds: float = 0.0


@dataclass(frozen=True)
class _Read:
    version: int
    content: records.CertificateContent | None
    parcel_html: str | None = None
    floor_body: str | None = None
    error: str | None = None
    parcel_pdf: bytes | None = None


_Started = tuple[_Read, Claim, "Future[SignedDocument]"]


def _read(conn: psycopg.Connection, ctx: IssuingContext, versions: Sequence[int]
          ) -> list[_Read]:
    out = []
    today = conn.execute("SELECT current_date").fetchone()[0]  # type: ignore[index]
    for version in versions:
        try:
            content = records.load(conn, ctx.cipher, version, ctx.settings)
            parcel, floor = ctx.annexes.annexes(conn, content, today)
            out.append(_Read(version, content, parcel, floor,
                             parcel_pdf=ctx.composer.parcel_pdf(parcel) if parcel else None))
        except CadastreError as exc:
            out.append(_Read(version, None, error=exc.code))
    conn.rollback()
    return out


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def issue_batch(url: str, ctx: IssuingContext, versions: Sequence[int], *, actor: str,
                workers: int | None = None, chunk: int = 16, progress: Progress | None = None
                ) -> BatchResult:
    """Prepare and issue the documents of ``versions`` (electronic copies: the numbers the
    register holds). ``workers`` processes render and sign (default: the settings')."""
    workers = workers or ctx.settings.certificates.workers
    result = BatchResult()
    started = time.perf_counter()
    pool: Executor
    if workers > 1:
        pool = ProcessPoolExecutor(workers, mp_context=_worker_context(),
                                   initializer=start, initargs=(ctx.files,))
    else:
        pool = _InProcess(ctx.composer)
    chunks = list(_chunks(list(versions), chunk))
    in_flight: deque[list[_Started]] = deque()
    try:
        with psycopg.connect(url) as reader, psycopg.connect(url, autocommit=True) as writer:
            ahead = _read(reader, ctx, chunks[0]) if chunks else []
            for k in range(len(chunks)):
                current, ahead = ahead, []
                in_flight.append(_claim_chunk(writer, ctx, pool, current, result))
                if k + 1 < len(chunks):
                    ahead = _read(reader, ctx, chunks[k + 1])
                while len(in_flight) > (1 if k + 1 < len(chunks) else 0):
                    _store_chunk(writer, ctx, in_flight.popleft(), actor, result)
                    if progress:
                        progress(len(result.issued) + len(result.skipped), len(versions))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    result.seconds = time.perf_counter() - started
    return result


def _claim_chunk(conn: psycopg.Connection, ctx: IssuingContext, pool: Executor,
                 items: list[_Read], result: BatchResult) -> list[_Started]:
    """Claim each item (one committed transaction; an item that cannot be claimed is skipped)
    and hand its parts to the workers. A claim that is never stored leaves the right with its
    number and no document: the next preparation takes that number (no gap)."""
    started: list[_Started] = []
    with conn.transaction():
        for item in items:
            if item.content is None:
                result.skipped.append((item.version, item.error or "UNKNOWN"))
                continue
            try:
                with conn.transaction():
                    taken = claim(conn, ctx, item.content)
            except CadastreError as exc:
                result.skipped.append((item.version, exc.code))
                continue
            parts = DocumentParts(item.content, taken.identity, taken.issued, taken.remark,
                                  item.parcel_html, item.floor_body, taken.location,
                                  item.parcel_pdf)
            started.append((item, taken, pool.submit(compose, parts)))
    return started


def _store_chunk(conn: psycopg.Connection, ctx: IssuingContext, futures: list[_Started],
                 actor: str, result: BatchResult) -> None:
    """Store and issue the chunk's documents in one transaction; if one fails (its rendering,
    or a document made for the same right meanwhile) the others are stored one by one."""
    try:
        with conn.transaction():
            done = [_store_one(conn, ctx, taken, future, actor)
                    for _, taken, future in futures]
        result.issued.extend(done)
        return
    except Exception:       # the chunk is undone; find the culprit(s) one by one
        pass
    for item, taken, future in futures:
        try:
            with conn.transaction():
                result.issued.append(_store_one(conn, ctx, taken, future, actor))
        except CadastreError as exc:
            result.skipped.append((item.version, exc.code))
        except psycopg.errors.UniqueViolation:
            result.skipped.append((item.version, "CERTIFICATE_EXISTS"))
        except Exception:
            result.skipped.append((item.version, "RENDER_FAILED"))


def _store_one(conn: psycopg.Connection, ctx: IssuingContext, taken: Claim,
               future: Future[SignedDocument], actor: str) -> CertificateRecord:
    rec = store_signed(conn, ctx, taken, future.result(), actor)
    return issue_certificate(conn, ctx, rec.certificate_id, actor=actor)

"""Issuing many electronic certificates at once (交房即交证, the demo's existing rights, the
benchmark): rendering and signing run in worker processes, the database work in this one.

Workers come from a fork server that has imported nothing (``_worker_context``). Chunk by
chunk: while the workers render and sign chunk k, this process reads chunk k+1 (the records and
the annex HTML, on a second connection, outside any transaction). Each chunk is one
transaction: numbers and serials taken, documents stored and issued, audit rows appended; a
chunk in which a document fails is rolled back and its items retried one by one, so a bad item
costs nothing but itself (reported as skipped with its error code).
"""

from __future__ import annotations

import multiprocessing
import time
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


_Started = tuple[_Read, Claim, "Future[SignedDocument]"]


def _read(conn: psycopg.Connection, ctx: IssuingContext, versions: Sequence[int]
          ) -> list[_Read]:
    out = []
    today = conn.execute("SELECT current_date").fetchone()[0]  # type: ignore[index]
    for version in versions:
        try:
            content = records.load(conn, ctx.cipher, version,
                                   ctx.settings.certificates.office_name)
            parcel, floor = ctx.annexes.annexes(conn, content, today)
            out.append(_Read(version, content, parcel, floor))
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
    try:
        with psycopg.connect(url) as reader, psycopg.connect(url) as writer:
            ahead = _read(reader, ctx, chunks[0]) if chunks else []
            for k in range(len(chunks)):
                current, ahead = ahead, []
                futures = _start_chunk(writer, ctx, pool, current, result)
                if k + 1 < len(chunks):
                    ahead = _read(reader, ctx, chunks[k + 1])
                if not _finish_chunk(writer, ctx, futures, actor, result):
                    _one_by_one(writer, ctx, pool, [r for r, _, _ in futures], actor, result)
                if progress:
                    progress(sum(len(c) for c in chunks[:k + 1]), len(versions))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    result.seconds = time.perf_counter() - started
    return result


def _start_chunk(conn: psycopg.Connection, ctx: IssuingContext, pool: Executor,
                 items: list[_Read], result: BatchResult) -> list[_Started]:
    """In a new transaction: claim each item and hand its parts to the workers."""
    started: list[_Started] = []
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
                              item.parcel_html, item.floor_body,
                              ctx.settings.certificates.city_name)
        started.append((item, taken, pool.submit(compose, parts)))
    return started


def _finish_chunk(conn: psycopg.Connection, ctx: IssuingContext,
                  futures: list[_Started], actor: str,
                  result: BatchResult) -> bool:
    """Store and issue the chunk's documents and commit; False (rolled back) if one failed."""
    done = []
    try:
        for _, taken, future in futures:
            signed = future.result()
            rec = store_signed(conn, ctx, taken, signed, actor)
            done.append(issue_certificate(conn, ctx, rec.certificate_id, actor=actor))
        conn.commit()
    except Exception:       # a worker's failure, or the database's: the chunk is undone
        conn.rollback()
        return False
    result.issued.extend(done)
    return True


def _one_by_one(conn: psycopg.Connection, ctx: IssuingContext, pool: Executor,
                items: list[_Read], actor: str, result: BatchResult) -> None:
    for item in items:
        futures = _start_chunk(conn, ctx, pool, [item], result)
        if not _finish_chunk(conn, ctx, futures, actor, result):
            result.skipped.append((item.version, "RENDER_FAILED"))

"""Public answers already shaped and encoded, by the rows they were made from.

What-is-here and the 楼盘表 answer an anonymous caller from one statement's rows and nothing
else: the privacy policy of the public role, the code tables' labels and the JSON encoding are
functions of those rows. So each worker process keeps, for a few thousand recent answers, the
encoded bytes (identity and gzip) under the digest of the rows exactly as the database sent
them (``cadastre.query.features.Rows``). The database is still asked every time, so a change is
seen at once: different rows, a different key. Nothing is invalidated and nothing can be stale;
an entry only saves the work of loading, labelling, filtering, encoding and compressing again.

Only the anonymous public is served from here: every other caller's answer depends on who they
are (role, county scope, an API key's fields, an owner's units) and is shaped per request.
The answers carry a strong ETag (``If-None-Match`` → 304) and ``Cache-Control: no-cache``.
"""

from __future__ import annotations

import gzip
from collections import OrderedDict
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import Request, Response
from pydantic_core import to_json

from api.httpcache import CALLER_VARY, Policy, respond, strong_etag
from cadastre.query.features import Rows

T = TypeVar("T")

# stored by nobody without revalidation; varies by caller (the same URL answers a registrar
# differently) and by encoding
PUBLIC_ANSWER = Policy("no-cache", CALLER_VARY)
JSON = "application/json"


@dataclass(frozen=True)
class Encoded:
    identity: bytes
    gzipped: bytes
    etag: str
    target: str | None        # for the audit call: what the answer was about
    count: int                # ... and how many records it held

    @property
    def size(self) -> int:
        return len(self.identity) + len(self.gzipped) + 200


def encode(answer: dict[str, Any], target: str | None, count: int) -> Encoded:
    """The JSON bytes FastAPI would send (its serializer: pydantic's), their gzip, their ETag."""
    identity = to_json(answer)
    return Encoded(identity, gzip.compress(identity, compresslevel=5, mtime=0),
                   strong_etag(identity), target, count)


class AnswerMemo:
    """Least recently used answers, at most ``max_bytes`` of them (both encodings counted)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[str, bytes], Encoded] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, kind: str, digest: bytes) -> Encoded | None:
        found = self._entries.get((kind, digest))
        if found is None:
            self.misses += 1
            return None
        self._entries.move_to_end((kind, digest))
        self.hits += 1
        return found

    def put(self, kind: str, digest: bytes, encoded: Encoded) -> Encoded:
        if encoded.size > self.max_bytes:
            return encoded
        old = self._entries.pop((kind, digest), None)
        if old is not None:
            self.bytes -= old.size
        self._entries[(kind, digest)] = encoded
        self.bytes += encoded.size
        while self.bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.bytes -= evicted.size
        return encoded


@dataclass(frozen=True)
class Read(Generic[T]):
    """A look-up's outcome: the answer already made from equal rows, or the rows loaded."""

    digest: bytes
    known: Encoded | None
    loaded: T | None


async def known_or_loaded(memo: AnswerMemo | None, kind: str,
                          executed: Awaitable[Rows[T]]) -> Read[T]:
    """Run inside the connection block: the rows are loaded only when no answer is known."""
    rows = await executed
    if memo is None:
        return Read(b"", None, await rows.load())
    known = memo.get(kind, rows.digest)
    return Read(rows.digest, known, None if known is not None else await rows.load())


def answer(request: Request, encoded: Encoded) -> Response:
    """The encoded answer as the request asks for it: 304, gzip or identity."""
    return respond(request, encoded.etag, PUBLIC_ANSWER, JSON, encoded.identity,
                   encoded.gzipped)

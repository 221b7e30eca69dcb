"""Filing a document with its file, all or nothing: the code and the facts are checked, the file
is inspected (``files.inspect``), then stored by content hash and the rows written in one
transaction; should that transaction fail, a file this filing created is removed again. Both
the HTTP route and the demo's project builder file through here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import psycopg

from cadastre.access.pii import PiiCipher
from cadastre.linked.documents import DocumentInput, Target, check, file_document, target_of
from cadastre.linked.files import inspect
from cadastre.store.uploads import StoredUpload, store_upload


@dataclass(frozen=True)
class Filed:
    document_id: uuid.UUID
    target: Target
    upload: StoredUpload
    media_type: str


def documents_dir(data_dir: Path) -> Path:
    return data_dir / "documents"


def file_upload(conn: psycopg.Connection, cipher: PiiCipher, data_dir: Path, code: str,
                doc: DocumentInput, stream: BinaryIO, *, max_bytes: int, posted_by: str,
                api_key_id: uuid.UUID | None = None,
                on_filed: Callable[[psycopg.Connection, Filed], None] | None = None) -> Filed:
    """File ``doc`` under ``code`` with the file in ``stream`` (seekable). ``on_filed`` runs in
    the same transaction (the audit row)."""
    target = target_of(conn, code)
    check(conn, target, doc)
    media = inspect(stream, max_bytes)
    upload = store_upload(stream, documents_dir(data_dir), max_bytes)
    try:
        with conn.transaction():
            document_id = file_document(conn, cipher, target, doc, upload, media, posted_by,
                                        api_key_id)
            filed = Filed(document_id, target, upload, media)
            if on_filed is not None:
                on_filed(conn, filed)
    except BaseException:
        upload.discard()
        raise
    return filed

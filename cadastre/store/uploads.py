"""Uploaded files stored immutably by content hash: ``<dir>/<sha256>``, read-only, written to a
temporary file first and renamed, so a half upload never appears. Survey submissions and the
documents other departments file (一码关联) keep their files this way.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cadastre.errors import InvalidInput

MAX_UPLOAD_BYTES = 200 * 1024 * 1024
CHUNK = 1 << 20


@dataclass(frozen=True)
class StoredUpload:
    sha256: str
    size: int
    path: Path
    created: bool = True      # False: the same content was stored before

    def discard(self) -> None:
        """Remove a file this upload created (its database row was not written)."""
        if self.created and self.path.exists():
            self.path.unlink()


def store_upload(stream: BinaryIO, upload_dir: Path, max_bytes: int = MAX_UPLOAD_BYTES
                 ) -> StoredUpload:
    """Copy an upload to ``<upload_dir>/<sha256>`` (read-only), enforcing the size limit."""
    upload_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, tmp = tempfile.mkstemp(dir=upload_dir, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise InvalidInput("FILE_TOO_LARGE", f"文件超过 {max_bytes // 2**20} MB / "
                                       f"file larger than {max_bytes // 2**20} MB")
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise InvalidInput("FILE_EMPTY", "文件为空 / the file is empty")
        target = upload_dir / digest.hexdigest()
        created = not target.exists()
        if created:
            os.chmod(tmp, 0o444)
            os.replace(tmp, target)
        else:
            os.unlink(tmp)
        return StoredUpload(digest.hexdigest(), size, target, created)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise

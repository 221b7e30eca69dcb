"""Safe extraction of uploaded zip archives (zipped Shapefiles and other survey files).

Rejected: absolute paths and ``..`` (ZIP_UNSAFE_PATH), symbolic links (ZIP_UNSAFE_PATH),
encrypted members (ZIP_ENCRYPTED), nested archives (ZIP_NESTED), more than ``zip_max_members``
entries (ZIP_TOO_MANY_FILES), and more than ``zip_max_total_bytes`` uncompressed or a member
compressing better than ``zip_max_ratio`` (ZIP_BOMB).  Sizes are enforced while streaming too,
so a lying header cannot get past them.
"""

from __future__ import annotations

import re
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from cadastre.ingest.model import ReaderOptions, SurveyFormatError

__all__ = ["safe_extract", "member_name"]

#: Members smaller than this are never treated as bombs (tiny files compress very well).
_RATIO_MIN_BYTES = 1024 * 1024
_CHUNK = 1024 * 1024
_ARCHIVE_SUFFIXES = (".zip", ".7z", ".rar", ".gz", ".tgz", ".tar", ".bz2", ".xz", ".kmz")
_ARCHIVE_MAGIC = (b"PK\x03\x04", b"7z\xbc\xaf\x27\x1c", b"Rar!", b"\x1f\x8b")
_SKIPPED = re.compile(r"(^|/)(__MACOSX|\.DS_Store|Thumbs\.db)(/|$)", re.I)


def member_name(info: zipfile.ZipInfo) -> str:
    """Member name; names without the UTF-8 flag are re-decoded as GBK (Windows zips) if valid."""
    name = info.filename
    if info.flag_bits & 0x800:
        return name
    try:
        raw = name.encode("cp437")
    except UnicodeEncodeError:
        return name
    for encoding in ("utf-8", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return name


def _unsafe(name: str, reason_zh: str, reason_en: str) -> SurveyFormatError:
    return SurveyFormatError(
        "ZIP_UNSAFE_PATH",
        f"压缩包中的“{name}”{reason_zh}，已拒绝整个压缩包",
        f"zip member '{name}' {reason_en}; the archive was rejected",
        member=name,
    )


def _safe_relative(name: str) -> PurePosixPath:
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or re.match(r"^[A-Za-z]:", normalised):
        raise _unsafe(name, "使用了绝对路径", "has an absolute path")
    parts = [p for p in normalised.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise _unsafe(name, "含有“..”路径", "contains a '..' path component")
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _bomb(zh: str, en: str) -> SurveyFormatError:
    return SurveyFormatError(
        "ZIP_BOMB", f"压缩包可能是压缩炸弹：{zh}", f"the archive looks like a zip bomb: {en}"
    )


def _check_infos(infos: list[zipfile.ZipInfo], options: ReaderOptions) -> None:
    if len(infos) > options.zip_max_members:
        raise SurveyFormatError(
            "ZIP_TOO_MANY_FILES",
            f"压缩包含有{len(infos)}个条目，超过上限{options.zip_max_members}",
            f"the archive has {len(infos)} entries, more than the limit of "
            f"{options.zip_max_members}",
        )
    total = 0
    for info in infos:
        name = member_name(info)
        _safe_relative(name)
        mode = info.external_attr >> 16
        if mode and stat.S_ISLNK(mode):
            raise _unsafe(name, "是符号链接", "is a symbolic link")
        if info.flag_bits & 0x1:
            raise SurveyFormatError(
                "ZIP_ENCRYPTED",
                f"压缩包中的“{name}”已加密，请上传未加密的压缩包",
                f"zip member '{name}' is encrypted; upload an unencrypted archive",
                member=name,
            )
        if not info.is_dir() and name.lower().endswith(_ARCHIVE_SUFFIXES):
            raise _nested(name)
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > _RATIO_MIN_BYTES and ratio > options.zip_max_ratio:
            raise _bomb(
                f"“{name}”压缩比为{ratio:.0f}:1（上限{options.zip_max_ratio:.0f}:1）",
                f"'{name}' has a compression ratio of {ratio:.0f}:1 (limit "
                f"{options.zip_max_ratio:.0f}:1)",
            )
    if total > options.zip_max_total_bytes:
        raise _bomb(
            f"解压后共{total}字节，超过上限{options.zip_max_total_bytes}",
            f"{total} bytes uncompressed, more than the limit of {options.zip_max_total_bytes}",
        )


def _nested(name: str) -> SurveyFormatError:
    return SurveyFormatError(
        "ZIP_NESTED",
        f"压缩包中含有另一个压缩包“{name}”，请解开后上传",
        f"the archive contains another archive '{name}'; unpack it first",
        member=name,
    )


def _copy_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, name: str, budget: int
) -> int:
    written = 0
    with zf.open(info) as src, open(target, "wb") as dst:
        first = True
        while chunk := src.read(_CHUNK):
            if first and chunk.startswith(_ARCHIVE_MAGIC):
                raise _nested(name)
            first = False
            written += len(chunk)
            if written > info.file_size or written > budget:
                raise _bomb(
                    f"“{name}”解压后的大小超过声明或上限",
                    f"'{name}' inflates beyond its declared size or the limit",
                )
            dst.write(chunk)
    return written


def safe_extract(path: Path, dest: Path, options: ReaderOptions) -> list[tuple[str, Path]]:
    """Extract into ``dest``; returns (member name, extracted path) for each regular file."""
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise SurveyFormatError(
            "FILE_TRUNCATED",
            "压缩包不完整或已损坏（找不到中央目录）",
            "the zip archive is truncated or damaged (no central directory)",
        ) from exc
    out: list[tuple[str, Path]] = []
    with zf:
        infos = zf.infolist()
        _check_infos(infos, options)
        budget = options.zip_max_total_bytes
        root = dest.resolve()
        for info in infos:
            name = member_name(info)
            if info.is_dir() or _SKIPPED.search(name.replace("\\", "/")):
                continue
            target = (root / _safe_relative(name)).resolve()
            if root not in target.parents:
                raise _unsafe(name, "指向解压目录之外", "points outside the extraction folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                budget -= _copy_member(zf, info, target, name, budget)
            except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:
                raise SurveyFormatError(
                    "FILE_TRUNCATED",
                    f"压缩包中的“{name}”无法解压（文件损坏）",
                    f"zip member '{name}' cannot be extracted (damaged archive)",
                    member=name,
                ) from exc
            out.append((name, target))
    return out

"""Keeping personal data out of logs: every log record is masked before any handler sees it.

Masked, wherever they appear in a message, its arguments or a traceback:

- 居民身份证号 (GB 11643: 6 region digits, a plausible birth date, 3 sequence digits, check
  character) → first 6 + last 4, ``110105********0039``; also the old 15-digit form;
- mobile numbers ``1[3-9]\\d{9}`` → ``138****1234``;
- certificate numbers (不动产权证书号 / 不动产登记证明号, ``浙(2021)杭州市不动产权第0012345号``)
  → the privacy policy's certificate mask.

``install()`` wraps the log-record factory, so records of every logger (the app, uvicorn, the
CLI, libraries) are masked when they are created, whatever handlers are configured later.
``RedactingFilter`` does the same as a ``logging.Filter`` for handlers configured by hand.
Names cannot be recognised by pattern: code must not log them (they only exist decrypted in
memory, see ``cadastre.access.pii``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from cadastre.access.privacy import mask_certificate, mask_id_number, mask_phone

_ID18 = (r"\d{6}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]")
_ID15 = r"\d{6}\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}"
ID_NUMBER = re.compile(rf"(?<![0-9A-Za-z])(?:{_ID18}|{_ID15})(?![0-9A-Za-z])")
PHONE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d{9}(?!\d)")
CERTIFICATE = re.compile(
    r"[\u4e00-\u9fa5]{1,2}\s*[(（]\s*\d{4}\s*[)）][\u4e00-\u9fa5]{0,24}"
    r"(?:不动产权|不动产证明|房权证|土地证|不动产登记证明)[\u4e00-\u9fa5]{0,4}第?\s*\d{4,12}\s*号")


def _mask_phone(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = text[-11:]
    return text[:-11] + (mask_phone(digits) or "")


def mask(text: str) -> str:
    """``text`` with ID numbers, mobile numbers and certificate numbers masked."""
    if not text:
        return text
    text = CERTIFICATE.sub(lambda m: mask_certificate(m.group(0)) or "", text)
    text = ID_NUMBER.sub(lambda m: mask_id_number(m.group(0)) or "", text)
    return PHONE.sub(_mask_phone, text)


def contains_pii(text: str) -> bool:
    """Whether ``text`` holds something that looks like an ID, mobile or certificate number."""
    return bool(ID_NUMBER.search(text) or PHONE.search(text) or CERTIFICATE.search(text))


def _mask_arg(value: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    text = str(value)  # exceptions, paths, objects: their text may carry PII
    masked = mask(text)
    return value if masked == text else masked


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask ``record`` in place (message, arguments, traceback, stack)."""
    if getattr(record, "_pii_masked", False):
        return record
    if isinstance(record.msg, str):
        record.msg = mask(record.msg)
    elif record.msg is not None and not isinstance(record.msg, int | float):
        record.msg = mask(str(record.msg))
    args = record.args
    if isinstance(args, Mapping):
        record.args = {k: _mask_arg(v) for k, v in args.items()}
    elif isinstance(args, tuple):
        record.args = tuple(_mask_arg(a) for a in args)
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = mask(record.exc_text)
    if record.stack_info:
        record.stack_info = mask(record.stack_info)
    record._pii_masked = True  # type: ignore[attr-defined]
    return record


class RedactingFilter(logging.Filter):
    """A handler/logger filter that masks records (never drops them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


_installed = False


def install() -> None:
    """Mask every log record of this process from now on (idempotent)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_record(previous(*args, **kwargs))

    logging.setLogRecordFactory(factory)
    _installed = True

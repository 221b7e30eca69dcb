"""Lawful query purposes (查询目的) and case references (案号/业务编号).

不动产登记暂行条例 Art. 28: whoever queries registration data must state the purpose and may not
use the data for anything else. Interested parties (利害关系人) and other departments' systems
therefore send, with every query, a purpose code from the fixed list below and a reference to
the case it serves. Both go to the audit trail, so neither may carry free text: the purpose is a
code, the case reference must match one of two patterns (a court-style case number such as
``(2024)浙0106民初1234号`` or a plain uppercase file number such as ``ZJ-2024-000123``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from cadastre.access.logsafe import contains_pii
from cadastre.errors import InvalidInput


@dataclass(frozen=True)
class Purpose:
    code: str
    zh: str
    en: str


PURPOSES: dict[str, Purpose] = {p.code: p for p in (
    Purpose("litigation", "诉讼", "litigation"),
    Purpose("arbitration", "仲裁", "arbitration"),
    Purpose("enforcement", "执行", "court enforcement"),
    Purpose("transaction", "交易", "property transaction"),
    Purpose("mortgage", "抵押融资", "mortgage lending"),
    Purpose("inheritance", "继承", "inheritance"),
    Purpose("expropriation", "征收", "expropriation"),
    Purpose("taxation", "税务", "taxation"),
    Purpose("planning", "规划管理", "planning administration"),
    Purpose("other-legal", "其他法定事由", "other statutory purpose"),
)}

MAX_CASE_REF = 64
# ASCII file numbers: uppercase letters, digits and - / _ . ( ), at least one digit, and no run
# of more than 6 letters (so a spelled-out name does not fit)
_ASCII_REF = re.compile(r"^(?=[^\d]*\d)(?![A-Z0-9./_()-]*[A-Z]{7})[A-Z0-9][A-Z0-9./_()-]{2,63}$")
# court case numbers: (年份) 省简称+法院代字, 类型代字, 序号, 号 — e.g. (2024)浙0106民初1234号
_COURT_REF = re.compile(r"^[(（]\d{4}[)）][\u4e00-\u9fa5]{1,2}\d{0,6}[\u4e00-\u9fa5]{1,6}"
                        r"\d{1,7}号(之\d{1,3})?$")

_INVALID = ("PURPOSE_REQUIRED",
            "须在请求头 X-Purpose 说明查询目的（{codes}），并在 X-Case-Ref 提供案号 / "
            "state the purpose in X-Purpose ({codes}) and the case reference in X-Case-Ref")


def _error() -> InvalidInput:
    codes = ", ".join(PURPOSES)
    return InvalidInput(_INVALID[0], _INVALID[1].format(codes=codes))


def parse_purpose(value: str | None) -> str:
    """The purpose code, or PURPOSE_REQUIRED."""
    code = (value or "").strip().lower()
    if code not in PURPOSES:
        raise _error()
    return code


def parse_case_ref(value: str | None) -> str:
    """The case reference as stored (percent-decoded: HTTP headers are ASCII), or
    PURPOSE_REQUIRED when it is missing, too long or not of a known form."""
    raw = (value or "").strip()
    if not raw or len(raw) > 3 * MAX_CASE_REF:
        raise _error()
    try:
        text = (unquote(raw, errors="strict") if "%" in raw else raw).strip()
    except UnicodeDecodeError:
        raise _error() from None
    if len(text) > MAX_CASE_REF or not (_ASCII_REF.match(text) or _COURT_REF.match(text)):
        raise _error()
    if contains_pii(text):  # an ID or phone number is not a case reference (and is PII)
        raise _error()
    return text


def purpose_table() -> list[dict[str, str]]:
    """The list for clients and docs."""
    return [{"code": p.code, "zh": p.zh, "en": p.en} for p in PURPOSES.values()]

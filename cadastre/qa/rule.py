"""A quality rule's definition and the categories of the registration quality programmes:
principle (原则性), content (内容), certificate (证书), period (期限), time limit (时限),
reporting (汇交)."""

from __future__ import annotations

import re
from dataclasses import dataclass

CATEGORIES = {
    "principle": "原则性 / principle",
    "content": "内容 / content",
    "certificate": "证书 / certificate",
    "period": "期限 / period",
    "time_limit": "时限 / time limit",
    "reporting": "汇交 / reporting",
}


@dataclass(frozen=True)
class Rule:
    id: str
    version: int
    category: str
    severity: str
    title_zh: str
    title_en: str
    sql: str
    registry_only: bool = False     # needs registration records (not for survey submissions)
    submission_only: bool = False
    cost: int = 3                   # relative run time (the engine starts the slowest first)
    parts: int = 1                  # with several connections, run as this many parts: the
                                    # SQL then takes only its share of ``subject`` (``sid`` in
                                    # ``%(sid_lo)s`` < sid <= ``%(sid_hi)s``) or of blocks
                                    # (``%(part)s`` of ``%(parts)s``)
    settings: tuple[tuple[str, str], ...] = ()   # planner settings for this rule only


def _r(id: str, category: str, severity: str, zh: str, en: str, sql: str, version: int = 1,
       **kw: object) -> Rule:
    assert category in CATEGORIES
    # format() templates use %s: escape them for the driver; %(name)s stay bound parameters
    sql = re.sub(r"%(?!\()", "%%", sql)
    return Rule(id, version, category, severity, zh, en, sql, **kw)  # type: ignore[arg-type]

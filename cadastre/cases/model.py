"""Stages of a registration case (办件) and the actions that move it, as one table.

申请 → 受理 → 审核 → 登簿 → 缮证 → 发证 → 归档, with 不予受理, 驳回 and 撤回 as ends, 办结 for
businesses that change nothing in the register (查询, 房屋交易管理), and 补正 and the other pauses
as a stopped clock beside the stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Stage(StrEnum):
    APPLIED = "applied"                       # 申请 (online, before the window's acceptance)
    ACCEPTED = "accepted"                     # 受理
    REVIEWING = "reviewing"                   # 审核
    REGISTERED = "registered"                 # 登簿
    CERTIFICATE_PREPARED = "certificate_prepared"   # 缮证
    ISSUED = "issued"                         # 发证
    CONCLUDED = "concluded"                   # 办结 (no register change)
    ARCHIVED = "archived"                     # 归档
    REFUSED = "refused"                       # 不予受理
    REJECTED = "rejected"                     # 驳回 / 退回
    WITHDRAWN = "withdrawn"                   # 撤回


STAGE_LABELS: dict[Stage, tuple[str, str]] = {
    Stage.APPLIED: ("申请", "applied"), Stage.ACCEPTED: ("受理", "accepted"),
    Stage.REVIEWING: ("审核", "under review"), Stage.REGISTERED: ("登簿", "registered"),
    Stage.CERTIFICATE_PREPARED: ("缮证", "certificate prepared"),
    Stage.ISSUED: ("发证", "certificate issued"), Stage.CONCLUDED: ("办结", "concluded"),
    Stage.ARCHIVED: ("归档", "archived"), Stage.REFUSED: ("不予受理", "refused"),
    Stage.REJECTED: ("驳回", "rejected"), Stage.WITHDRAWN: ("撤回", "withdrawn"),
}

CLOSED = frozenset({Stage.ARCHIVED, Stage.REFUSED, Stage.REJECTED, Stage.WITHDRAWN})
BEFORE_ENTRY = frozenset({Stage.APPLIED, Stage.ACCEPTED, Stage.REVIEWING})


class Action(StrEnum):
    ACCEPT = "accept"
    REFUSE = "refuse"
    REVIEW = "review"
    REGISTER = "register"
    CONCLUDE = "conclude"
    PREPARE = "prepare"
    ISSUE = "issue"
    ARCHIVE = "archive"
    REJECT = "reject"
    WITHDRAW = "withdraw"


@dataclass(frozen=True)
class Move:
    action: Action
    sources: frozenset[Stage]
    target: Stage
    needs_reason: bool = False


MOVES: dict[Action, Move] = {m.action: m for m in (
    Move(Action.ACCEPT, frozenset({Stage.APPLIED}), Stage.ACCEPTED),
    Move(Action.REFUSE, frozenset({Stage.APPLIED}), Stage.REFUSED, needs_reason=True),
    Move(Action.REVIEW, frozenset({Stage.ACCEPTED, Stage.REVIEWING}), Stage.REVIEWING),
    Move(Action.REGISTER, frozenset({Stage.ACCEPTED, Stage.REVIEWING}), Stage.REGISTERED),
    Move(Action.CONCLUDE, frozenset({Stage.ACCEPTED, Stage.REVIEWING}), Stage.CONCLUDED),
    Move(Action.PREPARE, frozenset({Stage.REGISTERED}), Stage.CERTIFICATE_PREPARED),
    Move(Action.ISSUE, frozenset({Stage.CERTIFICATE_PREPARED}), Stage.ISSUED),
    Move(Action.ARCHIVE, frozenset({Stage.ISSUED, Stage.REGISTERED, Stage.CONCLUDED}),
         Stage.ARCHIVED),
    Move(Action.REJECT, frozenset({Stage.ACCEPTED, Stage.REVIEWING}), Stage.REJECTED,
         needs_reason=True),
    Move(Action.WITHDRAW, frozenset(BEFORE_ENTRY), Stage.WITHDRAWN),
)}


class PauseReason(StrEnum):
    """Time that does not count against the limit (registration.md §1)."""

    SUPPLEMENT = "supplement"         # 补正: waiting for supplemented materials
    ANNOUNCEMENT = "announcement"     # 公告
    SITE_VISIT = "site_visit"         # 实地查看
    INVESTIGATION = "investigation"   # 调查
    POLICY_CHECK = "policy_check"     # 政策性住房、划拨土地补缴出让金、限购核查
    TAX_PAYMENT = "tax_payment"       # 欠缴税费


PAUSE_LABELS: dict[PauseReason, tuple[str, str]] = {
    PauseReason.SUPPLEMENT: ("补正材料", "supplementing materials"),
    PauseReason.ANNOUNCEMENT: ("公告", "public announcement"),
    PauseReason.SITE_VISIT: ("实地查看", "site visit"),
    PauseReason.INVESTIGATION: ("调查", "investigation"),
    PauseReason.POLICY_CHECK: ("政策性核查", "policy / eligibility check"),
    PauseReason.TAX_PAYMENT: ("缴纳税费", "waiting for taxes and fees"),
}

LIGHT_LABELS = {"green": ("正常", "on time"), "yellow": ("预警", "due soon"),
                "red": ("超期", "overdue")}

"""``docs/errors.md`` generated from the code: every stable error code, its HTTP status, its
messages and what the caller should do. ``python -m api.errordocs > docs/errors.md``;
``tests/test_http_hardening.py`` fails when the file and the code disagree.

Codes come from three places, all read here and nowhere written twice:

* ``CadastreError`` subclasses with a class-level ``code`` (status from ``api.errors.STATUS``);
* calls in the source that raise such a class with a literal code, ``InvalidInput("FLOOR_REQUIRED",
  "…")``, or a ``(code, message)`` pair a module raises through one class (found with ``ast``);
* the codes the HTTP layer answers with itself (``api.errors``, ``api.problems`` callers).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from cadastre.errors import CadastreError
from cadastre.settings import PROJECT_ROOT

PACKAGES = ("cadastre", "tiles", "gis", "api")
CODE = re.compile(r"^[A-Z][A-Z0-9_]{2,}$")
# answers made without an exception: position of the status argument (code and message follow)
ANSWER_CALLS = {"problem_response": 0, "send_problem": 1}

ACTIONS = {
    400: "改正请求后再发，原样重试无用 / correct the request (the message names what is wrong); "
         "retrying it unchanged will fail again",
    401: "重新登录或提供有效的令牌 / API 密钥 / sign in again, or send a valid token or API key",
    403: "该身份无此权限（角色、辖区或字段）；请联系管理员 / the credential lacks the role, county "
         "or field: ask an administrator",
    404: "检查标识或路径；查询类接口对“无权查看”也给出同一答复 / check the identifier or path "
         "(look-ups give the same answer for records you may not see)",
    405: "改用 Allow 头列出的方法 / use a method listed in the Allow header",
    413: "缩小请求体（JSON 见 CADASTRE_MAX_BODY_BYTES，上传见测绘成果上限） / send a smaller "
         "body (JSON: CADASTRE_MAX_BODY_BYTES; uploads: the survey upload limit)",
    415: "改用接口要求的内容类型 / send the content type the operation documents",
    422: "改正消息中列出的参数 / fix the parameters the message names",
    429: "按 Retry-After 的秒数等待后再试 / wait the seconds in Retry-After, then retry",
    500: "服务器故障；请报告请求时间，重试未必有效 / a server fault: report the time of the "
         "request; retrying may not help",
    503: "按 Retry-After 等待后重试；服务会自行恢复 / retry after the seconds in Retry-After; "
         "the service recovers by itself",
}


@dataclass
class Entry:
    code: str
    statuses: set[int] = field(default_factory=set)
    messages: set[str] = field(default_factory=set)
    where: set[str] = field(default_factory=set)


Classes = dict[str, list[type[CadastreError]]]


def error_classes() -> Classes:
    """Every CadastreError subclass in the project's packages, by class name (two modules may
    name a class alike: each name keeps its classes in module order, whatever the import
    order)."""
    for package in PACKAGES:
        mod = importlib.import_module(package)
        for info in pkgutil.walk_packages(mod.__path__, package + "."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)
    out: Classes = {}
    seen: set[type[CadastreError]] = set()
    todo: list[type[CadastreError]] = [CadastreError]
    while todo:
        cls = todo.pop()
        if cls not in seen:
            seen.add(cls)
            out.setdefault(cls.__name__, []).append(cls)
            todo.extend(cls.__subclasses__())
    return {name: sorted(found, key=lambda c: (c.__module__, c.__qualname__))
            for name, found in out.items()}


def _pick(found: list[type[CadastreError]], module: str) -> type[CadastreError]:
    """The class a module means by a name: its own, else the first in module order."""
    return next((c for c in found if c.__module__ == module), found[0])


def _status(cls: type[CadastreError]) -> int:
    from api.errors import status_for

    return status_for(cls.__new__(cls))


def _text(node: ast.AST | None) -> str | None:
    """A message literal; the parts of an f-string that are not literal become ``…``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(str(v.value) if isinstance(v, ast.Constant) else "…"
                       for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left), _text(node.right)
        return left + right if left is not None and right is not None else None
    return None


def _callee(node: ast.Call) -> str | None:
    f = node.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def _message(call: ast.Call, position: int) -> str | None:
    for kw in call.keywords:
        if kw.arg == "message":
            return _text(kw.value)
    return _text(call.args[position]) if len(call.args) > position else None


def scan(classes: Classes) -> dict[str, Entry]:
    entries: dict[str, Entry] = {}

    def add(code: str, status: int, message: str | None, where: str) -> None:
        e = entries.setdefault(code, Entry(code))
        e.statuses.add(status)
        if message and message != code:
            e.messages.add(message)
        e.where.add(where)

    for cls in (c for found in classes.values() for c in found):
        if "code" in vars(cls) and CODE.match(cls.code):
            add(cls.code, _status(cls), None, inspect.getmodule(cls).__name__)  # type: ignore[union-attr]
    for package in PACKAGES:
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            _scan_file(path, classes, add)
    return entries


def _scan_file(path: Path, classes: Classes, add) -> None:  # type: ignore[no-untyped-def]
    module = ".".join(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    dynamic: set[str] = set()      # classes this module raises with a computed code
    pairs: list[tuple[str, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _callee(node)
            if name in ANSWER_CALLS and len(node.args) >= ANSWER_CALLS[name] + 3:
                status, code, message = node.args[ANSWER_CALLS[name]:ANSWER_CALLS[name] + 3]
                if isinstance(status, ast.Constant) and isinstance(code, ast.Constant) \
                        and isinstance(code.value, str) and CODE.match(code.value):
                    add(code.value, int(str(status.value)), _text(message), module)
            elif name in classes:
                cls = _pick(classes[name], module)
                first = node.args[0] if node.args else None
                if isinstance(first, ast.Constant) and isinstance(first.value, str) \
                        and CODE.match(first.value):
                    add(first.value, _status(cls), _message(node, 1), module)
                elif first is not None and not (isinstance(first, ast.Constant)
                                                and first.value is None):
                    dynamic.add(name)
                elif "code" in vars(cls) or any("code" in vars(b) for b in cls.__mro__[1:-1]):
                    add(cls.code, _status(cls), _message(node, 1), module)
        elif isinstance(node, ast.Tuple) and len(node.elts) == 2:
            first, second = node.elts
            if isinstance(first, ast.Constant) and isinstance(first.value, str) \
                    and CODE.match(first.value) and " / " in (_text(second) or ""):
                pairs.append((first.value, _text(second) or ""))
    if pairs and len(dynamic) == 1:
        cls = _pick(classes[dynamic.pop()], module)
        for pair_code, pair_message in pairs:
            add(pair_code, _status(cls), pair_message, module)


def framework_entries() -> dict[str, Entry]:
    """Codes the HTTP layer answers with that no class carries."""
    from api import errors

    out = {}
    for status, (code, message) in errors.HTTP_CODES.items():
        out[code] = Entry(code, {status}, {message}, {"api.errors"})
    out[errors.INTERNAL[0]] = Entry(errors.INTERNAL[0], {500}, {errors.INTERNAL[1]},
                                    {"api.errors"})
    out["INVALID_REQUEST"] = Entry("INVALID_REQUEST", {422}, {
        "请求参数无效 / invalid request parameters: …"}, {"api.errors"})
    for exc in (errors.DB_DOWN, errors.DATA_INVALID):
        out.setdefault(exc.code, Entry(exc.code)).statuses.add(errors.status_for(exc))
        out[exc.code].messages.add(exc.message)
    return out


def catalogue() -> list[Entry]:
    entries = scan(error_classes())
    for code, extra in framework_entries().items():
        e = entries.setdefault(code, Entry(code))
        e.statuses |= extra.statuses
        e.messages |= extra.messages
        e.where |= extra.where
    return sorted(entries.values(), key=lambda e: e.code)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    entries = catalogue()
    by_status: dict[int, int] = defaultdict(int)
    for e in entries:
        for s in e.statuses:
            by_status[s] += 1
    lines = [
        "# 错误代码 / Error codes",
        "",
        "<!-- generated by `python -m api.errordocs > docs/errors.md`; "
        "tests/test_http_hardening.py keeps it in sync. Do not edit by hand. -->",
        "",
        "Every 4xx and 5xx answer has one shape, RFC 9457 problem details "
        "(`application/problem+json`) with the stable `code` as an extension member and the "
        "`error` member older clients read:",
        "",
        "```json",
        '{"type": "urn:cadastre:error:UNIT_NOT_FOUND", "title": "Not Found", "status": 404,',
        ' "detail": "未找到该不动产单元 / unit not found", "code": "UNIT_NOT_FOUND",',
        ' "error": {"code": "UNIT_NOT_FOUND", "message": "未找到该不动产单元 / unit not found"}}',
        "```",
        "",
        "Programs should branch on `code` (stable), never on the message. Messages are fixed "
        "texts (中文 / English): nothing of the request is echoed. 429 and 503 carry "
        "`Retry-After` (seconds).",
        "",
        f"{len(entries)} codes: " + ", ".join(f"{n} × {s}" for s, n in sorted(by_status.items()))
        + ".",
        "",
        "## What to do, by status",
        "",
        "| status | what the caller should do |",
        "|---|---|",
        *[f"| {s} | {_cell(ACTIONS[s])} |" for s in sorted(by_status) if s in ACTIONS],
        "",
        "## Codes",
        "",
        "| code | status | message(s) | raised in |",
        "|---|---|---|---|",
    ]
    for e in entries:
        messages = "<br>".join(_cell(m) for m in sorted(e.messages)) or "—"
        lines.append(f"| `{e.code}` | {', '.join(map(str, sorted(e.statuses)))} | {messages} | "
                     f"{', '.join(f'`{w}`' for w in sorted(e.where))} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")

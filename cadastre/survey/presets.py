"""Field-map presets a team of surveyors saves and reuses (``cad.field_map_preset``).

A surveyor's team is ``auth.account.team`` (an account without one is a team of its own)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import psycopg

from cadastre.errors import InvalidInput, NotFound
from cadastre.ingest.fieldmap import parse_field_map

__all__ = ["team_of", "set_team", "list_presets", "get_preset", "save_preset", "delete_preset"]

_NAME = re.compile(r"^[\w\u4e00-\u9fff .()-]{1,64}$")


def team_of(conn: psycopg.Connection, account_id: uuid.UUID | None) -> str:
    row = conn.execute("SELECT coalesce(team, 'user:' || username) FROM auth.account "
                       "WHERE account_id = %s", (account_id,)).fetchone()
    if row is None:
        raise NotFound("ACCOUNT_NOT_FOUND", "账户不存在 / no such account")
    return str(row[0])


def set_team(conn: psycopg.Connection, username: str, team: str | None) -> None:
    """Put an account in a team (None: a team of its own)."""
    if team is not None and not 1 <= len(team.strip()) <= 64:
        raise InvalidInput("TEAM_INVALID", "组名为1至64个字符 / a team name has 1-64 characters")
    cur = conn.execute("UPDATE auth.account SET team = %s WHERE username = %s",
                       (team.strip() if team else None, username))
    if cur.rowcount == 0:
        raise NotFound("ACCOUNT_NOT_FOUND", "账户不存在 / no such account")


def _check_name(name: str) -> str:
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise InvalidInput("PRESET_NAME_INVALID", "预设名称为1至64个字母、数字、汉字、空格或"
                           "-._() / a preset name has 1-64 letters, digits, CJK, spaces or -._()")
    return name


def list_presets(conn: psycopg.Connection, team: str) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT name, mapping, new_parcels, created_by, updated_at FROM "
                        "cad.field_map_preset WHERE team = %s ORDER BY name", (team,)).fetchall()
    return [{"name": n, "field_map": m, "new_parcels": np, "saved_by": by, "updated_at": at}
            for n, m, np, by, at in rows]


def get_preset(conn: psycopg.Connection, team: str, name: str) -> dict[str, Any]:
    row = conn.execute("SELECT mapping, new_parcels FROM cad.field_map_preset WHERE team = %s "
                       "AND name = %s", (team, name.strip())).fetchone()
    if row is None:
        raise NotFound("PRESET_NOT_FOUND", "本组没有该字段映射预设 / your team has no such "
                       "field-map preset")
    return {"name": name.strip(), "field_map": row[0], "new_parcels": row[1]}


def save_preset(conn: psycopg.Connection, team: str, name: str, field_map: Any,
                new_parcels: bool, actor: str) -> dict[str, Any]:
    mapping = parse_field_map(field_map)
    if not mapping and not new_parcels:
        raise InvalidInput("FIELD_MAP_INVALID", "预设至少要有一项字段映射或“新宗地” / a preset "
                           "needs a field map entry or 'new parcels'")
    name = _check_name(name)
    conn.execute(
        "INSERT INTO cad.field_map_preset (team, name, mapping, new_parcels, created_by) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (team, name) DO UPDATE SET "
        "mapping = excluded.mapping, new_parcels = excluded.new_parcels, "
        "created_by = excluded.created_by, updated_at = now()",
        (team, name, json.dumps(mapping, ensure_ascii=False), new_parcels, actor))
    return {"name": name, "field_map": mapping, "new_parcels": new_parcels}


def delete_preset(conn: psycopg.Connection, team: str, name: str) -> None:
    cur = conn.execute("DELETE FROM cad.field_map_preset WHERE team = %s AND name = %s",
                       (team, name.strip()))
    if cur.rowcount == 0:
        raise NotFound("PRESET_NOT_FOUND", "本组没有该字段映射预设 / your team has no such "
                       "field-map preset")

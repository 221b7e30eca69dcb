"""Field-map presets of a surveyor's team: list, save, delete (before the survey routes, whose
``/{submission_id}`` would otherwise take ``field-maps``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from api.auditing import record_sync
from api.auth import require
from api.state import app_state
from cadastre.access.principal import Principal
from cadastre.access.privacy import Role
from cadastre.survey import presets

router = APIRouter(prefix="/api/v1/surveys/field-maps", tags=["surveys"])
STAFF = require(Role.SURVEYOR, Role.REGISTRAR)


class Preset(BaseModel):
    field_map: str | dict[str, str] = Field("", description="parcel_code=IDU,declared_area=…")
    new_parcels: bool = False


@router.get("", summary="本组的字段映射预设 / the team's field-map presets")
def list_presets(request: Request, who: Annotated[Principal, Depends(STAFF)]) -> dict[str, Any]:
    with app_state(request).sync_pool.connection() as conn:
        team = presets.team_of(conn, who.account_id)
        items = presets.list_presets(conn, team)
        record_sync(request, who, "survey.field_maps", None, len(items), conn=conn)
    return {"team": team, "items": items}


@router.put("/{name}", summary="保存字段映射预设 / save a field-map preset")
def save_preset(request: Request, name: str, body: Preset,
                who: Annotated[Principal, Depends(STAFF)]) -> dict[str, Any]:
    with app_state(request).sync_pool.connection() as conn, conn.transaction():
        team = presets.team_of(conn, who.account_id)
        saved = presets.save_preset(conn, team, name, body.field_map, body.new_parcels,
                                    f"{who.role.value}:{who.account_id}")
        record_sync(request, who, "survey.field_map.save", saved["name"], 1, conn=conn)
    return {"team": team, **saved}


@router.delete("/{name}", summary="删除字段映射预设 / delete a field-map preset")
def delete_preset(request: Request, name: str, who: Annotated[Principal, Depends(STAFF)]
                  ) -> dict[str, Any]:
    with app_state(request).sync_pool.connection() as conn, conn.transaction():
        team = presets.team_of(conn, who.account_id)
        presets.delete_preset(conn, team, name)
        record_sync(request, who, "survey.field_map.delete", name[:64], 1, conn=conn)
    return {"team": team, "deleted": name}

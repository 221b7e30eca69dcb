"""Owners: verification, my units and rights, 宗地图 / 分层分户图 downloads, certificate QR."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["owner"])

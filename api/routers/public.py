"""Public queries: search, what-is-here, parcel/unit details, a building's unit table (楼盘表)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["public"])

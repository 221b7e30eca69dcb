"""Numbers handed out when the register creates parcels, buildings and units (GB/T 37346 change
rules): the next 宗地顺序号, 幢号 or 户号 is the largest used + 1, never a reused one."""

from __future__ import annotations

from collections.abc import Iterable

from cadastre.codes import (
    MAX_BUILDING_NO,
    MAX_PARCEL_SEQUENCE,
    MAX_UNIT_NO,
    MULTI_BUILDING_NO,
    CodeError,
    check_int,
)


def _next_number(
    existing: Iterable[int], high: int, skip: int | None, what_zh: str, what_en: str, code: str
) -> int:
    current = 0
    for n in existing:
        check_int(n, 1, high, f"{code}_RANGE", f"已有{what_zh}", f"existing {what_en}")
        if n != skip:
            current = max(current, n)
    candidate = current + 1
    if candidate == skip:
        candidate += 1
    if candidate > high:
        raise CodeError(
            f"{code}_EXHAUSTED",
            f"{what_zh}已用尽(最大{high})，不可复用旧号",
            f"{what_en} range exhausted (max {high}); numbers are never reused",
        )
    return candidate


def next_building_no(existing: Iterable[int]) -> int:
    """Next 幢号 of a parcel: max + 1, never reusing, skipping the reserved 9999.

    Raises ``CodeError("BUILDING_NO_EXHAUSTED")`` when 9998 is already used.
    """
    return _next_number(
        existing, MAX_BUILDING_NO, MULTI_BUILDING_NO, "幢号", "building number", "BUILDING_NO"
    )


def next_unit_no(existing: Iterable[int]) -> int:
    """Next 户号 of a building: max + 1 in 1..9999, never reusing."""
    return _next_number(existing, MAX_UNIT_NO, None, "户号", "unit number", "UNIT_NO")


def next_parcel_sequence(existing_sequences: Iterable[int]) -> int:
    """Next 宗地顺序号 for one zone and feature code: max + 1 in 1..99999, never reusing.

    The caller passes the sequences already used in the same 地籍子区 with the same 宗地特征码.
    """
    seqs, high = existing_sequences, MAX_PARCEL_SEQUENCE
    return _next_number(seqs, high, None, "宗地顺序号", "parcel sequence", "PARCEL_SEQUENCE")

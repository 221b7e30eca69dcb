"""Attribute names -> normalised property keys, layer names -> feature kinds, value coercion.

Source names follow TD/T 1066 (不动产登记数据库标准) tables KTT_ZDJBXX, KTT_FW_ZRZ, KTT_FW_C,
KTT_FW_H and KTT_GY_JZD, plus plain English and Chinese column names seen in deliverables.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from cadastre.codes import building_code_of, is_unit_code_with_fixture, parcel_code_of

__all__ = [
    "kind_from_layer_name",
    "kind_from_value",
    "kind_from_keys",
    "normalise_properties",
    "normalise_columns",
    "parse_floor_label",
    "json_safe",
]

# Normalised key for a source name (upper-cased), valid for every kind.
_COMMON: dict[str, str] = {
    # parcel (KTT_ZDJBXX)
    "ZDDM": "parcel_code",
    "宗地代码": "parcel_code",
    "PARCEL_CODE": "parcel_code",
    "ZL": "seat",
    "坐落": "seat",
    "SEAT": "seat",
    "ADDRESS": "seat",
    "LOCATION": "seat",
    "ZDMJ": "declared_area",
    "宗地面积": "declared_area",
    "DECLARED_AREA": "declared_area",
    "AREA": "declared_area",
    "面积": "declared_area",
    "DLBM": "land_use",
    "地类编码": "land_use",
    "TDYT": "land_use",
    "LAND_USE": "land_use",
    "GHYT": "usage",
    "用途": "usage",
    "USAGE": "usage",
    "TFH": "map_sheet",
    "图幅号": "map_sheet",
    "MAP_SHEET": "map_sheet",
    "ZDMC": "name",
    "MC": "name",
    "名称": "name",
    "NAME": "name",
    "JZWMC": "name",
    "XMMC": "project_name",
    "MJDW": "area_unit",
    # building (KTT_FW_ZRZ)
    "ZRZH": "building_code",
    "自然幢号": "building_code",
    "BUILDING_CODE": "building_code",
    "DSCS": "floors_above",
    "地上层数": "floors_above",
    "FLOORS_ABOVE": "floors_above",
    "DXCS": "floors_below",
    "地下层数": "floors_below",
    "FLOORS_BELOW": "floors_below",
    "ZCS": "floors_total",
    "总层数": "floors_total",
    "JZWGD": "height",
    "建筑物高度": "height",
    "HEIGHT": "height",
    "高度": "height",
    # floor (KTT_FW_C)
    "CH": "floor_no",
    "SJC": "floor_no",
    "层号": "floor_no",
    "所在层": "floor_no",
    "FLOOR_NO": "floor_no",
    "FLOOR": "floor_no",
    "LEVEL": "floor_no",
    "BASE_ELEVATION": "base_elevation",
    "ELEVATION": "base_elevation",
    "BG": "base_elevation",
    "标高": "base_elevation",
    "层底标高": "base_elevation",
    "DMBG": "base_elevation",
    "CG": "storey_height",
    "层高": "storey_height",
    "STOREY_HEIGHT": "storey_height",
    # unit (KTT_FW_H)
    "BDCDYH": "unit_code",
    "不动产单元号": "unit_code",
    "不动产单元代码": "unit_code",
    "UNIT_CODE": "unit_code",
    "SHBW": "room_no",
    "房号": "room_no",
    "室号": "room_no",
    "ROOM_NO": "room_no",
    "ROOM": "room_no",
    "HH": "unit_no",
    "FWYT": "use",
    "FWYT1": "use",
    "房屋用途": "use",
    "USE": "use",
    "SCJZMJ": "building_area",
    "建筑面积": "building_area",
    "BUILDING_AREA": "building_area",
    "SCTNJZMJ": "inner_area",
    "套内建筑面积": "inner_area",
    "INNER_AREA": "inner_area",
    "SCFTJZMJ": "shared_area",
    "分摊建筑面积": "shared_area",
    "SHARED_AREA": "shared_area",
    # boundary point (KTT_GY_JZD)
    "JZDH": "point_no",
    "界址点号": "point_no",
    "点号": "point_no",
    "POINT_NO": "point_no",
    "ZDZHDM": "parcel_ref",
    "PARCEL_REF": "parcel_ref",
    "QH": "ring_no",
    "圈号": "ring_no",
    "RING_NO": "ring_no",
    "SXH": "sequence",
    "JBLX": "marker_type",
    "JZDLX": "point_type",
}

# Kind-specific overrides (a floor's "height" is its storey height, a unit's YT its use, ...).
_BY_KIND: dict[str, dict[str, str]] = {
    "parcel": {"YT": "land_use", "BDCDYH": "unit_code"},
    "building": {"YT": "usage", "GHYT": "usage"},
    "floor": {"HEIGHT": "storey_height", "高度": "storey_height"},
    "unit": {"YT": "use", "GHYT": "use", "AREA": "building_area", "面积": "building_area"},
    "boundary_point": {"NAME": "point_no", "ZDDM": "parcel_ref", "宗地代码": "parcel_ref"},
}

_FLOAT_KEYS = frozenset(
    {
        "declared_area",
        "height",
        "base_elevation",
        "storey_height",
        "building_area",
        "inner_area",
        "shared_area",
    }
)
_INT_KEYS = frozenset({"floors_above", "floors_below", "floors_total", "ring_no", "sequence"})
_CODE_KEYS = frozenset({"parcel_code", "unit_code", "building_code"})

#: TD/T 1066 MJDW (面积单位) -> square metres per unit: 1 平方米, 2 亩, 3 公顷 (assumed coding).
_AREA_UNIT_FACTORS = {
    "1": 1.0,
    "2": 10000.0 / 15.0,
    "3": 10000.0,
    "平方米": 1.0,
    "亩": 10000.0 / 15.0,
    "公顷": 10000.0,
}

_LAYER_KINDS: dict[str, str] = {
    "ZDJBXX": "parcel",
    "ZD": "parcel",
    "ZDXX": "parcel",
    "PARCEL": "parcel",
    "宗地": "parcel",
    "DK": "parcel",
    "地块": "parcel",
    "ZRZ": "building",
    "BUILDING": "building",
    "自然幢": "building",
    "幢": "building",
    "C": "floor",
    "FLOOR": "floor",
    "层": "floor",
    "H": "unit",
    "UNIT": "unit",
    "户": "unit",
    "ROOM": "unit",
    "JZD": "boundary_point",
    "BOUNDARY_POINT": "boundary_point",
    "界址点": "boundary_point",
}
_KIND_WORDS: dict[str, str] = {
    "PARCEL": "parcel",
    "宗地": "parcel",
    "BUILDING": "building",
    "自然幢": "building",
    "FLOOR": "floor",
    "层": "floor",
    "UNIT": "unit",
    "户": "unit",
    "BOUNDARY_POINT": "boundary_point",
    "界址点": "boundary_point",
}


def kind_from_layer_name(name: str) -> str | None:
    key = name.strip().upper()
    key = re.sub(r"^(KTT_FW_|KTT_GY_|KTT_)", "", key)
    if key in _LAYER_KINDS:
        return _LAYER_KINDS[key]
    if key.endswith("S") and key[:-1] in _LAYER_KINDS and len(key) > 2:
        return _LAYER_KINDS[key[:-1]]
    return None


def kind_from_value(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return _KIND_WORDS.get(value.strip().upper())


def kind_from_keys(keys: set[str], geom_type: str) -> str | None:
    """Guess a kind from normalised property keys and the geometry type."""
    if geom_type in ("Point", "MultiPoint"):
        return "boundary_point" if "point_no" in keys else None
    if ("unit_code" in keys and "floor_no" in keys) or "room_no" in keys:
        return "unit"
    if "floor_no" in keys:
        return "floor"
    if "building_code" in keys and ({"floors_above", "floors_total", "height"} & keys):
        return "building"
    if {"parcel_code", "declared_area", "seat", "land_use"} & keys:
        return "parcel"
    return None


def parse_floor_label(text: object) -> int | None:
    """Floor number from "3", 3.0, "F03", "3F", "3层", "-1F", "B1", "地下1层", "负一层"."""
    if isinstance(text, bool) or text is None:
        return None
    if isinstance(text, int):
        return text
    if isinstance(text, float):
        return int(text) if math.isfinite(text) and text.is_integer() else None
    s = str(text).strip().upper().replace(" ", "")
    if not s:
        return None
    m = re.fullmatch(r"(?:地下|负|B)(\d+)(?:层|F)?", s) or re.fullmatch(r"-(\d+)(?:F|层)?", s)
    if m:
        return -int(m.group(1))
    m = re.fullmatch(r"(?:F|L)?(-?\d+)(?:F|层|楼)?", s) or re.fullmatch(r"第(-?\d+)层", s)
    if m:
        return int(m.group(1))
    return None


def json_safe(value: Any) -> Any:
    """A plain-Python, JSON-friendly version of an attribute value (NaN -> None)."""
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas missing values
        return None
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, _dt.date | _dt.datetime | _dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return json_safe(item())
    if hasattr(value, "isoformat"):  # pandas Timestamp
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return str(value)


def _to_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _to_int(value: Any) -> int | None:
    f = _to_float(value)
    return int(f) if f is not None and f.is_integer() else None


def _coerce(key: str, value: Any) -> Any:
    if key in _FLOAT_KEYS:
        return _to_float(value)
    if key in _INT_KEYS:
        return _to_int(value)
    if key == "floor_no":
        return parse_floor_label(value)
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if key in _CODE_KEYS or key in ("point_no", "room_no", "parcel_ref", "land_use"):
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return None if value is None else str(value)
    return value


def _key_of(name: str, overrides: Mapping[str, str]) -> str | None:
    upper = name.strip().upper()
    return overrides.get(upper) or _COMMON.get(upper) or _COMMON.get(name.strip())


def _finish(props: dict[str, Any], kind: str | None, safe: dict[str, Any]) -> dict[str, Any]:
    """Area unit, codes derived from the unit code, and the source values under ``"raw"``."""
    if "area_unit" in props:
        unit = props.pop("area_unit")
        factor = _AREA_UNIT_FACTORS.get(str(unit).strip()) if unit is not None else None
        if factor and props.get("declared_area") is not None:
            props["declared_area"] = props["declared_area"] * factor
    if kind == "parcel" and not props.get("parcel_code"):
        unit_code = props.get("unit_code")
        if isinstance(unit_code, str) and len(unit_code) == 28:
            props["parcel_code"] = parcel_code_of(unit_code)
    if kind == "unit" and not props.get("building_code"):
        unit_code = props.get("unit_code")
        if isinstance(unit_code, str) and is_unit_code_with_fixture(unit_code, "F"):
            props["building_code"] = building_code_of(unit_code)
    props["raw"] = safe
    return props


def normalise_properties(raw: Mapping[str, Any], kind: str | None) -> dict[str, Any]:
    """Map source attributes to normalised keys; the source values stay under ``"raw"``."""
    safe = {str(k): json_safe(v) for k, v in raw.items()}
    overrides = _BY_KIND.get(kind or "", {})
    props: dict[str, Any] = {}
    for name, value in safe.items():
        key = _key_of(name, overrides)
        if key is None or key in props and props[key] is not None:
            continue
        props[key] = _coerce(key, value)
    return _finish(props, kind, safe)


def _safe_column(values: Sequence[Any]) -> list[Any]:
    """``json_safe`` of every value, with the common plain types passed straight through."""
    out: list[Any] = []
    append = out.append
    for v in values:
        t = type(v)
        if t is str or t is int or t is bool or v is None:
            append(v)
        elif t is float:
            append(v if math.isfinite(v) else None)
        else:
            append(json_safe(v))
    return out


def _coerce_column(key: str, values: list[Any]) -> list[Any]:
    """``_coerce`` of every value of a column, with the common cases inlined."""
    if key in _FLOAT_KEYS:
        if all(type(v) is float or v is None for v in values):
            return values    # json-safe floats are finite: _to_float would return them as is
    elif key not in _INT_KEYS and key != "floor_no":
        # strings are stripped (blank -> None) whatever the key
        return [(v.strip() or None) if type(v) is str else _coerce(key, v) for v in values]
    return [_coerce(key, v) for v in values]


def normalise_columns(columns: Mapping[str, Sequence[Any]], rows: int,
                      kind: str | None) -> list[dict[str, Any]]:
    """``normalise_properties`` of every row of a table given by columns (name -> ``rows``
    values): the same dicts, with the per-name work (key mapping, coercion rules) done once per
    column instead of once per value and row."""
    safe_cols: dict[str, list[Any]] = {}
    for name, values in columns.items():
        safe_cols[str(name)] = _safe_column(values)
    names = list(safe_cols)
    overrides = _BY_KIND.get(kind or "", {})
    mapped = [(key, name) for name in names if (key := _key_of(name, overrides)) is not None]
    keys = [key for key, _ in mapped]
    coerced = [_coerce_column(key, safe_cols[name]) for key, name in mapped]
    raws = ([dict(zip(names, vals, strict=True)) for vals in zip(*safe_cols.values(), strict=True)]
            if names else [{} for _ in range(rows)])
    if len(set(keys)) == len(keys):       # one source column per key: take it as it is
        props = ([dict(zip(keys, vals, strict=True)) for vals in zip(*coerced, strict=True)]
                 if keys else [{} for _ in range(rows)])
    else:                                  # the first column with a value wins, as per row
        props = []
        for i in range(rows):
            row: dict[str, Any] = {}
            for key, col in zip(keys, coerced, strict=True):
                if key in row and row[key] is not None:
                    continue
                row[key] = col[i]
            props.append(row)
    return [_finish(p, kind, raw) for p, raw in zip(props, raws, strict=True)]

"""Field maps (``parcel_code=IDU,declared_area=contenance``) and mapping suggestions.

A surveyor's file often names its fields differently from TD/T 1066. A field map says which
source field holds which of our keys. When a layer's fields are not recognised, a suggestion is
made from the field names (known synonyms, fuzzy matches) and from the values (19-character
parcel codes, 28-character unit codes, numbers close to the polygon's computed area).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely

from cadastre.errors import InvalidInput
from cadastre.ingest.fields import mappable_keys

__all__ = ["parse_field_map", "format_field_map", "Suggestion", "suggest_mapping",
           "field_report", "source_lookup", "FieldMapError"]

MAX_ENTRIES = 40
_NAME = re.compile(r"^[^\s=,;]{1,64}$")


class FieldMapError(InvalidInput):
    code = "FIELD_MAP_INVALID"


def parse_field_map(value: str | Mapping[str, str] | None) -> dict[str, str]:
    """``{"parcel_code": "IDU", ...}`` (key -> source field) from ``"parcel_code=IDU,..."``, a
    JSON object or a mapping. Raises FIELD_MAP_INVALID (without echoing the input)."""
    if value is None or value == "":
        return {}
    pairs: list[tuple[str, str]]
    if isinstance(value, Mapping):
        pairs = [(str(k), str(v)) for k, v in value.items()]
    else:
        text = value.strip()
        if text.startswith("{"):
            try:
                obj = json.loads(text)
            except ValueError:
                raise FieldMapError(message="字段映射不是有效的JSON / the field map is not valid "
                                            "JSON") from None
            if not isinstance(obj, dict):
                raise FieldMapError(message="字段映射应为对象 / the field map must be an object")
            pairs = [(str(k), str(v)) for k, v in obj.items()]
        else:
            pairs = []
            for part in filter(None, (p.strip() for p in re.split(r"[,;\n]", text))):
                key, eq, source = part.partition("=")
                if not eq:
                    raise FieldMapError(message="字段映射的每项应为 键=字段 / each entry of a "
                                                "field map is key=field")
                pairs.append((key.strip(), source.strip()))
    if len(pairs) > MAX_ENTRIES:
        raise FieldMapError(message=f"字段映射最多{MAX_ENTRIES}项 / a field map has at most "
                                    f"{MAX_ENTRIES} entries")
    known = mappable_keys()
    out: dict[str, str] = {}
    sources: set[str] = set()
    for key, source in pairs:
        if key not in known:
            raise FieldMapError(message="字段映射中有未知的键（可用：" + "、".join(sorted(known))
                                + "）/ the field map names an unknown key (known: "
                                + ", ".join(sorted(known)) + ")")
        if not _NAME.fullmatch(source):
            raise FieldMapError(message="字段名为空或含有空格、=、逗号 / a field name is empty or "
                                        "holds spaces, '=' or ','")
        if key in out or source.upper() in sources:
            raise FieldMapError(message="字段映射中有重复的键或字段 / a key or field occurs twice "
                                        "in the field map")
        out[key] = source
        sources.add(source.upper())
    return out


def format_field_map(mapping: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in mapping.items())


def source_lookup(mapping: Mapping[str, str]) -> dict[str, str]:
    """What the normalisers take: upper-cased source name -> key."""
    return {v.strip().upper(): k for k, v in mapping.items()}


@dataclass(frozen=True)
class Suggestion:
    key: str
    field: str
    by: str              # "values" | "name"
    reason: str          # 中文 / English

    def as_dict(self) -> dict[str, str]:
        return {"key": self.key, "field": self.field, "by": self.by, "reason": self.reason}


_PARCEL_CODE = re.compile(r"\d{12}[GJZ][ABSXCDEFGHWY]\d{5}")
_UNIT_CODE = re.compile(r"\d{12}[GJZ][ABSXCDEFGHWY]\d{5}[FLQW]\d{8}")
_BUILDING_CODE = re.compile(r"\d{12}[GJZ][ABSXCDEFGHWY]\d{5}F\d{4}")
_CODE_PATTERNS = (("unit_code", _UNIT_CODE, "28位不动产单元代码", "28-character unit codes"),
                  ("building_code", _BUILDING_CODE, "24位自然幢代码",
                   "24-character building codes"),
                  ("parcel_code", _PARCEL_CODE, "19位宗地代码", "19-character parcel codes"))
#: Names (upper case) that usually hold a key, beyond the TD/T 1066 names we map anyway.
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "parcel_code": ("ID", "IDU", "CODE", "PARCEL", "PARCEL_ID", "PARCELID", "ZDH", "宗地号",
                    "地块编号", "编号", "代码", "DKBH", "DKDM"),
    "declared_area": ("CONTENANCE", "SURFACE", "SHAPE_AREA", "MJ", "TDMJ", "DKMJ", "地块面积",
                      "SUPERFICIE", "AREA_M2", "GROOTTE"),
    "seat": ("ADRESSE", "ADDR", "地址", "位置", "STREET"),
    "land_use": ("LANDUSE", "地类", "DL", "USE_CODE"),
    "name": ("LABEL", "TITLE", "NOM", "地块名称"),
}
_AREA_RATIO = (0.8, 1.25)


def _strings(values: Sequence[Any]) -> list[str]:
    return [v.strip() for v in values if isinstance(v, str) and v.strip()]


def _numbers(values: Sequence[Any]) -> np.ndarray:
    out = []
    for v in values:
        if isinstance(v, bool) or v is None:
            out.append(np.nan)
            continue
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            out.append(np.nan)
    return np.asarray(out, dtype=np.float64)


def _by_values(name: str, values: Sequence[Any], areas: np.ndarray | None
               ) -> Suggestion | None:
    texts = _strings(values)
    if texts and len(texts) >= 0.9 * len(values):
        for key, pattern, zh, en in _CODE_PATTERNS:
            hits = sum(1 for t in texts if pattern.fullmatch(t))
            if hits >= 0.9 * len(texts):
                share = round(100 * hits / len(values))
                return Suggestion(key, name, "values", f"{share}%的值为{zh} / {share}% of the "
                                  f"values are {en}")
    if areas is None:
        return None
    nums = _numbers(values)
    ok = np.isfinite(nums) & (nums > 0) & (areas > 0)
    if ok.sum() < max(1, 0.8 * len(values)):
        return None
    ratio = float(np.median(nums[ok] / areas[ok]))
    if _AREA_RATIO[0] <= ratio <= _AREA_RATIO[1]:
        return Suggestion("declared_area", name, "values",
                          f"数值与计算面积相近（中位比{ratio:.3f}）/ numbers close to the computed "
                          f"areas (median ratio {ratio:.3f})")
    return None


_CODE_KEYS = {key: pattern for key, pattern, _, _ in _CODE_PATTERNS}


def _by_name(name: str, taken: set[str], values: Sequence[Any]) -> Suggestion | None:
    upper = name.strip().upper()
    texts = _strings(values)
    # a code field by its name only if its values are such codes (or there are none)
    taken = taken | {key for key, pattern in _CODE_KEYS.items()
                     if texts and not any(pattern.fullmatch(t) for t in texts)}
    for key, names in _SYNONYMS.items():
        if key not in taken and upper in names:
            return Suggestion(key, name, "name", f"字段名“{name}”常用于{key} / the name "
                              f"'{name}' usually holds {key}")
    candidates = {n: k for k, names in _SYNONYMS.items() if k not in taken for n in names}
    close = difflib.get_close_matches(upper, list(candidates), n=1, cutoff=0.8)
    if close:
        key = candidates[close[0]]
        return Suggestion(key, name, "name", f"字段名“{name}”与{close[0]}相似 / the name "
                          f"'{name}' resembles {close[0]}")
    return None


def suggest_mapping(columns: Mapping[str, Sequence[Any]], geometries: Sequence[Any] | None
                    ) -> list[Suggestion]:
    """Suggested entries of a field map for a layer's columns (value patterns first, then
    names), at most one field per key and one key per field; geometries in a projected CRS."""
    areas = _areas(geometries, False) if geometries is not None and len(geometries) else None
    return suggest_mapping_with_areas(columns, areas)


#: Rows looked at for a suggestion (the first ones of the layer).
SAMPLE_ROWS = 2000


def _areas(geoms: Sequence[Any], geographic: bool) -> np.ndarray:
    arr = np.asarray(list(geoms), dtype=object)
    polygonal = np.isin(shapely.get_type_id(arr), (3, 6))
    if not geographic:
        return np.where(polygonal, shapely.area(arr), np.nan)
    from pyproj import Geod

    geod = Geod(ellps="WGS84")
    return np.array([abs(geod.geometry_area_perimeter(g)[0]) if ok else np.nan
                     for g, ok in zip(arr, polygonal, strict=True)])


def field_report(layer: str, columns: Mapping[str, Sequence[Any]], geoms: Sequence[Any],
                 geographic: bool) -> dict[str, Any]:
    """What a report says about a layer whose fields were not (all) recognised: the fields it
    saw and the suggested field map (from the first ``SAMPLE_ROWS`` rows)."""
    n = min(SAMPLE_ROWS, len(geoms))
    sample = {name: list(values[:n]) for name, values in columns.items()}
    areas = _areas(list(geoms[:n]), geographic) if n else None
    suggestions = suggest_mapping_with_areas(sample, areas)
    keys = {s.key for s in suggestions}
    return {"layer": layer, "fields": list(columns),
            "suggested": [s.as_dict() for s in suggestions],
            "field_map": format_field_map({s.key: s.field for s in suggestions}),
            # no field holds codes: the parcels can only be taken as new parcels
            "new_parcels_suggested": not keys & {"parcel_code", "unit_code"}}


def suggest_mapping_with_areas(columns: Mapping[str, Sequence[Any]], areas: np.ndarray | None
                               ) -> list[Suggestion]:
    out: list[Suggestion] = []
    taken: set[str] = set()
    used: set[str] = set()
    for name, values in columns.items():
        s = _by_values(name, values, areas)
        if s is not None and s.key not in taken:
            out.append(s)
            taken.add(s.key)
            used.add(name)
    for name in columns:
        if name in used:
            continue
        s = _by_name(name, taken, columns[name])
        if s is not None:
            out.append(s)
            taken.add(s.key)
            used.add(name)
    return out

"""``metadata.xml`` of an OSGB production: the SRS and the SRS origin of the local coordinates."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from tiles.threed.errors import SrsUnknown, ThreeDInputError
from tiles.threed.georef import SpatialReference, parse_srs


@dataclass(frozen=True)
class ProductionMetadata:
    srs: SpatialReference
    origin: tuple[float, float, float]
    path: Path | None


def parse_origin(text: str, where: str = "") -> tuple[float, float, float]:
    try:
        values = [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
    except ValueError as exc:
        raise ThreeDInputError(
            "THREED_BAD_ORIGIN", f"原点格式错误 / bad origin {text!r} {where}".strip()
        ) from exc
    if len(values) == 2:
        values.append(0.0)
    if len(values) != 3:
        raise ThreeDInputError(
            "THREED_BAD_ORIGIN",
            f"原点应为 x,y[,z] / origin must be x,y[,z]: {text!r} {where}".strip(),
        )
    return values[0], values[1], values[2]


def read_metadata(
    production: Path, srs: str | None = None, origin: str | None = None
) -> ProductionMetadata:
    """SRS and origin from ``metadata.xml``; ``srs``/``origin`` given by the user win."""
    path = production / "metadata.xml"
    srs_text, origin_text = srs, origin
    if path.is_file():
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as exc:
            raise ThreeDInputError(
                "THREED_BAD_METADATA", f"metadata.xml 无法解析 / cannot parse {path}: {exc}"
            ) from exc
        if srs_text is None:
            srs_text = (root.findtext("SRS") or "").strip()
        if origin_text is None:
            origin_text = (root.findtext("SRSOrigin") or "").strip() or None
    elif srs_text is None:
        raise SrsUnknown(
            message=f"缺少 metadata.xml 且未指定 --srs / no metadata.xml in "
            f"{production} and no --srs given"
        )
    where = str(path) if path.is_file() and srs is None else "--srs"
    ref = parse_srs(srs_text or "", where)
    return ProductionMetadata(
        ref,
        parse_origin(origin_text, str(path)) if origin_text else (0.0, 0.0, 0.0),
        path if path.is_file() else None,
    )

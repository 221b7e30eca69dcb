"""Published 3D datasets: ``<data_dir>/3dtiles/<name>/`` with ``dataset.json`` (the registry
entry: kind, created, WGS 84 extent, source, counts, warnings) next to ``tileset.json``."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from tiles.threed.bounding_volume import Box
from tiles.threed.errors import DatasetNotFound, ThreeDInputError
from tiles.threed.georef import ecef_to_lonlath

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ENTRY = "dataset.json"


@dataclass
class DatasetInfo:
    name: str
    kind: str  # osgb | mesh | pointcloud | units
    created: str
    extent: list[float]  # [west, south, east, north] degrees (WGS 84)
    heights: list[float]  # [min, max] ellipsoidal metres
    source: str = ""
    srs: str = ""
    tiles: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def datasets_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "3dtiles"


def check_name(name: str) -> str:
    if not NAME.match(name or "") or ".." in name:
        raise ThreeDInputError(
            "THREED_BAD_NAME",
            "数据集名称无效 / invalid dataset name (letters, digits, _ . -)",
        )
    return name


def dataset_dir(data_dir: Path, name: str) -> Path:
    return datasets_dir(data_dir) / check_name(name)


def extent_of(box: Box, transform: list[float] | None) -> tuple[list[float], list[float]]:
    corners = box.corners()
    if transform is not None:
        m = np.asarray(transform, dtype=np.float64).reshape(4, 4).T
        corners = corners @ m[:3, :3].T + m[:3, 3]
    llh = ecef_to_lonlath(corners)
    return (
        [
            float(llh[:, 0].min()),
            float(llh[:, 1].min()),
            float(llh[:, 0].max()),
            float(llh[:, 1].max()),
        ],
        [float(llh[:, 2].min()), float(llh[:, 2].max())],
    )


def extent_of_tileset(path: Path) -> tuple[list[float], list[float]]:
    root = json.loads(path.read_text(encoding="utf-8"))["root"]
    volume = root["boundingVolume"]
    if "region" in volume:
        w, s, e, n, lo, hi = volume["region"]
        return [float(np.degrees(v)) for v in (w, s, e, n)], [lo, hi]
    return extent_of(Box.from_dict(volume), root.get("transform"))


def write_entry(folder: Path, info: DatasetInfo) -> None:
    tmp = folder / (ENTRY + ".tmp")
    tmp.write_text(json.dumps(info.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(folder / ENTRY)


def read_entry(folder: Path) -> DatasetInfo | None:
    f = folder / ENTRY
    if not f.is_file() or not (folder / "tileset.json").is_file():
        return None
    try:
        return DatasetInfo(**json.loads(f.read_text(encoding="utf-8")))
    except (ValueError, TypeError):
        return None


def list_datasets(data_dir: Path) -> list[DatasetInfo]:
    root = datasets_dir(data_dir)
    if not root.is_dir():
        return []
    found = [read_entry(d) for d in sorted(root.iterdir()) if d.is_dir() and NAME.match(d.name)]
    return [d for d in found if d is not None]


def get_dataset(data_dir: Path, name: str) -> DatasetInfo:
    info = read_entry(dataset_dir(data_dir, name))
    if info is None:
        raise DatasetNotFound(message=f"没有三维数据集 / no 3D dataset named {name!r}")
    return info


def remove_dataset(data_dir: Path, name: str) -> DatasetInfo:
    info = get_dataset(data_dir, name)
    shutil.rmtree(dataset_dir(data_dir, name))
    return info


def folder_size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()

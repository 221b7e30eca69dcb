"""3D Tiles 1.1 tileset JSON: typed round trip and the structural checks every build runs.

Checks (``check_tileset``): asset version, every child box inside its parent's box, geometric
error non-increasing down the tree (strictly smaller below a tile that refines), content files
present and inside the tileset folder; external tilesets (content ending in ``.json``) are
followed and checked in their parent's frame.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from tiles.threed.tile import Tile

VERSION = "1.1"
GENERATOR = "cadastre-server tiles.threed"


@dataclass
class Tileset:
    root: Tile
    geometric_error: float
    extras: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "asset": {"version": VERSION, "generator": GENERATOR},
            "geometricError": round(float(self.geometric_error), 6),
            "root": self.root.to_dict(),
        }
        if self.extras:
            out["asset"]["extras"] = self.extras
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Tileset:
        return cls(
            root=Tile.from_dict(d["root"]),
            geometric_error=float(d["geometricError"]),
            extras=d.get("asset", {}).get("extras", {}),
        )

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(
            json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":")), encoding="utf-8"
        )
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> Tileset:
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))


def _safe_uri(uri: str) -> bool:
    p = PurePosixPath(uri)
    return not p.is_absolute() and ".." not in p.parts and "://" not in uri


@dataclass
class TilesetCheck:
    problems: list[str] = field(default_factory=list)
    tiles: int = 0
    contents: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_tileset(
    path: Path, _check: TilesetCheck | None = None, _parent: Tile | None = None
) -> TilesetCheck:
    """Structural checks of ``path`` and every external tileset it references."""
    check = _check or TilesetCheck()
    d = json.loads(path.read_text(encoding="utf-8"))
    if d.get("asset", {}).get("version") not in ("1.0", "1.1"):
        check.problems.append(f"{path}: asset.version must be 1.0 or 1.1")
    ts = Tileset.from_dict(d)
    if ts.geometric_error < ts.root.geometric_error:
        check.problems.append(f"{path}: tileset geometricError < root geometricError")
    if _parent is not None:
        _compare(check, path, _parent, ts.root, external=True)
    _walk(check, path, ts.root, "root")
    return check


def _compare(
    check: TilesetCheck, path: Path, parent: Tile, child: Tile, external: bool, where: str = ""
) -> None:
    if child.transform is None and not parent.box.contains(child.box):
        check.problems.append(f"{path}:{where} child box not inside its parent's box")
    if child.geometric_error > parent.geometric_error + 1e-9:
        check.problems.append(
            f"{path}:{where} geometricError increases "
            f"({parent.geometric_error} → {child.geometric_error})"
        )
    if (
        not external
        and parent.geometric_error > 0
        and child.geometric_error >= parent.geometric_error
    ):
        check.problems.append(f"{path}:{where} geometricError does not decrease")


def _walk(check: TilesetCheck, path: Path, tile: Tile, where: str) -> None:
    check.tiles += 1
    if tile.geometric_error < 0:
        check.problems.append(f"{path}:{where} negative geometricError")
    if tile.content_uri:
        uri = tile.content_uri
        target = path.parent / uri
        if not _safe_uri(uri):
            check.problems.append(f"{path}:{where} unsafe content uri {uri!r}")
        elif not target.is_file():
            check.problems.append(f"{path}:{where} missing content {uri}")
        elif uri.endswith(".json"):
            check_tileset(target, check, tile)
        else:
            check.contents.append(target)
    for i, child in enumerate(tile.children):
        _compare(check, path, tile, child, external=False, where=f"{where}/{i}")
        _walk(check, path, child, f"{where}/{i}")

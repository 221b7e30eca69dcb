"""`cadastre tiles …`: seed the tile cache, export MBTiles/PMTiles, clear."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cadastre.access.privacy import Role
from cadastre.query.layers import parse_layers
from cadastre.settings import get_settings
from cadastre.store.admin import ensure_database
from cadastre.store.db import connect
from tiles.cache import TileCache
from tiles.export import export_tiles, parse_bbox, parse_zooms, seed_tiles, tiles_in_bbox
from tiles.style import STYLE_LAYERS

tiles_app = typer.Typer(help="矢量瓦片缓存 / vector tile cache", no_args_is_help=True)
console = Console()

DEFAULT_LAYERS = STYLE_LAYERS


def _cache() -> TileCache:
    s = get_settings()
    return TileCache(s.data_dir / "cache" / "tiles")


def _bar(label: str) -> Progress:
    return Progress(TextColumn(f"[bold]{label}[/]"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=console)


def _todo(conn, bbox: str | None, zooms: str) -> list[tuple[int, int, int]]:  # type: ignore[no-untyped-def]
    return tiles_in_bbox(conn, parse_bbox(bbox) if bbox else None, parse_zooms(zooms))


@tiles_app.command("seed")
def seed(
    bbox: str = typer.Option(None, help="lon1,lat1,lon2,lat2 (WGS84); default: the data extent"),
    zooms: str = typer.Option("12-16", help="e.g. 12-16 or 14"),
    layers: str = typer.Option(DEFAULT_LAYERS, help="comma-separated layers"),
    floor: int | None = typer.Option(None, help="floor for the units layer"),
) -> None:
    """Render tiles into the cache (public audience) with a progress bar."""
    url = ensure_database(get_settings()).url
    chosen = parse_layers(layers)
    with connect(url, autocommit=True) as conn:
        todo = _todo(conn, bbox, zooms)
        with _bar("瓦片 tiles") as bar:
            task = bar.add_task("seed", total=len(todo))
            stats = seed_tiles(conn, _cache(), chosen, Role.PUBLIC, todo, floor,
                               progress=lambda n: bar.update(task, completed=n))
    console.print(f"{stats.rendered} rendered, {stats.cached} already cached, "
                  f"{stats.empty} empty, {stats.bytes / 1e6:.1f} MB")


@tiles_app.command("export")
def export(
    out: Path = typer.Argument(..., help="out.mbtiles or out.pmtiles"),
    bbox: str = typer.Option(None, help="lon1,lat1,lon2,lat2; default: the data extent"),
    zooms: str = typer.Option("12-16"),
    layers: str = typer.Option(DEFAULT_LAYERS),
) -> None:
    """Write public tiles to an MBTiles or PMTiles archive (offline / CDN use)."""
    url = ensure_database(get_settings()).url
    chosen = parse_layers(layers)
    with connect(url, autocommit=True) as conn:
        todo = _todo(conn, bbox, zooms)
        with _bar("导出 export") as bar:
            task = bar.add_task("export", total=len(todo))
            n = export_tiles(conn, _cache(), chosen, todo, out,
                             progress=lambda k: bar.update(task, completed=k))
    console.print(f"{n} tiles written to {out}")


@tiles_app.command("clear")
def clear() -> None:
    """Empty the tile cache."""
    _cache().clear()
    console.print("tile cache cleared")

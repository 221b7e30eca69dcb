"""``cadastre raster``: publish orthophotos (DOM) as XYZ tiles. A thin layer over tiles.raster."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cadastre.settings import get_settings
from cadastre.store.admin import ensure_database
from cadastre.store.db import connect
from tiles.demo.ortho import publish_demo_orthophoto
from tiles.raster import RasterInfo, add_raster, list_rasters, remove_raster

console = Console()
raster_app = typer.Typer(help="正射影像 / orthophoto rasters", no_args_is_help=True)


def _describe(info: RasterInfo) -> str:
    w, s, e, n = info.bounds
    return (f"[bold]{info.name}[/]  {info.width}×{info.height} px  z{info.minzoom}–{info.maxzoom}"
            f"  {info.crs}  [{w:.5f}, {s:.5f}, {e:.5f}, {n:.5f}]\n  {info.path}")


@raster_app.command("add")
def add(
    path: Annotated[Path, typer.Argument(help="GeoTIFF (1, 3 or 4 bands, uint8, with a CRS)")],
    name: str | None = typer.Option(None, "--name", "-n", help="default: from the file name"),
    replace: bool = typer.Option(False, "--replace", help="replace a raster of the same name"),
    in_place: bool = typer.Option(False, "--in-place",
                                  help="serve the file where it is, without a COG copy"),
) -> None:
    """Validate a GeoTIFF, convert it to a Cloud Optimized GeoTIFF and publish it."""
    started = time.monotonic()
    with console.status(f"正在转换 / converting {path.name} → COG …", spinner="dots"):
        info = add_raster(get_settings().data_dir, path, name=name, copy=not in_place,
                          replace=replace)
    console.print(f"已发布 / published in {time.monotonic() - started:.1f} s")
    console.print(_describe(info))
    console.print(f"tiles: /raster/{info.name}/{{z}}/{{x}}/{{y}}.png")


@raster_app.command("list")
def list_(as_json: bool = typer.Option(False, "--json")) -> None:
    """Published rasters."""
    rasters = list_rasters(get_settings().data_dir)
    if as_json:
        console.print_json(json.dumps([
            {"name": r.name, "path": str(r.path), "crs": r.crs, "bounds": list(r.bounds),
             "minzoom": r.minzoom, "maxzoom": r.maxzoom, "width": r.width, "height": r.height,
             "added_at": r.added_at} for r in rasters]))
        return
    if not rasters:
        console.print("没有影像 / no rasters")
        return
    table = Table("name", "size (px)", "zoom", "CRS", "bounds (WGS84)", "added")
    for r in rasters:
        table.add_row(r.name, f"{r.width}×{r.height}", f"{r.minzoom}–{r.maxzoom}", r.crs,
                      ", ".join(f"{v:.5f}" for v in r.bounds), r.added_at)
    console.print(table)


@raster_app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="raster name")]) -> None:
    """Unpublish a raster (and delete its COG copy)."""
    info = remove_raster(get_settings().data_dir, name)
    console.print(f"已删除 / removed {info.name}")


@raster_app.command("demo")
def demo() -> None:
    """Render the demo district's orthophoto from the database in use and publish it."""
    settings = get_settings()
    db = ensure_database(settings)
    started = time.monotonic()
    with console.status("正在绘制演示正射影像 / rendering the demo orthophoto …", spinner="dots"), \
            connect(db.url) as conn:
        info, result = publish_demo_orthophoto(conn, settings.data_dir)
    console.print(f"rendered {result.width}×{result.height} px at {result.resolution} m "
                  f"({result.crs}) in {result.seconds:.1f} s; published in "
                  f"{time.monotonic() - started:.1f} s")
    console.print(_describe(info))

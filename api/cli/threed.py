"""``cadastre 3d``: build and list 3D Tiles datasets. A thin layer over ``tiles.threed``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from cadastre.settings import get_settings
from tiles.threed.build import build_dataset
from tiles.threed.compress import Compression
from tiles.threed.registry import DatasetInfo, list_datasets, remove_dataset

console = Console()
threed_app = typer.Typer(
    help="三维瓦片 / 3D Tiles (photogrammetry, meshes, point clouds, units)", no_args_is_help=True
)


def _describe(info: DatasetInfo) -> None:
    w, s, e, n = info.extent or [0, 0, 0, 0]
    console.print(
        f"[bold]{escape(info.name)}[/] ({info.kind}) {info.tiles} tiles, "
        f"{info.bytes_out / 1e6:.1f} MB, {info.seconds:.1f} s, SRS {escape(str(info.srs))}"
    )
    console.print(
        f"  extent [{w:.6f}, {s:.6f}, {e:.6f}, {n:.6f}]  heights "
        f"{info.heights[0]:.1f}…{info.heights[1]:.1f} m"
        if info.heights
        else ""
    )
    console.print(f"  tileset: /3dtiles/{info.name}/tileset.json")
    if info.warnings:
        console.print(f"[yellow]{len(info.warnings)} 条警告 / warnings[/]")
        for w_ in info.warnings[:10]:
            console.print(f"  [yellow]{escape(str(w_))}[/]")  # (file names hold brackets)
        if len(info.warnings) > 10:
            console.print(f"  … (+{len(info.warnings) - 10}, see dataset.json)")


@threed_app.command("build")
def build(
    source: Annotated[
        Path,
        typer.Argument(
            help="OSGB production folder, OBJ/PLY/GLB mesh, or LAS/LAZ/XYZ/PLY point cloud"
        ),
    ],
    name: str = typer.Option(..., "--name", "-n", help="dataset name"),
    srs: str | None = typer.Option(
        None, "--srs", help="EPSG:n, WKT or ENU:lat,lon (default: metadata.xml)"
    ),
    origin: str | None = typer.Option(None, "--origin", help="x,y,z added to the coordinates"),
    replace: bool = typer.Option(False, "--replace", help="replace an existing dataset"),
    strict: bool = typer.Option(False, "--strict", help="treat warnings as errors"),
    workers: int | None = typer.Option(
        None, "--jobs", "-j", "--workers", min=1,
        help="parallel tile workers, one tile folder each (default: CPU count)",
    ),
    decoder: str = typer.Option(
        "native", "--decoder", help="native (osgconv only for files it cannot read) | osgconv"
    ),
    compress: str = typer.Option("none", "--compress", help="geometry: none | draco"),
    texture_quality: int | None = typer.Option(
        None, "--texture-quality", min=1, max=95, help="re-encode textures as JPEG at this quality"
    ),
    height_datum: str = typer.Option(
        "auto", "--height-datum",
        help="source heights: auto | ellipsoidal | egm96 | a geoid grid file (.gtx/.tif)",
    ),
) -> None:
    """Convert SOURCE to 3D Tiles 1.1 and publish it under /3dtiles/NAME/.

    An interrupted OSGB build resumes where it stopped when run again with the same options."""
    logging.getLogger("tiles.threed").setLevel(logging.ERROR)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[file]}"),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("构建 / building", total=None, file="")

        def progress(done: int, total: int, current: str) -> None:
            bar.update(task, completed=done, total=total, file=current[-40:])

        info = build_dataset(
            get_settings().data_dir,
            source,
            name,
            srs=srs,
            origin=origin,
            replace=replace,
            strict=strict,
            progress=progress,
            workers=workers,
            decoder=decoder,
            compression=_compression(compress, texture_quality),
            height_datum=height_datum,
        )
    _describe(info)
    extra = info.extra
    if extra.get("osgconv_fallbacks"):
        console.print(f"[yellow]osgconv 兜底 / read through osgconv: "
                      f"{extra['osgconv_fallbacks']} files[/]")
        for f in extra.get("fallback_files", [])[:10]:
            console.print(f"  [yellow]{escape(f)}[/]")
    if extra.get("resumed_tiles"):
        console.print(f"续建 / resumed: {extra['resumed_tiles']} tiles kept from the last run")


def _compression(geometry: str, quality: int | None) -> Compression:
    try:
        return Compression(geometry, quality)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _bar() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                    TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                    console=console)


@threed_app.command("units")
def units(
    name: str = typer.Option("demo-units", "--name", "-n"),
    building: Annotated[list[str] | None, typer.Option(
        "--building", "-b", help="only these buildings (default: changed ones)")] = None,
    force: bool = typer.Option(False, "--force", help="rebuild every building"),
    compress: str | None = typer.Option(
        None, "--compress", help="none | draco (default: as the dataset was built)"),
    height_datum: str | None = typer.Option(
        None, "--height-datum",
        help="floor elevations: ellipsoidal | egm96 | a geoid grid (default: the setting)"),
    workers: int = typer.Option(2, "--jobs", "-j", min=1, help="parallel workers"),
) -> None:
    """Unit volumes (户) of the register as 3D Tiles (cells of building shells refining to
    unit volumes); only buildings whose units changed are rebuilt."""
    from cadastre.store.admin import ensure_database
    from cadastre.store.db import connect
    from tiles.threed.georef import parse_height_datum
    from tiles.threed.unit_tiles import publish_unit_volumes

    settings = get_settings()
    db = ensure_database(settings)
    with _bar() as bar, connect(db.url) as conn:
        task = bar.add_task("户体 / unit volumes", total=None)

        def progress(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=total, description=f"户体 / {what}")

        info, stats = publish_unit_volumes(
            conn, settings.data_dir, name, buildings=building or None, force=force,
            compression=_compression(compress, None) if compress else None,
            datum=parse_height_datum(height_datum) if height_datum else None,
            workers=workers, progress=progress,
        )
    console.print(
        f"rebuilt {stats.rebuilt} buildings, removed {stats.removed}, unchanged "
        f"{stats.unchanged}; {stats.units} units"
    )
    _describe(info)


@threed_app.command("list")
def list_(as_json: bool = typer.Option(False, "--json")) -> None:
    """Published 3D datasets."""
    datasets = list_datasets(get_settings().data_dir)
    if as_json:
        console.print_json(json.dumps([d.to_dict() for d in datasets], ensure_ascii=False))
        return
    if not datasets:
        console.print("没有三维数据集 / no 3D datasets")
        return
    table = Table("name", "kind", "tiles", "MB", "extent (WGS84)", "created")
    for d in datasets:
        table.add_row(
            d.name,
            d.kind,
            str(d.tiles),
            f"{d.bytes_out / 1e6:.1f}",
            ", ".join(f"{v:.5f}" for v in d.extent),
            d.created,
        )
    console.print(table)


@threed_app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="dataset name")]) -> None:
    """Delete a published 3D dataset."""
    info = remove_dataset(get_settings().data_dir, name)
    console.print(f"已删除 / removed {info.name}")


@threed_app.command("demo")
def demo(tiles: int = typer.Option(2, "--tiles", help="N×N tiles of 200 m")) -> None:
    """Generate the demo district's OSGB production and publish it plus its unit volumes."""
    from cadastre.store.admin import ensure_database
    from cadastre.store.db import connect
    from tiles.demo.scene import write_demo_production
    from tiles.threed.unit_tiles import publish_unit_volumes

    settings = get_settings()
    db = ensure_database(settings)
    source = settings.data_dir / "3d-sources" / "demo-production"
    with (
        console.status("正在生成倾斜摄影 OSGB / writing the OSGB production …"),
        connect(db.url) as conn,
    ):
        _, codes = write_demo_production(conn, source, tiles=tiles)
        units_info, _ = publish_unit_volumes(
            conn, settings.data_dir, "demo-units", buildings=codes, force=True,
            compression=Compression("draco"),
        )
    info = build_dataset(settings.data_dir, source, "demo-photogrammetry", replace=True,
                         compression=Compression("draco", texture_quality=85))
    _describe(info)
    _describe(units_info)

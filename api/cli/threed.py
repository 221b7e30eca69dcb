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
        None, "--workers", "-j", min=1, help="parallel tile workers (default: CPU count)"
    ),
) -> None:
    """Convert SOURCE to 3D Tiles 1.1 and publish it under /3dtiles/NAME/."""
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
        )
    _describe(info)


@threed_app.command("units")
def units(
    name: str = typer.Option("demo-units", "--name", "-n"),
    building: Annotated[list[str] | None, typer.Option(
        "--building", "-b", help="only these buildings (default: changed ones)")] = None,
    force: bool = typer.Option(False, "--force", help="rebuild every building"),
) -> None:
    """Unit volumes (户) from the database as a 3D Tiles classification layer."""
    from cadastre.store.admin import ensure_database
    from cadastre.store.db import connect
    from tiles.threed.unit_tiles import publish_unit_volumes

    settings = get_settings()
    db = ensure_database(settings)
    with (
        console.status("正在生成户体 / extruding unit volumes …", spinner="dots"),
        connect(db.url) as conn,
    ):
        info, stats = publish_unit_volumes(
            conn, settings.data_dir, name, buildings=building or None, force=force
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
            conn, settings.data_dir, "demo-units", buildings=codes, force=True
        )
    info = build_dataset(settings.data_dir, source, "demo-photogrammetry", replace=True)
    _describe(info)
    _describe(units_info)

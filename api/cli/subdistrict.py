"""`cadastre subdistrict …`: the cadastral subdistricts (地籍子区) new parcels are coded from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cadastre.errors import InvalidInput
from cadastre.register.subdistricts import add_subdistrict, list_subdistricts
from cadastre.settings import get_settings
from cadastre.store.admin import ensure_database
from cadastre.store.db import connect

subdistrict_app = typer.Typer(help="地籍子区 / cadastral subdistricts", no_args_is_help=True)
console = Console()


@subdistrict_app.command("add")
def add(zone_code: Annotated[str, typer.Argument(help="12 digits: county 6 + 地籍区 3 + 子区 3")],
        geojson: Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                                help="GeoJSON Polygon/MultiPolygon or Feature")],
        srid: int = typer.Option(..., help="EPSG code of the polygon's coordinates"),
        name: str | None = typer.Option(None),
        actor: str = typer.Option("cli:registrar", help="who adds it (recorded)")) -> None:
    """Add (or redraw) a subdistrict: new parcels inside it get codes starting with it."""
    try:
        obj = json.loads(geojson.read_text(encoding="utf-8"))
    except ValueError:
        raise InvalidInput("GEOJSON_INVALID", "文件不是GeoJSON / the file is not GeoJSON") from None
    geometry = obj.get("geometry", obj) if isinstance(obj, dict) else obj
    url = ensure_database(get_settings()).url
    with connect(url) as conn, conn.transaction():
        add_subdistrict(conn, zone_code, geometry, srid, actor, name)
    console.print(f"subdistrict {zone_code} saved")


@subdistrict_app.command("list")
def list_all() -> None:
    """Every subdistrict with its area."""
    url = ensure_database(get_settings()).url
    with connect(url) as conn:
        rows = list_subdistricts(conn)
    table = Table("zone_code", "name", "srid", "area m²")
    for r in rows:
        table.add_row(r["zone_code"], r["name"] or "", str(r["srid"]), f"{r['area_m2']:.0f}")
    console.print(table)

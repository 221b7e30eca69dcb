"""`cadastre keys …`: API keys of other departments' systems (county- and field-scoped)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from api.cli.audit import record_cli
from cadastre.access import apikeys
from cadastre.settings import get_settings
from cadastre.store.admin import ensure_database
from cadastre.store.db import connect

keys_app = typer.Typer(help="部门系统 API 密钥 / department API keys", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _split(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


@keys_app.command("add")
def add(
    name: str,
    counties: str = typer.Option(..., help="county codes the key may read, comma-separated"),
    fields: str = typer.Option(..., help="entity.field grants, comma-separated "
                               "(entity.* = every field the policy lets departments see)"),
    expires: int = typer.Option(None, "--expires", min=1, help="valid for N days"),
    holder_id: str = typer.Option(None, "--holder-id", help="统一社会信用代码 of the organisation "
                                  "the key acts for (a bank: events of its own mortgages only)"),
) -> None:
    """Create a key; its secret is printed ONCE (only a keyed hash is stored)."""
    from cadastre.access.pii import load_cipher

    s = get_settings()
    url = ensure_database(s).url
    holder = load_cipher(s).lookup_hash(holder_id) if holder_id else None
    with connect(url) as conn:
        key, token = apikeys.create_key(conn, apikeys.hashing_key(s), name, _split(counties),
                                        _split(fields), expires, holder)
        record_cli(conn, "apikey.create", str(key.key_id), len(key.fields))
        conn.commit()
    err.print(f"key {key.name} ({key.key_id}): {len(key.fields)} fields, counties "
              f"{','.join(key.counties)}"
              + (f", expires {key.expires_at:%Y-%m-%d %H:%M}" if key.expires_at else ""))
    err.print("[yellow]请立即保存，密钥不会再次显示 / store it now, it is not shown again:[/]")
    print(token)


@keys_app.command("list")
def list_() -> None:
    """List keys (never their secrets)."""
    url = ensure_database(get_settings()).url
    with connect(url) as conn:
        keys = apikeys.list_keys(conn)
    table = Table("name", "key id", "counties", "fields", "expires", "state")
    for k in keys:
        state = "revoked" if k.disabled else ("active" if k.active() else "expired")
        table.add_row(k.name, str(k.key_id), ",".join(k.counties), ",".join(k.fields),
                      f"{k.expires_at:%Y-%m-%d}" if k.expires_at else "-", state)
    console.print(table)


@keys_app.command("revoke")
def revoke(name_or_id: str) -> None:
    """Revoke a key by name or id (refused from the next request on)."""
    url = ensure_database(get_settings()).url
    with connect(url) as conn:
        key = apikeys.revoke_key(conn, name_or_id)
        record_cli(conn, "apikey.revoke", str(key.key_id), 1)
        conn.commit()
    console.print(f"key {key.name} ({key.key_id}) revoked")

"""`cadastre subscriptions …`: push subscriptions of department systems (webhooks)."""

from __future__ import annotations

from datetime import datetime

import typer
from rich.console import Console
from rich.table import Table

from api.cli.audit import record_cli
from cadastre.access.pii import load_cipher
from cadastre.errors import InvalidInput
from cadastre.settings import get_settings
from cadastre.sharing import metrics
from cadastre.sharing import subscriptions as subs
from cadastre.sharing.events import EVENT_TYPES
from cadastre.store.admin import ensure_database
from cadastre.store.db import connect

subscriptions_app = typer.Typer(help="事件推送订阅 / event subscriptions (webhooks)",
                                no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _url() -> str:
    return ensure_database(get_settings()).url


@subscriptions_app.command("add")
def add(name: str, url: str = typer.Option(..., help="the receiver's endpoint (http/https)"),
        key: str = typer.Option(..., "--key", help="API key (name or id) whose grants apply"),
        events: str = typer.Option("", help="comma-separated event types (empty: all); "
                                   + ", ".join(EVENT_TYPES)),
        counties: str = typer.Option("", help="comma-separated counties (empty: the key's)"),
        max_attempts: int = typer.Option(8, min=1, max=50, help="tries before a dead letter"),
        from_start: bool = typer.Option(False, help="also every event already kept")) -> None:
    """Create a subscription; its signing secret is printed ONCE."""
    s = get_settings()
    with connect(_url()) as conn:
        sub, secret = subs.add(conn, load_cipher(s), name, url, key, events.split(","),
                               counties.split(","), "cli", max_attempts, from_start)
        record_cli(conn, "subscription.add", sub.name, 1)
        conn.commit()
    err.print(f"subscription {sub.name} → {sub.url} ({', '.join(sub.event_types) or 'all'})")
    err.print("[yellow]签名密钥只显示一次 / the signing secret is shown once:[/]")
    print(secret)


@subscriptions_app.command("list")
def list_() -> None:
    """Subscriptions with their delivery counts."""
    with connect(_url()) as conn:
        table = Table("name", "url", "events", "status", "cursor", "delivered", "pending",
                      "dead")
        for sub in subs.list_all(conn):
            n = metrics.delivery_counts(conn, sub.subscription_id)
            table.add_row(sub.name, sub.url, ",".join(sub.event_types) or "all", sub.status,
                          str(sub.last_event_id), str(n.get("delivered", 0)),
                          str(n.get("pending", 0)), str(n.get("dead", 0)))
    console.print(table)


def _status(name: str, status: str) -> None:
    with connect(_url()) as conn:
        sub = subs.set_status(conn, name, status)
        record_cli(conn, f"subscription.{status}", sub.name, 1)
        conn.commit()
    console.print(f"{sub.name}: {sub.status}")


@subscriptions_app.command("pause")
def pause(name: str) -> None:
    """Stop delivering (events keep queueing)."""
    _status(name, "paused")


@subscriptions_app.command("resume")
def resume(name: str) -> None:
    """Deliver again, from where it stopped."""
    _status(name, "active")


@subscriptions_app.command("remove")
def remove(name: str) -> None:
    """Delete a subscription and its delivery log."""
    with connect(_url()) as conn:
        sub = subs.remove(conn, name)
        record_cli(conn, "subscription.remove", sub.name, 1)
        conn.commit()
    console.print(f"{sub.name}: removed")


@subscriptions_app.command("replay")
def replay(name: str, since: str = typer.Option(..., help="ISO date or time"),
           delivered: bool = typer.Option(False, help="also events already delivered")) -> None:
    """Deliver the dead letters since a date again (and delivered ones with --delivered)."""
    try:
        at = datetime.fromisoformat(since)
    except ValueError:
        raise InvalidInput("SINCE_INVALID", "since 须为 ISO 日期或时间 / since must be an ISO "
                           "date or time") from None
    if at.tzinfo is None:
        at = at.astimezone()
    with connect(_url()) as conn:
        n = subs.replay(conn, name, at, delivered)
        record_cli(conn, "subscription.replay", name, n)
        conn.commit()
    console.print(f"{name}: {n} event(s) back in the queue")

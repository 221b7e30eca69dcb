"""``cadastre deploy``: configurations for what runs in front of the server."""

from __future__ import annotations

from pathlib import Path

import typer

from api.cli import _settings, console
from api.deploy.nginx import NginxSite

deploy_app = typer.Typer(help="部署 / deployment configurations", no_args_is_help=True)


@deploy_app.command("nginx")
def nginx(
    upstream: list[str] = typer.Option(None, help="host:port of a `cadastre serve` (repeatable); "
                                       "default CADASTRE_HOST:CADASTRE_PORT"),
    listen: str = typer.Option("80", help="nginx's listen address"),
    server_name: str = typer.Option("_", help="nginx server_name"),
    cache_dir: Path = typer.Option(Path("/var/cache/nginx/cadastre"), help="proxy cache dir"),
    fresh: int = typer.Option(5, min=0, max=3600, help="seconds a public vector tile is served "
                              "from nginx before it is revalidated with the server"),
    standalone: Path = typer.Option(None, help="write a whole nginx.conf for `nginx -p DIR`, "
                                    "its pid, logs and temp files under DIR"),
    user: str = typer.Option(None, help="(standalone) the user nginx's workers run as"),
    output: Path = typer.Option(None, "-o", "--output", help="write here (default: stdout)"),
) -> None:
    """An nginx configuration caching public tiles and static assets in front of the server
    (never a response to a request with credentials); the http-context block, or with
    ``--standalone`` a whole nginx.conf."""
    s = _settings()
    site = NginxSite(upstream or [f"{s.api.host}:{s.api.port}"], listen=listen,
                     server_name=server_name, cache_dir=cache_dir, fresh_seconds=fresh)
    text = site.standalone(standalone.resolve(), user=user) if standalone else site.http_block()
    if output is None and standalone is not None:
        output = standalone / "nginx.conf"
    if output is None:
        print(text, end="")
        return
    output.write_text(text)
    console.print(f"written: {output}  ·  the server must trust nginx's X-Forwarded-For: "
                  "CADASTRE_TRUSTED_PROXIES='[\"<nginx address>\"]'", markup=False)

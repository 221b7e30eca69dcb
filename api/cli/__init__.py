"""The ``cadastre`` command: a thin layer over library functions.

Exit codes: 0 success, 1 a domain error (printed with its stable code), 2 usage error.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cadastre.errors import CadastreError
from cadastre.settings import Settings, get_settings, unknown_env_keys
from cadastre.store import migrate as migrations
from cadastre.store.admin import (
    database_size,
    demo_loaded,
    ensure_database,
    registry_counts,
)
from cadastre.store.db import connect, embedded_cluster

console = Console()
err = Console(stderr=True)

app = typer.Typer(help="不动产登记查询与三维可视化服务 / cadastral query and 3D server",
                  no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help="数据库 / database (embedded PostGIS or DATABASE_URL)",
                     no_args_is_help=True)
app.add_typer(db_app, name="db")
users_app = typer.Typer(help="账户 / staff and system accounts", no_args_is_help=True)
app.add_typer(users_app, name="users")


def _register_subcommands() -> None:
    import api.cli.backup  # noqa: F401  (adds `db backup` and `db restore` to db_app)
    import api.cli.counties  # noqa: F401  (adds `db county …` to db_app)
    import api.cli.handover  # noqa: F401  (adds `cases batch-handover` to cases_app)
    import api.cli.quality  # noqa: F401  (adds `qa sample-cases/check-case/bulletin`)
    import api.cli.replicas  # noqa: F401  (adds `db replica …` to db_app)
    from api.cli.audit import audit_app
    from api.cli.cases import calendar_app, cases_app
    from api.cli.certificates import certificates_app
    from api.cli.deploy import deploy_app
    from api.cli.exchange import exchange_app
    from api.cli.keys import keys_app
    from api.cli.qa import qa_app
    from api.cli.raster import raster_app
    from api.cli.subdistrict import subdistrict_app
    from api.cli.subscriptions import subscriptions_app
    from api.cli.survey import survey_app
    from api.cli.threed import threed_app
    from api.cli.tiles import tiles_app

    app.add_typer(tiles_app, name="tiles")
    app.add_typer(raster_app, name="raster")
    app.add_typer(survey_app, name="survey")
    app.add_typer(subdistrict_app, name="subdistrict")
    app.add_typer(qa_app, name="qa")
    app.add_typer(audit_app, name="audit")
    app.add_typer(keys_app, name="keys")
    app.add_typer(threed_app, name="3d")
    app.add_typer(cases_app, name="cases")
    app.add_typer(calendar_app, name="calendar")
    app.add_typer(subscriptions_app, name="subscriptions")
    app.add_typer(certificates_app, name="certificates")
    app.add_typer(exchange_app, name="exchange")
    app.add_typer(deploy_app, name="deploy")


def _settings() -> Settings:
    return get_settings()


def _warn_unknown_settings() -> None:
    """Unknown CADASTRE_* variables are most likely typos: say so on every start."""
    unknown = unknown_env_keys()
    if unknown:
        err.print(f"[yellow]未知设置已忽略 / unknown settings ignored: {', '.join(unknown)}[/]")


def _require_embedded(settings: Settings) -> None:
    if not settings.embedded:
        err.print("[yellow]DATABASE_URL 已设置，内嵌数据库未使用 / DATABASE_URL is set; "
                  "the embedded cluster is not in use[/]")
        raise typer.Exit(2)


# ----------------------------------------------------------------------------- db
@db_app.command("init")
def db_init(force: bool = typer.Option(False, help="delete and recreate the cluster")) -> None:
    """Create the embedded PostgreSQL/PostGIS cluster under the data dir."""
    s = _settings()
    _require_embedded(s)
    cluster = embedded_cluster(s)
    if force:
        cluster.destroy()
    state = cluster.init()
    console.print(f"cluster: {state.pgdata} (PostgreSQL {state.major}, port {state.port})")


@db_app.command("start")
def db_start() -> None:
    """Start the embedded cluster (idempotent; creates it if needed)."""
    s = _settings()
    _require_embedded(s)
    st = embedded_cluster(s).start()
    if st.stale_pid_removed:
        console.print("[yellow]removed a stale pid file left by a crash[/]")
    console.print(f"running: pid {st.pid}, 127.0.0.1:{st.port}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded cluster (idempotent)."""
    s = _settings()
    _require_embedded(s)
    was = embedded_cluster(s).stop()
    console.print("stopped" if was else "not running")


@db_app.command("status")
def db_status(as_json: bool = typer.Option(False, "--json")) -> None:
    """Cluster state, versions and row counts."""
    s = _settings()
    out: dict[str, object] = {"embedded": s.embedded}
    if s.embedded:
        st = embedded_cluster(s).status()
        out.update(initialized=st.initialized, running=st.running, pid=st.pid, port=st.port,
                   pgdata=st.pgdata)
        if not st.running:
            _emit(out, as_json)
            raise typer.Exit(3)
    url = embedded_cluster(s).url() if s.embedded else s.database.url.get_secret_value()  # type: ignore[union-attr]
    from cadastre.store.db import server_info

    with connect(url) as conn:
        info = server_info(conn)
        out.update(postgresql=info.server_version, postgis=info.postgis_version,
                   pending_migrations=[m.path.name for m in migrations.pending(conn)],
                   counts=registry_counts(conn), database_bytes=database_size(conn))
    _emit(out, as_json)


def _emit(out: dict[str, object], as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(out, default=str))
        return
    table = Table(show_header=False)
    for k, v in out.items():
        table.add_row(k, json.dumps(v, ensure_ascii=False, default=str) if isinstance(
            v, dict | list) else str(v))
    console.print(table)


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending schema migrations (forward-only)."""
    ready = ensure_database(_settings())
    console.print(f"PostgreSQL {ready.info.server_version}, PostGIS {ready.info.postgis_version}")
    console.print("applied: " + (", ".join(ready.applied) or "nothing (up to date)"))


@db_app.command("psql", context_settings={"allow_extra_args": True,
                                          "ignore_unknown_options": True})
def db_psql(ctx: typer.Context) -> None:
    """Open psql on the database in use (extra arguments are passed to psql)."""
    s = _settings()
    url = ensure_database(s, migrate=False).url
    psql = shutil.which("psql")
    if psql is None:
        err.print("psql not found: sudo apt-get install postgresql-client")
        raise typer.Exit(1)
    os.execv(psql, [psql, url, *ctx.args])


# ---------------------------------------------------------------------------- demo
@app.command("demo")
def demo(
    scale: int = typer.Option(2000, "--scale", min=10,
                              help="number of parcels (≥ 2000 for the standard demo)"),
    seed: int = typer.Option(20260630, help="random seed (same seed, same district)"),
    reset: bool = typer.Option(False, help="drop the registry and load the demo again"),
    serve_after: bool = typer.Option(True, "--serve/--no-serve", help="start the server after"),
    workers: int = typer.Option(0, min=0, help="processes building the district in parallel "
                                "(by default from --scale 20000 up, one per core; given, "
                                "the parallel builder at any scale)"),
) -> None:
    """Load the generated demo district (once) and serve it on http://127.0.0.1:8000."""
    from cadastre.access.pii import load_cipher
    from cadastre.demo.load import load_demo
    from cadastre.demo.scale import PARALLEL_FROM

    s = _settings()
    ready = ensure_database(s, migrate=False)
    if scale >= PARALLEL_FROM or workers:
        _demo_at_scale(s, ready.url, scale, seed, reset, workers or None)
        if serve_after:
            serve(host=s.api.host, port=s.api.port, workers=s.api.workers)
        return
    if reset:
        migrations.reset(ready.url)
        from tiles.raster import list_rasters, remove_raster

        if any(r.name == "demo-ortho" for r in list_rasters(s.data_dir)):
            remove_raster(s.data_dir, "demo-ortho")
        from tiles.threed.registry import list_datasets, remove_dataset

        for d in list_datasets(s.data_dir):
            if d.name in ("demo-photogrammetry", "demo-units"):
                remove_dataset(s.data_dir, d.name)
    applied = migrations.migrate(ready.url)
    if applied:
        console.print("migrations: " + ", ".join(m.path.name for m in applied))
    with connect(ready.url) as conn:
        if demo_loaded(conn):
            console.print("demo already loaded (use --reset to reload)")
        else:
            with Progress(TextColumn("[bold]演示数据 demo[/]"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=console) as bar:
                task = bar.add_task("parcels", total=scale)
                stats = load_demo(conn, load_cipher(s), parcels=scale, seed=seed,
                                  progress=lambda done, total: bar.update(task, completed=done))
            console.print(f"loaded in {stats.seconds:.1f} s")
            from tiles.cache import TileCache

            TileCache(s.data_dir / "cache" / "tiles").clear()  # the bulk load skipped the queue
            for defect in stats.defects:
                console.print(f"  planted defect: {defect}")
        _ensure_demo_cases(conn, s)
        counts = registry_counts(conn)
        size = database_size(conn)
        _ensure_demo_orthophoto(conn, s)
        _ensure_demo_glyphs(conn, s)
    _ensure_demo_tiles(ready.url, s)
    _ensure_demo_3d(s)
    _emit({**counts, "database_MB": round(size / 2**20, 1)}, False)
    if serve_after:
        serve(host=s.api.host, port=s.api.port, workers=s.api.workers)


def _demo_at_scale(s: Settings, url: str, scale: int, seed: int, reset: bool,
                   workers: int | None) -> None:
    """A large district (cadastre.demo.scale): built by worker processes in ``<db>_building``
    (resumed if an earlier run was interrupted) and renamed into place when complete. The
    standard demo's extras (a year of cases, the orthophoto, pre-rendered tiles, 3D tilesets)
    are left out at this size: tiles render on demand."""
    from rich.progress import TimeRemainingColumn

    from cadastre.access.pii import load_cipher
    from cadastre.demo import scale as scaled
    from cadastre.demo.load import ensure_empty
    from tiles.cache import TileCache

    migrations.migrate(url)
    with connect(url) as conn:
        if demo_loaded(conn) and not reset:
            console.print("demo already loaded (use --reset to reload)")
            return
        if not demo_loaded(conn):
            ensure_empty(conn)   # (the built database replaces this one)
    with Progress(TextColumn(f"[bold]演示数据 demo --scale {scale}[/]"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                  TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task("parcels", total=scale)
        report = scaled.build(url, load_cipher(s), scale, seed, workers,
                              progress=lambda done, total: bar.update(task, completed=done,
                                                                      total=total))
    st = report.stats
    if report.resumed_chunks:
        console.print(f"resumed an interrupted build ({report.resumed_chunks} chunks were done)")
    console.print(f"built in {st.seconds:.0f} s with {report.workers} workers ("
                  + ", ".join(f"{k} {v:.0f} s" for k, v in report.phases.items()) + ")")
    console.print(f"  {st.parcels} parcels, {st.units} units, {st.rights} rights, "
                  f"{st.parties} parties; counties {', '.join(report.counties)}")
    for defect in st.defects:
        console.print(f"  planted defect: {defect}")
    console.print(f"disk use 磁盘占用: database {report.database_bytes / 2**30:.2f} GiB")
    for table, size in report.sizes:
        console.print(f"  {table:28s} {size / 2**30:8.2f} GiB")
    TileCache(s.data_dir / "cache" / "tiles").clear()
    with connect(url) as conn:
        _ensure_demo_glyphs(conn, s)
        counts = registry_counts(conn)
    _emit({**counts, "database_MB": round(report.database_bytes / 2**20, 1)}, False)


def _ensure_demo_cases(conn, s: Settings) -> None:  # type: ignore[no-untyped-def]
    """A year of registration cases (history, and open ones in every light) for the worklist."""
    from cadastre.access.pii import audit_key, load_cipher
    from cadastre.cases.workflow import Keys
    from cadastre.demo.cases import seed_cases

    with Progress(TextColumn("[bold]办件 cases[/]"), BarColumn(), MofNCompleteColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("cases", total=None)
        stats = seed_cases(conn, s.cases, Keys(load_cipher(s), audit_key(s)),
                           progress=lambda done, total: bar.update(task, completed=done,
                                                                   total=total))
    if stats.history or stats.open:
        console.print(f"cases: {stats.history} in the last year, {stats.open} opened now")
    if stats.sample_case_no:
        console.print(f"  一号查询 progress query: 案号 {stats.sample_case_no}  "
                      f"查询码 {stats.sample_code}  → http://{s.api.host}:{s.api.port}"
                      "/#mode=progress")


def _ensure_demo_tiles(url: str, s: Settings) -> None:
    """Public vector tiles of the district's first map views (the style's layers z12–17, floor
    1 units z16–17) rendered into the tile cache now, not for the first visitor. Tiles already
    cached are kept; the cache is invalidated by the usual queue when data change."""
    from cadastre.access.privacy import Role
    from cadastre.query.layers import UNITS, parse_layers
    from tiles.cache import TileCache
    from tiles.export import seed_tiles, tiles_in_bbox
    from tiles.style import CADASTRE_MINZOOM, STYLE_LAYERS

    cache = TileCache(s.data_dir / "cache" / "tiles")
    with connect(url, autocommit=True) as conn:
        jobs = [(parse_layers(STYLE_LAYERS), None,
                 tiles_in_bbox(conn, None, range(CADASTRE_MINZOOM, 18))),
                (parse_layers("units"), 1, tiles_in_bbox(conn, None, range(UNITS.minzoom, 18)))]
        total = sum(len(t) for _, _, t in jobs)
        rendered = 0
        with Progress(TextColumn("[bold]矢量瓦片 vector tiles[/]"), BarColumn(),
                      MofNCompleteColumn(), console=console, transient=True) as bar:
            task = bar.add_task("tiles", total=total)
            done = 0
            for layers, floor, todo in jobs:
                def advance(n: int, before: int = done) -> None:
                    bar.update(task, completed=before + n)

                seeded = seed_tiles(conn, cache, layers, Role.PUBLIC, todo, floor,
                                    progress=advance)
                done += len(todo)
                rendered += seeded.rendered
    if rendered:
        console.print(f"vector tiles: {rendered} rendered into the cache")


def _ensure_demo_glyphs(conn, s: Settings) -> None:  # type: ignore[no-untyped-def]
    """Render the glyph ranges of the district's labels now, not on the first map view."""
    from tiles.glyphs import glyph_store, prebuild_label_ranges
    from tiles.style import FONT_REGULAR

    store = glyph_store(s.data_dir / "cache" / "glyphs")
    with console.status("字形 rendering map glyphs …"):
        n = prebuild_label_ranges(conn, store, ",".join(FONT_REGULAR))
    if n:
        console.print(f"glyphs: {n} ranges rendered")


def _ensure_demo_orthophoto(conn, s: Settings) -> None:  # type: ignore[no-untyped-def]
    """The map's offline basemap: rendered from the district once, registered as demo-ortho."""
    from tiles.demo.ortho import publish_demo_orthophoto
    from tiles.raster import get_raster, list_rasters, prewarm_tiles

    if not any(r.name == "demo-ortho" for r in list_rasters(s.data_dir)):
        with console.status("正射影像 rendering the demo orthophoto …"):
            info, _ = publish_demo_orthophoto(conn, s.data_dir)
        console.print(f"orthophoto: {info.name} z{info.minzoom}–{info.maxzoom}")
    # its tiles rendered ahead into the disk cache: a first map view then reads them
    info = get_raster(s.data_dir, "demo-ortho")
    with Progress(TextColumn("[bold]影像瓦片 orthophoto tiles[/]"), BarColumn(),
                  MofNCompleteColumn(), console=console, transient=True) as bar:
        task = bar.add_task("tiles", total=None)
        n = prewarm_tiles(s.data_dir, info,
                          progress=lambda done, total: bar.update(task, completed=done,
                                                                  total=total))
    if n:
        console.print(f"orthophoto tiles: {n} rendered into the cache")


def _ensure_demo_3d(s: Settings) -> None:
    """The demo's oblique-photogrammetry production (OSGB → 3D Tiles) and unit volumes."""
    from api.cli.threed import demo as threed_demo
    from tiles.threed.registry import list_datasets

    names = {d.name for d in list_datasets(s.data_dir)}
    if {"demo-photogrammetry", "demo-units"} <= names:
        return
    threed_demo(tiles=2)


# ---------------------------------------------------------------------------- serve
@app.command("serve")
def serve(
    host: str | None = typer.Option(None, help="default from CADASTRE_HOST (127.0.0.1)"),
    port: int | None = typer.Option(None, help="default from CADASTRE_PORT (8000)"),
    workers: int | None = typer.Option(None, help="uvicorn worker processes"),
    pgbouncer: bool = typer.Option(False, "--pgbouncer",
                                   help="pool the workers' connections in a pgbouncer "
                                        "(transaction pooling) started under the data dir"),
) -> None:
    """Run the HTTP server (database started and migrated first). With ``--workers N`` (or
    CADASTRE_WORKERS) N processes share the port; rate limits and lockouts are then kept in the
    database and cached tiles invalidated in every process (LISTEN/NOTIFY). ``--pgbouncer``
    puts a pgbouncer between the workers' request pools and the database."""
    import uvicorn

    from api.serving import log_config, start_pgbouncer

    s = _settings()
    _warn_unknown_settings()
    url = ensure_database(s).url
    if s.embedded:   # its read replicas too (`cadastre db replica add`)
        from cadastre.store.replicas import start_all

        start_all(embedded_cluster(s))
    host = host or s.api.host
    port = port or s.api.port
    n = workers or s.api.workers
    os.environ["CADASTRE_WORKERS"] = str(n)   # the worker processes read their settings anew
    console.print(f"serving on http://{host}:{port}  ·  地图 / viewer: http://{host}:{port}/"
                  f"  ·  API: http://{host}:{port}/docs" + (f"  ·  {n} workers" if n > 1 else ""))
    bouncer = start_pgbouncer(s, url, n) if pgbouncer else None
    if bouncer is not None:
        console.print(f"pgbouncer (transaction pooling) on 127.0.0.1:{bouncer.port}",
                      markup=False)
    try:
        # proxy_headers off: uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1;
        # the app believes it only from CADASTRE_TRUSTED_PROXIES (api.app)
        uvicorn.run("api.app:create_app", factory=True, host=host, port=port, workers=n,
                    log_level="info", proxy_headers=False, log_config=log_config(n))
    finally:
        if bouncer is not None:
            bouncer.stop()


# ---------------------------------------------------------------------------- worker
@app.command("worker")
def worker(threads: int = typer.Option(2, min=1, max=16, help="jobs run at the same time"),
           deliveries: bool = typer.Option(True, "--deliveries/--no-deliveries",
                                           help="also deliver events to subscribers")) -> None:
    """Run background jobs (survey validation, QA runs, 3D builds) and event deliveries in
    this process, beside or instead of the server's own (CADASTRE_JOB_WORKERS=0)."""
    import signal
    import threading

    from api.jobs import WorkerThreads
    from cadastre.sharing.delivery import Dispatcher

    s = _settings()
    url = ensure_database(s).url
    pool = WorkerThreads(s, url, threads).start()
    dispatcher = Dispatcher(url, s).start() if deliveries else None
    console.print(f"worker: {threads} job thread(s){', deliveries' if deliveries else ''}; "
                  "Ctrl-C stops")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    pool.stop()
    if dispatcher:
        dispatcher.stop()


# ---------------------------------------------------------------------------- users
@users_app.command("add")
def users_add(
    username: str,
    role: str = typer.Option(..., help="registrar | surveyor | interested | department | auditor"),
    display_name: str = typer.Option(None, help="显示名称"),
    counties: str = typer.Option("", help="county codes this account may see, comma-separated"),
    password_stdin: bool = typer.Option(False, "--password-stdin",
                                        help="read the password from standard input"),
) -> None:
    """Create an account (the password is asked for, or read from stdin)."""
    from cadastre.access.accounts import create_account
    from cadastre.access.privacy import Role

    password = (sys.stdin.readline().rstrip("\n") if password_stdin
                else typer.prompt("password", hide_input=True, confirmation_prompt=True))
    url = ensure_database(_settings()).url
    with connect(url) as conn:
        acc = create_account(conn, username, password, Role(role), display_name,
                             tuple(c for c in counties.split(",") if c))
    console.print(f"account {acc.username} ({acc.role.value}) created")


@users_app.command("list")
def users_list() -> None:
    """List accounts."""
    from cadastre.access.accounts import list_accounts

    url = ensure_database(_settings()).url
    with connect(url) as conn:
        rows = list_accounts(conn)
    table = Table("username", "role", "name", "counties", "disabled")
    for a in rows:
        table.add_row(a.username, a.role.value, a.display_name, ",".join(a.counties),
                      str(a.disabled))
    console.print(table)


@users_app.command("team")
def users_team(username: str, team: str = typer.Argument(None, help="team name; none: own")
               ) -> None:
    """Put a surveyor in a team: its members share field-map presets."""
    from cadastre.survey.presets import set_team

    url = ensure_database(_settings()).url
    with connect(url) as conn:
        set_team(conn, username, team)
    console.print(f"{username}: team {team or '—'}", markup=False)


@users_app.command("disable")
def users_disable(username: str) -> None:
    """Disable an account (its tokens stop working at the next login)."""
    from cadastre.access.accounts import set_disabled

    url = ensure_database(_settings()).url
    with connect(url) as conn:
        set_disabled(conn, username, True)
    console.print(f"{username} disabled")


# ------------------------------------------------------------------------- settings
@app.command("settings")
def settings_cmd(reveal: bool = typer.Option(False, help="show secrets")) -> None:
    """Print the resolved settings (secrets masked)."""
    s = _settings()
    console.print_json(json.dumps(s.as_dict(reveal=reveal), ensure_ascii=False, default=str))
    _warn_unknown_settings()


_register_subcommands()   # (after the helpers above, which some subcommand modules use)


def main() -> None:
    from cadastre.access import logsafe

    logsafe.install()   # mask ID/phone/certificate numbers in every log record
    try:
        logging.basicConfig(level=get_settings().api.log_level.upper(),
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        app()
    except CadastreError as exc:
        err.print(f"[red]{exc.code}[/]: {exc.message}")
        sys.exit(1)

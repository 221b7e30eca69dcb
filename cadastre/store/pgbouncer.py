"""A pgbouncer (Debian package ``pgbouncer``) in transaction-pooling mode in front of the
database, for ``cadastre serve --workers N --pgbouncer``.

Its files live under ``<data dir>/pgbouncer/`` (or beside the embedded cluster's when the
``postgres`` user cannot reach the data dir: configuration, the user list with the
database's password (mode 0600), log, pid). As root it runs as the ``postgres`` OS user through
``runuser``, like the embedded cluster. It listens on 127.0.0.1 on a free port and lives as long
as the process that started it.

Through a transaction pooler a server connection serves one transaction at a time of any
client, so the clients keep no session state: the server's request pools connect with
``prepare_threshold=None`` (no prepared statements) and without startup ``options``;
``statement_timeout`` and ``search_path`` are set on every server connection by pgbouncer
(``connect_query``). LISTEN, session advisory locks, temporary tables and the background jobs
use direct connections (``AppState.database_url``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg.conninfo import conninfo_to_dict

from cadastre.errors import ClusterError
from cadastre.store.cluster import SERVER_USER, free_port, server_home

SEARCH_PATH = "cad, public"     # as api.app sets it on direct connections


@dataclass
class Bouncer:
    proc: subprocess.Popen[bytes]
    port: int
    url: str          # the database through pgbouncer
    folder: Path

    def stop(self, timeout: float = 10) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)


def _binary() -> str:
    found = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer"
                                          if Path("/usr/sbin/pgbouncer").is_file() else None)
    if found is None:
        raise ClusterError("PGBOUNCER_MISSING", "找不到 pgbouncer / pgbouncer not found "
                                                "(apt-get install pgbouncer)")
    return found


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _write(path: Path, text: str, owner: int | None) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    if owner is not None:
        os.chown(path, owner, -1)


def start(url: str, data_dir: Path, pool_size: int, statement_timeout_ms: int,
          timeout: float = 20) -> Bouncer:
    """Start pgbouncer in front of ``url``; returns once a query through it has answered."""
    binary = _binary()
    target = conninfo_to_dict(url)
    host, port = str(target.get("host") or "127.0.0.1"), int(target.get("port") or 5432)
    db, user = str(target["dbname"]), str(target["user"])
    password = str(target.get("password") or "")
    folder = server_home(data_dir, "pgbouncer")
    folder.mkdir(parents=True, exist_ok=True)
    owner = pwd.getpwnam(SERVER_USER).pw_uid if os.geteuid() == 0 else None
    if owner is not None:
        os.chown(folder, owner, -1)
    listen = free_port()
    connect_query = (f"SET statement_timeout = {int(statement_timeout_ms)}; "
                     f"SET search_path = {SEARCH_PATH}")
    _write(folder / "userlist.txt", f"{_quote(user)} {_quote(password)}\n", owner)
    _write(folder / "pgbouncer.ini", f"""[databases]
{db} = host={host} port={port} dbname={db} connect_query='{connect_query}'

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {folder / "userlist.txt"}
pool_mode = transaction
stats_users = {user}
default_pool_size = {pool_size}
max_client_conn = 2000
server_reset_query =
ignore_startup_parameters = extra_float_digits, options
logfile = {folder / "pgbouncer.log"}
pidfile = {folder / "pgbouncer.pid"}
""", owner)
    cmd = [binary, str(folder / "pgbouncer.ini")]
    if owner is not None:
        cmd = ["runuser", "-u", SERVER_USER, "--", *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = (f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:"
              f"{listen}/{quote(db, safe='')}")
    bouncer = Bouncer(proc, listen, client, folder)
    _wait_ready(bouncer, timeout)
    return bouncer


def _wait_ready(b: Bouncer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if b.proc.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", b.port), timeout=1):
                pass
            with psycopg.connect(b.url, prepare_threshold=None, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            return
        except (OSError, psycopg.Error) as exc:
            last = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            time.sleep(0.2)
    b.stop()
    log = b.folder / "pgbouncer.log"
    tail = log.read_text(errors="replace")[-1500:] if log.is_file() else ""
    raise ClusterError("PGBOUNCER_FAILED", f"pgbouncer 未能启动 / pgbouncer did not start: "
                                           f"{last}\n{tail}")

"""A private PostgreSQL + PostGIS cluster under the project's data dir.

Uses the system's PostgreSQL server binaries (Debian ``postgresql-15`` and
``postgresql-15-postgis-3``). PostgreSQL refuses to run as root, so when we are root the server
binaries run as the ``postgres`` OS user through ``runuser`` and the cluster's files belong to it.
The cluster listens on 127.0.0.1 only, on a free port, with its own socket directory.

State (port, password, where the cluster lives) is kept in ``<data_dir>/pg.json`` (mode 0600).
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote

from cadastre.errors import ClusterError

log = logging.getLogger(__name__)

SERVER_USER = "postgres"  # OS user that owns the cluster when we run as root
DB_NAME = "cadastre"
DB_SUPERUSER = "cadastre"
SUPPORTED_MAJORS = (17, 16, 15, 14)


def _is_root() -> bool:
    return os.geteuid() == 0


@dataclass(frozen=True)
class PgInstall:
    major: int
    bindir: Path


def find_postgres() -> PgInstall:
    """The newest installed PostgreSQL server (14+) that has PostGIS available."""
    found_server: list[int] = []
    for major in SUPPORTED_MAJORS:
        bindir = Path(f"/usr/lib/postgresql/{major}/bin")
        if not (bindir / "postgres").is_file():
            continue
        found_server.append(major)
        if Path(f"/usr/share/postgresql/{major}/extension/postgis.control").is_file():
            return PgInstall(major, bindir)
    if found_server:
        major = found_server[0]
        raise ClusterError(
            "POSTGIS_MISSING",
            f"找不到 PostGIS 扩展，请安装：sudo apt-get install postgresql-{major}-postgis-3 / "
            f"PostGIS is not installed for PostgreSQL {major}: "
            f"sudo apt-get install postgresql-{major}-postgis-3",
        )
    raise ClusterError(
        "POSTGRES_MISSING",
        "找不到 PostgreSQL 服务器，请安装："
        "sudo apt-get install postgresql-15 postgresql-15-postgis-3"
        " / PostgreSQL server binaries not found: "
        "sudo apt-get install postgresql-15 postgresql-15-postgis-3",
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def server_can_use(path: Path) -> bool:
    """Can the server's OS user create files under ``path`` (its nearest existing parent)?"""
    if not _is_root():
        return True
    probe = path
    while not probe.exists():
        probe = probe.parent
    # the postgres user must be able to traverse every ancestor
    proc = subprocess.run(
        ["runuser", "-u", SERVER_USER, "--", "test", "-x", str(probe)], capture_output=True
    )
    return proc.returncode == 0


def server_home(data_dir: Path, name: str) -> Path:
    """``data_dir / name`` for files of a server run as the server's OS user, or a folder under
    /var/lib/cadastre when that user cannot reach the data dir."""
    if server_can_use(data_dir):
        return data_dir / name
    # e.g. a checkout under /root (mode 0700): the postgres user cannot reach it.
    import hashlib

    digest = hashlib.sha1(str(data_dir).encode()).hexdigest()[:12]
    alt = Path("/var/lib/cadastre") / (digest if name == "pg" else f"{digest}-{name}")
    log.warning("data dir %s is not reachable by the %s user; keeping %s in %s",
                data_dir, SERVER_USER, name, alt)
    return alt


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


@dataclass
class ClusterState:
    pgdata: str
    sockdir: str
    port: int
    password: str
    major: int

    def url(self, dbname: str = DB_NAME) -> str:
        """Through the cluster's own socket directory: a round trip over a Unix socket costs
        about half of one over TCP on 127.0.0.1 (which the cluster also listens on)."""
        return (
            f"postgresql://{DB_SUPERUSER}:{quote(self.password, safe='')}"
            f"@/{dbname}?host={quote(self.sockdir, safe='/')}&port={self.port}"
        )


@dataclass(frozen=True)
class ClusterStatus:
    initialized: bool
    running: bool
    pid: int | None
    port: int | None
    pgdata: str | None
    major: int | None
    stale_pid_removed: bool = False


class EmbeddedCluster:
    def __init__(self, data_dir: Path, shared_buffers: str = "256MB", port: int | None = None,
                 max_connections: int = 100):
        self.data_dir = Path(data_dir).resolve()
        self.state_file = self.data_dir / "pg.json"
        self.shared_buffers = shared_buffers
        self.max_connections = max_connections     # (written at initdb)
        self.fixed_port = port

    # ----------------------------------------------------------------- state
    def load_state(self) -> ClusterState | None:
        if not self.state_file.is_file():
            return None
        return ClusterState(**json.loads(self.state_file.read_text()))

    def _save_state(self, state: ClusterState) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(state), fh, indent=2)
        os.replace(tmp, self.state_file)

    def _require_state(self) -> ClusterState:
        state = self.load_state()
        if state is None or not (Path(state.pgdata) / "PG_VERSION").is_file():
            raise ClusterError(
                "CLUSTER_NOT_INITIALIZED",
                "内嵌数据库尚未初始化，请运行 cadastre db init / "
                "embedded cluster not initialized: run `cadastre db init`",
            )
        return state

    # ------------------------------------------------------------ commands
    def _run(self, args: Sequence[str], check: bool = True,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if _is_root():
            cmd = ["runuser", "-u", SERVER_USER, "--", *cmd]
        log.debug("run %s", cmd)
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd="/",
                              env={**os.environ, **env} if env else None)
        if check and proc.returncode != 0:
            raise ClusterError(
                "CLUSTER_COMMAND_FAILED",
                f"命令失败 / command failed: {' '.join(args[:2])} (exit {proc.returncode}): "
                f"{(proc.stderr or proc.stdout).strip()[-2000:]}",
            )
        return proc

    def _server_can_use(self, path: Path) -> bool:
        return server_can_use(path)

    def _cluster_home(self) -> Path:
        return server_home(self.data_dir, "pg")

    def _make_server_dir(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o700)
        if _is_root():
            pw = pwd.getpwnam(SERVER_USER)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    # ----------------------------------------------------------------- init
    def init(self) -> ClusterState:
        """Create the cluster if it does not exist yet (idempotent)."""
        install = find_postgres()
        state = self.load_state()
        if state is not None and (Path(state.pgdata) / "PG_VERSION").is_file():
            return state
        if _is_root():
            try:
                pwd.getpwnam(SERVER_USER)
            except KeyError as exc:
                raise ClusterError(
                    "POSTGRES_USER_MISSING",
                    "以 root 运行需要系统用户 postgres（随 postgresql 软件包创建）/ "
                    "running as root needs the 'postgres' OS user "
                    "(created by the postgresql package)",
                ) from exc
        home = self._cluster_home()
        home.mkdir(parents=True, exist_ok=True)
        pgdata, sockdir = home / "data", home / "run"
        if pgdata.exists() and any(pgdata.iterdir()):
            shutil.rmtree(pgdata)  # a half-finished earlier init
        self._make_server_dir(pgdata)
        self._make_server_dir(sockdir)
        password = secrets.token_urlsafe(24)
        with tempfile.NamedTemporaryFile("w", delete=False, dir=str(home), suffix=".pw") as fh:
            fh.write(password + "\n")
            pwfile = Path(fh.name)
        try:
            if _is_root():
                pw = pwd.getpwnam(SERVER_USER)
                os.chown(pwfile, pw.pw_uid, pw.pw_gid)
            os.chmod(pwfile, 0o600)
            self._run(
                [
                    str(install.bindir / "initdb"),
                    "-D", str(pgdata),
                    "-U", DB_SUPERUSER,
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)
        conf = pgdata / "cadastre.conf"
        conf_text = "\n".join(
            [
                "# written by `cadastre db init`",
                "listen_addresses = '127.0.0.1'",
                f"unix_socket_directories = '{sockdir}'",
                f"shared_buffers = '{self.shared_buffers}'",
                f"max_connections = {self.max_connections}",
                "work_mem = '32MB'",
                "maintenance_work_mem = '256MB'",
                "max_wal_size = '2GB'",
                "logging_collector = off",
                "log_min_messages = warning",
                "",
            ]
        )
        self._write_server_file(conf, conf_text)
        main_conf = pgdata / "postgresql.conf"
        self._write_server_file(
            main_conf, main_conf.read_text() + "\ninclude_if_exists = 'cadastre.conf'\n"
        )
        port = self.fixed_port or free_port()
        state = ClusterState(str(pgdata), str(sockdir), port, password, install.major)
        self._save_state(state)
        return state

    def _write_server_file(self, path: Path, text: str) -> None:
        path.write_text(text)
        if _is_root():
            pw = pwd.getpwnam(SERVER_USER)
            os.chown(path, pw.pw_uid, pw.pw_gid)
        os.chmod(path, 0o600)

    # -------------------------------------------------------------- liveness
    def _postmaster_pid(self, state: ClusterState) -> int | None:
        pidfile = Path(state.pgdata) / "postmaster.pid"
        try:
            first = pidfile.read_text().splitlines()[0]
            return int(first.strip())
        except (OSError, ValueError, IndexError):
            return None

    @staticmethod
    def _is_our_postmaster(pid: int, pgdata: str) -> bool:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        args = [a.decode(errors="replace") for a in cmdline if a]
        return bool(args) and args[0].endswith("postgres") and pgdata in args

    def _clear_stale(self, state: ClusterState) -> bool:
        """Remove a pid file (and socket lock files) left by a crashed server."""
        pidfile = Path(state.pgdata) / "postmaster.pid"
        pid = self._postmaster_pid(state)
        if not pidfile.exists() or (pid is not None and self._is_our_postmaster(pid, state.pgdata)):
            return False
        log.warning("removing stale postmaster.pid (pid %s is not our server)", pid)
        pidfile.unlink(missing_ok=True)
        for lock in Path(state.sockdir).glob(".s.PGSQL.*"):
            lock.unlink(missing_ok=True)
        return True

    def status(self) -> ClusterStatus:
        state = self.load_state()
        if state is None or not (Path(state.pgdata) / "PG_VERSION").is_file():
            return ClusterStatus(False, False, None, None, None, None)
        pid = self._postmaster_pid(state)
        running = pid is not None and self._is_our_postmaster(pid, state.pgdata)
        return ClusterStatus(
            True, running, pid if running else None, state.port, state.pgdata, state.major
        )

    # ------------------------------------------------------------ start/stop
    def start(self, timeout: int = 60) -> ClusterStatus:
        """Start the server if it is not running (idempotent); init first if needed."""
        state = self.init()
        current = self.status()
        if current.running:
            return current
        stale = self._clear_stale(state)
        if self.fixed_port and self.fixed_port != state.port:
            state.port = self.fixed_port
        if port_in_use(state.port):
            if self.fixed_port:
                raise ClusterError(
                    "PORT_IN_USE", f"端口 {state.port} 已被占用 / port {state.port} is in use"
                )
            state.port = free_port()
        self._save_state(state)
        install = find_postgres()
        logfile = Path(state.pgdata).parent / "server.log"
        if _is_root() and not logfile.exists():
            logfile.touch()
            pw = pwd.getpwnam(SERVER_USER)
            os.chown(logfile, pw.pw_uid, pw.pw_gid)
        proc = self._run(
            [
                str(install.bindir / "pg_ctl"),
                "-D", state.pgdata,
                "-l", str(logfile),
                "-w", "-t", str(timeout),
                "-o", f"-p {state.port} -k {state.sockdir}",
                "start",
            ],
            check=False,
        )
        if proc.returncode != 0:
            tail = ""
            try:
                tail = "\n".join(logfile.read_text(errors="replace").splitlines()[-15:])
            except OSError:
                pass
            raise ClusterError(
                "CLUSTER_START_FAILED",
                f"内嵌数据库启动失败 / embedded PostgreSQL failed to start: "
                f"{proc.stderr.strip()}\n{tail}",
            )
        self._wait_ready(state, timeout)
        st = self.status()
        return ClusterStatus(**{**asdict(st), "stale_pid_removed": stale})

    def _wait_ready(self, state: ClusterState, timeout: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(state.url("postgres"), connect_timeout=3) as conn:
                    conn.autocommit = True
                    exists = conn.execute(
                        "SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)
                    ).fetchone()
                    if not exists:
                        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
                return
            except psycopg.OperationalError as exc:
                last = exc
                time.sleep(0.2)
        raise ClusterError(
            "CLUSTER_START_FAILED", f"内嵌数据库未就绪 / server did not become ready: {last}"
        )

    def stop(self, timeout: int = 60) -> bool:
        """Stop the server if running (idempotent). Returns True if it was running."""
        state = self.load_state()
        if state is None:
            return False
        if not self.status().running:
            self._clear_stale(state)
            return False
        install = find_postgres()
        self._run(
            [str(install.bindir / "pg_ctl"), "-D", state.pgdata, "-m", "fast", "-w",
             "-t", str(timeout), "stop"]
        )
        return True

    def destroy(self) -> None:
        """Stop and delete the cluster (used by tests and `cadastre db init --force`)."""
        state = self.load_state()
        self.stop()
        if state is not None:
            shutil.rmtree(Path(state.pgdata).parent, ignore_errors=True)
        self.state_file.unlink(missing_ok=True)

    def url(self, dbname: str = DB_NAME) -> str:
        return self._require_state().url(dbname)

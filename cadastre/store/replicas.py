"""Physical streaming replicas of the embedded cluster (``cadastre db replica add|list|remove``).

A replica is a copy of the primary made by ``pg_basebackup`` (``-R``: it starts as a hot
standby streaming from the primary, through a replication slot of its own so the primary keeps
the WAL it has not received, up to ``max_slot_wal_keep_size``). Each lives under
``<data_dir>/replicas/<name>/`` with its own port, socket dir and ``pg.json``, and is started and
stopped like the primary (it is an ``EmbeddedCluster`` whose ``init`` is the base backup).
External replicas are not managed here: list their URLs in ``CADASTRE_READ_URLS``.
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import psycopg

from cadastre.errors import ClusterError, Conflict, InvalidInput
from cadastre.store.cluster import (
    DB_SUPERUSER,
    ClusterState,
    EmbeddedCluster,
    find_postgres,
    free_port,
)

log = logging.getLogger(__name__)
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
WAL_KEEP = "4GB"    # a dead replica's slot holds at most this much WAL on the primary


def replicas_dir(data_dir: Path) -> Path:
    return Path(data_dir).resolve() / "replicas"


def slot_name(name: str) -> str:
    return f"cadastre_replica_{name}"


class ReplicaCluster(EmbeddedCluster):
    """A standby of ``primary``; ``init`` makes it with a base backup."""

    def __init__(self, primary: EmbeddedCluster, name: str) -> None:
        super().__init__(replicas_dir(primary.data_dir) / name)
        self.primary = primary
        self.name = name

    def init(self) -> ClusterState:
        state = self.load_state()
        if state is not None and (Path(state.pgdata) / "PG_VERSION").is_file():
            return state
        install = find_postgres()
        source = self.primary._require_state()
        home = self._cluster_home()
        home.mkdir(parents=True, exist_ok=True)
        pgdata, sockdir = home / "data", home / "run"
        if pgdata.exists():
            shutil.rmtree(pgdata)   # a half-finished earlier base backup
        self._make_server_dir(pgdata)
        self._make_server_dir(sockdir)
        with psycopg.connect(source.url("postgres"), autocommit=True) as conn:
            conn.execute(f"ALTER SYSTEM SET max_slot_wal_keep_size = '{WAL_KEEP}'")
            conn.execute("SELECT pg_reload_conf()")
            if conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s",
                            (slot_name(self.name),)).fetchone():
                conn.execute("SELECT pg_drop_replication_slot(%s)", (slot_name(self.name),))
        self._run([str(install.bindir / "pg_basebackup"), "-D", str(pgdata),
                   "-h", "127.0.0.1", "-p", str(source.port), "-U", DB_SUPERUSER,
                   "-X", "stream", "-R", "-C", "-S", slot_name(self.name), "-c", "fast"],
                  env={"PGPASSWORD": source.password})
        conf = pgdata / "cadastre.conf"   # the primary's, with this replica's socket dir
        text = re.sub(r"unix_socket_directories = '[^']*'",
                      f"unix_socket_directories = '{sockdir}'", conf.read_text())
        self._write_server_file(conf, text + "hot_standby_feedback = on\n")
        state = ClusterState(str(pgdata), str(sockdir), free_port(), source.password,
                             install.major)
        self._save_state(state)
        return state


@dataclass(frozen=True)
class ReplicaInfo:
    name: str
    port: int | None
    running: bool
    url: str | None
    lag_bytes: int | None      # WAL the replica has not replayed yet (None: not streaming)
    state: str | None          # the primary's view: streaming, catchup, …


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidInput("REPLICA_NAME_INVALID", "副本名称须为小写字母、数字或下划线 / a "
                           "replica name is lower-case letters, digits and underscores")
    return name


def replica(primary: EmbeddedCluster, name: str) -> ReplicaCluster:
    return ReplicaCluster(primary, _check_name(name))


def names(primary: EmbeddedCluster) -> list[str]:
    root = replicas_dir(primary.data_dir)
    return sorted(p.name for p in root.iterdir() if (p / "pg.json").is_file()) \
        if root.is_dir() else []


def add(primary: EmbeddedCluster, name: str) -> ReplicaCluster:
    """Base backup of the running primary, started as a streaming standby."""
    r = replica(primary, name)
    if name in names(primary):
        raise Conflict("REPLICA_EXISTS", "副本已存在 / a replica of that name exists")
    primary.start()
    try:
        r.start()
    except Exception:
        remove(primary, name)
        raise
    return r


def start_all(primary: EmbeddedCluster) -> list[ReplicaCluster]:
    """Start every replica that is not running; one that fails is logged and left out (the
    server then reads from the others, or from the primary)."""
    started = []
    for name in names(primary):
        r = replica(primary, name)
        try:
            r.start()
        except ClusterError as exc:
            log.warning("read replica %s did not start: %s", name, exc.code)
            continue
        started.append(r)
    return started


def urls(primary: EmbeddedCluster) -> list[str]:
    """The URLs of the replicas that are running now."""
    out = []
    for name in names(primary):
        r = replica(primary, name)
        if r.status().running:
            out.append(r.url())
    return out


def remove(primary: EmbeddedCluster, name: str) -> bool:
    """Stop and delete the replica, and drop its slot on the primary."""
    r = replica(primary, name)
    existed = r.state_file.exists()
    r.destroy()
    shutil.rmtree(r.data_dir, ignore_errors=True)
    if primary.status().running:
        with psycopg.connect(primary.url("postgres"), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s",
                            (slot_name(name),)).fetchone():
                conn.execute("SELECT pg_drop_replication_slot(%s)", (slot_name(name),))
    return existed


def describe(primary: EmbeddedCluster) -> list[ReplicaInfo]:
    """Each replica with the primary's view of its replication (lag in bytes of WAL)."""
    slots: dict[str, tuple[int | None, str | None]] = {}
    if primary.status().running:
        with psycopg.connect(primary.url("postgres"), autocommit=True) as conn:
            for slot, lag, st in conn.execute(
                    "SELECT s.slot_name, (pg_current_wal_lsn() - r.replay_lsn)::bigint, r.state "
                    "FROM pg_replication_slots s LEFT JOIN pg_stat_replication r "
                    "ON r.pid = s.active_pid"):
                slots[slot] = (lag, st)
    out = []
    for name in names(primary):
        r = replica(primary, name)
        st = r.status()
        lag, rstate = slots.get(slot_name(name), (None, None))
        out.append(ReplicaInfo(name, st.port, st.running, r.url() if st.running else None,
                               lag, rstate))
    return out

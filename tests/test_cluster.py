"""The embedded cluster: init/start/stop idempotence, crash recovery, root and normal users."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import psycopg
import pytest

from cadastre.errors import ClusterError
from cadastre.settings import PROJECT_ROOT
from cadastre.store.cluster import EmbeddedCluster, find_postgres


@pytest.fixture()
def own_cluster(tmp_path: Path):
    base = tmp_path / "data"
    c = EmbeddedCluster(base, shared_buffers="32MB")
    yield c
    c.destroy()


def _world_traversable(path: Path) -> None:
    """tmp dirs are 0700; let the postgres user reach the cluster when we are root."""
    for p in [path, *path.parents]:
        if str(p) in ("/", "/tmp"):
            break
        os.chmod(p, os.stat(p).st_mode | 0o711)


def test_find_postgres_has_postgis() -> None:
    install = find_postgres()
    assert install.major >= 14
    assert (install.bindir / "postgres").is_file()


def test_start_stop_idempotent_and_queryable(own_cluster: EmbeddedCluster, tmp_path: Path) -> None:
    _world_traversable(tmp_path)
    first = own_cluster.start()
    assert first.running and first.pid
    again = own_cluster.start()
    assert again.pid == first.pid  # idempotent: the same server
    with psycopg.connect(own_cluster.url()) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        version = conn.execute("SELECT postgis_lib_version()").fetchone()[0]
        assert version.startswith("3.")
        listen = conn.execute("SHOW listen_addresses").fetchone()[0]
        assert listen == "127.0.0.1"
        sockdir = conn.execute("SHOW unix_socket_directories").fetchone()[0]
        assert sockdir == own_cluster.load_state().sockdir
    state = own_cluster.load_state()
    assert state is not None and oct(own_cluster.state_file.stat().st_mode)[-3:] == "600"
    if os.geteuid() == 0:
        assert pwd.getpwuid(Path(state.pgdata).stat().st_uid).pw_name == "postgres"
    assert own_cluster.stop() is True
    assert own_cluster.stop() is False  # idempotent
    assert not own_cluster.status().running


def test_crash_leaves_stale_pid_and_start_recovers(own_cluster: EmbeddedCluster,
                                                  tmp_path: Path) -> None:
    _world_traversable(tmp_path)
    st = own_cluster.start()
    assert st.pid
    os.kill(st.pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and Path(f"/proc/{st.pid}").exists():
        time.sleep(0.1)
    state = own_cluster.load_state()
    assert state is not None
    pidfile = Path(state.pgdata) / "postmaster.pid"
    assert pidfile.exists(), "SIGKILL leaves the pid file behind"
    # make it worse: the stale pid now belongs to a live process that is not postgres
    lines = pidfile.read_text().splitlines()
    lines[0] = str(os.getpid())
    pidfile.write_text("\n".join(lines) + "\n")
    assert not own_cluster.status().running
    # orphaned backends may hold shared memory for a moment after the postmaster died
    deadline = time.monotonic() + 30
    while True:
        try:
            again = own_cluster.start()
            break
        except ClusterError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    assert again.running and again.pid != st.pid
    with psycopg.connect(own_cluster.url()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_port_taken_moves_to_free_port(own_cluster: EmbeddedCluster, tmp_path: Path) -> None:
    import socket

    _world_traversable(tmp_path)
    state = own_cluster.init()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", state.port))
        squatter.listen()
        st = own_cluster.start()
        assert st.running and st.port != state.port


def test_status_of_missing_cluster(tmp_path: Path) -> None:
    c = EmbeddedCluster(tmp_path / "nothing")
    st = c.status()
    assert not st.initialized and not st.running
    with pytest.raises(ClusterError) as exc:
        c.url()
    assert exc.value.code == "CLUSTER_NOT_INITIALIZED"
    assert c.stop() is False


@pytest.mark.skipif(os.geteuid() != 0, reason="the whole suite already runs as a normal user")
def test_cluster_as_normal_user(tmp_path: Path) -> None:
    """A non-root user runs the server binaries directly (no runuser), data dir owned by it."""
    user = "cadastre-test"
    if subprocess.run(["id", user], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        user], check=True)
    python = shutil.which("python3.11", path="/usr/bin:/usr/local/bin") or "/usr/bin/python3"
    site = sysconfig.get_paths()["purelib"]
    home = tmp_path / "userdata"
    home.mkdir()
    shutil.chown(home, user, user)
    _world_traversable(tmp_path)
    if not os.access(site, os.R_OK) or not _readable_by(user, site):
        pytest.skip(f"the venv's site-packages ({site}) is not readable by {user}")
    script = (
        f"import sys; sys.path[:0] = [{str(PROJECT_ROOT)!r}, {site!r}]\n"
        "from pathlib import Path\n"
        "import psycopg\n"
        "from cadastre.store.cluster import EmbeddedCluster\n"
        f"c = EmbeddedCluster(Path({str(home)!r}), shared_buffers='32MB')\n"
        "st = c.start(); assert st.running\n"
        "with psycopg.connect(c.url()) as conn:\n"
        "    print(conn.execute('SELECT current_user').fetchone()[0])\n"
        "print(Path(c.load_state().pgdata).owner())\n"
        "c.destroy()\n"
    )
    proc = subprocess.run(["runuser", "-u", user, "--", python, "-c", script],
                          capture_output=True, text=True, timeout=120, cwd="/")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.split()
    assert out == ["cadastre", user]


def _readable_by(user: str, path: str) -> bool:
    return subprocess.run(["runuser", "-u", user, "--", "test", "-r", path],
                          capture_output=True).returncode == 0


def test_python_is_311_or_newer() -> None:
    assert sys.version_info >= (3, 11)

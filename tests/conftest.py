"""Fixtures: a real embedded PostGIS cluster for the test session (no mocks, no SQLite).

The cluster lives under ``var/test`` (or ``$CADASTRE_TEST_DATA_DIR``), separate from the demo's.
Each test that writes gets a fresh database cloned from a migrated template; the demo district is
loaded once per session into its own database, and so is the small 60-parcel district that test
modules clone (``small_district``) when they change what they read.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import psycopg
import pytest

from cadastre.settings import PROJECT_ROOT, Settings
from cadastre.store.cluster import EmbeddedCluster
from cadastre.store.migrate import migrate

# Many apps live at once in a test session (two sessions under -n 2, on one cluster): each keeps
# a small request pool that shrinks when idle, not the fixed machine-sized one of a server (on a
# many-core CI machine those exhausted max_connections). Set before any Settings is read.
os.environ.setdefault("CADASTRE_POOL_MIN", "1")
os.environ.setdefault("CADASTRE_POOL_MAX", "4")

TEST_DATA_DIR = Path(os.environ.get("CADASTRE_TEST_DATA_DIR", PROJECT_ROOT / "var" / "test"))
DEMO_PARCELS = 2000
SMALL_PARCELS, SMALL_SEED = 60, 11


def _source_hash(*globs: str) -> str:
    h = hashlib.sha256()
    for pattern in globs:
        for path in sorted(PROJECT_ROOT.glob(pattern)):
            h.update(path.read_bytes())
    return h.hexdigest()[:10]


# Databases are named after what built them, so sessions (and concurrent pytest runs) reuse them
# safely: a template per migration set, a demo per migration set + generator source.
TEMPLATE_DB = "tpl_" + _source_hash("cadastre/store/migrations/*.sql")
DEMO_DB = "demo_" + _source_hash("cadastre/store/migrations/*.sql", "cadastre/demo/*.py",
                                 "cadastre/cases/*.py", "cadastre/store/bulk.py",
                                 "cadastre/access/idnumber.py")
SMALL_DB = "small" + DEMO_DB[4:]


def _admin(cluster: EmbeddedCluster) -> psycopg.Connection:
    return psycopg.connect(cluster.url("postgres"), autocommit=True)


def _exists(cluster: EmbeddedCluster, name: str) -> bool:
    with _admin(cluster) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() \
            is not None


def _recreate(cluster: EmbeddedCluster, name: str, template: str | None = None) -> str:
    with _admin(cluster) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        # FILE_COPY: a checkpoint and a file copy, where the default (WAL_LOG) writes the whole
        # template through shared buffers and WAL, and dropping such a copy later forces out its
        # dirty pages (measured on a demo clone: 0.7 s + 0.6 s against 0.6 s + 3.0 s)
        tpl = f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""
        conn.execute(f'CREATE DATABASE "{name}"{tpl}')
    return cluster.url(name)


def _build_once(cluster: EmbeddedCluster, name: str, build, template: str | None = None) -> str:
    """Create database ``name`` with ``build(url)`` unless a finished one exists (built under
    ``name`` + '_building' and renamed, so a crashed build is never mistaken for a finished one)."""
    lock = int(hashlib.sha256(name.encode()).hexdigest()[:12], 16)
    with _admin(cluster) as admin:
        admin.execute("SELECT pg_advisory_lock(%s)", (lock,))
        try:
            if not _exists(cluster, name):
                tmp = name + "_building"
                url = _recreate(cluster, tmp, template)
                build(url)
                admin.execute(f'ALTER DATABASE "{tmp}" RENAME TO "{name}"')
        finally:
            admin.execute("SELECT pg_advisory_unlock(%s)", (lock,))
    return cluster.url(name)


@pytest.fixture(scope="session")
def cluster() -> Iterator[EmbeddedCluster]:
    # Left running at the end: other pytest processes may be using it; `cadastre db stop` style
    # cleanup is `EmbeddedCluster(TEST_DATA_DIR).stop()`.
    # two pytest sessions (-n 2) share it, each with several apps alive at once (pools, job
    # threads, listeners: ~10 connections an app), and the crash tests' server processes
    c = EmbeddedCluster(TEST_DATA_DIR, max_connections=200)
    TEST_DATA_DIR.mkdir(parents=True, exist_ok=True)
    with open(TEST_DATA_DIR / ".cluster.lock", "w") as lock:   # one initdb/start at a time
        fcntl.flock(lock, fcntl.LOCK_EX)                       # (pytest -n: several sessions)
        c.start()
    with _admin(c) as conn:  # drop templates/demos built by older sources
        stale = [r[0] for r in conn.execute(
            "SELECT datname FROM pg_database WHERE (datname LIKE 'tpl\\_%%' "
            "OR datname LIKE 'demo\\_%%' OR datname LIKE 'small\\_%%') "
            "AND datname NOT LIKE '%%\\_building' "
            "AND datname NOT IN (%s, %s, %s)", (TEMPLATE_DB, DEMO_DB, SMALL_DB))]
        # (a '_building' database is another pytest process's build in progress: leave it)
        for name in stale:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    yield c


@pytest.fixture(scope="session")
def template_url(cluster: EmbeddedCluster) -> str:
    return _build_once(cluster, TEMPLATE_DB, migrate)


@pytest.fixture()
def fresh_db(cluster: EmbeddedCluster, template_url: str) -> Iterator[str]:
    """A new migrated, empty database for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = _recreate(cluster, name, TEMPLATE_DB)
    yield url
    with _admin(cluster) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture()
def empty_db(cluster: EmbeddedCluster) -> Iterator[str]:
    """A new database with nothing in it (not even PostGIS), for migration tests."""
    name = f"e_{uuid.uuid4().hex[:12]}"
    url = _recreate(cluster, name)
    yield url
    with _admin(cluster) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def make_db(cluster: EmbeddedCluster, template_url: str):
    """Factory: a fresh migrated database (dropped at session end)."""
    made: list[str] = []

    def make(prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        made.append(name)
        return _recreate(cluster, name, TEMPLATE_DB)

    yield make
    with _admin(cluster) as conn:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def test_settings() -> Settings:
    """Settings whose data dir (and PII keys) persist with the test cluster, so a reused demo
    database can still be decrypted."""
    from cadastre.access.pii import secrets_file
    from cadastre.certificates.signing import signing_files

    data_dir = TEST_DATA_DIR / "app"
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(storage={"data_dir": data_dir})
    # the keys and the local CA are made once, under a lock: two pytest processes (-n 2) must
    # not each generate their own and overwrite the other's
    with open(TEST_DATA_DIR / ".keys.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        secrets_file(data_dir / "secrets.json")
        signing_files(settings)
    return settings


@pytest.fixture(scope="session")
def demo_url(cluster: EmbeddedCluster, template_url: str, test_settings: Settings) -> str:
    """The standard demo district (2,000 parcels), loaded once per session."""
    from cadastre.access.pii import load_cipher
    from cadastre.demo.load import load_demo

    def build(url: str) -> None:
        from cadastre.access.pii import audit_key
        from cadastre.cases.workflow import Keys
        from cadastre.demo.cases import seed_cases

        with psycopg.connect(url) as conn:
            load_demo(conn, load_cipher(test_settings), parcels=DEMO_PARCELS)
            seed_cases(conn, test_settings.cases,
                       Keys(load_cipher(test_settings), audit_key(test_settings)))

    return _build_once(cluster, DEMO_DB, build, TEMPLATE_DB)


@pytest.fixture()
def demo_conn(demo_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(demo_url) as conn:
        yield conn
        conn.rollback()


@pytest.fixture(scope="session")
def api_settings(test_settings: Settings) -> Settings:
    return test_settings


def client_for(url: str, settings: Settings, *, api: dict | None = None, **tile_opts: object):
    """A TestClient (lifespan run) on the database at ``url``, with ``settings``' data dir and
    the given API and tile settings; use as a context manager."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    s = Settings(storage={"data_dir": settings.data_dir}, database={"url": url},
                 tiles=tile_opts or {}, api=api or {})
    return TestClient(create_app(s))


@pytest.fixture(scope="session")
def demo_client(demo_url: str, test_settings: Settings, tmp_path_factory: pytest.TempPathFactory):
    """The app on the demo database, with its own (initially empty) tile cache."""
    data_dir = tmp_path_factory.mktemp("demo_app")
    app_data_dir(test_settings, data_dir)   # same keys: tokens and PII decrypt alike
    with client_for(demo_url, Settings(storage={"data_dir": data_dir})) as client:
        yield client


@pytest.fixture(scope="session")
def registrar_token(demo_url: str, demo_client) -> str:
    from cadastre.access.accounts import create_account
    from cadastre.access.privacy import Role

    with psycopg.connect(demo_url) as conn:
        exists = conn.execute("SELECT 1 FROM auth.account WHERE username = 'reg.test'").fetchone()
        if not exists:
            create_account(conn, "reg.test", "correct horse battery", Role.REGISTRAR, "登记员")
    r = demo_client.post("/api/v1/auth/login",
                         json={"username": "reg.test", "password": "correct horse battery"})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def app_data_dir(test_settings: Settings, folder: Path) -> Path:
    """An app data dir holding the test keys, so tokens and PII decrypt as in the other tests,
    and the office's signing key and CA (documents signed in the shared databases verify)."""
    from cadastre.access.pii import secrets_file
    from cadastre.certificates.signing import signing_files

    secrets_file(test_settings.data_dir / "secrets.json")
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(test_settings.data_dir / "secrets.json", folder / "secrets.json")
    if not (folder / "signing").exists():
        shutil.copytree(signing_files(test_settings).key.parent, folder / "signing")
    return folder


#: (username, password, role[, display name])
AccountSpec = tuple


@pytest.fixture(scope="session")
def small_district(cluster: EmbeddedCluster, template_url: str, test_settings: Settings
                   ) -> Iterator[Callable[..., str]]:
    """Factory: ``small_district(prefix, accounts=())`` → the URL of a fresh copy of the
    60-parcel district (seed 11; loaded once per session, then cloned) with ``accounts``
    created. Modules that change the district take their own copy."""
    from cadastre.access.accounts import create_account
    from cadastre.access.pii import load_cipher
    from cadastre.demo.load import load_demo

    def build(url: str) -> None:
        with psycopg.connect(url) as conn:
            load_demo(conn, load_cipher(test_settings), parcels=SMALL_PARCELS, seed=SMALL_SEED)

    _build_once(cluster, SMALL_DB, build, TEMPLATE_DB)
    made: list[str] = []

    def make(prefix: str, accounts: Sequence[AccountSpec] = ()) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        made.append(name)
        url = _recreate(cluster, name, SMALL_DB)
        if accounts:
            with psycopg.connect(url, autocommit=True) as conn:
                for spec in accounts:
                    create_account(conn, *spec)
        return url

    yield make
    with _admin(cluster) as conn:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

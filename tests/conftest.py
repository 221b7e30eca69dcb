"""Fixtures: a real embedded PostGIS cluster for the test session (no mocks, no SQLite).

The cluster lives under ``var/test`` (or ``$CADASTRE_TEST_DATA_DIR``), separate from the demo's.
Each test that writes gets a fresh database cloned from a migrated template; the demo district is
loaded once per session into its own database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from cadastre.settings import PROJECT_ROOT, Settings
from cadastre.store.cluster import EmbeddedCluster
from cadastre.store.migrate import migrate

TEST_DATA_DIR = Path(os.environ.get("CADASTRE_TEST_DATA_DIR", PROJECT_ROOT / "var" / "test"))
TEMPLATE_DB = "cadastre_template"
DEMO_DB = "cadastre_demo"
DEMO_PARCELS = 2000


def _db_url(cluster: EmbeddedCluster, name: str) -> str:
    return cluster.url(name)


def _recreate(cluster: EmbeddedCluster, name: str, template: str | None = None) -> str:
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        tpl = f' TEMPLATE "{template}"' if template else ""
        conn.execute(f'CREATE DATABASE "{name}"{tpl}')
    return cluster.url(name)


@pytest.fixture(scope="session")
def cluster() -> Iterator[EmbeddedCluster]:
    c = EmbeddedCluster(TEST_DATA_DIR)
    c.start()
    yield c
    c.stop()


@pytest.fixture(scope="session")
def template_url(cluster: EmbeddedCluster) -> str:
    url = _recreate(cluster, TEMPLATE_DB)
    migrate(url)
    return url


@pytest.fixture()
def fresh_db(cluster: EmbeddedCluster, template_url: str) -> Iterator[str]:
    """A new migrated, empty database for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = _recreate(cluster, name, TEMPLATE_DB)
    yield url
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture()
def empty_db(cluster: EmbeddedCluster) -> Iterator[str]:
    """A new database with nothing in it (not even PostGIS), for migration tests."""
    name = f"e_{uuid.uuid4().hex[:12]}"
    url = _recreate(cluster, name)
    yield url
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def make_db(cluster: EmbeddedCluster, template_url: str):
    """Factory: a fresh migrated database with the given name (dropped at session end)."""
    made: list[str] = []

    def make(name: str) -> str:
        made.append(name)
        return _recreate(cluster, name, TEMPLATE_DB)

    yield make
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def test_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir = tmp_path_factory.mktemp("data")
    return Settings(storage={"data_dir": data_dir})


@pytest.fixture(scope="session")
def demo_url(cluster: EmbeddedCluster, template_url: str, test_settings: Settings) -> str:
    """The standard demo district (2,000 parcels), loaded once per session."""
    from cadastre.demo.load import load_demo
    from cadastre.pii import load_cipher

    url = _recreate(cluster, DEMO_DB, TEMPLATE_DB)
    with psycopg.connect(url) as conn:
        load_demo(conn, load_cipher(test_settings), parcels=DEMO_PARCELS)
    return url


@pytest.fixture()
def demo_conn(demo_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(demo_url) as conn:
        yield conn
        conn.rollback()

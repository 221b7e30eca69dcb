"""A large import's accept sets the plain secondary indexes of the tables it fills aside and
rebuilds them before it commits: the same register as an accept that keeps them, every index
back with its definition, and a failed accept leaves the indexes as they were."""

from __future__ import annotations

import psycopg
import pytest

from cadastre.access.pii import audit_key
from cadastre.exchange import apply
from cadastre.exchange.fingerprint import register_fingerprint
from tests.exchange_support import make_message_set
from tests.test_exchange_import import run_import

INDEXES = ("SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
           "WHERE indrelid IN ('cad.parcel'::regclass, 'cad.boundary_point'::regclass, "
           "'cad.boundary_line'::regclass, 'cad.building'::regclass, 'cad.unit'::regclass, "
           "'pii.party'::regclass, 'cad.right_record'::regclass, 'cad.right_party'::regclass) "
           "ORDER BY 1")


@pytest.fixture(scope="module")
def message_set():
    return make_message_set(parcels=4)


def _indexes(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute(INDEXES).fetchall()


def test_bulk_accept_rebuilds_the_indexes_and_writes_the_same_register(
        make_db, test_settings, tmp_path, message_set):
    prints = []
    for min_rows in (10**9, 1):          # indexes kept; indexes set aside for every table
        url = make_db("xbulk")
        before = _indexes(url)
        bid, report = run_import(url, test_settings, message_set.zip_bytes(), "set.zip",
                                 tmp_path / f"up{min_rows}")
        assert report["status"] == "validated", report["errors"]
        steps: dict[str, float] = {}
        with psycopg.connect(url) as conn:
            out = apply.accept(conn, bid, "registrar:test", audit_key(test_settings),
                               timings=steps, bulk_min_rows=min_rows)
            prints.append(register_fingerprint(conn))
            plain = conn.execute("SELECT count(*) FROM pg_index WHERE indrelid = "
                                 "'cad.unit'::regclass AND NOT indisunique").fetchone()[0]
        assert out["written"]["unit"] == 144 and plain >= 5
        assert _indexes(url) == before
    assert prints[0] == prints[1]


def test_a_failed_bulk_accept_leaves_the_indexes(make_db, test_settings, tmp_path,
                                                 message_set):
    url = make_db("xbulkfail")
    before = _indexes(url)
    bid, report = run_import(url, test_settings, message_set.zip_bytes(), "set.zip", tmp_path)
    assert report["status"] == "validated", report["errors"]
    with psycopg.connect(url) as reader, psycopg.connect(url) as conn:
        # a reader holds cad.right_party (the last table set aside): the accept, which has
        # dropped the other tables' indexes by then, cannot lock it and fails
        reader.execute("SELECT count(*) FROM cad.right_party")
        conn.execute("SET lock_timeout = '300ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            apply.accept(conn, bid, "registrar:test", audit_key(test_settings),
                         bulk_min_rows=1)
        reader.rollback()
    assert _indexes(url) == before
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM cad.unit").fetchone()[0] == 0
        assert conn.execute("SELECT status FROM xchg.import_batch").fetchone()[0] == "validated"

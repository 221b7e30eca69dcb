"""Version exclusions on exact bigint keys of the codes (migration 0028, issue #18): the keys are
one-to-one on well-formed codes, overlapping versions of a parcel, building, floor or unit are
still refused, versions of another code or of another period are not, and a code's versions
are still read through an index."""

from __future__ import annotations

import itertools
import json
from typing import Any

import psycopg
import pytest

LETTERS_13, LETTERS_14 = "GJZ", "ABSXCDEFGHWY"


def _codes() -> list[str]:
    """Well-formed codes of each length differing in one position at a time, every letter of
    positions 13 and 14 among them, and codes whose digits straddle the key's fields."""
    base = "330106001002GB00017"
    parcels = {base}
    for pos in (0, 5, 6, 11, 14, 18):
        for d in "0123456789":
            parcels.add(base[:pos] + d + base[pos + 1:])
    for a, b in itertools.product(LETTERS_13, LETTERS_14):
        parcels.add(base[:12] + a + b + base[14:])
    buildings = {p + "F" + n for p in sorted(parcels)[:40] for n in ("0001", "0010", "1000")}
    units = {b + n for b in sorted(buildings)[:40] for n in ("0001", "0010", "1000", "9999")}
    return sorted(parcels | buildings | units)


def test_code_keys_are_one_to_one_per_code_length(template_url) -> None:
    codes = _codes()
    with psycopg.connect(template_url) as conn:
        rows = conn.execute(
            "SELECT length(c), cad.code_key_hi(c::bpchar), cad.code_key_lo(c::bpchar) "
            "FROM unnest(%s::text[]) c", (codes,)).fetchall()
    assert len(rows) == len(codes) > 300
    assert len(set(rows)) == len(codes)     # no two codes of one length share a key
    assert {r[0] for r in rows} == {19, 24, 28}


def _columns(conn: psycopg.Connection, table: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND "
        "NOT attisdropped AND attgenerated = '' AND attname <> 'version_id' ORDER BY attnum",
        (table,))]


def _copy(conn: psycopg.Connection, table: str, where: str, sets: dict[str, str],
          args: tuple[Any, ...]) -> None:
    cols = _columns(conn, table)
    if "feature_id" in cols and "feature_id" not in sets:
        sets = {**sets, "feature_id": "gen_random_uuid()"}
    select = ", ".join(sets.get(c, c) for c in cols)
    conn.execute(f"INSERT INTO {table} ({', '.join(cols)}) SELECT {select} FROM {table} "
                 f"WHERE {where} AND valid_to IS NULL LIMIT 1", args)


@pytest.mark.parametrize("table,code_col,extra", [
    ("cad.parcel", "parcel_code", ""),
    ("cad.building", "building_code", ""),
    ("cad.floor", "building_code", " AND floor_no = 1"),
    ("cad.unit", "unit_code", ""),
])
def test_overlapping_versions_are_still_refused(small_district, table, code_col, extra) -> None:
    url = small_district("codekeys")
    with psycopg.connect(url) as conn:
        code = conn.execute(f"SELECT {code_col} FROM {table} WHERE valid_to IS NULL{extra} "
                            f"ORDER BY 1 LIMIT 1").fetchone()[0]
        where = f"{code_col} = %s{extra}"
        overlapping = {"valid_from": "valid_from - interval '9 days'",
                       "valid_to": "valid_from + interval '1 day'"}
        with pytest.raises(psycopg.errors.ExclusionViolation), conn.transaction():
            _copy(conn, table, where, overlapping, (code,))
        # a past version that ends where the current one starts is history, not a conflict
        with conn.transaction():
            _copy(conn, table, where, {"valid_from": "valid_from - interval '9 days'",
                                       "valid_to": "valid_from"}, (code,))
        # the same period under another code (house, building or parcel number 9999)
        other = code[:-4] + "9999"
        assert conn.execute(f"SELECT count(*) FROM {table} WHERE {code_col} = %s",
                            (other,)).fetchone()[0] == 0
        with conn.transaction():
            _copy(conn, table, where, {code_col: f"'{other}'", **overlapping}, (code,))
        if table == "cad.unit":      # its parcel, building and county follow from the code
            assert conn.execute("SELECT building_code FROM cad.unit WHERE unit_code = %s",
                                (other,)).fetchone()[0] == other[:24]
        # a code's versions (history, as-of reads) are read through an index (the district is
        # small: a sequential scan would be cheaper, so it is ruled out)
        conn.execute("SET enable_seqscan = off")
        plan = json.dumps(conn.execute(f"EXPLAIN (FORMAT JSON) SELECT * FROM {table} "
                                       f"WHERE {code_col} = %s", (code,)).fetchone()[0])
        assert "Seq Scan" not in plan
        versions = conn.execute(f"SELECT count(*) FROM {table} WHERE {where}",
                                (code,)).fetchone()[0]
        assert versions >= 2


def test_floor_codes_are_checked(small_district) -> None:
    url = small_district("codekeys")
    with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.CheckViolation), \
            conn.transaction():
        _copy(conn, "cad.floor", "floor_no = 1", {"building_code": "'330106001002GB0001X0001'"},
              ())

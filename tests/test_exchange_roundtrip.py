"""Export → import into an empty database → the identical register (content fingerprint), and
the message of one registration business reads back as valid exchange XML."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime

import psycopg
from lxml import etree

from cadastre.access.pii import load_cipher
from cadastre.exchange import schema
from cadastre.exchange.fingerprint import register_fingerprint
from cadastre.exchange.reader import Head, Row, read_file
from cadastre.exchange.writer import business_message, write_extract
from tests.test_exchange_import import accept, run_import


def test_extract_round_trip_gives_the_identical_register(small_district, make_db,
                                                         test_settings, tmp_path):
    src = small_district("xrt")
    cipher = load_cipher(test_settings)
    target = tmp_path / "extract.zip"
    with psycopg.connect(src) as conn:
        n = write_extract(conn, cipher, target)
        expected = register_fingerprint(conn)
        kinds = dict(conn.execute("SELECT kind, count(*) FROM cad.right_record "
                                  "WHERE valid_to IS NULL AND status = 1 GROUP BY kind"))
    assert n == int(expected["parcel"].split(":")[0]) and int(expected["unit"].split(":")[0]) > 100
    assert {"ownership", "mortgage"} <= set(kinds)
    with zipfile.ZipFile(target) as zf:
        assert len(zf.namelist()) == n
        # plain exchange XML: no DTD, upper-case attributes, tables the specification names
        first = etree.fromstring(zf.read(zf.namelist()[0]))
        assert first.tag == "Message" and first.find("Head/BizMsgID").text
        assert {e.tag for e in first.find("Data")} <= set(schema.TABLES) | {"DJT_DJ_SLSQ"}
    dst = make_db("xrt_dst")
    bid, report = run_import(dst, test_settings, target.read_bytes(), "extract.zip", tmp_path)
    assert report["status"] == "validated", report["errors"]
    accept(dst, test_settings, bid)
    with psycopg.connect(dst) as conn:
        got = register_fingerprint(conn)
    assert got == expected


def test_business_message_of_one_registration(small_district, test_settings, tmp_path):
    url = small_district("xbiz")
    cipher = load_cipher(test_settings)
    with psycopg.connect(url) as conn:
        business_no, n = conn.execute(
            "SELECT business_no, count(*) FROM cad.right_record WHERE valid_to IS NULL AND "
            "kind = 'mortgage' GROUP BY business_no ORDER BY business_no LIMIT 1").fetchone()
        body = business_message(conn, cipher, business_no, "330106260601000001",
                                datetime(2026, 6, 1, 2, tzinfo=UTC))
    path = tmp_path / "Biz330106260601000001.xml"
    path.write_bytes(body)
    items = list(read_file(path))
    heads = [i for i in items if isinstance(i, Head)]
    rows = [i for i in items if isinstance(i, Row)]
    assert heads[0].fields["RecType"] == "9000101"
    assert heads[0].fields["RecFlowID"] == business_no
    assert heads[0].fields["CreateDate"] == "2026-06-01T10:00:00"
    assert sum(r.table == "QLF_QL_DYAQ" for r in rows) == n
    assert any(r.table == "KTT_FW_H" for r in rows)
    assert any(r.table == "ZTT_GY_QLR" for r in rows)
    assert etree.parse(io.BytesIO(body)).docinfo.encoding == "UTF-8"


def test_spatial_extract_follows_the_privacy_policy(small_district, tmp_path):
    import pyogrio

    from cadastre.access.privacy import Role
    from cadastre.exchange.extract import write_gpkg

    url = small_district("xgpkg_out")
    with psycopg.connect(url) as conn:
        public = write_gpkg(conn, tmp_path / "public.gpkg", Role.PUBLIC)
        staff = write_gpkg(conn, tmp_path / "registrar.gpkg", Role.REGISTRAR)
        units = conn.execute("SELECT count(*) FROM cad.unit WHERE valid_to IS NULL").fetchone()[0]
    assert public == staff and public["unit"] == units and public["parcel"] > 0
    layers = {name for name, _ in pyogrio.list_layers(tmp_path / "public.gpkg")}
    assert layers == {"parcel", "building", "floor", "unit"}
    pub = pyogrio.read_dataframe(tmp_path / "public.gpkg", layer="unit", max_features=5)
    reg = pyogrio.read_dataframe(tmp_path / "registrar.gpkg", layer="unit", max_features=5)
    assert "mortgaged" not in pub.columns and "mortgaged" in reg.columns
    assert "unit_code" in pub.columns and pub.geometry.notna().all()
    parcels = pyogrio.read_dataframe(tmp_path / "public.gpkg", layer="parcel", max_features=5)
    assert "srid" not in parcels.columns and "right_nature" not in parcels.columns


def test_geoparquet_extract_follows_the_privacy_policy(small_district, tmp_path):
    import zipfile

    import geopandas as gpd

    from cadastre.access.privacy import Role
    from cadastre.exchange.extract import write_parquet

    url = small_district("xparquet_out")
    with psycopg.connect(url) as conn:
        public = write_parquet(conn, tmp_path / "public.zip", Role.PUBLIC)
        staff = write_parquet(conn, tmp_path / "registrar.zip", Role.REGISTRAR)
        units = conn.execute("SELECT count(*) FROM cad.unit WHERE valid_to IS NULL").fetchone()[0]
    assert public == staff and public["unit"] == units and public["parcel"] > 0
    frames = {}
    for name in ("public", "registrar"):
        with zipfile.ZipFile(tmp_path / f"{name}.zip") as zf:
            zf.extractall(tmp_path / name)
            assert {n.split("/")[0] for n in zf.namelist()} == {"parcel", "building", "floor",
                                                                "unit"}
        frames[name] = {layer: gpd.read_parquet(tmp_path / name / layer / "part-00000.parquet")
                        for layer in ("parcel", "unit")}
    pub, reg = frames["public"]["unit"], frames["registrar"]["unit"]
    assert len(pub) == units and pub.crs is not None and pub.geometry.notna().all()
    assert "mortgaged" not in pub.columns and "mortgaged" in reg.columns
    assert "unit_code" in pub.columns
    parcels = frames["public"]["parcel"]
    assert "srid" not in parcels.columns and "right_nature" not in parcels.columns

"""Import of exchange XML messages: a realistic message set (UTF-8 and GBK) staged, validated,
accepted in one transaction (change set 'import', audit row, outbox event); re-import is a
no-op; malformed, truncated, entity-bomb, unknown-table, bad-code and orphan inputs are refused
with their codes and write nothing."""

from __future__ import annotations

import io
import uuid
import zipfile
from pathlib import Path

import psycopg
import pytest

from cadastre.access.pii import audit_key, load_cipher
from cadastre.exchange import apply
from cadastre.exchange.fingerprint import register_fingerprint
from cadastre.exchange.staging import create_batch, validate_batch
from cadastre.settings import Settings
from cadastre.store.uploads import store_upload
from tests.exchange_support import make_message_set
from tests.register_support import REGISTER_TABLES, fingerprint


def run_import(url: str, settings: Settings, data: bytes, name: str, tmp: Path
               ) -> tuple[uuid.UUID, dict]:
    upload = store_upload(io.BytesIO(data), tmp / "uploads")
    with psycopg.connect(url) as conn:
        bid = create_batch(conn, upload, name, "registrar:test")
        conn.commit()
    return bid, validate_batch(url, bid, load_cipher(settings))


def accept(url: str, settings: Settings, bid: uuid.UUID) -> dict:
    with psycopg.connect(url) as conn:
        return apply.accept(conn, bid, "registrar:test", audit_key(settings))


@pytest.fixture(scope="module")
def message_set():
    return make_message_set(parcels=10)


def test_message_set_imports_and_reimport_is_a_no_op(fresh_db, test_settings, tmp_path,
                                                      message_set):
    data = message_set.zip_bytes()
    bid, report = run_import(fresh_db, test_settings, data, "set.zip", tmp_path)
    assert report["status"] == "validated", report["errors"]
    assert report["counts"]["unit"] == {"rows": 360, "existing": 0, "new": 360}
    out = accept(fresh_db, test_settings, bid)
    assert out["change_id"] is not None
    assert out["written"]["parcel"] == 10 and out["written"]["unit"] == 360
    cipher = load_cipher(test_settings)
    with psycopg.connect(fresh_db) as conn:
        kinds = dict(conn.execute("SELECT kind, count(*) FROM cad.right_record "
                                  "WHERE change_id = %s GROUP BY kind", (out["change_id"],)))
        assert kinds["ownership"] == 360
        for kind in ("mortgage", "pre_notice", "seizure", "objection", "easement",
                     "land_use", "cancellation"):
            assert kinds.get(kind, 0) >= 1, kind
        assert conn.execute("SELECT kind FROM cad.change_set WHERE id = %s",
                            (out["change_id"],)).fetchone()[0] == "import"
        assert conn.execute("SELECT count(*) FROM audit.log WHERE action = 'import.accept' "
                            "AND target = %s", (f"import:{bid}",)).fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM share.event WHERE type = 'register.imported'"
                            ).fetchone()[0] == 1
        # parties were encrypted on the way in, and each right has its holders
        names = {cipher.decrypt(r[0]) for r in conn.execute("SELECT id_number_enc FROM "
                                                            "pii.party")}
        assert message_set.parties <= names
        assert conn.execute(
            "SELECT count(*) FROM cad.right_record r WHERE r.kind = 'ownership' AND NOT EXISTS "
            "(SELECT 1 FROM cad.right_party p WHERE p.right_version_id = r.version_id "
            "AND p.role = 1)").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM cad.right_party WHERE role = 2"
                            ).fetchone()[0] == kinds["mortgage"]
        assert conn.execute("SELECT count(*) FROM cad.boundary_point WHERE change_id = %s",
                            (out["change_id"],)).fetchone()[0] == 40
        assert conn.execute("SELECT count(*) FROM cad.unit_status WHERE registration_status "
                            "= 'registered'").fetchone()[0] == 360
        before = register_fingerprint(conn)
    raw_before = fingerprint(fresh_db, REGISTER_TABLES)
    # the same data again: validated, nothing new, accepting writes nothing
    bid2, report2 = run_import(fresh_db, test_settings, data, "set-again.zip", tmp_path)
    assert report2["status"] == "validated"
    assert all(c.get("new", 0) == 0 for e, c in report2["counts"].items()
               if e not in ("parcel_point", "application"))
    out2 = accept(fresh_db, test_settings, bid2)
    assert out2["change_id"] is None
    assert fingerprint(fresh_db, REGISTER_TABLES) == raw_before
    with psycopg.connect(fresh_db) as conn:
        assert register_fingerprint(conn) == before


def test_gbk_batch_file_gives_the_same_register(make_db, test_settings, tmp_path, message_set):
    prints = []
    for encoding, data, name in (("UTF-8", message_set.zip_bytes(), "utf8.zip"),
                                 ("GBK", message_set.batch_bytes("GBK"), "gbk.xml")):
        url = make_db("xgbk")
        bid, report = run_import(url, test_settings, data, name, tmp_path / encoding)
        assert report["status"] == "validated", (encoding, report["errors"])
        accept(url, test_settings, bid)
        with psycopg.connect(url) as conn:
            prints.append(register_fingerprint(conn))
    assert prints[0] == prints[1]
    assert prints[0]["unit"].startswith("360:")


GOOD = ('<?xml version="1.0" encoding="UTF-8"?><Message><Head><BizMsgID>330106260601000001'
        '</BizMsgID><AreaCode>330106</AreaCode><RecType>1000402</RecType><CreateDate>'
        '2026-06-01T10:00:00</CreateDate><RecFlowID>1</RecFlowID></Head><Data>{rows}</Data>'
        '</Message>')
ZD = "330106001002GB00001"
PARCEL = (f'<KTT_ZDJBXX ZDDM="{ZD}" YT="0701" QLLX="3"/>'
          + "".join(f'<ZD_K_103 BDCDYH="{ZD}W00000000" XH="{k}" XZB="{y}" YZB="{x}"/>'
                    for k, (x, y) in enumerate([(40500000, 3350010), (40500010, 3350010),
                                                (40500010, 3350000), (40500000, 3350000)], 1)))
BUILDING = f'<KTT_FW_ZRZ ZRZH="{ZD}F0001" ZCS="2"/>'
UNIT = f'<KTT_FW_H BDCDYH="{ZD}F00010101" CH="1" SHBW="101" FWYT1="10" SCJZMJ="90"/>'
RIGHT = (f'<QLT_FW_FDCQ_YZ BDCDYH="{ZD}F00010101" YWH="Y1" QLLX="4" DJLX="100" '
         'DJSJ="2015-01-01T09:00:00" QSZT="1" BDCQZH="C1"/>')
PARTY = (f'<ZTT_GY_QLR BDCDYH="{ZD}F00010101" BDCQZH="C1" QLRMC="张三" ZJZL="1" '
         'ZJH="330106199001011234" QLRLX="1"/>')
BOMB = ('<?xml version="1.0"?><!DOCTYPE Message [<!ENTITY a "aaaaaaaaaa">'
        + "".join(f'<!ENTITY a{i} "{("&a;" if i == 0 else f"&a{i - 1};") * 10}">'
                  for i in range(8))
        + ']><Message><Head/><Data><KTT_ZDJBXX ZDDM="&a7;"/></Data></Message>')


def _cut_in_character() -> bytes:
    """A UTF-8 message cut between the bytes of a Chinese character."""
    body = GOOD.format(rows=PARCEL.replace('QLLX="3"', 'QLLX="3" ZL="西湖区文三路"')).encode()
    return body[:body.index("文".encode()) + 1]


BAD = {
    "malformed": (GOOD.format(rows=PARCEL + "<KTT_FW_H></KTT_FW_C>"), "XML_MALFORMED"),
    "truncated": (GOOD.format(rows=PARCEL + BUILDING + UNIT + RIGHT)[:-60], "XML_TRUNCATED"),
    "truncated_in_a_character": (_cut_in_character(), "XML_TRUNCATED"),
    "bomb": (BOMB, "XML_DTD_FORBIDDEN"),
    "external_entity": ('<?xml version="1.0"?><!DOCTYPE m [<!ENTITY x SYSTEM '
                        '"file:///etc/passwd">]><Message><Head/><Data><KTT_ZDJBXX ZL="&x;"/>'
                        '</Data></Message>', "XML_DTD_FORBIDDEN"),
    "unknown_table": (GOOD.format(rows=PARCEL + '<KTT_NOT_A_TABLE A="1"/>'), "UNKNOWN_TABLE"),
    "bad_code": (GOOD.format(rows=PARCEL.replace("GB00001", "XX00001", 1)), "BAD_CODE"),
    "bad_dictionary": (GOOD.format(rows=PARCEL + BUILDING + UNIT
                                   + RIGHT.replace('DJLX="100"', 'DJLX="123"') + PARTY),
                       "UNKNOWN_DICTIONARY_VALUE"),
    "bad_date": (GOOD.format(rows=PARCEL + BUILDING + UNIT
                             + RIGHT.replace("2015-01-01T09", "2015-13-01T09") + PARTY),
                 "BAD_VALUE"),
    "orphan_unit": (GOOD.format(rows=PARCEL + UNIT + RIGHT + PARTY), "ORPHAN_UNIT"),
    "orphan_building": (GOOD.format(rows=BUILDING), "ORPHAN_BUILDING"),
    "orphan_party": (GOOD.format(rows=PARCEL + BUILDING + UNIT + RIGHT
                                 + PARTY.replace("F00010101", "F00010102")), "ORPHAN_PARTY"),
    "right_on_missing_unit": (GOOD.format(rows=PARCEL + BUILDING + RIGHT + PARTY),
                              "RIGHT_ON_MISSING_UNIT"),
    "duplicate_right": (GOOD.format(rows=PARCEL + BUILDING + UNIT + RIGHT + RIGHT + PARTY),
                        "DUPLICATE_RIGHT"),
    "two_ownerships": (GOOD.format(rows=PARCEL + BUILDING + UNIT + RIGHT + PARTY
                                   + RIGHT.replace('YWH="Y1"', 'YWH="Y2"')), "DUPLICATE_OWNERSHIP"),
    "missing_required": (GOOD.format(rows=PARCEL + BUILDING + UNIT
                                     + RIGHT.replace('QLLX="4" ', '') + PARTY), "REQUIRED_MISSING"),
    "not_a_message": ('<?xml version="1.0"?><Foo/>', "EXCHANGE_NOT_MESSAGE"),
    "undeclared_gbk": (GOOD.format(rows=PARCEL.replace('QLLX="3"', 'QLLX="3" ZL="西湖区"'))
                       .encode("gbk"), "XML_ENCODING"),
}


def test_the_good_sample_is_accepted(fresh_db, test_settings, tmp_path):
    """The base the refused samples are made from imports (so each refusal is the defect's)."""
    bid, report = run_import(fresh_db, test_settings,
                             GOOD.format(rows=PARCEL + BUILDING + UNIT + RIGHT + PARTY).encode(),
                             "good.xml", tmp_path)
    assert report["status"] == "validated", report["errors"]
    assert accept(fresh_db, test_settings, bid)["written"]["right_party"] == 1


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_refused_and_writes_nothing(fresh_db, test_settings, tmp_path, case):
    body, code = BAD[case]
    data = body if isinstance(body, bytes) else body.encode("utf-8")
    before = fingerprint(fresh_db, REGISTER_TABLES)
    bid, report = run_import(fresh_db, test_settings, data, f"{case}.xml", tmp_path)
    assert report["status"] == "invalid"
    assert code in report["error_counts"], report["errors"]
    assert all("张三" not in str(e) and "330106199001011234" not in str(e)
               for e in report["errors"])
    with pytest.raises(apply.ImportState):
        accept(fresh_db, test_settings, bid)
    assert fingerprint(fresh_db, REGISTER_TABLES) == before
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("SELECT count(*) FROM xchg.import_row").fetchone()[0] == 0


def test_table_files_give_the_same_register(make_db, test_settings, tmp_path,
                                                  message_set):
    from tests.exchange_support import to_gpkg

    gpkg = tmp_path / "tables.gpkg"
    to_gpkg(message_set, gpkg)
    shp = tmp_path / "shp"
    to_gpkg(message_set, shp, driver="ESRI Shapefile")
    shp_zip = io.BytesIO()
    with zipfile.ZipFile(shp_zip, "w") as zf:
        for f in sorted(shp.iterdir()):
            zf.write(f, f"tables/{f.name}")
    gdb = tmp_path / "tables.gdb"
    to_gpkg(message_set, gdb, driver="OpenFileGDB")
    gdb_zip = io.BytesIO()
    with zipfile.ZipFile(gdb_zip, "w") as zf:
        for f in sorted(gdb.iterdir()):
            zf.write(f, f"tables.gdb/{f.name}")
    prints = []
    for name, data in (("set.zip", message_set.zip_bytes()), ("tables.gpkg", gpkg.read_bytes()),
                       ("shp.zip", shp_zip.getvalue()), ("gdb.zip", gdb_zip.getvalue())):
        url = make_db("xgpkg")
        bid, report = run_import(url, test_settings, data, name, tmp_path / f"up-{name}")
        assert report["status"] == "validated", (name, report["errors"])
        accept(url, test_settings, bid)
        with psycopg.connect(url) as conn:
            prints.append(register_fingerprint(conn))
    assert prints[0] == prints[1] == prints[2] == prints[3]


def test_a_feature_that_differs_from_the_register_is_a_finding(make_db, test_settings,
                                                               tmp_path, message_set):
    from lxml import etree

    url = make_db("xdiffers")
    bid, _ = run_import(url, test_settings, message_set.zip_bytes(), "set.zip", tmp_path / "a")
    accept(url, test_settings, bid)
    with psycopg.connect(url) as conn:
        before = register_fingerprint(conn)
    changed, unit = [], message_set.units[0]
    for name, body in message_set.messages:
        root = etree.fromstring(body)
        for row in root.iter("KTT_FW_H"):
            if row.get("BDCDYH") == unit:
                row.set("SCJZMJ", "999.99")
        changed.append((name, etree.tostring(root, xml_declaration=True, encoding="UTF-8")))
    again = type(message_set)(messages=changed)
    bid2, report = run_import(url, test_settings, again.zip_bytes(), "again.zip", tmp_path / "b")
    assert report["status"] == "validated"
    assert report["warning_counts"].get("FEATURE_DIFFERS") == 1
    assert [w["feature"] for w in report["warnings"] if w["code"] == "FEATURE_DIFFERS"] == [unit]
    assert accept(url, test_settings, bid2)["change_id"] is None
    with psycopg.connect(url) as conn:
        assert register_fingerprint(conn) == before
    # the unchanged data again: no finding (values read as the register's types compare equal)
    bid3, report3 = run_import(url, test_settings, message_set.zip_bytes(), "same.zip",
                               tmp_path / "c")
    assert "FEATURE_DIFFERS" not in report3["warning_counts"], report3["warnings"][:3]


def test_closed_rights_are_imported_as_history_the_as_of_queries_see(fresh_db, test_settings,
                                                                     tmp_path):
    from datetime import datetime

    from cadastre.exchange.values import CHINA
    from cadastre.query.records import rights_as_of

    old = (RIGHT.replace('YWH="Y1"', 'YWH="Y0"').replace("2015-01-01", "2008-05-01")
           .replace('QSZT="1"', 'QSZT="2"').replace('"C1"', '"C0"'))
    seller = (PARTY.replace('"C1"', '"C0"').replace("张三", "李四")
              .replace("330106199001011234", "330106198002023456"))
    bid, report = run_import(fresh_db, test_settings, GOOD.format(
        rows=PARCEL + BUILDING + UNIT + old + seller + RIGHT + PARTY).encode(), "h.xml", tmp_path)
    assert report["status"] == "validated", report["errors"]
    assert not report["warning_counts"], report["warnings"]
    assert accept(fresh_db, test_settings, bid)["written"]["right"] == 2
    unit = f"{ZD}F00010101"
    with psycopg.connect(fresh_db) as conn:
        then = rights_as_of(conn, unit, datetime(2010, 1, 1, tzinfo=CHINA), "ownership")
        now = rights_as_of(conn, unit, datetime(2020, 1, 1, tzinfo=CHINA), "ownership")
        status = conn.execute("SELECT registration_status FROM cad.unit_status "
                              "WHERE unit_code = %s", (unit,)).fetchone()[0]
    assert [r.status for r in then] == [2] and len(then[0].holder_party_ids) == 1
    assert then[0].valid_to == datetime(2015, 1, 1, 9, tzinfo=CHINA)   # the next owner's 登簿
    assert [r.status for r in now] == [1] and now[0].holder_party_ids != then[0].holder_party_ids
    assert status == "registered"

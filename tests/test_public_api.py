"""Public query API on the shared demo district: search, what-is-here, details, 楼盘表, role
differences, identical 404s, and no party data in anything the public receives.

Read-only on the demo database (requests by staff append audit rows, nothing else). The client
here has rate limits off (they have their own tests); everything else is the real app.
"""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.auth import issue_token
from cadastre.access.pii import load_cipher
from cadastre.access.privacy import Role
from cadastre.query import search as S
from cadastre.settings import Settings
from tests.conftest import app_data_dir, client_for

PUBLIC_BODIES: list[str] = []          # every body the public received in this module
PURPOSE = {"X-Purpose": "litigation", "X-Case-Ref": "ZJ-2024-000123"}
ENCUMBRANCE_FIELDS = {"mortgaged", "seized", "pre_noticed", "objected", "encumbrance_labels"}


@pytest.fixture(scope="module")
def client(demo_url: str, test_settings: Settings, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[TestClient]:
    data_dir = app_data_dir(test_settings, tmp_path_factory.mktemp("public_api"))
    with client_for(demo_url, Settings(storage={"data_dir": data_dir}),
                    api={"rate_limit_enabled": False}) as c:   # (limits: their own tests)
        yield c


def bearer(settings: Settings, role: Role, **kw: Any) -> dict[str, str]:
    subject = "owner-test" if role is Role.OWNER else str(uuid.uuid4())
    token, _ = issue_token(settings, role, subject, **kw)
    headers = {"Authorization": f"Bearer {token}"}
    if role in (Role.INTERESTED, Role.DEPARTMENT):
        headers.update(PURPOSE)
    return headers


def get(client: TestClient, path: str, headers: dict[str, str] | None = None,
        status: int = 200, **params: Any) -> Any:
    r = client.get(path, params=params or None, headers=headers or {})
    if not headers:
        PUBLIC_BODIES.append(r.text)
    assert r.status_code == status, r.text
    return r.json()


def one(conn: psycopg.Connection, sql: str, *args: Any) -> Any:
    row = conn.execute(sql, args).fetchone()
    assert row is not None, sql
    return row


# ------------------------------------------------------------------ search
def test_search_finds_each_kind(client: TestClient, demo_conn: psycopg.Connection) -> None:
    # a compound with a unique name: its exact name ranks it first
    name, pcode, pid = one(demo_conn, """
        SELECT compound_name, parcel_code, feature_id::text FROM cad.parcel
        WHERE valid_to IS NULL AND compound_name IN (
            SELECT compound_name FROM cad.parcel WHERE valid_to IS NULL
            GROUP BY 1 HAVING count(*) = 1)
        ORDER BY parcel_code LIMIT 1""")
    items = get(client, "/api/v1/search", q=name)["items"]
    assert items[0] == {**items[0], "kind": "compound", "id": pid, "code": pcode, "label": name}

    # a building by its unique name
    bname, bcode, bid = one(demo_conn, """
        SELECT name, building_code, feature_id::text FROM cad.building
        WHERE valid_to IS NULL AND name IN (SELECT name FROM cad.building WHERE valid_to IS NULL
                                            GROUP BY 1 HAVING count(*) = 1)
          AND project_name IS NOT NULL AND name NOT IN (
              SELECT compound_name FROM cad.parcel WHERE compound_name IS NOT NULL)
        ORDER BY building_code LIMIT 1""")
    items = get(client, "/api/v1/search", q=bname)["items"]
    assert (items[0]["kind"], items[0]["id"], items[0]["code"]) == ("building", bid, bcode)
    # ... and its project name finds it too
    project = one(demo_conn, "SELECT project_name FROM cad.building WHERE building_code = %s "
                  "AND valid_to IS NULL", bcode)[0]
    found = get(client, "/api/v1/search", q=project, kind="building", limit=50)["items"]
    assert bid in [i["id"] for i in found] and {i["kind"] for i in found} == {"building"}

    # a parcel without a compound by its unique 坐落; only exact matches may rank before it
    seat, pcode2, pid2 = one(demo_conn, """
        SELECT seat, parcel_code, feature_id::text FROM cad.parcel
        WHERE valid_to IS NULL AND compound_name IS NULL AND seat IN (
            SELECT seat FROM cad.parcel WHERE valid_to IS NULL GROUP BY 1 HAVING count(*) = 1)
        ORDER BY parcel_code LIMIT 1""")
    items = get(client, "/api/v1/search", q=seat)["items"]
    at = [i["id"] for i in items].index(pid2)
    assert items[at]["kind"] == "parcel" and items[at]["code"] == pcode2
    assert all(i["label"] == seat for i in items[:at])

    # a unit by its unique 坐落 (3+ characters search units)
    useat, ucode, uid = one(demo_conn, """
        SELECT seat, unit_code, feature_id::text FROM cad.unit
        WHERE valid_to IS NULL AND seat IN (SELECT seat FROM cad.unit WHERE valid_to IS NULL
                                            GROUP BY 1 HAVING count(*) = 1)
        ORDER BY unit_code LIMIT 1""")
    items = get(client, "/api/v1/search", q=useat)["items"]
    assert (items[0]["kind"], items[0]["id"], items[0]["code"]) == ("unit", uid, ucode)

    # codes: exact first, then what the prefix covers (parcel → its buildings → its units)
    items = get(client, "/api/v1/search", q=ucode)["items"]
    assert [(i["kind"], i["code"]) for i in items] == [("unit", ucode)]
    items = get(client, "/api/v1/search", q=pcode2, limit=50)["items"]
    assert items[0]["code"] == pcode2 and items[0]["kind"] == "parcel"
    assert all(i["code"].startswith(pcode2) for i in items)
    kinds = [i["kind"] for i in items]
    assert kinds == sorted(kinds, key=["parcel", "building", "unit"].index)
    # lower case and full-width input are normalised
    wide = unicodedata.normalize("NFKC", ucode).translate(
        {ord(c): ord(c) + 0xFEE0 for c in "0123456789"})
    assert get(client, "/api/v1/search", q=ucode.lower())["items"][0]["code"] == ucode
    assert get(client, "/api/v1/search", q=wide)["items"][0]["code"] == ucode


def test_search_fuzzy_address_and_geometry(client: TestClient,
                                           demo_conn: psycopg.Connection) -> None:
    """A 坐落 with more after it (here the building number) still finds the parcel, by trigram
    word similarity; lon/lat lie on the feature and inside its bbox."""
    seat, pid, srid = one(demo_conn, """
        SELECT seat, feature_id::text, srid FROM cad.parcel
        WHERE valid_to IS NULL AND compound_name IS NOT NULL AND length(seat) >= 8
        ORDER BY parcel_code LIMIT 1""")
    items = get(client, "/api/v1/search", q=seat + "1幢", kind="parcel")["items"]
    hit = next(i for i in items if i["id"] == pid)
    w, s, e, n = hit["bbox"]
    assert w <= hit["lon"] <= e and s <= hit["lat"] <= n
    inside = one(demo_conn, """
        SELECT ST_Intersects(ST_Transform(geom, 4326), ST_SetSRID(ST_MakePoint(%s, %s), 4326))
        FROM cad.parcel WHERE feature_id = %s AND valid_to IS NULL""",
                 hit["lon"], hit["lat"], pid)[0]
    assert inside and srid not in (4326, 3857)

    # 栋 for 幢 (a common variant): trigram word similarity still finds the building
    name, bid = one(demo_conn, """
        SELECT name, feature_id::text FROM cad.building
        WHERE valid_to IS NULL AND name LIKE '%%幢' ORDER BY building_code LIMIT 1""")
    items = get(client, "/api/v1/search", q=name.replace("幢", "栋"), kind="building",
                limit=50)["items"]
    assert bid in [i["id"] for i in items]


def test_search_near_misses_follow_the_matches(client: TestClient,
                                               demo_conn: psycopg.Connection) -> None:
    """Near-misses (similar 坐落, not containing the query) come after every substring match,
    and only when the matches run out: a page the matches fill has none, one where they end
    is filled up with near-misses, and pages chained across that point equal one big page."""
    seat, n_sub = one(demo_conn, """
        SELECT p.seat, (SELECT count(*) FROM cad.parcel q WHERE q.valid_to IS NULL
                        AND q.seat LIKE '%%' || p.seat || '%%') AS n
        FROM cad.parcel p WHERE p.valid_to IS NULL AND length(p.seat) >= 6
        ORDER BY 2, p.parcel_code LIMIT 1""")
    assert 1 <= n_sub < 10
    items = get(client, "/api/v1/search", q=seat, kind="parcel", limit=30)["items"]
    contains = [seat in (i["seat"] or "") for i in items]
    assert contains == [True] * n_sub + [False] * (len(items) - n_sub), (seat, contains)
    assert len(items) > n_sub         # near-misses follow on the page where the matches end
    chained: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = get(client, "/api/v1/search", q=seat, kind="parcel", limit=1,
                   **({"cursor": cursor} if cursor else {}))
        chained += page["items"]
        cursor = page["next"]
        if not cursor:
            break
    assert [i["id"] for i in chained] == [i["id"] for i in items]
    # a road name fills a page with matches: no near-miss on it
    road = seat[:3]
    assert all(road in (i["seat"] or "") for i in
               get(client, "/api/v1/search", q=road, kind="parcel", limit=50)["items"])
    assert "<%" not in S.build_sql(S.parse_query(road))[0]
    assert "<%" in S.build_sql(S.parse_query(road), near=True)[0]


def test_search_pages_limits_and_cap(client: TestClient, demo_conn: psycopg.Connection) -> None:
    county = one(demo_conn, "SELECT min(county_code) FROM cad.parcel")[0]
    seen: list[str] = []
    body = get(client, "/api/v1/search", q=county, limit=1000)    # limit capped at 50
    assert len(body["items"]) == S.MAX_LIMIT
    pages = 1
    seen += [i["code"] for i in body["items"]]
    while body["next"]:
        body = get(client, "/api/v1/search", q=county, limit=1000, cursor=body["next"])
        seen += [i["code"] for i in body["items"]]
        pages += 1
    # 2,000+ parcels match a county prefix: the total stops at the cap, in code order
    assert len(seen) == S.MAX_RESULTS == len(set(seen)) and pages == S.MAX_RESULTS // S.MAX_LIMIT
    expected = [r[0] for r in demo_conn.execute(
        "SELECT parcel_code FROM cad.parcel WHERE valid_to IS NULL ORDER BY parcel_code "
        "COLLATE \"C\" LIMIT %s", (S.MAX_RESULTS,))]
    assert seen == expected

    # a text query: small pages chained equal one big page (stable ranking)
    road = one(demo_conn, "SELECT substr(seat, 1, 3) FROM cad.parcel WHERE valid_to IS NULL "
               "AND seat LIKE '文一路%%' LIMIT 1")[0]
    big = get(client, "/api/v1/search", q=road, limit=30)["items"]
    small: list[dict[str, Any]] = []
    cursor = None
    for _ in range(3):
        page = get(client, "/api/v1/search", q=road, limit=10,
                   **({"cursor": cursor} if cursor else {}))
        small += page["items"]
        cursor = page["next"]
    assert [i["id"] for i in small] == [i["id"] for i in big] and len(big) == 30
    assert all(road in i["label"] or road in (i["seat"] or "") for i in big)

    # a cursor belongs to its query; garbage and foreign cursors are refused
    other = get(client, "/api/v1/search", q=county, status=400, cursor=cursor, limit=10)
    assert other["error"]["code"] == "CURSOR_INVALID"
    for bad in ("xyz", "eyJvIjo5OTk5LCJmIjoiYWJjIn0", "%%%"):
        err = get(client, "/api/v1/search", q=road, cursor=bad, status=400)
        assert err["error"]["code"] == "CURSOR_INVALID"
    err = get(client, "/api/v1/search", q=road, limit=0, status=400)
    assert err["error"]["code"] == "LIMIT_INVALID"


def test_search_too_short_and_bad_kind(client: TestClient) -> None:
    for q, params in (("", {}), ("a", {}), ("文", {}), ("3301", {}), ("33010", {}),
                      ("文一", {"kind": "unit"})):
        err = get(client, "/api/v1/search", q=q, status=400, **params)
        assert err["error"]["code"] == "QUERY_TOO_SHORT", q
    assert get(client, "/api/v1/search", q="文" * 101, status=400)["error"]["code"] == \
        "QUERY_TOO_LONG"
    assert get(client, "/api/v1/search", q="文一路", kind="house", status=400)["error"][
        "code"] == "KIND_INVALID"
    # two characters search names and 坐落 of compounds, buildings and parcels, not units
    items = get(client, "/api/v1/search", q="文一", limit=50)["items"]
    assert items and "unit" not in {i["kind"] for i in items}
    units = get(client, "/api/v1/search", q="文一路", kind="unit")["items"]
    assert units and {i["kind"] for i in units} == {"unit"}


def test_search_and_details_only_current(client: TestClient,
                                         demo_conn: psycopg.Connection) -> None:
    code, fid = one(demo_conn, """
        SELECT parcel_code, feature_id::text FROM cad.parcel p WHERE valid_to IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM cad.parcel c WHERE c.feature_id = p.feature_id
                          AND c.valid_to IS NULL) LIMIT 1""")
    assert get(client, "/api/v1/search", q=code)["items"] == []
    for ref in (code, fid):
        assert get(client, f"/api/v1/parcels/{ref}", status=404)["error"]["code"] == \
            "PARCEL_NOT_FOUND"


# ------------------------------------------------------------------ what is here
def test_here_at_a_unit(client: TestClient, demo_conn: psycopg.Connection) -> None:
    ucode, uid, bcode, pcode, floor_no, lon, lat = one(demo_conn, """
        SELECT u.unit_code, u.feature_id::text, u.building_code, u.parcel_code, u.floor_no,
               ST_X(c), ST_Y(c)
        FROM cad.unit u
        CROSS JOIN LATERAL (SELECT ST_PointOnSurface(ST_Transform(u.geom, 4326)) AS c) p
        WHERE u.valid_to IS NULL AND u.floor_count = 1 AND u.floor_no > 2
        ORDER BY u.unit_code LIMIT 1""")
    body = get(client, "/api/v1/here", lon=lon, lat=lat, floor=floor_no)
    assert body["parcel"]["parcel_code"] == pcode and body["parcel"]["kind"] == "parcel"
    assert bcode in [b["building_code"] for b in body["buildings"]]
    on_floor = {r[0] for r in demo_conn.execute(
        "SELECT unit_code FROM cad.unit WHERE valid_to IS NULL AND building_code = %s "
        "AND floor_no <= %s AND floor_no + floor_count > %s", (bcode, floor_no, floor_no))}
    assert {u["unit_code"] for u in body["units"]} == on_floor
    me = [u for u in body["units"] if u["at_point"]]
    assert [(u["unit_code"], u["id"]) for u in me] == [(ucode, uid)]
    assert not ENCUMBRANCE_FIELDS & set(me[0])
    # without a floor: every unit of the building, top floor first
    whole = get(client, "/api/v1/here", lon=lon, lat=lat)["units"]
    count = one(demo_conn, "SELECT count(*) FROM cad.unit WHERE valid_to IS NULL "
                "AND building_code = %s", bcode)[0]
    assert len(whole) == count
    floors = [u["floor_no"] for u in whole]
    assert floors == sorted(floors, reverse=True)
    # nowhere, and nonsense
    empty = get(client, "/api/v1/here", lon=10.0, lat=10.0)
    assert empty == {"parcel": None, "buildings": [], "units": []}
    assert get(client, "/api/v1/here", lon=lon, lat=95, status=400)["error"]["code"] == \
        "POINT_INVALID"


# ------------------------------------------------------------------ details
def test_parcel_details_match_sql(client: TestClient, demo_conn: psycopg.Connection) -> None:
    code, fid, seat, land_use, area, srid = one(demo_conn, """
        SELECT parcel_code, feature_id::text, seat, land_use, registered_area::float8, srid
        FROM cad.parcel WHERE valid_to IS NULL AND land_use = '0701'
          AND compound_name IS NOT NULL ORDER BY parcel_code LIMIT 1""")
    by_code = get(client, f"/api/v1/parcels/{code}")
    assert get(client, f"/api/v1/parcels/{fid}") == by_code
    assert (by_code["id"], by_code["kind"], by_code["seat"], by_code["land_use"]) == \
        (fid, "parcel", seat, land_use)
    assert by_code["registered_area"] == area and by_code["land_use_label"] == "城镇住宅用地"
    assert by_code["right_type_label"] == "国有建设用地使用权"
    assert "computed_area" not in by_code and "version_id" not in by_code   # survey/staff only
    # the GeoJSON, back in the parcel's CRS, has the parcel's area (7 decimals ≈ 1 cm)
    area_back, contains = one(demo_conn, """
        SELECT ST_Area(ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326), %s)),
               ST_Intersects(ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326),
                             ST_SetSRID(ST_MakePoint(%s, %s), 4326))""",
                              json.dumps(by_code["geometry"]), srid,
                              json.dumps(by_code["geometry"]), *by_code["center"])
    assert area_back == pytest.approx(area, rel=2e-3) and contains
    w, s, e, n = by_code["bbox"]
    assert w < e and s < n
    buildings = [r[0] for r in demo_conn.execute(
        "SELECT building_code FROM cad.building WHERE valid_to IS NULL AND parcel_code = %s "
        "ORDER BY building_code", (code,))]
    assert [b["building_code"] for b in by_code["buildings"]] == buildings


def test_building_details_and_floors(client: TestClient, demo_conn: psycopg.Connection) -> None:
    code, fid, floors_total, structure = one(demo_conn, """
        SELECT building_code, feature_id::text, floors_total, structure FROM cad.building
        WHERE valid_to IS NULL AND floors_below > 0 AND structure = 3
        ORDER BY building_code LIMIT 1""")
    body = get(client, f"/api/v1/buildings/{fid}")
    assert (body["building_code"], body["kind"], body["floors_total"]) == \
        (code, "building", floors_total)
    assert body["structure_label"] == "钢筋混凝土结构" and body["seat"]
    assert body["geometry"]["type"] == "MultiPolygon" and len(body["center"]) == 2
    expected = demo_conn.execute("""
        SELECT f.floor_no, f.floor_label, f.base_elevation::float8, f.storey_height::float8,
               (SELECT count(*) FROM cad.unit u, generate_series(u.floor_no,
                       u.floor_no + u.floor_count - 1) AS s(n)
                WHERE u.building_code = f.building_code AND u.valid_to IS NULL
                  AND s.n = f.floor_no)
        FROM cad.floor f WHERE f.building_code = %s AND f.valid_to IS NULL
        ORDER BY f.floor_no""", (code,)).fetchall()
    got = [(f["floor_no"], f["floor_label"], f["base_elevation"], f["storey_height"],
            f["unit_count"]) for f in body["floors"]]
    assert got == [tuple(r) for r in expected] and len(got) == floors_total


def test_unit_details_match_sql(client: TestClient, demo_conn: psycopg.Connection) -> None:
    code, fid, bid, area, use, floor_label, base = one(demo_conn, """
        SELECT u.unit_code, u.feature_id::text, b.feature_id::text, u.building_area::float8,
               u.use, f.floor_label, f.base_elevation::float8
        FROM cad.unit u
        JOIN cad.building b ON b.building_code = u.building_code AND b.valid_to IS NULL
        JOIN cad.floor f ON f.building_code = u.building_code AND f.floor_no = u.floor_no
                        AND f.valid_to IS NULL
        WHERE u.valid_to IS NULL AND u.use = '11' ORDER BY u.unit_code LIMIT 1""")
    body = get(client, f"/api/v1/units/{code}")
    assert get(client, f"/api/v1/units/{fid}") == body
    assert (body["id"], body["kind"], body["building_area"], body["use"], body["use_label"]) == \
        (fid, "unit", area, use, "成套住宅")
    assert body["floor"]["floor_label"] == floor_label and body["floor"]["base_elevation"] == base
    assert body["building"]["id"] == bid and body["floor_span"] == [body["floor_no"]] * 2
    assert body["registration_status_label"] in ("已登记", "已预告（预售）", "未登记")


def test_house_type_and_nature_labels(client: TestClient, demo_conn: psycopg.Connection) -> None:
    """房屋类型 FWLX / 房屋性质 FWXZ come with their labels (cadastre.labels), for the public."""
    code, house_type, house_nature = one(demo_conn, """
        SELECT unit_code, house_type, house_nature FROM cad.unit
        WHERE valid_to IS NULL AND house_type IS NOT NULL ORDER BY unit_code LIMIT 1""")
    body = get(client, f"/api/v1/units/{code}")
    assert (body["house_type"], body["house_nature"]) == (house_type, house_nature)
    assert (body["house_type_label"], body["house_nature_label"]) == ("住宅", "市场化商品房")


def test_building_table(client: TestClient, demo_conn: psycopg.Connection) -> None:
    # a building whose unit is over several floors (a whole house), and a tower
    house, tower = (one(demo_conn, f"""
        SELECT u.building_code FROM cad.unit u WHERE u.valid_to IS NULL AND {cond}
        ORDER BY u.building_code LIMIT 1""")[0]
        for cond in ("u.floor_count > 1", "u.floor_no > 10"))
    for code in (house, tower):
        body = get(client, f"/api/v1/buildings/{code}/table")
        assert body["building"]["building_code"] == code
        floors = [f["floor_no"] for f in body["floors"]]
        assert floors == sorted(floors, reverse=True)
        listed = [u["unit_code"] for f in body["floors"] for u in f["units"]]
        rows = demo_conn.execute("""
            SELECT unit_code, floor_no + floor_count - 1, use, building_area::float8,
                   coalesce(s.registration_status, 'unregistered')
            FROM cad.unit u LEFT JOIN cad.unit_status s USING (unit_code)
            WHERE u.building_code = %s AND u.valid_to IS NULL""", (code,)).fetchall()
        assert sorted(listed) == sorted(r[0] for r in rows) and len(set(listed)) == len(listed)
        by_code = {r[0]: r for r in rows}
        for f in body["floors"]:
            rooms = [int(re.sub(r"\D", "", u["room_no"]) or 0) for u in f["units"]]
            assert rooms == sorted(rooms)
            for u in f["units"]:
                _, top, use, area, status = by_code[u["unit_code"]]
                assert f["floor_no"] == top == u["floor_span"][1]
                assert (u["use"], u["building_area"], u["registration_status"]) == \
                    (use, area, status)
                assert u["use_label"] and u["registration_status_label"]
                assert not ENCUMBRANCE_FIELDS & set(u) and "certificate_no" not in u
    house_units = [u for f in get(client, f"/api/v1/buildings/{house}/table")["floors"]
                   for u in f["units"] if u["floor_count"] > 1]
    assert house_units and all(u["floor_span"][1] > u["floor_span"][0] for u in house_units)


def test_not_found_is_one_answer(client: TestClient) -> None:
    for entity, code in (("parcels", "PARCEL_NOT_FOUND"), ("buildings", "BUILDING_NOT_FOUND"),
                         ("units", "UNIT_NOT_FOUND")):
        answers = set()
        for ref in ("x", "DROP TABLE", "00000000-0000-0000-0000-00000000000g",
                    str(uuid.uuid4()), "330106999999GB99999", "330106999999GB99999F0001",
                    "330106999999GB99999F00010001", "330106999999gb99999f00010001"):
            r = client.get(f"/api/v1/{entity}/{ref}")
            PUBLIC_BODIES.append(r.text)
            answers.add((r.status_code, r.text))
        assert len(answers) == 1, answers
        status, text = answers.pop()
        assert status == 404 and json.loads(text)["error"]["code"] == code
    assert client.get("/api/v1/buildings/x/table").json()["error"]["code"] == \
        "BUILDING_NOT_FOUND"


# ------------------------------------------------------------------ roles
@pytest.fixture(scope="module")
def encumbered(demo_conn_module: psycopg.Connection) -> tuple[str, str, int, str]:
    """A mortgaged, registered unit: (unit code, its certificate, its owner count, a neighbour
    in the same building)."""
    row = one(demo_conn_module, """
        SELECT u.unit_code, r.certificate_no,
               (SELECT count(DISTINCT party_id) FROM cad.right_party rp
                WHERE rp.right_version_id = r.version_id AND rp.role = 1),
               (SELECT min(n.unit_code) FROM cad.unit n WHERE n.building_code = u.building_code
                  AND n.valid_to IS NULL AND n.unit_code <> u.unit_code)
        FROM cad.unit u
        JOIN cad.unit_status s ON s.unit_code = u.unit_code AND s.mortgaged
        JOIN cad.right_record r ON r.unit_code = u.unit_code AND r.kind = 'ownership'
                               AND r.status = 1
        WHERE u.valid_to IS NULL AND u.floor_count = 1 ORDER BY u.unit_code LIMIT 1""")
    return tuple(row)  # type: ignore[return-value]


@pytest.fixture(scope="module")
def demo_conn_module(demo_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(demo_url, autocommit=True) as conn:
        yield conn


def test_roles_see_their_fields(client: TestClient, test_settings: Settings,
                                demo_conn: psycopg.Connection,
                                encumbered: tuple[str, str, int, str]) -> None:
    code, cert, owners, neighbour = encumbered
    path = f"/api/v1/units/{code}"
    public = get(client, path)
    assert "registration_status" in public and public["registration_status_label"] == "已登记"
    assert not ENCUMBRANCE_FIELDS & set(public)
    assert "certificate_no" not in public and "owner_count" not in public

    registrar = get(client, path, bearer(test_settings, Role.REGISTRAR))
    assert registrar["mortgaged"] is True and "抵押" in registrar["encumbrance_labels"]
    assert registrar["certificate_no"] == cert and registrar["owner_count"] == owners

    interested = get(client, path, bearer(test_settings, Role.INTERESTED))
    assert interested["mortgaged"] is True and "certificate_no" not in interested
    assert "owner_count" not in interested

    department = get(client, path, bearer(test_settings, Role.DEPARTMENT))
    assert department["mortgaged"] is True
    assert "*" in department["certificate_no"] and department["certificate_no"] != cert

    surveyor = get(client, path, bearer(test_settings, Role.SURVEYOR))
    assert not ENCUMBRANCE_FIELDS & set(surveyor) and "certificate_no" not in surveyor

    # an owner: the certificate and encumbrances of their own unit only
    owner = bearer(test_settings, Role.OWNER, units=(code,))
    mine = get(client, path, owner)
    assert mine["certificate_no"] == cert and mine["mortgaged"] is True
    theirs = get(client, f"/api/v1/units/{neighbour}", owner)
    assert "certificate_no" not in theirs and not ENCUMBRANCE_FIELDS & set(theirs)
    table = get(client, f"/api/v1/buildings/{code[:24]}/table", owner)
    with_cert = [u["unit_code"] for f in table["floors"] for u in f["units"]
                 if "certificate_no" in u]
    assert with_cert == [code]
    reg_table = get(client, f"/api/v1/buildings/{code[:24]}/table",
                    bearer(test_settings, Role.REGISTRAR))
    certs = {u["unit_code"]: u.get("certificate_no") for f in reg_table["floors"]
             for u in f["units"]}
    assert certs[code] == cert


def test_staff_reads_are_audited_public_reads_not(client: TestClient, test_settings: Settings,
                                                  demo_url: str,
                                                  encumbered: tuple[str, str, int, str]) -> None:
    code = encumbered[3]

    def rows_after(seq: int) -> list[tuple[Any, ...]]:
        with psycopg.connect(demo_url) as conn:
            return conn.execute("SELECT action, role, target, result_count FROM audit.log "
                                "WHERE seq > %s AND target = %s ORDER BY seq",
                                (seq, code)).fetchall()

    with psycopg.connect(demo_url) as conn:
        start = conn.execute("SELECT coalesce(max(seq), 0) FROM audit.log").fetchone()[0]
    get(client, f"/api/v1/units/{code}")
    get(client, "/api/v1/search", q=code)
    assert rows_after(start) == []
    get(client, f"/api/v1/units/{code}", bearer(test_settings, Role.REGISTRAR))
    get(client, f"/api/v1/buildings/{code[:24]}/table", bearer(test_settings, Role.INTERESTED))
    assert rows_after(start) == [("unit.read", "registrar", code, 1)]
    with psycopg.connect(demo_url) as conn:
        table_rows = conn.execute(
            "SELECT action, role, purpose, case_ref FROM audit.log WHERE seq > %s "
            "AND target = %s", (start, code[:24])).fetchall()
        searches = conn.execute("SELECT count(*) FROM audit.log WHERE seq > %s AND "
                                "action = 'search' AND target IS NOT NULL", (start,)).fetchone()
    assert ("building.table", "interested", "litigation", PURPOSE["X-Case-Ref"]) in table_rows
    assert searches[0] == 0


def test_county_scope(client: TestClient, test_settings: Settings,
                      encumbered: tuple[str, str, int, str]) -> None:
    code = encumbered[0]
    elsewhere = bearer(test_settings, Role.REGISTRAR, counties=("110105",))
    unknown = client.get("/api/v1/units/330106999999GB99999F00010001").json()
    assert get(client, f"/api/v1/units/{code}", elsewhere, status=404) == unknown
    assert get(client, "/api/v1/search", elsewhere, q=code)["items"] == []
    here = get(client, f"/api/v1/units/{code}", bearer(test_settings, Role.REGISTRAR,
                                                          counties=(code[:6],)))
    assert here["unit_code"] == code


# ------------------------------------------------------------------ privacy
def test_public_responses_hold_no_party_data(client: TestClient, test_settings: Settings,
                                             demo_conn: psycopg.Connection) -> None:
    """Everything the public received in this module, plus a sweep of searches and tables,
    against every party of the demo district (decrypted) and every certificate number."""
    streets = [r[0] for r in demo_conn.execute(
        "SELECT DISTINCT substr(seat, 1, 3) FROM cad.parcel WHERE valid_to IS NULL LIMIT 12")]
    for q in streets:
        body = get(client, "/api/v1/search", q=q, limit=50)
        for item in body["items"][:3]:
            kind = {"compound": "parcels", "parcel": "parcels", "building": "buildings",
                    "unit": "units"}[item["kind"]]
            get(client, f"/api/v1/{kind}/{item['id']}")
            if item["kind"] == "building":
                get(client, f"/api/v1/buildings/{item['id']}/table")
                get(client, "/api/v1/here", lon=item["lon"], lat=item["lat"])
    cipher = load_cipher(test_settings)
    names: set[str] = set()
    needles: set[str] = set()
    for name, idn, phone in demo_conn.execute(
            "SELECT name_enc, id_number_enc, phone_enc FROM pii.party"):
        names.add(cipher.decrypt(name) or "")
        needles.update(v for v in (cipher.decrypt(idn), cipher.decrypt(phone)) if v)
    needles.update(r[0] for r in demo_conn.execute(
        "SELECT DISTINCT certificate_no FROM cad.right_record WHERE certificate_no IS NOT NULL"))
    needles.update(n for n in names if len(n) >= 3)   # 2-character names: exact values below
    assert len(PUBLIC_BODIES) > 60 and len(needles) > 10_000
    blob = "\n".join(PUBLIC_BODIES)
    # every substring (of a needle's length) of every run of CJK / digit / other non-JSON
    # characters in what was sent: a set intersection instead of 10^5 scans of the blob
    lengths = {len(n) for n in needles}
    pieces: set[str] = set()
    for run in set(re.findall(r'[^"{}\[\],:\s]{3,}', blob)):
        for n in lengths:
            pieces.update(run[i:i + n] for i in range(len(run) - n + 1))
    assert pieces & needles == set()

    def values(obj: Any) -> Iterator[str]:
        if isinstance(obj, dict):
            for v in obj.values():
                yield from values(v)
        elif isinstance(obj, list):
            for v in obj:
                yield from values(v)
        elif isinstance(obj, str):
            yield obj

    exact = {v for body in PUBLIC_BODIES for v in values(json.loads(body))}
    assert exact & names == set()

"""Owner documents: 宗地图 and 分层分户图 as PDF (read back with pypdf) and PNG (decoded with
Pillow), and the certificate QR (decoded with zxing-cpp), on a small demo district of our own."""

from __future__ import annotations

import io
import re
import statistics
import time

import psycopg
import pytest
import zxingcpp
from PIL import Image
from pypdf import PdfReader

from cadastre.access.pii import load_cipher
from cadastre.documents import certificate, floor_plan, parcel_map
from cadastre.documents.floor_plan import floors_of
from cadastre.documents.svgmap import PARCEL_SCALES, choose_scale
from tests.owner_support import People, bearer, holders, owner_client, party_strings, verify


@pytest.fixture(scope="module")
def docs_db(small_district) -> str:
    return small_district("docs")


@pytest.fixture(scope="module")
def cipher(test_settings):
    return load_cipher(test_settings)


@pytest.fixture(scope="module")
def people(docs_db, cipher) -> People:
    with psycopg.connect(docs_db) as conn:
        return People(holders(conn, cipher, ("ownership", "land_use")))


@pytest.fixture(scope="module")
def client(docs_db, test_settings):
    with owner_client(docs_db, test_settings, host="10.201.0.1") as c:
        yield c


def _text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def _secrets(conn, cipher, unit_code: str) -> set[str]:
    """PII of every party of the unit and of its parcel's land rights, and their certificate
    numbers; the documents must contain none of it."""
    parcel = unit_code[:19]
    codes = [unit_code, parcel + "W00000000"]
    return {s for s in party_strings(conn, cipher, codes) if len(s) >= 2}


def _png(content: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(content))
    image.load()
    return image.convert("RGB")


def _pixels(image: Image.Image, rgb: tuple[int, int, int]) -> int:
    colours = image.getcolors(maxcolors=1 << 24) or []
    return next((n for n, c in colours if c == rgb), 0)


def _ink(image: Image.Image) -> float:
    """Share of pixels that are not (near) white."""
    grey = image.convert("L")
    hist = grey.histogram()
    return sum(hist[:200]) / (image.width * image.height)


def test_parcel_map_pdf_and_png(client, docs_db, cipher, people):
    h = people.take(party_type=1, kind="ownership")
    token = verify(client, h)
    t = time.perf_counter()
    r = client.get(f"/api/v1/owner/units/{h.unit_code}/parcel-map.pdf", headers=bearer(token))
    pdf_seconds = time.perf_counter() - t
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.headers["cache-control"] == "private, no-store"
    text = _text(r.content)
    parcel = h.unit_code[:19]
    with psycopg.connect(docs_db) as conn:
        points = [p for (p,) in conn.execute(
            "SELECT point_no FROM cad.boundary_point WHERE parcel_code = %s AND valid_to IS NULL"
            " ORDER BY ring_no, seq", (parcel,))]
        seat, north, south, area = conn.execute(
            "SELECT seat, neighbour_north, neighbour_south, registered_area FROM cad.parcel"
            " WHERE parcel_code = %s AND valid_to IS NULL", (parcel,)).fetchone()
        neighbours = [c for (c,) in conn.execute(
            "SELECT n.parcel_code FROM cad.parcel t JOIN cad.parcel n ON n.valid_to IS NULL"
            " AND n.parcel_code <> t.parcel_code AND ST_DWithin(n.geom, t.geom, 3.0)"
            " WHERE t.parcel_code = %s AND t.valid_to IS NULL", (parcel,))]
        secrets = _secrets(conn, cipher, h.unit_code)
    assert parcel in text and h.unit_code in text
    assert points and all(re.search(rf"\b{p}\b", text) for p in points)
    for word in ("宗地图", "界址点", "四至", "坐落", "用途", "权利类型", "比例尺", "登记机构", seat,
                 f"{float(area):.2f}"):
        assert word in text, word
    assert f"北至：{north}" in text and f"南至：{south}" in text
    assert neighbours and all(code in text for code in neighbours)
    assert re.search(r"1:(500|1000|2000|5000|10000)\b", text)
    leaked = [s for s in secrets if s in text]
    assert not leaked
    # boundary point table: X (northing, 7 digits) and Y (zone-prefixed easting, 8 digits)
    assert re.search(r"\b3\d{6}\.\d{3}\b", text) and re.search(r"\b40\d{6}\.\d{3}\b", text)

    r = client.get(f"/api/v1/owner/units/{h.unit_code}/parcel-map.png", headers=bearer(token))
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    image = _png(r.content)
    assert image.width > 1000 and image.height > 1400
    assert 0.01 < _ink(image) < 0.6
    # the parcel is filled light yellow
    assert _pixels(image, (255, 246, 213)) > 500
    print(f"parcel map PDF {len(r.content)} B, {pdf_seconds:.2f} s")


def test_floor_plan_highlights_the_unit(client, docs_db, cipher, people):
    with psycopg.connect(docs_db) as conn:
        tower_units = {c for (c,) in conn.execute(
            "SELECT unit_code FROM cad.unit WHERE valid_to IS NULL AND floor_count = 1"
            " AND floor_no > 1")}
    h = next(x for x in people.all if x.unit_code in tower_units and x.party_type == 1
             and x.id_number not in people._used)
    people._used.add(h.id_number)
    token = verify(client, h)
    r = client.get(f"/api/v1/owner/units/{h.unit_code}/floor-plan.pdf", headers=bearer(token))
    assert r.status_code == 200
    text = _text(r.content)
    with psycopg.connect(docs_db) as conn:
        floor_no, room, area, inner, shared = conn.execute(
            "SELECT floor_no, room_no, building_area, inner_area, shared_area FROM cad.unit"
            " WHERE unit_code = %s AND valid_to IS NULL", (h.unit_code,)).fetchone()
        rooms = [x for (x,) in conn.execute(
            "SELECT room_no FROM cad.unit WHERE building_code = %s AND floor_no = %s"
            " AND valid_to IS NULL", (h.unit_code[:24], floor_no))]
        secrets = _secrets(conn, cipher, h.unit_code)
    assert len(PdfReader(io.BytesIO(r.content)).pages) == 1
    for word in ("分层分户图", "建筑面积", "套内建筑面积", "分摊建筑面积", h.unit_code,
                 h.unit_code[:24], f"第{floor_no}层", f"{float(area):.2f}", f"{float(inner):.2f}",
                 f"{float(shared):.2f}"):
        assert word in text, word
    assert len(rooms) > 1 and all(x in text for x in rooms)
    assert not [s for s in secrets if s in text]

    r = client.get(f"/api/v1/owner/units/{h.unit_code}/floor-plan.png", headers=bearer(token))
    image = _png(r.content)
    highlighted = _pixels(image, (255, 213, 79))
    assert highlighted > 2000                         # this unit, in yellow
    assert 0.01 < _ink(image) < 0.8


def test_multi_floor_unit_has_a_page_per_floor(client, docs_db, people):
    with psycopg.connect(docs_db) as conn:
        spans = dict(conn.execute(
            "SELECT unit_code, floor_count FROM cad.unit WHERE valid_to IS NULL"
            " AND floor_count > 1"))
    candidates = [x for x in people.all if x.unit_code in spans and x.kind == "ownership"
                  and x.id_number not in people._used]
    if not candidates:
        pytest.skip("no multi-floor unit with an owner in this district")
    h = candidates[0]
    people._used.add(h.id_number)
    token = verify(client, h)
    r = client.get(f"/api/v1/owner/units/{h.unit_code}/floor-plan.pdf", headers=bearer(token))
    assert len(PdfReader(io.BytesIO(r.content)).pages) == spans[h.unit_code]
    png = _png(client.get(f"/api/v1/owner/units/{h.unit_code}/floor-plan.png",
                          headers=bearer(token)).content)
    assert png.height > 1700 * spans[h.unit_code]     # pages stacked


def test_land_unit_has_a_parcel_map_but_no_floor_plan(client, people):
    h = people.take(kind="land_use")     # an organisation holding a land-use right
    token = verify(client, h)
    assert h.unit_code.endswith("W00000000")
    items = client.get("/api/v1/owner/units", headers=bearer(token)).json()["items"]
    assert items[0]["kind"] == "land" and items[0]["parcel"]["parcel_code"] == h.unit_code[:19]
    r = client.get(f"/api/v1/owner/units/{h.unit_code}/parcel-map.pdf", headers=bearer(token))
    assert r.status_code == 200 and h.unit_code[:19] in _text(r.content)
    assert h.name not in _text(r.content)
    r = client.get(f"/api/v1/owner/units/{h.unit_code}/floor-plan.pdf", headers=bearer(token))
    assert r.status_code == 404 and r.json()["error"]["code"] == "NO_FLOOR_PLAN"


def test_certificate_qr_decodes_to_the_verification_page(client, people):
    h = people.take(party_type=1, kind="ownership")
    token = verify(client, h)
    r = client.get(f"/api/v1/owner/units/{h.unit_code}/certificate-qr.png", headers=bearer(token))
    found = zxingcpp.read_barcodes(_png(r.content))
    assert [b.format.name for b in found] == ["QRCode"]
    url = found[0].text
    path = url.removeprefix("http://testserver")
    assert re.fullmatch(r"/verify/c/[A-Za-z0-9_-]{22}", path)
    page = client.get(path)
    assert "证书有效" in page.text and h.unit_code in page.text
    assert h.name not in page.text and h.certificate_no not in page.text


# ------------------------------------------------------------------ units of the parts
def test_certificate_tokens_are_opaque_and_unforgeable():
    key = b"k" * 32
    tokens = {certificate.certificate_token(key, v) for v in range(1, 2001)}
    assert len(tokens) == 2000                       # one per certificate
    assert all(certificate.token_version(key, certificate.certificate_token(key, v)) == v
               for v in (1, 77, 2**40))
    t = certificate.certificate_token(key, 12345)
    assert certificate.token_version(b"x" * 32, t) is None          # another key
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i in range(len(t)):                                          # any one-character change
        for ch in alphabet[:8]:
            if ch != t[i]:
                assert certificate.token_version(key, t[:i] + ch + t[i + 1:]) is None
    # consecutive versions give unrelated tokens (nothing to enumerate)
    a, b = certificate.certificate_token(key, 100), certificate.certificate_token(key, 101)
    assert sum(x == y for x, y in zip(a, b, strict=True)) < 8
    for bad in ("", "a" * 21, "a" * 23, "é" * 22, "=" * 22):
        assert certificate.token_version(key, bad) is None


def test_scale_choice_and_floor_spans():
    assert choose_scale(60, 50, 186, 132, PARCEL_SCALES) == 500
    assert choose_scale(140, 90, 186, 132, PARCEL_SCALES) == 1000
    assert choose_scale(250, 90, 186, 132, PARCEL_SCALES) == 2000
    assert floors_of(-1, 3) == [-1, 1, 2] and floors_of(5, 1) == [5]


def test_rendering_speed(docs_db, people):
    """Documents render in well under a second of CPU each (PDF). CPU time, not wall time: on a
    shared 2-core machine other processes can triple the wall time."""
    units = [x.unit_code for x in people.all if not x.unit_code.endswith("W00000000")][:4]
    cpu, wall = [], []
    with psycopg.connect(docs_db) as conn:
        parcel_map.parcel_map_pdf(conn, units[0])    # first use loads fonts and libraries
        for code in units:
            for render in (parcel_map.parcel_map_pdf, floor_plan.floor_plan_pdf):
                t, c = time.perf_counter(), time.process_time()
                render(conn, code)
                cpu.append(time.process_time() - c)
                wall.append(time.perf_counter() - t)
    print("document render seconds, CPU:", [round(x, 2) for x in cpu], "wall:",
          [round(x, 2) for x in wall])
    assert statistics.median(cpu) < 1.0

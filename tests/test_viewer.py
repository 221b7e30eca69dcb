"""The web viewer in a real browser (Debian chromium through Playwright) against a real server.

Read-only tests use the shared demo database (``live_server``); the survey upload / accept flow
runs on its own small district and server. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import json
import re

import psycopg
import pytest

pytest.register_assert_rewrite("tests.viewer_support")

from tests.viewer_support import (  # noqa: E402  (after the rewrite registration)
    ARTIFACTS,
    screenshot,
    wait_for_idle,
    wait_for_map,
)

pytest_plugins = ("tests.viewer_support",)


def _rendered(page, layer: str, key: str) -> list[str]:
    return page.evaluate(
        """([layer, key]) => window.cadastreViewer.map
               .queryRenderedFeatures({layers: [layer]})
               .map((f) => f.properties[key])""", [layer, key])


def _timing(page) -> dict:
    """The viewer's marks plus the browser's resource timings grouped by kind (count, bytes,
    first start, last end, summed duration; ms since navigation start): where the time went."""
    return page.evaluate("""() => {
        const kind = (u) => /\\/glyphs\\//.test(u) ? "glyphs" : /\\/sprites?\\//.test(u) ? "sprite"
          : /\\/raster\\//.test(u) ? "raster" : /\\.mvt|\\.pbf/.test(u) ? "mvt"
          : /tilejson/.test(u) ? "tilejson" : /styles\\//.test(u) ? "style"
          : /maplibre-gl\\.js/.test(u) ? "maplibre" : /\\.js$/.test(u) ? "app_js"
          : /\\.css$/.test(u) ? "css" : /api\\/v1\\//.test(u) ? "api" : "other";
        const groups = {};
        for (const r of performance.getEntriesByType("resource")) {
          const k = kind(r.name.split("?")[0]);
          const g = groups[k] || (groups[k] = {n: 0, bytes: 0, start: Infinity, end: 0,
                                               sum_ms: 0, max_ms: 0});
          g.n += 1; g.bytes += r.encodedBodySize || r.transferSize || 0;
          g.start = Math.min(g.start, Math.round(r.startTime));
          g.end = Math.max(g.end, Math.round(r.responseEnd));
          g.sum_ms += Math.round(r.duration); g.max_ms = Math.max(g.max_ms, Math.round(r.duration));
        }
        const nav = performance.getEntriesByType("navigation")[0];
        return {first_view_ms: window.cadastreViewer.firstViewMs,
                first_tiles_ms: window.cadastreViewer.firstTilesMs,
                marks: window.cadastreViewer.marks,
                html_ms: nav ? Math.round(nav.responseEnd) : null,
                dom_content_loaded_ms: nav ? Math.round(nav.domContentLoadedEventEnd) : null,
                resources: groups};
    }""")


def test_map_renders_tiles_and_reports_first_view(live_server, page, browser) -> None:
    page.goto(live_server.base + "/")
    wait_for_map(page, 120_000)
    parcels = _rendered(page, "parcel-fill", "parcel_code")
    buildings = _rendered(page, "building-fill", "building_code")
    labels = _rendered(page, "label-compound", "label")
    assert len(set(parcels)) >= 10, parcels[:5]
    assert len(set(buildings)) >= 3
    assert all(len(c) == 19 for c in parcels)
    assert labels and all(labels), "no compound names drawn (glyphs from /glyphs)"
    ortho = page.evaluate("""() => window.cadastreViewer.map.getStyle().sources.ortho.tiles[0]""")
    assert "/raster/demo-ortho/" in ortho
    assert not [e for e in page.console_errors if "404" not in e], page.console_errors
    screenshot(page, "viewer-2d-first-view")
    cold = _timing(page)
    # a second visitor: the server's caches are warm, the browser's are empty
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    try:
        second = context.new_page()
        second.goto(live_server.base + "/")
        wait_for_map(second, 120_000)
        warm = _timing(second)
        # the same visitor again: glyphs, sprites and scripts from the browser's cache
        second.reload()
        wait_for_map(second, 120_000)
        again = _timing(second)
    finally:
        context.close()
    import os

    numbers = {"cold_server": cold, "warm_server": warm, "warm_browser": again,
               "load_average": os.getloadavg()}
    (ARTIFACTS / "viewer-first-view.json").write_text(json.dumps(numbers, indent=1))
    print("first view (navigation start → all tiles drawn):", numbers)
    assert warm["first_view_ms"] is not None and warm["first_view_ms"] > 0
    # CJK label characters come from the browser's CJK font (fonts-noto-cjk is installed), so a
    # first view fetches Latin glyphs only, not dozens of 256-character CJK ranges
    assert page.evaluate("() => window.cadastreViewer.localIdeographs"), "no local CJK font found"
    assert warm["resources"]["glyphs"]["n"] <= 2, warm["resources"]["glyphs"]


def test_labels_with_server_glyphs(live_server, browser) -> None:
    """Without a local CJK font (forced here) the labels are drawn from the server's SDF
    glyph ranges, CJK ranges included."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    try:
        page = context.new_page()
        page.goto(live_server.base + "/?glyphs=server")
        wait_for_map(page, 120_000)
        assert page.evaluate("() => window.cadastreViewer.localIdeographs") is False
        labels = _rendered(page, "label-compound", "label")
        assert labels and any(re.search("[\u4e00-\u9fff]", t) for t in labels), labels[:5]
        ranges = page.evaluate("""() => performance.getEntriesByType("resource")
            .map((r) => r.name).filter((u) => u.includes("/glyphs/"))""")
        assert any(re.search(r"/(19968|2[0-9]{4}|3[0-9]{4})-\d+\.pbf", u) for u in ranges), ranges
    finally:
        context.close()


# ---------------------------------------------------------------------------- public map
@pytest.fixture(scope="module")
def demo_unit(demo_url: str) -> dict:
    """A registered flat in a tower (its floor > 1), with its centre and the decrypted names of
    every party of every right on it (for the privacy check)."""
    from cadastre.access.pii import load_cipher
    from cadastre.settings import Settings
    from tests.conftest import TEST_DATA_DIR

    cipher = load_cipher(Settings(storage={"data_dir": TEST_DATA_DIR / "app"}))
    with psycopg.connect(demo_url) as conn:
        row = conn.execute("""
            SELECT u.unit_code, u.room_no, u.floor_no, u.building_area::float8,
                   ST_X(c), ST_Y(c)
            FROM cad.unit u
            JOIN cad.unit_status s USING (unit_code),
                 LATERAL ST_Transform(ST_PointOnSurface(u.geom_3857), 4326) c
            WHERE u.valid_to IS NULL AND u.floor_no BETWEEN 3 AND 9
              AND s.registration_status = 'registered'
              AND EXISTS (SELECT 1 FROM cad.right_record r WHERE r.unit_code = u.unit_code
                          AND r.kind = 'ownership' AND r.status = 1 AND r.valid_to IS NULL)
            ORDER BY u.unit_code OFFSET 37 LIMIT 1""").fetchone()
        names = {cipher.decrypt(r[0]) for r in conn.execute(
            "SELECT p.name_enc FROM cad.right_record r JOIN cad.right_party rp ON "
            "rp.right_version_id = r.version_id JOIN pii.party p USING (party_id) "
            "WHERE r.unit_code = %s", (row[0],))}
    assert names, "the chosen unit has no parties"
    return {"code": row[0], "room": row[1], "floor": row[2], "area": row[3],
            "lon": row[4], "lat": row[5], "names": names}


def _info_text(page) -> str:
    return page.locator("#info-panel").inner_text()


def test_search_finds_and_zooms_to_a_unit(live_server, page, demo_unit) -> None:
    page.goto(live_server.base + "/")
    wait_for_map(page)
    box = page.locator("#search-input")
    box.fill(demo_unit["code"][:24])            # the building's code prefix: its units
    page.wait_for_selector("#search-list .search-item")
    box.fill(demo_unit["code"])
    page.locator(f"#search-list .search-item[data-code='{demo_unit['code']}']").wait_for()
    assert page.get_attribute("#search-input", "aria-expanded") == "true"
    box.press("Enter")
    page.wait_for_function("(code) => document.querySelector('#info-panel').innerText"
                           ".includes(code)", arg=demo_unit["code"])
    wait_for_idle(page)
    view = page.evaluate("""(ll) => { const m = window.cadastreViewer.map;
        const p = m.project(ll), c = m.getCanvas();
        const panel = document.getElementById('panel').getBoundingClientRect();
        const map = m.getContainer().getBoundingClientRect();
        return {zoom: m.getZoom(), x: p.x, y: p.y, w: c.clientWidth, h: c.clientHeight,
                free: panel.left - map.left}; }""", [demo_unit["lon"], demo_unit["lat"]])
    assert view["zoom"] >= 18
    # the unit is in the part of the map the panel leaves visible, near its middle
    assert 0 < view["x"] < view["free"] and 0 < view["y"] < view["h"], view
    assert abs(view["x"] - view["free"] / 2) < 120 and abs(view["y"] - view["h"] / 2) < 120, view
    # the units layer shows the unit's floor, and the unit is drawn there
    assert page.input_value("#floor-select") == str(demo_unit["floor"])
    units = _rendered(page, "unit-fill", "unit_code")
    assert demo_unit["code"] in units
    assert f"sel=unit:{demo_unit['code']}" in page.url
    screenshot(page, "viewer-search-unit")


def test_click_shows_natural_attributes_and_no_owner(live_server, page, demo_unit) -> None:
    # a shared link: the view and floor come from the URL
    page.goto(f"{live_server.base}/#map=19.5/{demo_unit['lat']:.7f}/{demo_unit['lon']:.7f}"
              f"&floor={demo_unit['floor']}")
    wait_for_map(page)
    point = page.evaluate("(ll) => window.cadastreViewer.map.project(ll)",
                          [demo_unit["lon"], demo_unit["lat"]])
    box = page.locator("#map canvas").bounding_box()
    page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
    page.wait_for_function("(code) => document.querySelector('#info-panel').innerText"
                           ".includes(code)", arg=demo_unit["code"])
    text = _info_text(page)
    assert "室号" in text and demo_unit["room"] in text
    assert "建筑面积" in text and f"{demo_unit['area']:.2f}".rstrip("0").rstrip(".") in text
    assert "登记状态" in text and "已登记" in text
    html = page.content()
    for name in demo_unit["names"]:
        assert name not in html, "a right holder's name reached the public page"
    screenshot(page, "viewer-unit-info")
    # English switch: the same panel in English
    page.click("#lang-switch")
    page.wait_for_function("() => document.querySelector('#info-panel').innerText"
                           ".includes('Floor area')")
    assert "lang=en" in page.url
    assert page.inner_text("#mode-owner") == "Owners"
    screenshot(page, "viewer-unit-info-en")


# ---------------------------------------------------------------------------- owners
@pytest.fixture(scope="module")
def holder(demo_url: str) -> dict:
    """A person holding one flat alone (verification through the form; success only, so no
    lockout is left behind in the shared database)."""
    from cadastre.access.pii import load_cipher
    from cadastre.settings import Settings
    from tests.conftest import TEST_DATA_DIR

    cipher = load_cipher(Settings(storage={"data_dir": TEST_DATA_DIR / "app"}))
    with psycopg.connect(demo_url) as conn:
        row = conn.execute("""
            SELECT r.unit_code, r.certificate_no, p.name_enc, p.id_number_enc
            FROM cad.right_record r
            JOIN cad.right_party rp ON rp.right_version_id = r.version_id AND rp.role = 1
            JOIN pii.party p USING (party_id)
            WHERE r.kind = 'ownership' AND r.valid_to IS NULL AND r.status = 1
              AND p.party_type = 1 AND substr(r.unit_code, 20, 1) = 'F'
              AND (SELECT count(*) FROM cad.right_party x
                   WHERE x.right_version_id = r.version_id AND x.role = 1) = 1
            ORDER BY r.unit_code DESC OFFSET 11 LIMIT 1""").fetchone()
    return {"unit": row[0], "certificate": row[1], "name": cipher.decrypt(row[2]),
            "id_number": cipher.decrypt(row[3])}


def _pdf_ok(data: bytes) -> int:
    import io

    from pypdf import PdfReader

    assert data[:5] == b"%PDF-", data[:20]
    return len(PdfReader(io.BytesIO(data)).pages)


def _owner_signs_in(page, base: str, holder: dict):  # type: ignore[no-untyped-def]
    """The owner form filled and sent; the card of the holder's unit once it is shown."""
    page.goto(base + "/#mode=owner")
    page.wait_for_selector("#owner-form")
    page.fill("#owner-name", holder["name"])
    page.fill("#owner-id", holder["id_number"])
    page.fill("#owner-cert", holder["certificate"])
    page.click("#owner-submit")
    card = page.locator(f".owner-unit[data-unit-code='{holder['unit']}']")
    card.wait_for(timeout=30_000)
    return card


def test_owner_flow_downloads_valid_pdfs_and_shows_qr(live_server, page, holder) -> None:
    card = _owner_signs_in(page, live_server.base, holder)
    assert page.evaluate("() => !!sessionStorage.getItem('cadastre.owner')")
    assert page.evaluate("() => !localStorage.getItem('cadastre.owner')")   # tab only
    for action, stem in (("parcel-map", "parcel-map"), ("floor-plan", "floor-plan")):
        with page.expect_download(timeout=60_000) as dl:
            card.locator(f"button[data-action='{action}']").click()
        download = dl.value
        assert stem in download.suggested_filename and download.suggested_filename.endswith(".pdf")
        assert _pdf_ok(open(download.path(), "rb").read()) >= 1
    card.locator("button[data-action='qr']").click()
    img = card.locator(".qr img")
    img.wait_for()
    page.wait_for_function("(el) => el.complete && el.naturalWidth > 0", arg=img.element_handle())
    screenshot(page, "viewer-owner-units")
    page.click("#owner-logout")
    page.wait_for_selector("#owner-form")
    assert not page.evaluate("() => sessionStorage.getItem('cadastre.owner')")


def test_owner_downloads_the_signed_electronic_certificate(live_server, page, holder) -> None:
    """Verify as the owner in the viewer, download the electronic certificate; the test checks
    its signature (pyHanko, against the server's CA) and opens its QR code's page."""
    from cadastre.certificates.signing import OfficeSigner, SigningFiles, check_signature
    from tests.certificate_support import pdf_text, qr_on_page, url_path

    card = _owner_signs_in(page, live_server.base, holder)
    with page.expect_download(timeout=120_000) as dl:
        card.locator("button[data-action='certificate']").click()
    download = dl.value
    assert download.suggested_filename == f"certificate-{holder['unit']}.pdf"
    pdf = open(download.path(), "rb").read()
    signing = live_server.data_dir / "signing"
    signer = OfficeSigner(SigningFiles(signing / "office-key.pem", signing / "office.pem",
                                       (signing / "ca.pem",), (signing / "ca.pem",)))
    check = check_signature(pdf, signer.trust_roots)
    assert check.ok, check                  # intact, valid, trusted, over the whole file
    assert holder["name"] in pdf_text(pdf, [0]) and holder["certificate"] in pdf_text(pdf, [0])
    found = qr_on_page(pdf)
    # the QR's address is fixed when the document was issued (maybe by an earlier test's
    # server on another port, on the shared demo database): its path is what must hold
    assert len(found) == 1 and url_path(found[0]).startswith("/verify/c/")
    page.goto(live_server.base + url_path(found[0]))
    assert page.get_attribute(".status", "data-status") == "valid"
    page.wait_for_function("() => [...document.images].length === 2 && [...document.images]"
                           ".every((i) => i.complete && i.naturalWidth > 800)", timeout=60_000)
    text = page.inner_text("body")
    assert holder["unit"] in text and holder["name"] not in text
    assert holder["certificate"] not in text
    screenshot(page, "verify-electronic-certificate")


# ------------------------------------------------------------------ staff, on our own district
@pytest.fixture(scope="module")
def own(small_district, test_settings, viewer_dist, viewer_assets, tmp_path_factory):
    """A small district of our own (the tests change it), a surveyor and a registrar, and a
    server on it. Only the glyph cache is shared with the demo assets."""
    from cadastre.access.privacy import Role
    from tests.viewer_support import LiveServer, data_dir_for

    url = small_district("viewer", [
        ("reg.viewer", "registrar password 1", Role.REGISTRAR, "王登记"),
        ("survey.viewer", "surveyor password 1", Role.SURVEYOR, "李测绘"),
        ("party.viewer", "interested password 1", Role.INTERESTED, "赵律师")])
    data_dir = data_dir_for(tmp_path_factory.mktemp("viewer_own"), test_settings)
    (data_dir / "cache").mkdir(exist_ok=True)
    for sub in ("glyphs", "sprites"):
        (data_dir / "cache" / sub).symlink_to(viewer_assets / "cache" / sub)
    with LiveServer(url, data_dir) as server:
        yield {"url": url, "server": server}


def _lots(url: str) -> tuple[str, str, list, list]:
    """Two small rectangular lots (codes and EPSG:4528 rings)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("""
            SELECT parcel_code, ST_AsGeoJSON(ST_GeometryN(geom, 1), 3)
            FROM cad.parcel WHERE valid_to IS NULL AND land_use IN ('0501', '0701')
              AND compound_name IS NULL AND ST_NPoints(geom) = 5
            ORDER BY parcel_code LIMIT 40""").fetchall()
    a, b = rows[4], rows[5]
    return (a[0], b[0], json.loads(a[1])["coordinates"][0], json.loads(b[1])["coordinates"][0])


def _geojson(path, feats) -> str:
    path.write_text(json.dumps({
        "type": "FeatureCollection", "name": "ZDJBXX",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4528"}},
        "features": feats}, ensure_ascii=False))
    return str(path)


def _split_survey(url: str, tmp_path) -> tuple[str, str]:
    """Parcel A split in two halves (new parcels, codes from the registry)."""
    a, _, ring, _ = _lots(url)
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    xm = round((x0 + x1) / 2, 3)
    halves = ([[x0, y0], [x0, y1], [xm, y1], [xm, y0], [x0, y0]],
              [[xm, y0], [xm, y1], [x1, y1], [x1, y0], [xm, y0]])
    feats = [{"type": "Feature", "properties": {"kind": "parcel", "land_use": "0501",
                                                "seat": f"界面测试路{i + 1}号"},
              "geometry": {"type": "Polygon", "coordinates": [h]}} for i, h in enumerate(halves)]
    return _geojson(tmp_path / "split.geojson", feats), a


def _overlap_survey(url: str, tmp_path) -> str:
    """Parcel B moved 2 m into its neighbour: an OVERLAP error at a place on the map."""
    _, b, _, ring = _lots(url)
    moved = [[x + 2.0, y] for x, y in ring]
    return _geojson(tmp_path / "overlap.geojson", [{
        "type": "Feature", "properties": {"kind": "parcel", "parcel_code": b},
        "geometry": {"type": "Polygon", "coordinates": [moved]}}])


def _login(page, user: str, password: str) -> None:
    page.click("#mode-staff")
    if page.locator("#staff-logout").count():
        page.click("#staff-logout")
    page.fill("#staff-user", user)
    page.fill("#staff-password", password)
    page.click("#staff-submit")
    page.wait_for_selector("#staff-logout")


def _upload(page, path: str) -> str:
    page.click("#tab-upload")
    page.set_input_files("#survey-file", path)
    page.click("#upload-submit")
    page.wait_for_selector("#upload-result[data-status]", timeout=120_000)
    page.wait_for_selector("#survey-report", timeout=30_000)
    assert page.evaluate("() => document.querySelector('#upload-progress').value") == 100
    assert page.evaluate("() => document.querySelector('#validate-progress').value") == 100
    return page.get_attribute("#upload-result", "data-status")


def _rendered_count(page, layer: str) -> int:
    return page.evaluate("(l) => window.cadastreViewer.map.getLayer(l) ? window.cadastreViewer"
                         ".map.queryRenderedFeatures({layers: [l]}).length : -1", layer)


def test_surveyor_upload_shows_report_and_registrar_accepts(own, page, tmp_path) -> None:
    url, base = own["url"], own["server"].base
    bad = _overlap_survey(url, tmp_path)
    good, parent = _split_survey(url, tmp_path)
    page.goto(base + "/")
    wait_for_map(page, 60_000)
    _login(page, "survey.viewer", "surveyor password 1")

    # an invalid survey: the OVERLAP error is listed and drawn where it is
    assert _upload(page, bad) == "invalid"
    assert "OVERLAP" in page.locator("#survey-report").inner_text()
    wait_for_idle(page)
    page.wait_for_function("() => window.cadastreViewer.map.queryRenderedFeatures("
                           "{layers: ['ov-report-fill']}).length > 0", timeout=20_000)
    screenshot(page, "viewer-surveyor-report")

    # a valid split: validated, no errors; the history lists both
    assert _upload(page, good) == "validated"
    assert "校验通过" in page.locator("#report-summary").inner_text()
    page.click("#tab-history")
    page.wait_for_selector("#submission-list tbody tr[data-submission]")
    assert page.locator("#submission-list tbody tr[data-submission]").count() == 2

    # the registrar: diff map, then accept; the map shows the new parcels
    _login(page, "reg.viewer", "registrar password 1")
    row = page.locator("#submission-list tr[data-status='validated']").first
    row.locator("button").click()
    page.wait_for_selector("#survey-diff")
    assert "新增 2" in page.locator("#diff-summary").inner_text()
    assert "注销 1" in page.locator("#diff-summary").inner_text()
    wait_for_idle(page)
    page.wait_for_function("() => window.cadastreViewer.map.queryRenderedFeatures("
                           "{layers: ['ov-diff-after-fill']}).length >= 2", timeout=20_000)
    assert parent in _rendered(page, "parcel-fill", "parcel_code")
    screenshot(page, "viewer-registrar-diff")
    page.fill("#decision-reason", "外业核查无误")
    page.click("#survey-accept")
    page.wait_for_selector("#survey-status:has-text('已接受')", timeout=30_000)
    with psycopg.connect(url) as conn:
        children = [r[0] for r in conn.execute(
            "SELECT parcel_code FROM cad.parcel WHERE valid_to IS NULL "
            "AND seat LIKE '界面测试路%'")]
    assert len(children) == 2
    page.wait_for_function(
        """([kids, parent]) => { const m = window.cadastreViewer.map;
             const codes = m.queryRenderedFeatures({layers: ['parcel-fill']})
                            .map((f) => f.properties.parcel_code);
             return kids.every((k) => codes.includes(k)) && !codes.includes(parent); }""",
        arg=[children, parent], timeout=30_000)
    screenshot(page, "viewer-registrar-accepted")


def test_surveyor_picks_the_suggested_field_mapping(own, page, tmp_path) -> None:
    """A file whose fields are not our names (IDU, contenance …): the report lists the fields
    and the suggested mapping; one click validates the same file with it, and the report shows
    the parcels with their computed and declared areas."""
    from shapely.geometry import Polygon

    from cadastre.access.accounts import create_account
    from cadastre.access.privacy import Role
    from tests.data.fixtures_local import foreign_geojson

    url, base = own["url"], own["server"].base
    with psycopg.connect(url, autocommit=True) as conn:    # a surveyor of its own: own history
        create_account(conn, "survey.mapper", "surveyor password 3", Role.SURVEYOR, "周测绘")
    with psycopg.connect(url) as conn:
        rows = conn.execute("""
            SELECT parcel_code, ST_AsGeoJSON(ST_GeometryN(geom, 1), 3)
            FROM cad.parcel WHERE valid_to IS NULL AND land_use IN ('0501', '0701')
              AND compound_name IS NULL AND ST_NPoints(geom) = 5
            ORDER BY parcel_code LIMIT 40""").fetchall()
    lots = [(code, json.loads(g)["coordinates"][0]) for code, g in rows[8:10]]
    path = foreign_geojson(tmp_path / "parcelles.geojson", lots)
    page.goto(base + "/")
    wait_for_map(page, 60_000)
    _login(page, "survey.mapper", "surveyor password 3")
    assert _upload(page, str(path)) == "invalid"
    box = page.locator("#survey-mapping")
    assert "IDU" in box.inner_text() and "contenance" in box.inner_text()
    assert page.locator("#survey-mapping .suggested-map").inner_text() == \
        "parcel_code=IDU,declared_area=contenance"
    assert "FIELDS_NOT_RECOGNISED" in page.locator("#survey-report").inner_text()
    screenshot(page, "viewer-surveyor-mapping")
    first = page.get_attribute("#upload-result", "data-submission")
    page.click("#mapping-apply")
    page.wait_for_function(
        "(first) => { const r = document.querySelector('#upload-result');"
        " return r.dataset.submission !== first && r.dataset.status === 'validated'"
        " && document.querySelector('#report-areas'); }", arg=first, timeout=120_000)
    cells = page.evaluate("""() => [...document.querySelectorAll('#report-areas tbody tr')]
        .filter((tr) => tr.dataset.kind === 'parcel')
        .map((tr) => [tr.dataset.code, ...[...tr.querySelectorAll('td.num')]
                                           .map((td) => td.textContent)])""")
    got = {c[0]: (float(c[1].replace(",", "")), float(c[2].replace(",", ""))) for c in cells}
    for code, ring in lots:
        area = Polygon(ring).area
        assert got[code][0] == pytest.approx(area, abs=0.01)
        assert got[code][1] == round(area)
    assert page.input_value("#survey-field-map") == "parcel_code=IDU,declared_area=contenance"
    screenshot(page, "viewer-surveyor-areas")


def test_registrar_qa_layer_and_audit_status(own, page) -> None:
    base = own["server"].base
    page.goto(base + "/")
    wait_for_map(page, 60_000)
    _login(page, "reg.viewer", "registrar password 1")
    page.click("#tab-qa")
    page.click("#qa-start")                    # QA over the current view
    page.wait_for_selector("#qa-findings li, #qa-detail .hint", timeout=120_000)
    runs = page.locator("#qa-runs li")
    assert runs.count() >= 1
    # the findings layer comes from the staff-only tile endpoint, with the bearer token
    assert page.evaluate("() => !!window.cadastreViewer.map.getSource('ov-qa')")
    page.click("#tab-audit")
    page.wait_for_function("() => !document.querySelector('#audit-status').innerText"
                           ".includes('加载')", timeout=60_000)
    status = page.locator("#audit-status").inner_text()
    assert "审计链完整" in status or "不可用" in status, status


def test_interested_party_states_a_purpose_and_sees_restrictions(own, page) -> None:
    """An interested party (利害关系人) signs in, states purpose and case number, and a unit's
    panel then shows its restrictions (a mortgage here), never a party; the audit trail has
    the purpose and the case of that read."""
    from cadastre.access.pii import load_cipher
    from cadastre.settings import Settings
    from tests.conftest import TEST_DATA_DIR

    cipher = load_cipher(Settings(storage={"data_dir": TEST_DATA_DIR / "app"}))
    with psycopg.connect(own["url"]) as conn:
        code = conn.execute("""
            SELECT r.unit_code FROM cad.right_record r JOIN cad.unit u
              ON u.unit_code = r.unit_code AND u.valid_to IS NULL
            WHERE r.kind = 'mortgage' AND r.status = 1 AND r.valid_to IS NULL
            ORDER BY r.unit_code LIMIT 1""").fetchone()[0]
        names = {cipher.decrypt(r[0]) for r in conn.execute(
            "SELECT p.name_enc FROM cad.right_record r JOIN cad.right_party rp ON "
            "rp.right_version_id = r.version_id JOIN pii.party p USING (party_id) "
            "WHERE r.unit_code = %s", (code,))}
        seq = conn.execute("SELECT coalesce(max(seq), 0) FROM audit.log").fetchone()[0]
    assert names
    base = own["server"].base
    page.goto(base + "/")
    wait_for_map(page, 60_000)
    # the public panel: no restriction shown
    page.evaluate("(c) => window.cadastreViewer.select('unit', c)", code)
    page.wait_for_function("(c) => document.querySelector('#info-panel').innerText.includes(c)",
                           arg=code)
    assert "抵押" not in _info_text(page)
    _login(page, "party.viewer", "interested password 1")
    assert "利害关系人" in page.inner_text("#staff-who")
    page.wait_for_selector("#query-purpose option[value='litigation']", state="attached")
    page.select_option("#query-purpose", "litigation")
    page.fill("#query-case-ref", "(2024)浙0106民初1234号")
    page.click("#query-context-save")
    page.wait_for_function("() => document.querySelector('#query-context-status').innerText"
                           ".includes('1234')")
    page.evaluate("(c) => window.cadastreViewer.select('unit', c)", code)
    page.wait_for_function("() => document.querySelector('#info-panel').innerText"
                           ".includes('抵押')", timeout=30_000)
    text = _info_text(page)
    assert code in text and "记入审计" in text
    html = page.content()
    for name in names:
        assert name not in html, "a party's name reached the interested party's page"
    screenshot(page, "viewer-interested-unit")
    with psycopg.connect(own["url"]) as conn:
        rows = conn.execute("SELECT purpose, case_ref FROM audit.log WHERE seq > %s AND "
                            "target = %s", (seq, code)).fetchall()
    assert ("litigation", "(2024)浙0106民初1234号") in rows, rows


def test_owner_wrong_details_are_refused(own, page) -> None:
    page.goto(own["server"].base + "/#mode=owner")
    page.wait_for_selector("#owner-form")
    page.fill("#owner-name", "张三")
    page.fill("#owner-id", "11010519491231002X")
    page.fill("#owner-cert", "浙(2024)杭州市不动产权第0000001号")
    page.click("#owner-submit")
    page.wait_for_function("() => document.querySelector('#owner-form .form-status')"
                           ".innerText.includes('核验失败')")
    assert page.locator(".owner-unit").count() == 0


def test_unit_table_and_floor_switch(live_server, page, demo_unit) -> None:
    building = demo_unit["code"][:24]
    page.goto(f"{live_server.base}/#sel=building:{building}")
    page.wait_for_function("(code) => document.querySelector('#info-panel').innerText"
                           ".includes(code)", arg=building)
    page.get_by_role("button", name="查看楼盘表").click()
    table = page.locator("#unit-table")
    table.wait_for()
    cell = table.locator(f"button[data-unit-code='{demo_unit['code']}']")
    assert cell.count() == 1
    with psycopg.connect(live_server.database_url) as conn:
        n = conn.execute("SELECT count(*) FROM cad.unit WHERE valid_to IS NULL AND "
                         "building_code = %s", (building,)).fetchone()[0]
    assert table.locator("button.unit-cell").count() == n
    table.scroll_into_view_if_needed()
    screenshot(page, "viewer-unit-table")
    cell.click()
    page.wait_for_function("(code) => document.querySelector('#info-panel .info-head')"
                           " && location.hash.includes('sel=unit:' + code)", arg=demo_unit["code"])
    wait_for_map(page)
    wait_for_idle(page)
    assert page.input_value("#floor-select") == str(demo_unit["floor"])
    page.select_option("#floor-select", "1")
    wait_for_idle(page)
    floors = set(_rendered(page, "unit-fill", "floor_no"))
    assert floors == {1}, floors


def test_measure_distance_and_area(live_server, page, demo_unit) -> None:
    from pyproj import Geod

    page.goto(f"{live_server.base}/#map=18/{demo_unit['lat']:.6f}/{demo_unit['lon']:.6f}")
    wait_for_map(page)
    box = page.locator("#map canvas").bounding_box()
    ox, oy = box["x"], box["y"]
    pts = [(200, 200), (600, 260), (560, 600), (180, 560)]

    def lonlat(px):
        ll = page.evaluate("(p) => window.cadastreViewer.map.unproject(p).toArray()", list(px))
        return ll[0], ll[1]

    geod = Geod(ellps="WGS84")
    page.click("#measure-distance")
    assert page.get_attribute("#measure-distance", "aria-pressed") == "true"
    for x, y in pts[:2]:
        page.mouse.click(ox + x, oy + y)
    page.mouse.dblclick(ox + pts[2][0], oy + pts[2][1])
    page.wait_for_selector("#measure-result[data-finished='true']")
    got = float(page.get_attribute("#measure-result", "data-metres"))
    lls = [lonlat(p) for p in pts[:3]]
    want = sum(geod.inv(*lls[i], *lls[i + 1])[2] for i in range(2))
    assert abs(got - want) / want < 0.006, (got, want)
    assert "距离" in page.inner_text("#measure-result")

    page.click("#measure-area")
    for x, y in pts[:3]:
        page.mouse.click(ox + x, oy + y)
    page.mouse.dblclick(ox + pts[3][0], oy + pts[3][1])
    page.wait_for_selector("#measure-result[data-finished='true']")
    got = float(page.get_attribute("#measure-result", "data-square-metres"))
    lls = [lonlat(p) for p in pts]
    want = abs(geod.polygon_area_perimeter([p[0] for p in lls], [p[1] for p in lls])[0])
    assert abs(got - want) / want < 0.01, (got, want)
    screenshot(page, "viewer-measure-area")
    page.keyboard.press("Escape")
    assert page.get_attribute("#measure-area", "aria-pressed") == "false"
    assert page.is_hidden("#measure-result")


def test_phone_layout_and_keyboard(live_server, browser, demo_unit) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN",
                                  is_mobile=True, has_touch=True, device_scale_factor=2)
    try:
        page = context.new_page()
        page.goto(live_server.base + "/")
        wait_for_map(page, 120_000)
        # nothing wider than the screen; the search box is reachable and usable by keyboard
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
        page.focus("#search-input")
        page.keyboard.type(demo_unit["code"])
        page.locator(f"#search-list .search-item[data-code='{demo_unit['code']}']").wait_for()
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowUp")
        assert page.get_attribute("#search-input", "aria-activedescendant") == "search-opt-0"
        page.keyboard.press("Enter")
        page.wait_for_function("(code) => document.querySelector('#info-panel').innerText"
                               ".includes(code)", arg=demo_unit["code"])
        panel = page.locator("#panel").bounding_box()
        assert panel["width"] >= 380 and panel["y"] > 300     # a bottom sheet
        wait_for_idle(page)
        screenshot(page, "viewer-phone-unit")
    finally:
        context.close()


# ---------------------------------------------------------------------------- HTTP side
def test_viewer_files_and_caching(demo_client, viewer_dist, monkeypatch, tmp_path) -> None:
    from api.routers import viewer as viewer_router

    build = json.loads((viewer_dist / "build.json").read_text())
    r = demo_client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-cache" and r.headers["etag"]
    assert f'{build["app"]}/main.js' in r.text and build["maplibre"]["path"] in r.text
    assert "cdn" not in r.text.lower() and "https://" not in r.text
    js = demo_client.get(f'/{build["app"]}/main.js', headers={"Accept-Encoding": "gzip"})
    assert js.status_code == 200 and js.headers["content-encoding"] == "gzip"
    assert js.headers["content-type"].startswith("text/javascript")
    assert "immutable" in js.headers["cache-control"]
    assert "import" in js.text
    again = demo_client.get(f'/{build["app"]}/main.js',
                            headers={"If-None-Match": js.headers["etag"]})
    assert again.status_code == 304
    lib = demo_client.get(f'/{build["maplibre"]["path"]}/maplibre-gl.js')
    assert lib.status_code == 200 and "max-age=31536000" in lib.headers["cache-control"]
    ces = demo_client.get(f'/{build["cesium"]["path"]}/Cesium.js', headers={"Range": "bytes=0-99"})
    assert ces.status_code in (200, 206)
    for bad in (f'/{build["app"]}/main.js.gz', "/app/..%2f..%2fpyproject.toml",
                "/app/../../pyproject.toml", "/vendor/.hidden", f'/{build["app"]}/nope.js'):
        r = demo_client.get(bad)
        assert r.status_code == 404, bad
    r = demo_client.get("/app/%2e%2e/%2e%2e/pyproject.toml")
    assert r.status_code == 404
    assert demo_client.get("/health").status_code == 200
    # the standalone 3D page has a stable address (redirect keeps the query)
    r = demo_client.get("/3d.html?unit=x", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == f'/{build["app"]}/3d.html?unit=x'
    assert demo_client.get("/3d.html").status_code == 200
    # without a build: a page that says what to run, in Chinese and English
    monkeypatch.setattr(viewer_router, "DIST", tmp_path / "missing")
    r = demo_client.get("/")
    assert r.status_code == 503 and "scripts/build_viewer.sh" in r.text
    assert "尚未构建" in r.text and "has not been built" in r.text


def test_work_lists_api(own, tmp_path) -> None:
    import httpx

    from cadastre.access.accounts import create_account
    from cadastre.access.privacy import Role

    base, url = own["server"].base, own["url"]
    with psycopg.connect(url, autocommit=True) as conn:
        create_account(conn, "survey.two", "surveyor password 2", Role.SURVEYOR)

    def token(user: str, password: str) -> dict:
        r = httpx.post(base + "/api/v1/auth/login", json={"username": user, "password": password})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    one = token("survey.viewer", "surveyor password 1")
    two = token("survey.two", "surveyor password 2")
    reg = token("reg.viewer", "registrar password 1")
    path = _overlap_survey(url, tmp_path)
    text = open(path).read().replace("ZDJBXX", "ZDJBXX_two")     # other bytes than test 1's
    open(path, "w").write(text)
    with open(path, "rb") as fh:
        r = httpx.post(base + "/api/v1/surveys", headers=two, files={"file": ("two.geojson", fh)})
    assert r.status_code == 202, r.text
    sid = r.json()["submission_id"]
    for who, sees in ((two, True), (one, False), (reg, True)):
        items = httpx.get(base + "/api/v1/surveys?limit=100", headers=who).json()["items"]
        assert (sid in [i["submission_id"] for i in items]) is sees
    mine = httpx.get(base + "/api/v1/surveys", headers=two).json()["items"]
    assert {i["submitted_by"] for i in mine} == {mine[0]["submitted_by"]}
    # keyset paging, newest first, no repeats
    seen, cursor = [], None
    while True:
        q = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = httpx.get(base + "/api/v1/surveys", headers=reg, params=q).json()
        seen += [i["submission_id"] for i in page["items"]]
        cursor = page["next"]
        if not cursor:
            break
    everything = httpx.get(base + "/api/v1/surveys?limit=100", headers=reg).json()["items"]
    assert seen == [i["submission_id"] for i in everything] and len(set(seen)) == len(seen)
    assert [i["submitted_at"] for i in everything] == sorted(
        (i["submitted_at"] for i in everything), reverse=True)
    r = httpx.get(base + "/api/v1/surveys?cursor=not-a-cursor", headers=reg)
    assert r.status_code == 400 and r.json()["error"]["code"] == "CURSOR_INVALID"
    assert httpx.get(base + "/api/v1/surveys?status=nope", headers=reg).status_code == 400
    assert httpx.get(base + "/api/v1/surveys").status_code == 401
    # QA runs: registrars only
    assert httpx.get(base + "/api/v1/qa/runs", headers=one).status_code == 403
    runs = httpx.get(base + "/api/v1/qa/runs", headers=reg)
    assert runs.status_code == 200 and "items" in runs.json()
    for run in runs.json()["items"]:
        assert run["total"] >= run["errors"] + run["warnings"]
        assert run["bbox"] is None or len(run["bbox"]) == 4
    # every list read is in the audit chain
    with psycopg.connect(url) as conn:
        n = conn.execute("SELECT count(*) FROM audit.log WHERE action IN "
                         "('survey.list', 'qa.run.list')").fetchone()[0]
    assert n >= 5


def test_switch_to_3d_and_back_keeps_the_place(live_server, page) -> None:
    import httpx

    sets = httpx.get(live_server.base + "/api/v1/3d/datasets").json()["datasets"]
    units = [d for d in sets if d["name"] == "demo-units"]
    if not units:
        pytest.skip("no demo 3D datasets (osgconv missing)")
    w, s, e, n = units[0]["extent"][:4]
    lon, lat = (w + e) / 2, (s + n) / 2
    page.goto(f"{live_server.base}/#map=17.5/{lat:.6f}/{lon:.6f}")
    wait_for_map(page)
    page.click("#toggle-3d")
    page.wait_for_function("() => window.cadastreViewer.scene3d", timeout=60_000)
    page.evaluate("() => window.cadastreViewer.scene3d.ready", None)
    page.wait_for_function("() => window.cadastreViewer.scene3d.viewer", timeout=120_000)
    assert page.get_attribute("#toggle-3d", "aria-pressed") == "true"
    assert "view=3d" in page.url
    page.wait_for_function("""() => { const t = window.cadastreViewer.scene3d.tilesets;
        return t.units && t.units.tilesLoaded
               && (!t.photogrammetry || t.photogrammetry.tilesLoaded);
    }""", timeout=120_000)
    v = page.evaluate("() => window.cadastreViewer.scene3d.view()")
    assert abs(v["lon"] - lon) < 1e-3 and abs(v["lat"] - lat) < 1e-3, v
    assert 50 < v["height"] < 3000, v
    assert page.is_hidden(".map-tools")       # the 2D tools are not for the 3D scene
    # a flat picked in the scene opens its information in the panel
    hit = page.evaluate("""() => { const v = window.cadastreViewer.scene3d.viewer;
        const C = window.Cesium, canvas = v.scene.canvas;
        for (let y = 120; y < canvas.clientHeight - 60; y += 24) {
          for (let x = 60; x < canvas.clientWidth - 420; x += 24) {
            const f = v.scene.pick(new C.Cartesian2(x, y));
            if (f && f.getProperty && f.getProperty('unit_code')) {
              return {x, y, code: f.getProperty('unit_code')};
            }
          }
        }
        return null; }""")
    assert hit, "no unit volume under any point of the scene"
    canvas = page.locator("#scene3d canvas").first.bounding_box()
    page.mouse.click(canvas["x"] + hit["x"], canvas["y"] + hit["y"])
    page.wait_for_function("(code) => document.querySelector('#info-panel').innerText"
                           ".includes(code)", arg=hit["code"], timeout=30_000)
    screenshot(page, "viewer-3d-from-2d")
    page.click("#toggle-3d")
    page.wait_for_selector("#scene3d", state="hidden")
    back = page.evaluate("""() => { const m = window.cadastreViewer.map;
        return {lon: m.getCenter().lng, lat: m.getCenter().lat, zoom: m.getZoom()}; }""")
    assert abs(back["lon"] - lon) < 1e-3 and abs(back["lat"] - lat) < 1e-3, back
    assert abs(back["zoom"] - 17.5) < 1.5, back
    assert page.get_attribute("#toggle-3d", "aria-pressed") == "false"
    assert "view=3d" not in page.url


def test_server_messages_and_codes_in_the_chosen_language(live_server, page) -> None:
    """Server messages are "中文 / English": the viewer shows the half of the language chosen
    (also after switching), and 房屋类型 / 房屋性质 codes read as labels in both languages."""
    page.goto(f"{live_server.base}/")
    wait_for_map(page)
    got = page.evaluate("""async () => {
        const src = document.querySelector('script[type="module"][src$="main.js"]').src;
        const base = src.slice(0, src.lastIndexOf('/') + 1);
        const { api } = await import(base + 'api.js');
        const i18n = await import(base + 'i18n.js');
        const info = await import(base + 'info.js');
        const out = {};
        try { await api('api/v1/parcels/330106000000GB99999'); } catch (e) {
            out.code = e.code; out.raw = e.raw; out.zh = e.message;
            out.zhNature = info.formatValue('house_nature', 0, {});
            out.zhType = info.formatValue('house_type', 1, {});
            i18n.setLang('en');
            out.en = e.message;
            out.enNature = info.formatValue('house_nature', 0, {});
            out.enUnknown = info.formatValue('house_type', 42, {});
            i18n.setLang('zh');
        }
        return out;
    }""")
    assert got["code"] == "PARCEL_NOT_FOUND" and " / " in got["raw"]
    assert got["zh"] == "未找到该宗地" and got["en"] == "parcel not found"
    assert (got["zhNature"], got["zhType"]) == ("市场化商品房", "住宅")
    assert got["enNature"].startswith("commodity housing") and got["enUnknown"] == "42"

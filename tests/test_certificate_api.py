"""Electronic certificates over HTTP: the owner downloads theirs (signed, verified with pyHanko),
its QR opens the public page (genuine, current → superseded by the transfer's business number,
revoked; the map images it carries; never the holder), departments check number + ID (yes/no,
audited), owners get a signed query result. A small district of our own; a real server app."""

from __future__ import annotations

import io
import re

import psycopg
import pytest
from PIL import Image

from cadastre.access import apikeys
from cadastre.access.pii import load_cipher
from cadastre.access.privacy import Role, visible_fields
from cadastre.certificates import IssuingContext, revoke_certificate, store
from cadastre.certificates.signing import check_signature
from cadastre.certificates.verify import when
from cadastre.demo.load import load_demo
from tests.certificate_support import pdf_text, qr_on_page, transfer, url_path
from tests.owner_support import People, bearer, holders, owner_client, verify


@pytest.fixture(scope="module")
def api_db(make_db, test_settings) -> str:
    url = make_db("certapi")
    with psycopg.connect(url) as conn:
        load_demo(conn, load_cipher(test_settings), parcels=60, seed=11)
    return url


@pytest.fixture(scope="module")
def client(api_db, test_settings):
    with owner_client(api_db, test_settings, host="10.202.0.1") as c:
        yield c


@pytest.fixture(scope="module")
def people(api_db, test_settings) -> People:
    with psycopg.connect(api_db) as conn:
        return People([h for h in holders(conn, load_cipher(test_settings)) if h.holders == 1
                       and not h.unit_code.endswith("W00000000")])


@pytest.fixture(scope="module")
def trust(test_settings):
    return IssuingContext.from_settings(test_settings).composer.signer.trust_roots


def _download(client, h) -> tuple[bytes, str]:
    token = verify(client, h)
    r = client.get(f"/api/v1/owner/units/{h.unit_code}/certificate.pdf", headers=bearer(token))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["cache-control"] == "private, no-store"
    assert r.headers["content-disposition"] == \
        f'attachment; filename="certificate-{h.unit_code}.pdf"'
    return r.content, token


def _qr_token(pdf: bytes) -> str:
    found = qr_on_page(pdf)
    assert len(found) == 1
    return url_path(found[0]).rsplit("/", 1)[1]


def _png(content: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(content))
    image.load()
    return image


def test_owner_downloads_the_signed_certificate_and_its_page_is_public(client, people, trust):
    h = people.take(kind="ownership")
    pdf, token = _download(client, h)
    check = check_signature(pdf, trust)
    assert check.ok, check
    text = pdf_text(pdf, [0])
    assert h.name in text and h.certificate_no in text and h.unit_code in text
    again = client.get(f"/api/v1/owner/units/{h.unit_code}/certificate.pdf",
                       headers=bearer(token))
    assert again.content == pdf                   # issued once, served as issued
    other = people.take(kind="ownership")
    r = client.get(f"/api/v1/owner/units/{other.unit_code}/certificate.pdf",
                   headers=bearer(token))
    assert r.status_code == 404                   # not theirs
    assert client.get(f"/api/v1/owner/units/{h.unit_code}/certificate.pdf").status_code == 401

    qr = _qr_token(pdf)
    page = client.get(f"/verify/c/{qr}")
    assert page.status_code == 200 and "证书有效" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "不动产权证书" in page.text and h.unit_code in page.text
    for secret in (h.name, h.id_number, h.certificate_no):
        assert secret not in page.text
    data = client.get(f"/api/v1/certificates/{qr}").json()
    assert data["status"] == "valid" and data["images"] == ["parcel-map", "floor-plan"]
    assert set(data["certificate"]) <= set(visible_fields("certificate", Role.PUBLIC))
    assert "number" not in data["certificate"] and "holders" not in data["certificate"]
    assert data["certificate"]["issued_at"]
    for name in data["images"]:
        assert f'src="{qr}/{name}.png"' in page.text
        r = client.get(f"/verify/c/{qr}/{name}.png")
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        image = _png(r.content)
        assert image.width > 800 and image.height > 1000
    assert client.get(f"/verify/c/{qr}/other.png").status_code == 422
    bogus = "A" * 22
    assert client.get(f"/verify/c/{bogus}/parcel-map.png").status_code == 404


def test_transfer_makes_the_page_name_the_business(client, people, api_db, test_settings):
    h = people.take(kind="ownership")
    pdf, _ = _download(client, h)
    qr = _qr_token(pdf)
    cipher = load_cipher(test_settings)
    ctx = IssuingContext.from_settings(test_settings)
    with psycopg.connect(api_db) as conn:
        _, at = transfer(conn, cipher, h.version_id, "202612069876", "受让人乙",
                         "110105195001010039", ctx.audit_key)
    page = client.get(f"/verify/c/{qr}").text
    assert "证书已失效" in page and "202612069876" in page
    assert when(at) in page and "北京时间" in page
    data = client.get(f"/api/v1/certificates/{qr}").json()
    assert data["status"] == "superseded"
    assert data["certificate"]["superseded_by"] == "202612069876"
    assert client.get(f"/verify/c/{qr}/parcel-map.png").status_code == 200   # as issued
    assert "受让人乙" not in page and h.name not in page


def test_paper_certificate_qr_names_the_later_registration(client, api_db, test_settings):
    """A QR printed before electronic certificates (the right version's token): after the
    demo's own transfers the page names the transfer's business number."""
    from cadastre.documents import certificate as qr

    with psycopg.connect(api_db) as conn:
        old, business = conn.execute(
            "SELECT o.version_id, n.business_no FROM cad.right_record o JOIN cad.right_record n "
            "ON n.unit_code = o.unit_code AND n.kind = o.kind AND n.valid_from = o.valid_to "
            "WHERE o.kind = 'ownership' AND o.valid_to IS NOT NULL LIMIT 1").fetchone()
    token = qr.certificate_token(load_cipher(test_settings).lookup_key, old)
    page = client.get(f"/verify/c/{token}").text
    assert "证书已失效" in page and business in page
    assert client.get(f"/verify/c/{token}/parcel-map.png").status_code == 200


def test_revoked_certificate_page(client, people, api_db, test_settings):
    h = people.take(kind="ownership")
    pdf, token = _download(client, h)
    qr = _qr_token(pdf)
    ctx = IssuingContext.from_settings(test_settings)
    with psycopg.connect(api_db) as conn:
        rec = store.by_number(conn, h.certificate_no)
        revoke_certificate(conn, ctx, rec.certificate_id, reason="缮证错误", actor="cli:test")
        conn.commit()
    page = client.get(f"/verify/c/{qr}").text
    assert "证书已作废" in page and "缮证错误" not in page       # the reason is for staff
    # the owner's next download is a new document with a new number
    r = client.get(f"/api/v1/owner/units/{h.unit_code}/certificate.pdf", headers=bearer(token))
    assert r.status_code == 200 and r.content != pdf
    assert h.certificate_no not in pdf_text(r.content, [0])


def test_departments_check_number_and_id(client, people, api_db, test_settings):
    h = people.take(kind="ownership")
    with psycopg.connect(api_db, autocommit=True) as conn:
        hkey = apikeys.hashing_key(test_settings)
        _, here = apikeys.create_key(conn, hkey, "tax-certs", ["330106"], ["unit.*"])
        _, elsewhere = apikeys.create_key(conn, hkey, "tax-other", ["330108"], ["unit.*"])
    headers = {"X-API-Key": here, "X-Purpose": "taxation", "X-Case-Ref": "TAX-2026-1"}
    url = "/api/v1/certificates/check"
    body = {"certificate_no": h.certificate_no, "id_number": h.id_number}
    spaced = {"certificate_no": h.certificate_no.replace("(", "（").replace(")", "）"),
              "id_number": h.id_number.lower()}
    assert client.post(url, json=body, headers=headers).json() == {"match": True}
    assert client.post(url, json=spaced, headers=headers).json() == {"match": True}
    wrong = {**body, "id_number": "11010519491231002X"}
    assert client.post(url, json=wrong, headers=headers).json() == {"match": False}
    out_of_scope = {**headers, "X-API-Key": elsewhere}
    assert client.post(url, json=body, headers=out_of_scope).json() == {"match": False}
    assert client.post(url, json=body).status_code == 401
    owner_token = verify(client, h)
    assert client.post(url, json=body, headers=bearer(owner_token)).status_code == 403
    r = client.post(url, json={"certificate_no": h.certificate_no}, headers=headers)
    assert r.status_code == 422 and h.certificate_no not in r.text
    with psycopg.connect(api_db) as conn:
        rows = conn.execute(
            "SELECT outcome, target, purpose, case_ref FROM audit.log "
            "WHERE action = 'certificate.check' ORDER BY seq").fetchall()
    assert [r[0] for r in rows] == ["match", "match", "no_match", "no_match"]
    assert rows[0][1] == h.unit_code and rows[2][1] is None
    assert rows[0][2:] == ("taxation", "TAX-2026-1")
    flat = repr(rows)
    assert h.id_number not in flat and h.certificate_no not in flat and h.name not in flat


def test_owner_query_result(client, people, trust):
    h = people.take(kind="ownership", mortgaged=True)
    token = verify(client, h)
    r = client.get(f"/api/v1/owner/units/{h.unit_code}/query-result.pdf", headers=bearer(token))
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert check_signature(r.content, trust).ok
    text = pdf_text(r.content)
    assert "不动产登记信息查询结果" in text and h.name in text and "抵押权" in text
    assert re.search(r"不动产登记信息查询第\d{7}号", text)
    qr = _qr_token(r.content)
    data = client.get(f"/api/v1/certificates/{qr}").json()
    assert data["status"] == "valid" and data["certificate"]["kind"] == "query_result"
    assert data["images"] == [] and data["certificate"]["as_of"]

"""Electronic certificates and proofs as the registration flow calls them: numbers, the signed
PDF checked with pyHanko and poppler's pdfsig, PDF/A metadata, extractable CJK text, the QR code
(zxing-cpp), supersession by a later registration, revocation, query results. On a small demo
district of our own (a real embedded PostGIS; issuing writes rows)."""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import threading
from pathlib import Path

import numpy as np
import psycopg
import pypdfium2 as pdfium
import pytest
from pypdf import PdfReader

from cadastre.access.pii import load_cipher
from cadastre.certificates import (
    IssuingContext,
    electronic_copy,
    issue_certificate,
    issue_query_result,
    office_for,
    prepare_certificate,
    reserve_number,
    revoke_certificate,
    store,
)
from cadastre.certificates.numbers import format_number, number_parts
from cadastre.certificates.signing import check_signature
from cadastre.certificates.verify import check_file, check_token, holder_matches
from cadastre.demo.load import load_demo
from cadastre.documents import certificate as qr
from cadastre.errors import Conflict, InvalidInput
from tests.certificate_support import (
    fonts,
    nss_trusting,
    pdf_text,
    pdfsig,
    qr_on_page,
    transfer,
    url_path,
    xmp,
)
from tests.owner_support import holders

SERVIENT_EASEMENT = "地役权测试：通行"


@pytest.fixture(scope="module")
def certs_db(make_db, test_settings) -> str:
    url = make_db("certs")
    with psycopg.connect(url) as conn:
        load_demo(conn, load_cipher(test_settings), parcels=60, seed=11)
        # this district has no easement: one between two land units, as a registration writes it
        a, b = [r[0] for r in conn.execute(
            "SELECT unit_code FROM cad.right_record WHERE kind = 'land_use' AND valid_to IS NULL "
            "ORDER BY unit_code LIMIT 2")]
        change = conn.execute("INSERT INTO cad.change_set (kind, actor) VALUES "
                              "('registration', 'test') RETURNING id").fetchone()[0]
        vid = conn.execute(
            "INSERT INTO cad.right_record (right_id, kind, unit_code, business_no, "
            "registration_type, right_type, registry_office, registered_at, right_start, status,"
            " valid_from, change_id, county_code) VALUES (gen_random_uuid(), 'easement', %s, "
            "'202600009999', 100, 19, '杭州市不动产登记服务中心西湖分中心', now(), current_date, "
            "1, now(), %s, %s) RETURNING version_id", (a, change, a[:6])).fetchone()[0]
        conn.execute("INSERT INTO cad.easement_detail VALUES (%s, %s, %s, %s, current_date, "
                     "NULL, %s)", (vid, a, b, SERVIENT_EASEMENT, a[:6]))
    return url


@pytest.fixture(scope="module")
def ctx(test_settings) -> IssuingContext:
    return IssuingContext.from_settings(test_settings)


@pytest.fixture()
def conn(certs_db):
    with psycopg.connect(certs_db) as c:
        yield c
        c.commit()


def _version(conn, kind: str, offset: int = 0, house: bool = True) -> int:
    return conn.execute(
        "SELECT version_id FROM cad.right_record r WHERE kind = %s AND valid_to IS NULL "
        "AND status = 1 AND (substr(unit_code, 20, 1) = 'F') = %s AND NOT EXISTS ("
        "SELECT 1 FROM cad.certificate c WHERE c.right_version_id = r.version_id) "
        "ORDER BY version_id OFFSET %s LIMIT 1", (kind, house, offset)).fetchone()[0]


def _issue(conn, ctx, version_id: int) -> tuple[store.CertificateRecord, bytes]:
    rec = prepare_certificate(conn, ctx, version_id, actor="cli:test")
    rec = issue_certificate(conn, ctx, rec.certificate_id, actor="cli:test")
    return rec, store.document(conn, rec.certificate_id)


# ------------------------------------------------------------------ numbers
def test_numbers_are_unique_across_the_register_and_parallel_reservations(conn, ctx, certs_db):
    office = office_for(conn, "330106", ctx.settings)
    assert format_number(office, "certificate", 2026, 1) == "浙(2026)杭州市不动产权第0000001号"
    assert number_parts(conn, "浙(2026)杭州市不动产权第0000001号") == (
        "浙|杭州市|不动产权", 2026, 1)
    assert number_parts(conn, "浙（2026）杭州市不动产证明第12号") == (
        "浙|杭州市|不动产证明", 2026, 12)
    assert number_parts(conn, "no number") == ("other", None, None)
    # every number the demo wrote into the register is known (trigger on right_record)
    missing = conn.execute(
        "SELECT count(*) FROM cad.right_record r WHERE certificate_no IS NOT NULL AND NOT EXISTS"
        " (SELECT 1 FROM cad.certificate_number n WHERE n.number = r.certificate_no)").fetchone()
    assert missing == (0,)
    year = conn.execute("SELECT max(year) FROM cad.certificate_number WHERE series = %s",
                        ("浙|杭州市|不动产权",)).fetchone()[0]
    top = conn.execute("SELECT max(seq) FROM cad.certificate_number WHERE series = %s AND "
                       "year = %s", ("浙|杭州市|不动产权", year)).fetchone()[0]
    assert top > 1
    got: list[str] = []
    lock = threading.Lock()

    def take() -> None:
        with psycopg.connect(certs_db) as c:
            for _ in range(10):
                n = reserve_number(c, office, "certificate", year)
                c.commit()
                with lock:
                    got.append(n)

    workers = [threading.Thread(target=take) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    seqs = sorted(int(re.search(r"第(\d+)号", n).group(1)) for n in got)
    assert seqs == list(range(top + 1, top + 41))      # 40 new, none repeated, none skipped
    register = {r[0] for r in conn.execute("SELECT certificate_no FROM cad.right_record")}
    assert not register & set(got)


# ------------------------------------------------------------------ the signed document
def test_certificate_is_signed_over_the_whole_file_and_checks_with_pdfsig(conn, ctx, tmp_path,
                                                                           test_settings):
    version = _version(conn, "ownership")
    rec, pdf = _issue(conn, ctx, version)
    assert rec.status == "current" and rec.kind == "certificate"
    assert rec.pdf_sha256 == hashlib.sha256(pdf).digest()
    check = check_signature(pdf, ctx.composer.signer.trust_roots)
    assert check.ok, check
    assert "电子签章" in (check.signer or "")
    path = tmp_path / "certificate.pdf"
    path.write_bytes(pdf)
    out = pdfsig(path)
    assert "Signature is Valid." in out and "Total document signed" in out, out
    assert "ETSI.CAdES.detached" in out and "SHA-256" in out
    nss = nss_trusting(test_settings.data_dir / "signing" / "ca.pem", tmp_path / "nss")
    assert "Certificate is Trusted." in pdfsig(path, nss)
    # one byte of the signed content changed: both checkers notice
    stream = pdf.index(b"stream", len(pdf) // 3) + 40
    tampered = pdf[:stream] + bytes([pdf[stream] ^ 0x01]) + pdf[stream + 1:]
    bad = check_signature(tampered, ctx.composer.signer.trust_roots)
    assert bad.signed and not bad.intact and not bad.ok
    (tmp_path / "tampered.pdf").write_bytes(tampered)
    assert "Signature is Valid." not in pdfsig(tmp_path / "tampered.pdf")
    # bytes appended after signing are outside the signature: not the whole file any more
    longer = check_signature(pdf + b"\n% appended\n", ctx.composer.signer.trust_roots)
    assert longer.intact and not longer.whole_file and not longer.ok
    appended = pdfsig(_write(tmp_path / "longer.pdf", pdf + b"\n% appended\n"))
    assert "Total document signed" not in appended
    # a file the registry did not issue, even validly signed by it, is not in the register
    assert check_file(conn, pdf, ctx.composer.signer.trust_roots).status == "valid"
    assert check_file(conn, tampered, ctx.composer.signer.trust_roots).status == "invalid"


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_pdfa_metadata_text_and_qr(conn, ctx):
    cipher = ctx.cipher
    people = [h for h in holders(conn, cipher) if h.holders == 1]
    h = next(p for p in people if not conn.execute(
        "SELECT 1 FROM cad.certificate WHERE right_version_id = %s", (p.version_id,)).fetchone())
    rec, pdf = _issue(conn, ctx, h.version_id)
    meta = xmp(pdf)
    assert re.search(r'pdfaid:part(="|>)3', meta) and re.search(r'pdfaid:conformance(="|>)B', meta)
    assert "不动产权证书" in meta and rec.number in meta        # dc:title
    # /Info and XMP agree (PDF/A): the producer, the title
    info = PdfReader(io.BytesIO(pdf)).metadata
    assert f'pdf:Producer="{info["/Producer"]}"' in meta and info["/Title"] in meta
    assert b"/GTS_PDFA1" in pdf and b"/OutputIntents" in pdf
    used = fonts(pdf)                                   # every font embedded (PDF/A)
    assert used and all(used.values()), used
    text = pdf_text(pdf, [0])
    seat = conn.execute("SELECT seat FROM cad.unit WHERE unit_code = %s AND valid_to IS NULL",
                        (h.unit_code,)).fetchone()[0]
    for word in (h.name, seat, h.unit_code, h.certificate_no, "权利人", "共有情况", "坐落",
                 "不动产单元号", "权利类型", "权利性质", "用途", "面积", "使用期限", "附记",
                 "中华人民共和国不动产权证书"):
        assert word in text, word
    # the attached pages: the parcel map, then the floor plan; they name nobody
    assert len(rec.parcel_pages) >= 1 and len(rec.plan_pages) >= 1
    maps = pdf_text(pdf, list(rec.parcel_pages) + list(rec.plan_pages))
    assert "宗地图" in maps and "分层分户图" in maps and h.unit_code in maps
    assert h.name not in maps and h.certificate_no not in maps
    # 一证一码: the QR decodes to the verification address of this document
    found = qr_on_page(pdf)
    assert len(found) == 1
    assert found[0].startswith(ctx.settings.public_url.rstrip("/") + "/verify/c/")
    token = url_path(found[0]).rsplit("/", 1)[1]
    assert qr.token_version(cipher.lookup_key, token, qr.DOCUMENT) == rec.serial
    assert qr.token_version(cipher.lookup_key, token) is None   # not a paper certificate's key
    assert found[0] in text.replace("\n", "") or token in text.replace("\n", "")
    assert check_token(conn, cipher, token).status == "valid"


def test_pages_bookmarks_and_the_stamped_seal(conn, ctx):
    """The parcel map's pages (written once per parcel) and the office's seal (drawn once per
    office) are copied into the document: the bookmarks lead to each part in order, and the
    seal is drawn in red inside the square the record page leaves for it."""
    rec, pdf = _issue(conn, ctx, _version(conn, "ownership", offset=3))
    reader = PdfReader(io.BytesIO(pdf))
    marks = [(m.title, reader.get_destination_page_number(m)) for m in reader.outline
             if not isinstance(m, list)]
    assert marks == [("中华人民共和国不动产权证书", 0), ("宗地图", rec.parcel_pages[0]),
                     ("分层分户图", rec.plan_pages[0])]
    assert len(reader.pages) == 1 + len(rec.parcel_pages) + len(rec.plan_pages)
    doc = pdfium.PdfDocument(pdf)
    try:
        page = doc[0].render(scale=100 / 72).to_pil().convert("RGB")
    finally:
        doc.close()
    rgb = np.asarray(page).astype(int)
    red = int(((rgb[..., 0] > 180) & (rgb[..., 1] < 90) & (rgb[..., 2] < 90)).sum())
    seal_px = (42 / 25.4 * 100) ** 2
    assert 0.05 * seal_px < red < 0.5 * seal_px, red      # rings, star and characters


@pytest.mark.parametrize("kind", ["mortgage", "pre_notice", "objection", "easement", "seizure"])
def test_each_proof_kind(conn, ctx, kind):
    house = kind not in ("easement",)
    rec, pdf = _issue(conn, ctx, _version(conn, kind, house=house))
    assert rec.kind == "proof" and rec.number.endswith("号") and "不动产证明" in rec.number
    assert check_signature(pdf, ctx.composer.signer.trust_roots).ok
    text = pdf_text(pdf, [0])
    assert "不动产登记证明" in text and "证明权利或事项" in text and "义务人" in text
    expected = {"mortgage": "抵押权", "pre_notice": "预告登记", "objection": "异议登记",
                "easement": SERVIENT_EASEMENT, "seizure": "查封"}[kind]
    assert expected in text
    if kind == "mortgage":
        assert "被担保主债权数额" in text and "债务履行期限" in text
    if kind == "seizure":       # the demo registers seizures without a number: one is reserved
        registered = conn.execute("SELECT certificate_no FROM cad.right_record WHERE "
                                  "version_id = %s", (rec.right_version_id,)).fetchone()[0]
        assert registered == rec.number
    assert len(rec.parcel_pages) == 1 and (len(rec.plan_pages) >= 1) == house


def test_no_document_for_cancellations_or_closed_rights(conn, ctx):
    cancellation = conn.execute("SELECT version_id FROM cad.right_record WHERE kind = "
                                "'cancellation' LIMIT 1").fetchone()[0]
    with pytest.raises(InvalidInput) as exc:
        prepare_certificate(conn, ctx, cancellation, actor="cli:test")
    assert exc.value.code == "NO_CERTIFICATE_FOR_KIND"
    closed = conn.execute("SELECT version_id FROM cad.right_record WHERE kind = 'ownership' "
                          "AND valid_to IS NOT NULL LIMIT 1").fetchone()[0]
    with pytest.raises(InvalidInput) as exc:
        prepare_certificate(conn, ctx, closed, actor="cli:test")
    assert exc.value.code == "RIGHT_NOT_CURRENT"
    before = conn.execute("SELECT count(*) FROM cad.certificate").fetchone()
    version = _version(conn, "ownership")
    rec = prepare_certificate(conn, ctx, version, actor="cli:test")
    with pytest.raises(Conflict):
        prepare_certificate(conn, ctx, version, actor="cli:test")
    assert conn.execute("SELECT count(*) FROM cad.certificate").fetchone()[0] == before[0] + 1
    assert rec.status == "prepared"
    token = qr.certificate_token(ctx.cipher.lookup_key, rec.serial, qr.DOCUMENT)
    assert check_token(conn, ctx.cipher, token).status == "unknown"   # not issued yet


def test_transfer_supersedes_and_names_the_business(conn, ctx):
    h = next(x for x in holders(conn, ctx.cipher) if not conn.execute(
        "SELECT 1 FROM cad.certificate WHERE right_version_id = %s", (x.version_id,)).fetchone())
    rec, pdf = _issue(conn, ctx, h.version_id)
    token = url_path(qr_on_page(pdf)[0]).rsplit("/", 1)[1]
    assert holder_matches(conn, ctx.cipher, h.certificate_no, h.id_number)[0]
    new_version, at = transfer(conn, ctx.cipher, h.version_id, "202612060001", "买受人甲",
                               "11010519491231002X", ctx.audit_key)
    seen = check_token(conn, ctx.cipher, token)
    assert seen.status == "superseded"
    assert seen.record["superseded_by"] == "202612060001" and seen.record["superseded_at"] == at
    assert not holder_matches(conn, ctx.cipher, h.certificate_no, h.id_number)[0]
    # the buyer's certificate gets its own number and is current
    new, _ = _issue(conn, ctx, new_version)
    assert new.number != rec.number and new.status == "current"
    assert holder_matches(conn, ctx.cipher, new.number, "11010519491231002X")[0]
    actions = [r[0] for r in conn.execute(
        "SELECT action FROM audit.log WHERE target = %s ORDER BY seq",
        (f"{rec.unit_code}#{rec.serial}",))]
    assert actions == ["certificate.prepare.certificate", "certificate.issue.certificate",
                       "certificate.supersede"]
    # announced to subscribers (the sharing outbox), in the same transactions, without PII
    events = conn.execute(
        "SELECT event_id, type, occurred_at, county_code, unit_codes, case_no, refs "
        "FROM share.event WHERE %s = ANY(unit_codes) AND type LIKE 'certificate.%%' "
        "ORDER BY event_id", (rec.unit_code,)).fetchall()
    assert [e[1] for e in events] == ["certificate.issued", "certificate.superseded",
                                      "certificate.issued"]
    assert events[0][6]["versions"] == [h.version_id]
    assert events[1][6]["closed"] == [h.version_id]
    assert events[1][6]["certificate"]["superseded_by"] == "202612060001"
    assert events[2][6]["versions"] == [new_version]
    from cadastre.access.principal import Principal
    from cadastre.access.privacy import Role
    from cadastre.sharing.payloads import render

    names = ["event_id", "type", "occurred_at", "county_code", "unit_codes", "case_no", "refs"]
    bank = Principal(Role.DEPARTMENT, counties=("330106",), subject="key")
    payload = render(conn, ctx.cipher, dict(zip(names, events[1], strict=True)), bank)
    assert payload["certificate"]["status"] == "superseded"
    assert payload["rights"][0]["change"] == "closed"
    flat = repr(payload)
    assert h.name not in flat and h.id_number not in flat and h.certificate_no not in flat


def test_revoked_certificate_is_reissued_with_a_new_number(conn, ctx):
    h = next(x for x in holders(conn, ctx.cipher) if not conn.execute(
        "SELECT 1 FROM cad.certificate WHERE right_version_id = %s", (x.version_id,)).fetchone())
    rec, pdf = _issue(conn, ctx, h.version_id)
    assert rec.number == h.certificate_no              # the registered number, electronically
    with pytest.raises(InvalidInput):
        revoke_certificate(conn, ctx, rec.certificate_id, reason=" ", actor="cli:test")
    gone = revoke_certificate(conn, ctx, rec.certificate_id, reason="缮证错误", actor="cli:test")
    assert gone.status == "revoked" and gone.revoked_reason == "缮证错误"
    assert check_file(conn, pdf, ctx.composer.signer.trust_roots).status == "revoked"
    assert not holder_matches(conn, ctx.cipher, h.certificate_no, h.id_number)[0]
    again = electronic_copy(conn, ctx, h.version_id, actor="cli:test")
    assert again.number != rec.number and again.status == "current"
    registered = conn.execute("SELECT certificate_no FROM cad.right_record WHERE version_id = %s",
                              (h.version_id,)).fetchone()[0]
    assert registered == again.number
    assert holder_matches(conn, ctx.cipher, again.number, h.id_number)[0]
    with pytest.raises(Conflict):
        revoke_certificate(conn, ctx, rec.certificate_id, reason="again", actor="cli:test")


def test_query_result_lists_the_units_registrations(conn, ctx):
    unit = conn.execute(
        "SELECT unit_code FROM cad.unit_status WHERE mortgaged AND registration_status = "
        "'registered' ORDER BY unit_code LIMIT 1").fetchone()[0]
    rec = issue_query_result(conn, ctx, unit, actor="owner:test")
    pdf = store.document(conn, rec.certificate_id)
    assert rec.kind == "query_result" and rec.status == "current" and rec.as_of is not None
    assert "不动产登记信息查询第" in rec.number
    assert check_signature(pdf, ctx.composer.signer.trust_roots).ok
    text = pdf_text(pdf)
    assert "不动产登记信息查询结果" in text and unit in text and "抵押权" in text
    bank = conn.execute(
        "SELECT p.name_enc FROM cad.right_record r JOIN cad.right_party rp ON "
        "rp.right_version_id = r.version_id AND rp.role = 1 JOIN pii.party p USING (party_id) "
        "WHERE r.unit_code = %s AND r.kind = 'mortgage' AND r.valid_to IS NULL", (unit,)
    ).fetchone()[0]
    assert ctx.cipher.decrypt(bank) in text.replace("\n", "")     # wrapped in its cell
    assert len(qr_on_page(pdf)) == 1


def test_local_ca_is_made_once_and_a_configured_one_is_used(tmp_path, test_settings):
    from cadastre.certificates.signing import OfficeSigner, signing_files
    from cadastre.errors import ConfigError
    from cadastre.settings import Settings

    s = Settings(storage={"data_dir": tmp_path / "a"})
    first = signing_files(s)
    again = signing_files(s)
    assert first == again and first.key.stat().st_mode & 0o077 == 0
    # "a real certificate": the key and certificate of another office given by settings
    copy = tmp_path / "real"
    shutil.copytree(first.key.parent, copy)
    configured = Settings(storage={"data_dir": tmp_path / "b"}, certificates={
        "signing_key": copy / "office-key.pem", "signing_cert": copy / "office.pem",
        "signing_chain": [copy / "ca.pem"], "trust_roots": [copy / "ca.pem"]})
    files = signing_files(configured)
    assert files.cert == copy / "office.pem" and not (tmp_path / "b" / "signing").exists()
    signer = OfficeSigner(files)
    from cadastre.documents.render import html_to_pdf, page_html

    signed = signer.sign(html_to_pdf(page_html("t", "<p>测试</p>")), "test", "杭州市")
    assert check_signature(signed, signer.trust_roots).ok
    with pytest.raises(ConfigError):
        signing_files(Settings(storage={"data_dir": tmp_path / "c"},
                               certificates={"signing_key": copy / "office-key.pem"}))
    with pytest.raises(ConfigError):
        OfficeSigner(type(files)(copy / "ca.pem", copy / "office.pem", (), ()))


def test_batch_issues_in_worker_processes_and_skips_what_it_cannot(conn, ctx, certs_db):
    from cadastre.certificates.batch import issue_batch

    versions = [r[0] for r in conn.execute(
        "SELECT version_id FROM cad.right_record r WHERE kind IN ('ownership', 'mortgage') "
        "AND valid_to IS NULL AND status = 1 AND NOT EXISTS (SELECT 1 FROM cad.certificate c "
        "WHERE c.right_version_id = r.version_id) ORDER BY unit_code, version_id LIMIT 8")]
    cancellation = conn.execute("SELECT version_id FROM cad.right_record WHERE kind = "
                                "'cancellation' LIMIT 1").fetchone()[0]
    already = versions.pop()
    electronic_copy(conn, ctx, already, actor="cli:test")
    conn.commit()
    seen: list[tuple[int, int]] = []
    result = issue_batch(certs_db, ctx, [*versions[:3], cancellation, already, *versions[3:]],
                         actor="cli:test", workers=2, chunk=3,
                         progress=lambda done, total: seen.append((done, total)))
    assert sorted(r.right_version_id for r in result.issued) == sorted(versions)
    assert sorted(result.skipped) == sorted([(cancellation, "NO_CERTIFICATE_FOR_KIND"),
                                             (already, "CERTIFICATE_EXISTS")])
    assert seen[-1] == (9, 9) and len(seen) == 3
    for rec in result.issued:
        assert rec.status == "current"
        pdf = store.document(conn, rec.certificate_id)
        assert check_signature(pdf, ctx.composer.signer.trust_roots).ok
        assert hashlib.sha256(pdf).digest() == rec.pdf_sha256
    numbers = [r.number for r in result.issued]
    assert len(set(numbers)) == len(numbers)
    # the units of a parcel carry the same parcel map page (written once for the batch)
    maps: dict[str, set[bytes]] = {}
    for rec in result.issued:
        page = PdfReader(io.BytesIO(store.document(conn, rec.certificate_id))).pages[
            rec.parcel_pages[0]]
        maps.setdefault(rec.unit_code[:19], set()).add(page.get_contents().get_data())
    assert all(len(pages) == 1 for pages in maps.values())
    assert len(maps) < len(result.issued)           # some parcel has several of the units

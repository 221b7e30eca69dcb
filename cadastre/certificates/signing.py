"""The office's electronic seal: a PAdES signature (pyHanko) over the whole certificate PDF.

Key and certificate come from settings (``CADASTRE_CERT_SIGNING_KEY`` …, a certificate from a
recognised CA) or, for the embedded setup, from a local CA created on first start under
``<data dir>/signing`` (mode 0700; keys 0600): a self-signed root "… 电子证照测试根证书" and the
office certificate it issues (RSA 2048, SHA-256, key usage digitalSignature + nonRepudiation).
Those signatures are genuine, and trusted wherever that root is (``signing/ca.pem``).

The signature is PAdES baseline B (ETSI.CAdES.detached, SHA-256) with the signing time from the
server clock (no timestamp authority), invisible: the seal drawn on the page is part of the
signed content. It is the last revision of the file, so its byte range covers the whole document.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from cadastre.errors import ConfigError
from cadastre.settings import CertificateSettings, Settings

SIGNATURE_FIELD = "不动产登记电子签章"
T = TypeVar("T")


def _outside_event_loop(fn: Callable[[], T]) -> T:
    """pyHanko's synchronous calls run their own event loop (``asyncio.run``), which cannot
    start inside a running one (an async caller, a browser-driving test): run them in a
    thread of their own then."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn()
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()
CA_YEARS, OFFICE_YEARS = 20, 5


# ------------------------------------------------------------------ the local CA
def _name(common: str, organisation: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _issue_local_ca(folder: Path, office_name: str, now: datetime) -> None:
    """Write ca.pem, ca-key.pem, office.pem, office-key.pem into ``folder``."""
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = _name(f"{office_name}电子证照测试根证书", office_name)
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - timedelta(hours=1))
          .not_valid_after(now + timedelta(days=365 * CA_YEARS))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    office_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    office = (x509.CertificateBuilder().subject_name(_name(f"{office_name}（电子签章）",
                                                           office_name))
              .issuer_name(ca_name).public_key(office_key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - timedelta(hours=1))
              .not_valid_after(now + timedelta(days=365 * OFFICE_YEARS))
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True,
                                           key_encipherment=False, data_encipherment=False,
                                           key_agreement=False, key_cert_sign=False,
                                           crl_sign=False, encipher_only=False,
                                           decipher_only=False), critical=True)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                  ca_key.public_key()), critical=False)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(
                  office_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    _write(folder / "ca.pem", ca.public_bytes(pem), 0o644)
    _write(folder / "ca-key.pem", _pem_key(ca_key), 0o600)
    _write(folder / "office.pem", office.public_bytes(pem), 0o644)
    _write(folder / "office-key.pem", _pem_key(office_key), 0o600)


def ensure_local_ca(data_dir: Path, office_name: str) -> Path:
    """``<data dir>/signing`` with the local CA and office certificate, created when missing.

    Built in a temporary folder and renamed into place, so concurrent starters agree on one."""
    folder = data_dir / "signing"
    if (folder / "office.pem").is_file():
        return folder
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".signing-", dir=data_dir))
    try:
        os.chmod(tmp, 0o700)
        _issue_local_ca(tmp, office_name, datetime.now(UTC))
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / "office.pem").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


# ------------------------------------------------------------------ the office's signer
@dataclass(frozen=True)
class SigningFiles:
    """Where the key material is: everything a worker process needs to load the signer."""

    key: Path
    cert: Path
    chain: tuple[Path, ...]
    trust_roots: tuple[Path, ...]
    passphrase: bytes | None = None


def signing_files(settings: Settings) -> SigningFiles:
    """The configured key and certificate, or the local CA's (created when missing)."""
    cfg: CertificateSettings = settings.certificates
    if cfg.signing_key is not None or cfg.signing_cert is not None:
        if cfg.signing_key is None or cfg.signing_cert is None:
            raise ConfigError("SIGNING_CONFIG", "CADASTRE_CERT_SIGNING_KEY 与 SIGNING_CERT 须同时"
                              "设置 / set both CADASTRE_CERT_SIGNING_KEY and _SIGNING_CERT")
        for path in (cfg.signing_key, cfg.signing_cert, *cfg.signing_chain, *cfg.trust_roots):
            if not path.is_file():
                raise ConfigError("SIGNING_CONFIG", f"签章文件不存在 / signing file missing: "
                                  f"{path}")
        passphrase = (cfg.signing_key_passphrase.get_secret_value().encode()
                      if cfg.signing_key_passphrase else None)
        return SigningFiles(cfg.signing_key, cfg.signing_cert, tuple(cfg.signing_chain),
                            tuple(cfg.trust_roots), passphrase)
    folder = ensure_local_ca(settings.data_dir, settings.cases.office_name)
    return SigningFiles(folder / "office-key.pem", folder / "office.pem", (folder / "ca.pem",),
                        (folder / "ca.pem", *cfg.trust_roots))


def _fast_signer_class() -> type:
    """pyHanko's ``SimpleSigner`` with its private key parsed once: pyHanko parses it again for
    every signature, and OpenSSL 3 checks an RSA key's consistency on every parse (~75 ms, more
    than everything else a signature costs)."""
    from cryptography.hazmat.primitives.asymmetric.ec import ECDSA, EllipticCurvePrivateKey
    from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
    from pyhanko.sign import signers
    from pyhanko_certvalidator.util import get_pyca_cryptography_hash

    class FastKeySigner(signers.SimpleSigner):  # type: ignore[misc]
        _parsed: Any = None

        def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
            if self._parsed is None:
                self._parsed = serialization.load_der_private_key(self.signing_key.dump(), None)
            key = self._parsed
            mechanism = self.get_signature_mechanism_for_digest(digest_algorithm).signature_algo
            digest = get_pyca_cryptography_hash(digest_algorithm)
            if mechanism == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPrivateKey):
                return key.sign(data, PKCS1v15(), digest)
            if mechanism == "ecdsa" and isinstance(key, EllipticCurvePrivateKey):
                return key.sign(data, ECDSA(digest))
            return super().sign_raw(data, digest_algorithm)  # type: ignore[no-any-return]

    return FastKeySigner


def _same_producer(writer: Any) -> None:
    """pyHanko writes its own name as the XMP producer and appends it to the /Info one; PDF/A
    wants the two to agree, so the /Info producer becomes pyHanko's too."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.metadata.model import VENDOR

    if "/Info" not in writer.trailer:
        return
    info = writer.trailer["/Info"]
    info["/Producer"] = generic.TextStringObject(VENDOR)
    writer.update_container(info)


class OfficeSigner:
    """The pyHanko signer of the office, loaded once per process."""

    def __init__(self, files: SigningFiles) -> None:
        from pyhanko.keys import load_cert_from_pemder, load_private_key_from_pemder
        from pyhanko_certvalidator.registry import SimpleCertificateStore

        try:
            key = load_private_key_from_pemder(str(files.key), passphrase=files.passphrase)
            cert = load_cert_from_pemder(str(files.cert))
            chain = [load_cert_from_pemder(str(p)) for p in files.chain]
            self.trust_roots = [load_cert_from_pemder(str(p)) for p in files.trust_roots]
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError("SIGNING_CONFIG", "签章密钥或证书无法读取 / the signing key or "
                              "certificate cannot be read") from exc
        store = SimpleCertificateStore()
        store.register_multiple(chain)
        self._signer = _fast_signer_class()(signing_cert=cert, signing_key=key,
                                            cert_registry=store)
        # room for the CMS container: the certificates it embeds, signed attributes and the
        # signature (pyHanko's own estimate would cost a second signature each time)
        self._reserved = 2 * (2048 + sum(len(c.dump()) for c in (cert, *chain)))
        self.subject = cert.subject.human_friendly
        self.identity = f"{self.subject} #{cert.serial_number:x}"

    def sign(self, pdf: bytes, reason: str, location: str) -> bytes:
        """``pdf`` with the office's PAdES signature appended as its last revision."""
        from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
        from pyhanko.sign import fields, signers

        writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
        _same_producer(writer)
        meta = signers.PdfSignatureMetadata(
            field_name=SIGNATURE_FIELD, md_algorithm="sha256", reason=reason,
            location=location, subfilter=fields.SigSeedSubFilter.PADES)
        out = _outside_event_loop(lambda: signers.sign_pdf(
            writer, meta, signer=self._signer, new_field_spec=fields.SigFieldSpec(SIGNATURE_FIELD),
            bytes_reserved=self._reserved))
        return out.getvalue()  # type: ignore[no-any-return,union-attr]


# ------------------------------------------------------------------ checking a signed file
@dataclass(frozen=True)
class SignatureCheck:
    signed: bool                 # the file holds a signature at all
    intact: bool = False         # the signed bytes are unchanged
    valid: bool = False          # intact and the cryptography checks out
    trusted: bool = False        # the signer chains up to a trusted root
    whole_file: bool = False     # the signature covers every byte of the file
    signer: str | None = None
    signed_at: datetime | None = None
    summary: str = ""

    @property
    def ok(self) -> bool:
        return self.signed and self.intact and self.valid and self.trusted and self.whole_file


def check_signature(pdf: bytes, trust_roots: list[Any]) -> SignatureCheck:
    """Validate the file's last signature against ``trust_roots`` (asn1crypto certificates),
    offline (nothing is fetched); a file that is not a PDF counts as unsigned."""
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.errors import SignatureValidationError
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        signatures = reader.embedded_signatures
    except (PdfError, ValueError, KeyError, TypeError, IndexError):
        return SignatureCheck(False, summary="not a readable PDF")
    if not signatures:
        return SignatureCheck(False, summary="no signature")
    context = ValidationContext(trust_roots=trust_roots, allow_fetching=False)
    try:
        status = _outside_event_loop(lambda: validate_pdf_signature(signatures[-1], context))
    except (SignatureValidationError, PdfError, ValueError) as exc:
        return SignatureCheck(True, summary=f"validation failed: {type(exc).__name__}")
    return SignatureCheck(
        True, bool(status.intact), bool(status.valid), bool(status.trusted),
        status.coverage == SignatureCoverageLevel.ENTIRE_FILE,
        status.signing_cert.subject.human_friendly if status.signing_cert else None,
        status.signer_reported_dt, status.summary())

"""Settings, one class per concern, one env prefix (``CADASTRE_``).

``DATABASE_URL`` is accepted as a whole (as well as ``CADASTRE_DATABASE_URL``). Without it the
embedded PostgreSQL/PostGIS cluster under the data dir is used.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX = "CADASTRE_"
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _default_data_dir() -> Path:
    """``<checkout>/var`` when running from a source checkout, else ``~/.local/share/cadastre``."""
    if (PROJECT_ROOT / "pyproject.toml").is_file():
        return PROJECT_ROOT / "var"
    return Path.home() / ".local" / "share" / "cadastre"


class _Base(BaseSettings):
    # extra="forbid" would reject unrelated CADASTRE_* variables of other concerns, so unknown
    # keys are reported by `cadastre settings` instead (see unknown_env_keys()).
    model_config = SettingsConfigDict(
        env_prefix=PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore",
        populate_by_name=True,
    )


class StorageSettings(_Base):
    data_dir: Path = Field(default_factory=_default_data_dir, description="数据目录 / data dir")


class DatabaseSettings(_Base):
    url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "CADASTRE_DATABASE_URL"),
        description="external PostgreSQL; empty = embedded cluster",
    )
    pool_min: int = Field(default=1, ge=0)
    pool_max: int = Field(default=10, ge=1)
    statement_timeout_ms: int = Field(default=30_000, ge=0)
    # embedded cluster tuning
    embedded_shared_buffers: str = "256MB"
    embedded_port: int | None = Field(default=None, description="fixed port; default: a free one")
    min_server_version: int = 140000
    min_postgis_version: str = "3.1"


class ApiSettings(_Base):
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    log_level: str = "WARNING"
    cors_origins: list[str] = Field(default_factory=lambda: ["*"])
    # Anti-enumeration (CADASTRE_RATE_LIMIT_*): token buckets per client address and per
    # credential, in memory per worker process. Requests per minute by kind of path.
    rate_limit_enabled: bool = True
    rate_limit_per_minute: int = Field(default=600, ge=1, description="general API")
    rate_limit_tiles_per_minute: int = Field(default=3000, ge=1,
                                             description="tiles, glyphs, styles, viewer files")
    rate_limit_search_per_minute: int = Field(default=120, ge=1,
                                              description="search and what-is-here")
    rate_limit_auth_per_minute: int = Field(default=20, ge=1,
                                            description="login and verification")
    # client addresses of reverse proxies whose X-Forwarded-For is believed
    trusted_proxies: list[str] = Field(default_factory=list)
    # login lockout (CADASTRE_LOGIN_*): failures per username, and per client address
    login_max_failures: int = Field(default=5, ge=1)
    login_max_client_failures: int = Field(default=20, ge=1)
    login_lockout_minutes: int = Field(default=15, ge=1)


class TileSettings(_Base):
    # CADASTRE_TILE_CACHE=false renders every tile from PostGIS (benchmarks: "cold")
    cache: bool = Field(default=True, validation_alias=AliasChoices("CADASTRE_TILE_CACHE",
                                                                    "cache"))


class QaSettings(_Base):
    """Tolerances of the quality rules (CADASTRE_QA_*), and which rules are switched off."""

    model_config = SettingsConfigDict(env_prefix=PREFIX + "QA_", env_file=".env",
                                      extra="ignore", populate_by_name=True)
    area_abs_m2: float = Field(default=1.0, ge=0, description="area mismatch: absolute m²")
    area_rel: float = Field(default=0.03, ge=0, description="area mismatch: relative")
    overlap_m2: float = Field(default=0.01, ge=0, description="smallest overlap reported")
    gap_width_m: float = Field(default=0.5, gt=0, description="gaps narrower than 2× this")
    gap_min_m2: float = Field(default=0.05, ge=0, description="smallest gap reported")
    duplicate_vertex_m: float = Field(default=0.001, ge=0)
    spike_degrees: float = Field(default=1.0, gt=0, lt=90, description="real acute corners "
                                 "of 3–5° exist (French cadastre); true spikes are sharper")
    point_match_m: float = Field(default=0.05, gt=0, description="boundary points this close "
                                 "but not identical disagree")
    disabled_rules: list[str] = Field(default_factory=list)
    schedule_hours: float = Field(default=0, ge=0, description="run district QA every N hours "
                                  "in the server (0 = off)")

    def tolerances(self) -> dict[str, float]:
        return self.model_dump(exclude={"disabled_rules", "schedule_hours"})


class SecuritySettings(_Base):
    # Keys for PII encryption at rest (AES-256-GCM) and for keyed look-up hashes (HMAC-SHA256).
    # When not given, the embedded data dir keeps generated keys in `secrets.json` (mode 0600).
    pii_key: SecretStr | None = None
    lookup_key: SecretStr | None = None
    token_key: SecretStr | None = None
    # HMAC key of the audit chain (CADASTRE_AUDIT_KEY); a writer without it cannot re-seal a
    # tampered log
    audit_key: SecretStr | None = None
    token_ttl_minutes: int = Field(default=480, ge=1)
    # owner verification (name + ID number + certificate number, or certificate QR + ID number)
    owner_token_ttl_minutes: int = Field(default=30, ge=1, le=240)
    verify_max_failures: int = Field(default=5, ge=1, description="failures per identity or "
                                     "client address within the window before a lockout")
    verify_window_minutes: int = Field(default=15, ge=1)


class CertificateSettings(_Base):
    """Electronic certificates and proofs (CADASTRE_CERT_*): numbering, the office's signing key
    and certificate, the address printed in the QR code, batch workers.

    Without ``signing_key``/``signing_cert`` a local CA and an office certificate it issues are
    created on first use under ``<data dir>/signing`` (like ``secrets.json``); their signatures
    are genuine but trusted only where that CA is. To sign with a certificate from a recognised
    CA, give the PEM files of the key (``signing_key``, with ``signing_key_passphrase`` when it is
    encrypted), the certificate (``signing_cert``), its intermediates (``signing_chain``) and the
    root to verify against (``trust_roots``)."""

    model_config = SettingsConfigDict(env_prefix=PREFIX + "CERT_", env_file=".env",
                                      extra="ignore", populate_by_name=True)
    province_abbr: str = Field(default="浙", min_length=1, max_length=4,
                               description="省级简称 in 浙(2026)杭州市不动产权第0000001号")
    city_name: str = Field(default="杭州市", min_length=1, max_length=24,
                           description="市县名称 in the number")
    office_name: str = Field(default="杭州市不动产登记服务中心",
                             description="登记机构 when the right names none")
    public_url: str | None = Field(default=None, description="address printed in the QR code "
                                   "(…/verify/c/{token}); default: http://<api host>:<api port>")
    signing_key: Path | None = None
    signing_key_passphrase: SecretStr | None = None
    signing_cert: Path | None = None
    signing_chain: list[Path] = Field(default_factory=list)
    trust_roots: list[Path] = Field(default_factory=list)
    workers: int = Field(default=2, ge=1, le=32, description="processes signing a batch")


_SECRET_KEYS = ("url", "pii_key", "lookup_key", "token_key", "audit_key",
                "signing_key_passphrase")


class Settings:
    """All concerns together; each is a pydantic-settings object reading the same env prefix."""

    def __init__(self, **overrides: Any) -> None:
        self.storage = StorageSettings(**overrides.get("storage", {}))
        self.database = DatabaseSettings(**overrides.get("database", {}))
        self.api = ApiSettings(**overrides.get("api", {}))
        self.security = SecuritySettings(**overrides.get("security", {}))
        self.tiles = TileSettings(**overrides.get("tiles", {}))
        self.qa = QaSettings(**overrides.get("qa", {}))
        self.certificates = CertificateSettings(**overrides.get("certificates", {}))

    @property
    def data_dir(self) -> Path:
        return self.storage.data_dir

    @property
    def public_url(self) -> str:
        """The server's public address (printed in certificates' QR codes)."""
        return self.certificates.public_url or f"http://{self.api.host}:{self.api.port}"

    @property
    def embedded(self) -> bool:
        return self.database.url is None

    def as_dict(self, reveal: bool = False) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name in ("storage", "database", "api", "tiles", "qa", "security", "certificates"):
            obj: BaseSettings = getattr(self, name)
            section: dict[str, Any] = {}
            for key, value in obj.model_dump().items():
                if isinstance(value, SecretStr) or key in _SECRET_KEYS:
                    raw = getattr(obj, key)
                    if raw is None:
                        value = None
                    elif reveal:
                        value = raw.get_secret_value()
                    else:
                        value = "********"
                section[key] = str(value) if isinstance(value, Path) else value
            out[name] = section
        return out


def known_env_keys() -> set[str]:
    keys = {"DATABASE_URL"}
    keys.add("CADASTRE_TILE_CACHE")
    for cls in (StorageSettings, DatabaseSettings, ApiSettings, SecuritySettings):
        for name in cls.model_fields:
            keys.add(PREFIX + name.upper())
    for name in QaSettings.model_fields:
        keys.add(PREFIX + "QA_" + name.upper())
    for name in CertificateSettings.model_fields:
        keys.add(PREFIX + "CERT_" + name.upper())
    return keys


def unknown_env_keys() -> list[str]:
    """CADASTRE_* variables that no settings class understands (likely typos)."""
    known = known_env_keys()
    return sorted(k for k in os.environ if k.startswith(PREFIX) and k not in known)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

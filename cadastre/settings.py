"""Settings, one class per concern, one env prefix (``CADASTRE_``).

``DATABASE_URL`` is accepted as a whole (as well as ``CADASTRE_DATABASE_URL``). Without it the
embedded PostgreSQL/PostGIS cluster under the data dir is used.
"""

from __future__ import annotations

import math
import os
from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cadastre.errors import CadastreError

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


POOL_AUTO_MAX = 10   # connections of one process's request pool sized from the machine


class DatabaseSettings(_Base):
    url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "CADASTRE_DATABASE_URL"),
        description="external PostgreSQL; empty = embedded cluster",
    )
    # the request pools' way to the database through a transaction pooler (pgbouncer); set by
    # `cadastre serve --pgbouncer` for its workers. LISTEN and background jobs stay direct.
    pooler_url: SecretStr | None = None
    # each server process's request pool; unset: sized from the machine (``pool_sizes``)
    pool_min: int | None = Field(default=None, ge=0)
    pool_max: int | None = Field(default=None, ge=1)
    statement_timeout_ms: int = Field(default=30_000, ge=0)
    # how long a request waits for a pooled connection, and a new connection for the server,
    # before it answers 503 DATABASE_UNREACHABLE (a stopped database must not hang requests)
    pool_timeout_s: float = Field(default=5.0, gt=0, le=120)
    connect_timeout_s: int = Field(default=3, ge=1, le=60)
    # read replicas (issue 18): public reads and public tiles go to a replica whose replay lag
    # is within read_max_lag_s, else to the primary. External replicas: CADASTRE_READ_URLS
    # (a JSON list); the embedded cluster's (`cadastre db replica add`) are found by themselves.
    read_urls: list[SecretStr] = Field(default_factory=list)
    read_max_lag_s: float = Field(default=5.0, gt=0, le=3600)
    read_check_interval_s: float = Field(default=0.5, gt=0, le=60)
    # embedded cluster tuning
    embedded_shared_buffers: str = "256MB"
    embedded_port: int | None = Field(default=None, description="fixed port; default: a free one")
    min_server_version: int = 140000
    min_postgis_version: str = "3.1"

    @model_validator(mode="after")
    def _pool_sizes(self) -> DatabaseSettings:
        if self.pool_min is not None and self.pool_max is not None \
                and self.pool_min > self.pool_max:
            raise ValueError(f"CADASTRE_POOL_MIN ({self.pool_min}) must not exceed "
                             f"CADASTRE_POOL_MAX ({self.pool_max})")
        return self

    def pool_sizes(self, workers: int, cores: int | None = None) -> tuple[int, int]:
        """(min, max) connections of one server process's request pool, of ``workers``.

        Unset, the pool has a fixed size: two connections per core over all the processes,
        at least two each (HikariCP's rule: reads that keep the cores busy are served fastest
        by about that many connections; more only lengthen every queue in the kernel's run
        queue). On this 2-core machine with 2 workers and 8 clients what-is-here's p99 was
        111 ms with a 1..10 pool and 17 ms with 2..2. Fixed, because a pool that grows under
        load makes requests wait for new backends, whose first query (loading the partitioned
        tables' catalog) takes ~100 ms. At most ``POOL_AUTO_MAX`` a process: a many-core
        machine's processes together stay within the embedded cluster's max_connections."""
        auto = max(2, math.ceil(2 * (cores or os.cpu_count() or 1) / max(workers, 1)))
        auto = min(auto, POOL_AUTO_MAX)
        high = self.pool_max if self.pool_max is not None else max(auto, self.pool_min or 0)
        low = self.pool_min if self.pool_min is not None else (
            high if self.pool_max is None else min(1, high))
        return low, high


class ApiSettings(_Base):
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    job_workers: int = Field(default=2, ge=0, le=16, description="background job threads per "
                             "server process (0: jobs only in `cadastre worker`)")
    job_lease_seconds: int = Field(default=60, ge=2, le=3600, description="a job whose worker "
                                   "stopped renewing its lease this long is retried or failed")
    deliveries: bool = Field(default=True, description="deliver events to subscribers from "
                             "the server process (else from `cadastre worker`)")
    answer_memo_mb: int = Field(default=64, ge=0, le=4096, description="per server process: "
                                "public answers (what-is-here, 楼盘表) kept encoded, by the rows "
                                "they were made from (api.answers; 0: none kept)")
    log_level: str = "WARNING"
    cors_origins: list[str] = Field(default_factory=lambda: ["*"])
    # Anti-enumeration (CADASTRE_RATE_LIMIT_*): token buckets per client address and per
    # credential. Requests per minute by kind of path. Where the buckets live: ``memory`` (per
    # worker process), ``database`` (auth.rate_bucket, one limit for every worker and host),
    # ``auto`` (the database when more than one worker serves)
    rate_limit_enabled: bool = True
    rate_limit_store: Literal["auto", "memory", "database"] = "auto"
    rate_limit_per_minute: int = Field(default=600, ge=1, description="general API")
    rate_limit_tiles_per_minute: int = Field(default=3000, ge=1,
                                             description="tiles, glyphs, styles, viewer files")
    rate_limit_search_per_minute: int = Field(default=120, ge=1,
                                              description="search and what-is-here")
    rate_limit_auth_per_minute: int = Field(default=20, ge=1,
                                            description="login and verification")
    # client addresses (or networks, 10.0.0.0/8) of reverse proxies whose X-Forwarded-For is
    # believed; nobody else's is, not even 127.0.0.1's
    trusted_proxies: list[str] = Field(default_factory=list)
    # request bodies: JSON and forms on every route; the survey upload route has the upload
    # limit of cadastre.survey.submission
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=64 * 1024 * 1024)
    # a document another department files under a unit code (PDF, PNG or JPEG, 一码关联)
    document_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024, le=200 * 1024 * 1024)
    # login lockout (CADASTRE_LOGIN_*): failures per username, and per client address
    login_max_failures: int = Field(default=5, ge=1)
    login_max_client_failures: int = Field(default=20, ge=1)
    login_lockout_minutes: int = Field(default=15, ge=1)

    @property
    def shared_rate_limits(self) -> bool:
        """Whether the rate-limit buckets are kept in the database (see ``rate_limit_store``)."""
        return self.rate_limit_store == "database" or (
            self.rate_limit_store == "auto" and self.workers > 1)


class TileSettings(_Base):
    # CADASTRE_TILE_CACHE=false renders every tile from PostGIS (benchmarks: "cold")
    cache: bool = Field(default=True, validation_alias=AliasChoices("CADASTRE_TILE_CACHE",
                                                                    "cache"))
    # CADASTRE_THREED_HEIGHT_DATUM: what the register's floor elevations are, for the 3D unit
    # volumes: ellipsoidal | egm96 | the path of a geoid grid (see tiles/threed/georef.py)
    threed_height_datum: str = Field(default="ellipsoidal", pattern=r"^(ellipsoidal|egm96|/.+)$")


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
    report_ack_hours: float = Field(default=72, gt=0, description="上报 messages unanswered "
                                    "longer than this are findings (REG_NOT_ACKNOWLEDGED)")
    disabled_rules: list[str] = Field(default_factory=list)
    schedule_hours: float = Field(default=0, ge=0, description="run district QA every N hours "
                                  "in the server (0 = off)")
    sample_fraction: float = Field(default=0.05, gt=0, le=1, description="share of recent "
                                   "registrations drawn for manual review (qa sample)")
    workers: int = Field(default_factory=lambda: max(1, min(4, os.cpu_count() or 1)), ge=1,
                         le=16, description="database connections a QA run over a large scope "
                         "(20,000+ parcels) uses at once (default: one a core, at most 4; the "
                         "rules are CPU-bound: 3 on 2 cores took 289 s where 2 took 261)")

    def tolerances(self) -> dict[str, float]:
        return self.model_dump(exclude={"disabled_rules", "schedule_hours", "sample_fraction",
                                        "workers"})


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

    @model_validator(mode="after")
    def _owner_token(self) -> SecuritySettings:
        if self.owner_token_ttl_minutes > self.token_ttl_minutes:
            raise ValueError(
                f"CADASTRE_OWNER_TOKEN_TTL_MINUTES ({self.owner_token_ttl_minutes}) must not "
                f"exceed CADASTRE_TOKEN_TTL_MINUTES ({self.token_ttl_minutes})")
        return self


class CasesSettings(_Base):
    """Registration cases (CADASTRE_CASES_*): the office clock and the traffic lights."""

    model_config = SettingsConfigDict(env_prefix=PREFIX + "CASES_", env_file=".env",
                                      extra="ignore", populate_by_name=True)
    timezone: str = Field(default="Asia/Shanghai", description="the office's local time")
    office_closing: time = Field(default=time(17, 0), description="an application accepted at "
                                 "or after this time counts from the next working day")
    yellow_share: float = Field(default=0.2, ge=0, le=1, description="yellow when the working "
                                "days left are at most this share of the promised limit")
    same_day_yellow: time = Field(default=time(15, 0), description="same-day (即时办理) cases "
                                  "turn yellow at this hour")
    calendar_first_year: int = Field(default=2004, ge=2000, le=2100)
    calendar_years_ahead: int = Field(default=4, ge=1, le=30, description="calendar days kept "
                                      "materialised beyond the current year")
    # fallbacks where reg.office has no row for a county
    office_name: str = "不动产登记中心"
    province_abbr: str = "浙"
    city_name: str = "杭州市"
    progress_max_failures: int = Field(default=10, ge=1, description="wrong progress queries "
                                       "per client within the window before a lockout")
    progress_window_minutes: int = Field(default=15, ge=1)

    def clock_params(self) -> dict[str, Any]:
        """The values the SQL clock (cadastre.cases.clock) is computed with."""
        return {"tz": self.timezone, "closing": self.office_closing,
                "share": self.yellow_share, "same_day": self.same_day_yellow}


class CertificateSettings(_Base):
    """Electronic certificates and proofs (CADASTRE_CERT_*): the office's signing key and
    certificate, the address printed in the QR code, batch workers. (The office's name and the
    numbering names are the registration cases': ``reg.office``, else ``CasesSettings``.)

    Without ``signing_key``/``signing_cert`` a local CA and an office certificate it issues are
    created on first use under ``<data dir>/signing`` (like ``secrets.json``); their signatures
    are genuine but trusted only where that CA is. To sign with a certificate from a recognised
    CA, give the PEM files of the key (``signing_key``, with ``signing_key_passphrase`` when it is
    encrypted), the certificate (``signing_cert``), its intermediates (``signing_chain``) and the
    root to verify against (``trust_roots``)."""

    model_config = SettingsConfigDict(env_prefix=PREFIX + "CERT_", env_file=".env",
                                      extra="ignore", populate_by_name=True)
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


class SettingsInvalid(CadastreError):
    """A setting out of range, of the wrong type, or contradicting another: refused at start."""

    code = "SETTINGS_INVALID"


def _load(cls: type[BaseSettings], overrides: dict[str, Any]) -> Any:
    try:
        return cls(**overrides)
    except ValidationError as exc:
        prefix = cls.model_config.get("env_prefix", PREFIX)
        problems = "; ".join(
            (f"{prefix}{str(e['loc'][0]).upper()}: " if e["loc"] else "") + e["msg"]
            for e in exc.errors())
        raise SettingsInvalid(message=f"设置无效 / invalid settings: {problems}") from None


class Settings:
    """All concerns together; each is a pydantic-settings object reading the same env prefix.
    Invalid values and contradicting pairs raise :class:`SettingsInvalid` here, at start-up."""

    def __init__(self, **overrides: Any) -> None:
        self.storage: StorageSettings = _load(StorageSettings, overrides.get("storage", {}))
        self.database: DatabaseSettings = _load(DatabaseSettings, overrides.get("database", {}))
        self.api: ApiSettings = _load(ApiSettings, overrides.get("api", {}))
        self.security: SecuritySettings = _load(SecuritySettings, overrides.get("security", {}))
        self.tiles: TileSettings = _load(TileSettings, overrides.get("tiles", {}))
        self.qa: QaSettings = _load(QaSettings, overrides.get("qa", {}))
        self.cases: CasesSettings = _load(CasesSettings, overrides.get("cases", {}))
        self.certificates: CertificateSettings = _load(CertificateSettings,
                                                       overrides.get("certificates", {}))

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
        for name in ("storage", "database", "api", "tiles", "qa", "cases", "certificates",
                     "security"):
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


#: read by the scripts and the test suite, not by the server
_TOOLING_KEYS = {"CADASTRE_PG_MAJOR", "CADASTRE_TEST_DATA_DIR", "CADASTRE_FUZZ_EXAMPLES"}


def known_env_keys() -> set[str]:
    """Every environment variable some settings class reads (field names and aliases)."""
    keys = {"DATABASE_URL", *_TOOLING_KEYS}
    for cls in (StorageSettings, DatabaseSettings, ApiSettings, SecuritySettings, TileSettings,
                QaSettings, CasesSettings, CertificateSettings):
        prefix = cls.model_config.get("env_prefix", PREFIX)
        for name, info in cls.model_fields.items():
            alias = info.validation_alias
            if isinstance(alias, AliasChoices):
                keys.update(str(a).upper() for a in alias.choices if str(a).isupper())
            else:
                keys.add(prefix + name.upper())
    return keys


def unknown_env_keys() -> list[str]:
    """CADASTRE_* variables that no settings class understands (likely typos)."""
    known = known_env_keys()
    return sorted(k for k in os.environ if k.startswith(PREFIX) and k not in known)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

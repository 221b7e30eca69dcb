"""One root exception for the domain; every error carries a stable code and a user message.

The HTTP layer maps these classes to status codes in one table (``api/errors.py``).
Messages are bilingual (Chinese first, then English) and must never contain a party's PII.
"""

from __future__ import annotations


class CadastreError(Exception):
    """Root of every error the domain raises on purpose."""

    code: str = "CADASTRE_ERROR"

    def __init__(self, code: str | None = None, message: str = "", **details: object) -> None:
        if code:
            self.code = code
        self.message = message or self.code
        self.details = details
        super().__init__(f"{self.code}: {self.message}")


class ConfigError(CadastreError):
    code = "CONFIG_ERROR"


class ClusterError(CadastreError):
    """The embedded PostgreSQL cluster could not be created, started or stopped."""

    code = "CLUSTER_ERROR"


class DatabaseVersionError(CadastreError):
    code = "DATABASE_VERSION"


class DatabaseUnavailable(CadastreError):
    code = "DATABASE_UNREACHABLE"


class MigrationError(CadastreError):
    code = "MIGRATION_ERROR"


class NotFound(CadastreError):
    code = "NOT_FOUND"


class InvalidInput(CadastreError):
    code = "INVALID_INPUT"


class Conflict(CadastreError):
    """The request contradicts the current state of what it acts on (nothing was changed)."""

    code = "CONFLICT"

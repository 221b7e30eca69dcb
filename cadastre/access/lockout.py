"""Lockout after repeated failures: staff logins and owner verification, one implementation.

Failures are rows of ``auth.failure`` holding keyed hashes only: of the claimed identity (the
username as typed, or the owner's pseudonym) and of the client address. A subject with
``max_failures`` failures within the window, or a client with ``max_client_failures`` (password
spraying over many usernames), is locked until the window has passed. The lock applies to
identities that do not exist exactly as to those that do, so it reveals nothing about which
accounts exist. The limits come only from the settings (``Policy.login``, ``Policy.progress``,
``Policy.owner_verify``).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import psycopg

from cadastre.access.pii import token_key
from cadastre.settings import Settings


@dataclass(frozen=True)
class Policy:
    max_failures: int          # per claimed identity
    max_client_failures: int   # per client address
    window_minutes: int

    @classmethod
    def login(cls, settings: Settings) -> Policy:
        """Staff logins (``CADASTRE_LOGIN_*``)."""
        api = settings.api
        return cls(api.login_max_failures, api.login_max_client_failures,
                   api.login_lockout_minutes)

    @classmethod
    def progress(cls, settings: Settings) -> Policy:
        """Public case-progress queries (``CADASTRE_CASES_PROGRESS_*``); an address may fail
        five times as often as one case number (a family asking about several cases)."""
        cases = settings.cases
        return cls(cases.progress_max_failures, cases.progress_max_failures * 5,
                   cases.progress_window_minutes)

    @classmethod
    def owner_verify(cls, settings: Settings) -> Policy:
        """Owner verification (``CADASTRE_VERIFY_*``): one limit per identity and per client."""
        sec = settings.security
        return cls(sec.verify_max_failures, sec.verify_max_failures, sec.verify_window_minutes)


@dataclass(frozen=True)
class Attempt:
    """Who is trying, as the failure table knows them: keyed hashes only."""

    kind: str                # login | progress | owner_verify
    subject: bytes           # the claimed identity
    client: bytes | None     # the client address, when known


def hashing_key(settings: Settings) -> bytes:
    """HMAC key of the login failure hashes (derived from the token-signing key)."""
    return hmac.new(token_key(settings), b"cadastre lockout", hashlib.sha256).digest()


def subject_hash(key: bytes, kind: str, subject: str) -> bytes:
    return hmac.new(key, f"{kind}\x00subject\x00{subject.strip().lower()}".encode(),
                    hashlib.sha256).digest()


def client_hash(key: bytes, kind: str, client: str | None) -> bytes | None:
    if not client:
        return None
    return hmac.new(key, f"{kind}\x00client\x00{client}".encode(), hashlib.sha256).digest()


def attempt(key: bytes, kind: str, subject: str, client: str | None) -> Attempt:
    """An attempt of ``kind`` (login, progress) naming ``subject`` (a username as typed, a case
    number) from ``client``, hashed with ``key`` (``hashing_key``)."""
    return Attempt(kind, subject_hash(key, kind, subject), client_hash(key, kind, client))


# The n-th most recent failure of the subject (of the client) within the window, if there are n:
# the lock lasts until it leaves the window.
_LOCKED_FOR = """
WITH f AS (
    SELECT at, subject_hash = %(s)s AS by_subject,
           coalesce(client_hash = %(c)s, false) AS by_client
    FROM auth.failure
    WHERE kind = %(kind)s AND at > now() - make_interval(mins => %(w)s)
      AND (subject_hash = %(s)s OR client_hash = %(c)s)
), s AS (
    SELECT at FROM f WHERE by_subject ORDER BY at DESC OFFSET %(n)s - 1 LIMIT 1
), c AS (
    SELECT at FROM f WHERE by_client ORDER BY at DESC OFFSET %(nc)s - 1 LIMIT 1
)
SELECT ceil(extract(epoch FROM greatest((SELECT at FROM s), (SELECT at FROM c))
                    + make_interval(mins => %(w)s) - now()))::int
"""


def seconds_locked(conn: psycopg.Connection, attempt: Attempt, policy: Policy) -> int:
    """Seconds until ``attempt``'s subject and client are both free again (0: not locked)."""
    row = conn.execute(_LOCKED_FOR, {"s": attempt.subject, "c": attempt.client,
                                     "kind": attempt.kind, "w": policy.window_minutes,
                                     "n": policy.max_failures,
                                     "nc": policy.max_client_failures}).fetchone()
    return max(int(row[0]), 0) if row is not None and row[0] is not None else 0


def locked(conn: psycopg.Connection, attempt: Attempt, policy: Policy) -> bool:
    return seconds_locked(conn, attempt, policy) > 0


def record_failure(conn: psycopg.Connection, attempt: Attempt) -> None:
    conn.execute("INSERT INTO auth.failure (kind, subject_hash, client_hash) VALUES (%s, %s, %s)",
                 (attempt.kind, attempt.subject, attempt.client))


def clear(conn: psycopg.Connection, attempt: Attempt) -> None:
    """A success forgets the subject's failures (not the client's)."""
    conn.execute("DELETE FROM auth.failure WHERE kind = %s AND subject_hash = %s",
                 (attempt.kind, attempt.subject))


"""Lockout after repeated failures (logins; the same table serves owner verification).

Failures are rows of ``auth.failure`` holding keyed hashes only: of the claimed identity (the
username as typed) and of the client address. A subject with ``max_failures`` failures within
the window, or a client with ``max_client_failures`` (password spraying over many usernames), is
locked until the window has passed. The lock applies to usernames that do not exist exactly as
to those that do, so it reveals nothing about which accounts exist.
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
    max_failures: int = 5
    max_client_failures: int = 20
    window_minutes: int = 15


def hashing_key(settings: Settings) -> bytes:
    """HMAC key of the failure hashes (derived from the token-signing key)."""
    return hmac.new(token_key(settings), b"cadastre lockout", hashlib.sha256).digest()


def subject_hash(key: bytes, kind: str, subject: str) -> bytes:
    return hmac.new(key, f"{kind}\x00subject\x00{subject.strip().lower()}".encode(),
                    hashlib.sha256).digest()


def client_hash(key: bytes, kind: str, client: str | None) -> bytes | None:
    if not client:
        return None
    return hmac.new(key, f"{kind}\x00client\x00{client}".encode(), hashlib.sha256).digest()


def locked(conn: psycopg.Connection, key: bytes, kind: str, subject: str, client: str | None,
           policy: Policy) -> bool:
    """Whether ``subject`` (or ``client``) has failed too often within the window."""
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE subject_hash = %(s)s), "
        "       count(*) FILTER (WHERE client_hash = %(c)s) "
        "FROM auth.failure WHERE kind = %(k)s AND at > now() - make_interval(mins => %(w)s) "
        "AND (subject_hash = %(s)s OR client_hash = %(c)s)",
        {"s": subject_hash(key, kind, subject), "c": client_hash(key, kind, client),
         "k": kind, "w": policy.window_minutes}).fetchone()
    by_subject, by_client = row if row else (0, 0)
    return by_subject >= policy.max_failures or by_client >= policy.max_client_failures


def record_failure(conn: psycopg.Connection, key: bytes, kind: str, subject: str,
                   client: str | None) -> None:
    conn.execute("INSERT INTO auth.failure (kind, subject_hash, client_hash) VALUES (%s, %s, %s)",
                 (kind, subject_hash(key, kind, subject), client_hash(key, kind, client)))


def clear(conn: psycopg.Connection, key: bytes, kind: str, subject: str) -> None:
    """A success forgets the subject's failures (not the client's)."""
    conn.execute("DELETE FROM auth.failure WHERE kind = %s AND subject_hash = %s",
                 (kind, subject_hash(key, kind, subject)))


def purge(conn: psycopg.Connection, older_than_minutes: int = 24 * 60) -> int:
    """Drop failures older than any lock window (housekeeping)."""
    cur = conn.execute("DELETE FROM auth.failure WHERE at < now() - make_interval(mins => %s)",
                       (older_than_minutes,))
    return cur.rowcount

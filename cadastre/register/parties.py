"""Parties (权利人, 义务人, 申请人 … ZTT_GY_QLR): identities live in ``pii.party`` only, encrypted
(name, ID number, phone, address) with keyed hashes for look-ups; every other table links to a
party by its id. Cases and filed documents store their parties through ``insert_party``.
"""

from __future__ import annotations

import uuid

import psycopg

from cadastre.access.pii import PiiCipher


def insert_party(conn: psycopg.Connection, cipher: PiiCipher, *, name: str, id_number: str,
                 id_type: int = 1, party_type: int = 1, phone: str | None = None,
                 address: str | None = None) -> uuid.UUID:
    """A new encrypted party row; its id."""
    pid = uuid.uuid4()
    conn.execute(
        "INSERT INTO pii.party (party_id, party_type, id_type, name_enc, name_hash, "
        "id_number_enc, id_number_hash, phone_enc, phone_hash, address_enc) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (pid, party_type, id_type, cipher.encrypt(name.strip()), cipher.lookup_hash(name),
         cipher.encrypt(id_number.strip()), cipher.lookup_hash(id_number),
         cipher.encrypt(phone), cipher.lookup_hash(phone), cipher.encrypt(address)))
    return pid

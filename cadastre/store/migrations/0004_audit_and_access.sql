-- 0004 audit trail, API keys, owner-verification failures
-- Forward-only: never edit this file once applied; add a new numbered file instead.

-- Hash-chained audit log: every non-public read and every change. row_hash =
-- HMAC(audit key, prev_hash || canonical row); the key lives outside the database, so a writer
-- with SQL access can alter a row but cannot re-seal the chain. No plaintext PII: actors are
-- account ids, key ids or keyed hashes; targets are codes and opaque ids.
CREATE SCHEMA IF NOT EXISTS audit;
CREATE TABLE audit.log (
    seq           bigint PRIMARY KEY,
    at            timestamptz NOT NULL,
    actor         text NOT NULL,        -- account uuid, 'key:<uuid>', 'owner:<hash>', 'public:<hash>'
    role          text NOT NULL,
    action        text NOT NULL,        -- e.g. unit.read, owner.verify, survey.accept
    target        text,                 -- unit/parcel code, submission id, ... (never PII)
    purpose       text,                 -- interested party / department: purpose code
    case_ref      text,                 -- their case reference (案号)
    result_count  integer NOT NULL DEFAULT 0,
    outcome       text NOT NULL DEFAULT 'ok',
    client        text,                 -- keyed hash of the client address
    prev_hash     bytea NOT NULL,
    row_hash      bytea NOT NULL
);
CREATE INDEX audit_log_at ON audit.log (at);
CREATE INDEX audit_log_actor ON audit.log (actor, at);
CREATE INDEX audit_log_target ON audit.log (target);

-- API keys of department systems: scoped to counties and to the entities/fields they may read.
CREATE TABLE auth.api_key (
    key_id        uuid PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    key_hash      bytea NOT NULL UNIQUE,     -- HMAC of the secret part; the secret is shown once
    role          text NOT NULL DEFAULT 'department' CHECK (role IN ('department')),
    counties      char(6)[] NOT NULL DEFAULT '{}',
    fields        text[] NOT NULL DEFAULT '{}',   -- 'entity.field' allowed on top of the policy
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz
);

-- Failed owner verifications / logins, for lockout (keyed hashes only: identity and client).
CREATE TABLE auth.failure (
    id            bigserial PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('owner_verify', 'login')),
    subject_hash  bytea NOT NULL,            -- HMAC of the claimed identity / username
    client_hash   bytea,                     -- HMAC of the client address
    at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX failure_subject ON auth.failure (kind, subject_hash, at);
CREATE INDEX failure_client ON auth.failure (kind, client_hash, at);

-- 0018 shared rate limits (issue 18): the anti-enumeration token buckets of every server worker
-- process in one place, so N workers enforce one limit, not N. Unlogged: a bucket is worth
-- nothing after a crash (every bucket then starts full, as after a restart of one process).
-- Keys are keyed hashes of the client address or credential and the request class.
-- Forward-only: never edit this file once applied; add a new numbered file instead.

CREATE UNLOGGED TABLE auth.rate_bucket (
    key      bytea PRIMARY KEY,
    tokens   double precision NOT NULL,
    granted  boolean NOT NULL,
    stamp    timestamptz NOT NULL
);
CREATE INDEX rate_bucket_stamp ON auth.rate_bucket (stamp);

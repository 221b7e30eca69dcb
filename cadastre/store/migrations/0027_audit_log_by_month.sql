-- 0027 the audit log partitioned by month (issue #18), so a registry can archive old months
-- without breaking the chain's verification. Forward-only: never edit this file once applied.
--
-- * audit.log is PARTITION BY RANGE (at), one partition per calendar month in Beijing time
--   (audit.log_YYYYMM), made ahead by audit.ensure_months(ahead) (the migration makes two years
--   ahead; `cadastre serve`/`migrate` and `cadastre audit archive` call it again), and a DEFAULT
--   partition audit.log_default for a row whose month has no partition yet (nothing is refused;
--   audit.month_add moves such rows into the month's partition when it is made).
-- * Keys include the partition key, as PostgreSQL requires: PRIMARY KEY (seq, at). A seq is still
--   unique: rows get consecutive seqs under the chain's advisory lock, each the head's + 1, and
--   `cadastre audit verify` reports a repeated or missing seq as a broken chain.
-- * audit.head holds the chain's head (seq, row_hash), kept by a trigger on every insert: the
--   appender reads it instead of the newest row over every partition. Deleting the newest rows no
--   longer goes unseen either: the next row continues from the head and verify reports the gap.
-- * audit.archive records each month taken out of the live log (`cadastre audit archive`): its
--   first and last seq, row count, the hash before its first row and of its last row, sealed with
--   the audit key. verify starts after the newest archived month, from its sealed last hash;
--   archived months must form an unbroken prefix of the chain starting at seq 1.

ALTER TABLE audit.log RENAME TO log_unpartitioned;
ALTER INDEX audit.log_pkey RENAME TO log_unpartitioned_pkey;
ALTER INDEX audit.audit_log_at RENAME TO audit_log_unpartitioned_at;
ALTER INDEX audit.audit_log_actor RENAME TO audit_log_unpartitioned_actor;
ALTER INDEX audit.audit_log_target RENAME TO audit_log_unpartitioned_target;

CREATE TABLE audit.log (
    seq           bigint NOT NULL,
    at            timestamptz NOT NULL,
    actor         text NOT NULL,
    role          text NOT NULL,
    action        text NOT NULL,
    target        text,
    purpose       text,
    case_ref      text,
    result_count  integer NOT NULL DEFAULT 0,
    outcome       text NOT NULL DEFAULT 'ok',
    client        text,
    prev_hash     bytea NOT NULL,
    row_hash      bytea NOT NULL,
    PRIMARY KEY (seq, at)
) PARTITION BY RANGE (at);
CREATE INDEX audit_log_at ON audit.log (at);
CREATE INDEX audit_log_actor ON audit.log (actor, at);
CREATE INDEX audit_log_target ON audit.log (target);
CREATE TABLE audit.log_default PARTITION OF audit.log DEFAULT;

-- the first instant of the Beijing-time month holding ``t``
CREATE FUNCTION audit.month_start(t timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
    SELECT date_trunc('month', t AT TIME ZONE 'Asia/Shanghai') AT TIME ZONE 'Asia/Shanghai'
$$;

-- The partition of the month starting at ``m`` (made if missing, rows of that month waiting in
-- the default partition moved into it); returns the rows moved.
CREATE FUNCTION audit.month_add(m timestamptz) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    start timestamptz := audit.month_start(m);
    stop timestamptz := audit.month_start(audit.month_start(m) + interval '32 days');
    part text := 'log_' || to_char(start AT TIME ZONE 'Asia/Shanghai', 'YYYYMM');
    moved bigint := 0;
BEGIN
    IF to_regclass('audit.' || part) IS NOT NULL THEN
        RETURN 0;
    END IF;
    EXECUTE format('CREATE TABLE audit.%I (LIKE audit.log INCLUDING DEFAULTS)', part);
    WITH gone AS (DELETE FROM audit.log_default WHERE at >= start AND at < stop RETURNING *)
    INSERT INTO audit.log_unattached_rows SELECT * FROM gone;
    EXECUTE format('INSERT INTO audit.%I SELECT * FROM audit.log_unattached_rows', part);
    GET DIAGNOSTICS moved = ROW_COUNT;
    DELETE FROM audit.log_unattached_rows;
    EXECUTE format('ALTER TABLE audit.log ATTACH PARTITION audit.%I FOR VALUES FROM (%L) TO (%L)',
                   part, start, stop);
    RETURN moved;
END $$;

-- rows in transit between the default partition and a new month's partition (always empty
-- outside audit.month_add)
CREATE TABLE audit.log_unattached_rows (LIKE audit.log);

-- partitions from the month of the oldest live row (or of ``since``, or this month) to ``ahead``
-- months ahead; returns the partitions made
CREATE FUNCTION audit.ensure_months(ahead int, since timestamptz DEFAULT NULL) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    m timestamptz;
    made int := 0;
    oldest timestamptz;
BEGIN
    SELECT min(at) INTO oldest FROM audit.log;
    m := audit.month_start(least(coalesce(oldest, now()), coalesce(since, now()), now()));
    WHILE m <= audit.month_start(now()) + make_interval(months => ahead) LOOP
        IF to_regclass('audit.log_' || to_char(m AT TIME ZONE 'Asia/Shanghai', 'YYYYMM')) IS NULL
           AND NOT EXISTS (SELECT 1 FROM audit.archive a WHERE a.month = m) THEN
            PERFORM audit.month_add(m);
            made := made + 1;
        END IF;
        m := audit.month_start(m + interval '32 days');
    END LOOP;
    RETURN made;
END $$;

CREATE TABLE audit.archive (
    month            timestamptz PRIMARY KEY,   -- first instant of the month (Beijing time)
    first_seq        bigint NOT NULL,
    last_seq         bigint NOT NULL,
    rows             bigint NOT NULL,
    first_prev_hash  bytea NOT NULL,            -- the hash the month's first row links to
    last_hash        bytea NOT NULL,            -- the month's last row_hash
    archived_at      timestamptz NOT NULL DEFAULT now(),
    archived_by      text NOT NULL,
    detached_as      text NOT NULL,             -- the plain table it became (dump, then drop)
    seal             bytea NOT NULL,            -- HMAC(audit key, the fields above but the last 3)
    CHECK (last_seq >= first_seq AND rows = last_seq - first_seq + 1)
);

SELECT audit.ensure_months(24, (SELECT min(at) FROM audit.log_unpartitioned));
INSERT INTO audit.log SELECT * FROM audit.log_unpartitioned;
DROP TABLE audit.log_unpartitioned;

CREATE TABLE audit.head (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    seq        bigint NOT NULL,
    row_hash   bytea NOT NULL
);
INSERT INTO audit.head (seq, row_hash)
SELECT seq, row_hash FROM audit.log ORDER BY seq DESC LIMIT 1;

CREATE FUNCTION audit.track_head() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit.head AS h (singleton, seq, row_hash) VALUES (true, NEW.seq, NEW.row_hash)
    ON CONFLICT (singleton) DO UPDATE SET seq = EXCLUDED.seq, row_hash = EXCLUDED.row_hash
        WHERE h.seq < EXCLUDED.seq;
    RETURN NULL;
END $$;
CREATE TRIGGER audit_log_head AFTER INSERT ON audit.log
    FOR EACH ROW EXECUTE FUNCTION audit.track_head();

CREATE FUNCTION audit.forget_head() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM audit.head;   -- a truncated log starts a new chain (tests, a fresh install)
    RETURN NULL;
END $$;
CREATE TRIGGER audit_log_truncate AFTER TRUNCATE ON audit.log
    FOR EACH STATEMENT EXECUTE FUNCTION audit.forget_head();

ANALYZE audit.log;

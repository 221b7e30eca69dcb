-- 0014 durable background jobs (a queue in PostgreSQL: SELECT … FOR UPDATE SKIP LOCKED with
-- leases), the transactional outbox of register events, and department subscriptions with
-- their webhook deliveries.
-- Forward-only: never edit this file once applied; add a new numbered file instead.

-- ------------------------------------------------------------------ jobs
ALTER TABLE cad.job
    ADD COLUMN payload       jsonb NOT NULL DEFAULT '{}',   -- what the handler needs (no PII)
    ADD COLUMN attempts      integer NOT NULL DEFAULT 0,
    ADD COLUMN max_attempts  integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    ADD COLUMN run_after     timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN leased_by     text,                          -- worker that runs it
    ADD COLUMN lease_until   timestamptz,                   -- renewed by its heartbeat
    ADD COLUMN finished_at   timestamptz;
CREATE INDEX job_queued ON cad.job (run_after, created_at) WHERE status = 'queued';
CREATE INDEX job_running ON cad.job (lease_until) WHERE status = 'running';

-- jobs of the former in-process pool cannot be resumed (their arguments lived in memory)
UPDATE cad.job SET status = 'failed', error_code = 'JOB_INTERRUPTED',
       error = '服务重启，任务中断 / the server restarted while the job was pending',
       updated_at = now()
WHERE status IN ('queued', 'running');

-- ------------------------------------------------------------------ events (outbox)
CREATE SCHEMA IF NOT EXISTS share;

-- Written in the transaction of the change that causes it; ids follow commit order (writers
-- hold the audit chain's lock from the event insert to commit). ``refs`` names the immutable
-- versions the payload is rendered from, per subscriber, at delivery: never personal data.
CREATE TABLE share.event (
    event_id     bigserial PRIMARY KEY,
    type         text NOT NULL,
    occurred_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    county_code  char(6),
    unit_codes   char(28)[] NOT NULL DEFAULT '{}',
    case_no      text,
    refs         jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX event_occurred ON share.event (occurred_at);

-- the organisation a department key acts for (keyed hash of its 统一社会信用代码): a bank's
-- key receives the events of its own mortgages only
ALTER TABLE auth.api_key ADD COLUMN holder_hash bytea;

CREATE TABLE share.subscription (
    subscription_id  uuid PRIMARY KEY,
    name             text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9_.-]{2,64}$'),
    url              text NOT NULL CHECK (url ~ '^https?://'),
    event_types      text[] NOT NULL DEFAULT '{}',      -- empty = every type
    counties         char(6)[] NOT NULL DEFAULT '{}',   -- empty = the key's counties
    api_key_id       uuid NOT NULL REFERENCES auth.api_key(key_id),
    secret_enc       bytea NOT NULL,                    -- HMAC secret, encrypted (PII key)
    status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused')),
    last_event_id    bigint NOT NULL DEFAULT 0,         -- events up to here are fanned out
    max_attempts     integer NOT NULL DEFAULT 8 CHECK (max_attempts >= 1),
    created_by       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- One row per (subscription, event): pending → delivered, or dead after max_attempts.
CREATE TABLE share.delivery (
    id               bigserial PRIMARY KEY,
    subscription_id  uuid NOT NULL REFERENCES share.subscription(subscription_id)
                     ON DELETE CASCADE,
    event_id         bigint NOT NULL REFERENCES share.event(event_id),
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_status      integer,                           -- HTTP status of the last attempt
    last_error       text,
    latency_ms       integer,                           -- of the last attempt
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (subscription_id, event_id)
);
CREATE INDEX delivery_pending ON share.delivery (subscription_id, event_id)
    WHERE status = 'pending';
CREATE INDEX delivery_event ON share.delivery (event_id);

-- ------------------------------------------------------------------ worklist order
-- The worklist reads running cases in deadline order (then those past 登簿): an index in that
-- order, overall, per assignee and per county, so a page stops after its rows.
CREATE INDEX case_running_order ON reg.case (due_at, case_no)
    WHERE registered_at IS NULL AND closed_at IS NULL;
CREATE INDEX case_running_assignee ON reg.case (assignee, due_at, case_no)
    WHERE registered_at IS NULL AND closed_at IS NULL;
CREATE INDEX case_running_county ON reg.case (county_code, due_at, case_no)
    WHERE registered_at IS NULL AND closed_at IS NULL;
CREATE INDEX case_entered_order ON reg.case (due_at, case_no)
    WHERE registered_at IS NOT NULL AND closed_at IS NULL;
DROP INDEX reg.case_running_due;
DROP INDEX reg.case_open_assignee;

-- ------------------------------------------------------------------ the clock, set-based
-- Deadlines are computed for many cases in one statement (cadastre.cases.clock): joins on the
-- calendar instead of a function call per case. ``nodata`` counts the days without holiday
-- data (source 'weekday') up to this one, so "a year without data lies on the way" is a
-- difference too.
ALTER TABLE reg.calendar_day ADD COLUMN nodata integer NOT NULL DEFAULT 0;
DROP FUNCTION reg.deadlines(timestamptz, integer, integer, integer, text, time, numeric, time);

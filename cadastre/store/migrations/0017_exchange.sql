-- 0017 registry exchange (汇交): imports of exchange XML staged for a registrar's decision, and
-- the reporting queue of the messages each 登簿 produces.
-- Forward-only: never edit this file once applied; add a new numbered file instead.

CREATE SCHEMA IF NOT EXISTS xchg;

-- An import: the stored upload, its validation report and the registrar's decision. Nothing
-- here is the register: rows reach cad.* only in the accept transaction (change kind 'import').
CREATE TABLE xchg.import_batch (
    batch_id        uuid PRIMARY KEY,
    filename        text NOT NULL,
    content_sha256  char(64) NOT NULL,
    size_bytes      bigint NOT NULL CHECK (size_bytes > 0),
    stored_path     text NOT NULL,
    srid            integer NOT NULL,
    status          text NOT NULL CHECK (status IN ('received', 'validating', 'validated',
                        'invalid', 'failed', 'accepted', 'rejected')),
    job_id          uuid REFERENCES cad.job(job_id),
    submitted_by    text NOT NULL,
    submitted_at    timestamptz NOT NULL DEFAULT now(),
    report          jsonb,
    error_count     integer,
    warning_count   integer,
    decided_by      text,
    decided_at      timestamptz,
    decision_reason text,
    change_id       bigint REFERENCES cad.change_set(id)
);
CREATE INDEX import_batch_hash ON xchg.import_batch (content_sha256);

-- Staged rows, one per table row of the messages. Parties' identities are encrypted before they
-- are staged (same cipher and keyed hashes as pii.party): attrs never holds a name or ID number.
CREATE TABLE xchg.import_row (
    batch_id        uuid NOT NULL REFERENCES xchg.import_batch(batch_id) ON DELETE CASCADE,
    n               bigint NOT NULL,             -- order in the upload
    msg             integer NOT NULL,            -- message number in the upload
    tbl             text NOT NULL,               -- exchange table name
    entity          text NOT NULL,               -- parcel | parcel_point | building | floor |
                                                 -- unit | party | right | application
    code            text,                        -- ZDDM / ZRZH / BDCDYH of the row
    right_id        uuid,                        -- rights: stable identity
    attrs           jsonb NOT NULL,              -- register column -> value (typed text)
    name_enc        bytea,
    name_hash       bytea,
    id_number_enc   bytea,
    id_number_hash  bytea,
    phone_enc       bytea,
    phone_hash      bytea,
    address_enc     bytea,
    PRIMARY KEY (batch_id, n)
);
CREATE INDEX import_row_entity ON xchg.import_row (batch_id, entity, code);

-- The reporting queue (上报): one message per 登簿, written in the 登簿's transaction. The body
-- holds parties' names and ID numbers, so it is stored encrypted (PII cipher).
CREATE TABLE xchg.outbound (
    biz_msg_id      char(18) PRIMARY KEY,        -- area code + YYMMDD + 6-digit sequence
    county_code     char(6) NOT NULL,
    rec_type        char(7) NOT NULL,
    business_no     text NOT NULL,               -- RecFlowID (YWH)
    change_id       bigint REFERENCES cad.change_set(id),
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'sent', 'acknowledged', 'rejected')),
    body_enc        bytea NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    sent_at         timestamptz,
    answered_at     timestamptz,
    response_code   text,
    response_info   text,
    attempts        integer NOT NULL DEFAULT 0
);
CREATE INDEX outbound_state ON xchg.outbound (state, created_at);
CREATE INDEX outbound_business ON xchg.outbound (business_no);

-- BizMsgID sequence per county and day
CREATE TABLE xchg.message_seq (
    county_code  char(6) NOT NULL,
    day          date NOT NULL,
    last_no      integer NOT NULL,
    PRIMARY KEY (county_code, day)
);

-- ------------------------------------------------------------------ quality supervision
-- Monthly manual sampling of cases (5 % by default) per county, each sampled case assigned to a
-- checker who records pass/fail with the categories of the problems found.
CREATE TABLE reg.quality_sample (
    sample_id    uuid PRIMARY KEY,
    county_code  char(6) NOT NULL,
    month        date NOT NULL CHECK (extract(day FROM month) = 1),
    fraction     double precision NOT NULL CHECK (fraction > 0 AND fraction <= 1),
    population   integer NOT NULL,
    seed         bigint NOT NULL,
    drawn_by     text NOT NULL,
    drawn_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (county_code, month)
);

CREATE TABLE reg.quality_check (
    sample_id    uuid NOT NULL REFERENCES reg.quality_sample(sample_id),
    case_no      text NOT NULL REFERENCES reg.case(case_no),
    checker      text,
    assigned_at  timestamptz,
    outcome      text CHECK (outcome IN ('pass', 'fail')),
    categories   text[] NOT NULL DEFAULT '{}',   -- QA categories of the problems found
    note         text,
    checked_at   timestamptz,
    PRIMARY KEY (sample_id, case_no),
    CHECK ((outcome = 'fail') = (cardinality(categories) > 0)),
    CHECK ((outcome IS NULL) = (checked_at IS NULL))
);

-- 0003 survey submissions (staged, reviewed, applied), background jobs, QA runs and findings.

-- Long jobs (validation, QA runs, builds) report progress here; the API and CLI read it.
CREATE TABLE cad.job (
    job_id      uuid PRIMARY KEY,
    kind        text NOT NULL,
    status      text NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    progress    real NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 1),
    step        text,
    error_code  text,
    error       text,
    created_by  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cad.survey_submission (
    submission_id  uuid PRIMARY KEY,
    filename       text NOT NULL,
    content_sha256 char(64) NOT NULL,
    size_bytes     bigint NOT NULL CHECK (size_bytes > 0),
    stored_path    text NOT NULL,                      -- immutable copy, named by its hash
    format         text,
    srid           integer,
    status         text NOT NULL CHECK (status IN ('received', 'validating', 'validated',
                       'invalid', 'failed', 'accepted', 'rejected')),
    job_id         uuid REFERENCES cad.job(job_id),
    submitted_by   text NOT NULL,
    submitted_at   timestamptz NOT NULL DEFAULT now(),
    report         jsonb,
    error_count    integer,
    warning_count  integer,
    decided_by     text,
    decided_at     timestamptz,
    decision_reason text,
    change_id      bigint REFERENCES cad.change_set(id)
);
-- the same file cannot be pending twice (a rejected one may be submitted again after fixing)
CREATE UNIQUE INDEX survey_submission_active_hash ON cad.survey_submission (content_sha256)
    WHERE status NOT IN ('rejected', 'failed', 'invalid');

CREATE TABLE cad.survey_feature (
    submission_id  uuid NOT NULL REFERENCES cad.survey_submission(submission_id)
                   ON DELETE CASCADE,
    idx            integer NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('parcel', 'building', 'floor', 'unit',
                                                 'boundary_point')),
    ref            text NOT NULL,
    props          jsonb NOT NULL DEFAULT '{}',
    srid           integer NOT NULL,
    geom           geometry NOT NULL CHECK (ST_SRID(geom) = srid),
    geom_3857      geometry GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED,
    PRIMARY KEY (submission_id, idx)
);
CREATE INDEX survey_feature_geom_3857 ON cad.survey_feature USING gist (geom_3857);

-- QA: one run = one scope checked with a given set of rule versions.
CREATE TABLE cad.qa_run (
    run_id       uuid PRIMARY KEY,
    scope        jsonb NOT NULL,          -- {"kind": "district"|"bbox"|"parcel"|"submission", ...}
    rules        jsonb NOT NULL,          -- rule id -> version, with the tolerances used
    job_id       uuid REFERENCES cad.job(job_id),
    started_by   text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    sample_of    uuid                     -- for 5 % review samples: the run they were drawn for
);

CREATE TABLE cad.qa_finding (
    finding_id   uuid PRIMARY KEY,
    run_id       uuid NOT NULL REFERENCES cad.qa_run(run_id) ON DELETE CASCADE,
    rule_id      text NOT NULL,
    category     text NOT NULL,
    severity     text NOT NULL CHECK (severity IN ('error', 'warning', 'info')),
    subject      text[] NOT NULL,         -- parcel/unit codes or survey refs concerned
    measure      double precision,        -- m², m, ratio ... as the rule defines
    message      text NOT NULL,
    geom_3857    geometry(Geometry, 3857),
    status       text NOT NULL DEFAULT 'open'
                 CHECK (status IN ('open', 'resolved', 'accepted')),
    status_reason text,
    status_by    text,
    status_at    timestamptz
);
CREATE INDEX qa_finding_run ON cad.qa_finding (run_id, rule_id);
CREATE INDEX qa_finding_geom ON cad.qa_finding USING gist (geom_3857);

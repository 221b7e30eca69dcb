-- 0008 registration cases (办件): business catalogue, working-day calendar, cases, their stages,
-- reviews, pauses and materials, number sequences. TD/T 1066 workflow tables: DJT_DJ_SLSQ (受理),
-- DJF_DJ_SH (审核), DJF_DJ_SZ (缮证), DJF_DJ_FZ (发证), DJF_DJ_GD (归档).
-- Forward-only: never edit this file once applied; add a new numbered file instead.

CREATE SCHEMA IF NOT EXISTS reg;

-- ------------------------------------------------------------------ business catalogue
-- One row per business type (time_limits of the provincial work rules); data, editable.
CREATE TABLE reg.business_type (
    seq                smallint PRIMARY KEY,
    name_zh            text NOT NULL UNIQUE,
    name_en            text NOT NULL,
    registration_type  text NOT NULL CHECK (registration_type IN ('first', 'change', 'transfer',
                           'cancellation', 'pre_notice', 'correction', 'objection', 'seizure',
                           'certificate_replacement', 'information_query',
                           'housing_transaction')),
    djlx               smallint NOT NULL,       -- 登记类型 100 首次 … 900 其他
    right_kinds        text[] NOT NULL,         -- cad.right_record.kind values it writes or acts on
    statutory_days     smallint NOT NULL CHECK (statutory_days >= 0),   -- 法定时限 (working days)
    promised_days      smallint NOT NULL CHECK (promised_days >= 0),    -- 承诺时限; 0 = 即时办理
    review_steps       smallint NOT NULL DEFAULT 1 CHECK (review_steps >= 0),
    writes_register    boolean NOT NULL DEFAULT true,   -- false: 办结 without a register change
    issues             text NOT NULL DEFAULT 'none' CHECK (issues IN ('certificate', 'proof', 'none')),
    note               text,
    CHECK (promised_days <= statutory_days)
);

INSERT INTO reg.business_type (seq, name_zh, name_en, registration_type, djlx, right_kinds,
                               statutory_days, promised_days, review_steps, writes_register,
                               issues, note) VALUES
 (1, '国有建设用地使用权首次登记', 'first registration of state construction-land use right', 'first', 100, '{land_use}', 30, 10, 1, true, 'certificate', NULL),
 (2, '国有建设用地使用权变更登记', 'change of state construction-land use right', 'change', 300, '{land_use}', 30, 5, 1, true, 'certificate', NULL),
 (3, '国有建设用地使用权转移登记', 'transfer of state construction-land use right', 'transfer', 200, '{land_use}', 30, 5, 1, true, 'certificate', NULL),
 (4, '国有建设用地使用权注销登记', 'cancellation of state construction-land use right', 'cancellation', 400, '{land_use}', 30, 3, 1, true, 'none', NULL),
 (5, '国有建设用地使用权及房屋所有权首次登记', 'first registration of land use right and house ownership', 'first', 100, '{ownership}', 30, 10, 1, true, 'certificate', NULL),
 (6, '国有建设用地使用权及房屋所有权变更登记', 'change of land use right and house ownership', 'change', 300, '{ownership}', 30, 5, 1, true, 'certificate', NULL),
 (7, '国有建设用地使用权及房屋所有权转移登记', 'transfer of land use right and house ownership', 'transfer', 200, '{ownership}', 30, 5, 1, true, 'certificate', NULL),
 (8, '国有建设用地使用权及房屋所有权注销登记', 'cancellation of land use right and house ownership', 'cancellation', 400, '{ownership}', 30, 3, 1, true, 'none', NULL),
 (9, '抵押权首次登记', 'first registration of a mortgage', 'first', 100, '{mortgage}', 30, 5, 1, true, 'proof', NULL),
 (10, '抵押权变更登记', 'change of a mortgage', 'change', 300, '{mortgage}', 30, 3, 1, true, 'proof', NULL),
 (11, '抵押权转移登记', 'transfer of a mortgage', 'transfer', 200, '{mortgage}', 30, 3, 1, true, 'proof', NULL),
 (12, '抵押权注销登记', 'cancellation of a mortgage', 'cancellation', 400, '{mortgage}', 30, 1, 1, true, 'none', NULL),
 (13, '预购商品房预告登记', 'pre-notice of a pre-sold commodity house purchase', 'pre_notice', 700, '{pre_notice}', 30, 5, 1, true, 'proof', NULL),
 (14, '预购商品房抵押权预告登记', 'pre-notice of a mortgage on a pre-sold commodity house', 'pre_notice', 700, '{pre_notice}', 30, 5, 1, true, 'proof', NULL),
 (15, '预购商品房预告登记与预购商品房抵押权预告登记（合并办理）', 'purchase pre-notice and mortgage pre-notice of a pre-sold house (combined)', 'pre_notice', 700, '{pre_notice}', 60, 7, 1, true, 'proof', 'statutory written as 30+30 in the source table'),
 (16, '地役权首次登记', 'first registration of an easement', 'first', 100, '{easement}', 30, 5, 1, true, 'proof', NULL),
 (17, '地役权变更登记', 'change of an easement', 'change', 300, '{easement}', 30, 5, 1, true, 'proof', NULL),
 (18, '地役权转移登记', 'transfer of an easement', 'transfer', 200, '{easement}', 30, 5, 1, true, 'proof', NULL),
 (19, '地役权注销登记', 'cancellation of an easement', 'cancellation', 400, '{easement}', 30, 1, 1, true, 'none', NULL),
 (20, '更正登记', 'correction', 'correction', 500, '{ownership,land_use,mortgage,pre_notice,easement}', 30, 10, 1, true, 'certificate', NULL),
 (21, '异议登记', 'objection', 'objection', 600, '{objection}', 30, 0, 0, true, 'proof', '0 = 即时办理 (done on the spot)'),
 (22, '查封登记', 'seizure (and its release)', 'seizure', 800, '{seizure}', 30, 0, 0, true, 'none', '0 = 即时办理'),
 (23, '补（换）证登记', 'certificate replacement', 'certificate_replacement', 900, '{ownership,land_use,mortgage,pre_notice,easement,objection}', 30, 5, 1, true, 'certificate', NULL),
 (24, '不动产登记资料查询', 'register information query', 'information_query', 900, '{}', 30, 0, 0, false, 'none', '0 = 即时办理'),
 (25, '房屋交易管理', 'housing transaction management', 'housing_transaction', 900, '{}', 1, 0, 0, false, 'none', '0 = 即时办理');

-- A county's own promised limit for a business type (data, audited when changed).
CREATE TABLE reg.county_limit (
    county_code    char(6) NOT NULL,
    business_type  smallint NOT NULL REFERENCES reg.business_type(seq),
    promised_days  smallint NOT NULL CHECK (promised_days >= 0),
    set_by         text NOT NULL,
    set_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (county_code, business_type)
);

-- Application materials per business type (一次性告知: the complete list).
CREATE TABLE reg.material (
    business_type  smallint NOT NULL REFERENCES reg.business_type(seq),
    code           text NOT NULL CHECK (code ~ '^[a-z0-9_]{2,40}$'),
    name_zh        text NOT NULL,
    name_en        text NOT NULL,
    required       boolean NOT NULL DEFAULT true,
    ord            smallint NOT NULL DEFAULT 0,
    PRIMARY KEY (business_type, code)
);

INSERT INTO reg.material (business_type, code, name_zh, name_en, required, ord)
SELECT b.seq, m.code, m.name_zh, m.name_en, true, 0
FROM reg.business_type b
CROSS JOIN (VALUES ('application_form', '不动产登记申请书', 'application form'),
                   ('applicant_identity', '申请人身份证明', 'applicant identity documents'))
           AS m(code, name_zh, name_en);

INSERT INTO reg.material (business_type, code, name_zh, name_en, required, ord)
SELECT t.seq, t.code, t.name_zh, t.name_en, t.required, t.ord FROM (VALUES
 (1, 'land_source', '土地权属来源材料（出让合同或划拨决定书）', 'land source documents (grant contract or allocation decision)', true, 1),
 (1, 'land_premium_paid', '土地出让价款缴纳凭证', 'proof of land premium payment', true, 2),
 (1, 'cadastral_survey', '不动产权籍调查成果', 'cadastral survey results', true, 3),
 (1, 'tax_paid', '相关税费缴纳凭证', 'tax payment receipts', true, 4),
 (2, 'certificate', '不动产权属证书', 'real estate certificate', true, 1),
 (2, 'change_evidence', '发生变更的材料', 'evidence of the change', true, 2),
 (3, 'certificate', '不动产权属证书', 'real estate certificate', true, 1),
 (3, 'transfer_contract', '转让合同', 'transfer contract', true, 2),
 (3, 'tax_paid', '完税凭证', 'tax payment receipts', true, 3),
 (4, 'certificate', '不动产权属证书', 'real estate certificate', true, 1),
 (4, 'extinction_evidence', '权利消灭的材料', 'evidence that the right ended', true, 2),
 (5, 'land_certificate', '土地使用权不动产权属证书', 'land use right certificate', true, 1),
 (5, 'planning_compliance', '建设工程符合规划的材料', 'planning compliance documents', true, 2),
 (5, 'completion_acceptance', '房屋已竣工的材料（竣工验收备案）', 'completion acceptance filing', true, 3),
 (5, 'cadastral_survey', '不动产权籍调查成果（房屋测绘报告）', 'cadastral survey (building survey report)', true, 4),
 (5, 'tax_paid', '相关税费缴纳凭证', 'tax payment receipts', true, 5),
 (6, 'certificate', '不动产权属证书', 'real estate certificate', true, 1),
 (6, 'change_evidence', '发生变更的材料', 'evidence of the change', true, 2),
 (7, 'certificate', '不动产权属证书', 'real estate certificate', true, 1),
 (7, 'sales_contract', '买卖合同（网签备案合同）', 'sales contract (filed online)', true, 2),
 (7, 'tax_paid', '完税凭证', 'tax payment receipts', true, 3),
 (7, 'marital_status', '婚姻状况证明', 'marital status', false, 4),
 (8, 'certificate', '不动产权属证书', 'real estate certificate', true, 1),
 (8, 'extinction_evidence', '不动产灭失或放弃权利的材料', 'evidence of loss of the property or waiver', true, 2),
 (9, 'certificate', '不动产权属证书', 'real estate certificate', true, 1),
 (9, 'loan_contract', '主债权合同', 'principal loan contract', true, 2),
 (9, 'mortgage_contract', '抵押合同', 'mortgage contract', true, 3),
 (10, 'proof', '不动产登记证明', 'registration proof', true, 1),
 (10, 'change_agreement', '抵押权变更协议', 'mortgage change agreement', true, 2),
 (11, 'proof', '不动产登记证明', 'registration proof', true, 1),
 (11, 'assignment', '债权转让的材料', 'assignment of the claim', true, 2),
 (12, 'proof', '不动产登记证明', 'registration proof', true, 1),
 (12, 'discharge', '抵押权消灭的材料（还款证明或解押通知）', 'discharge of the mortgage', true, 2),
 (13, 'presale_contract', '已备案的商品房预售合同', 'filed pre-sale contract', true, 1),
 (13, 'pre_notice_agreement', '当事人关于预告登记的约定', 'agreement on the pre-notice', true, 2),
 (14, 'presale_contract', '已备案的商品房预售合同', 'filed pre-sale contract', true, 1),
 (14, 'loan_contract', '主债权合同', 'principal loan contract', true, 2),
 (14, 'mortgage_contract', '抵押合同', 'mortgage contract', true, 3),
 (15, 'presale_contract', '已备案的商品房预售合同', 'filed pre-sale contract', true, 1),
 (15, 'loan_contract', '主债权合同', 'principal loan contract', true, 2),
 (15, 'mortgage_contract', '抵押合同', 'mortgage contract', true, 3),
 (16, 'certificates_both', '需役地和供役地的不动产权属证书', 'certificates of dominant and servient land', true, 1),
 (16, 'easement_contract', '地役权合同', 'easement contract', true, 2),
 (17, 'proof', '不动产登记证明', 'registration proof', true, 1),
 (17, 'change_evidence', '发生变更的材料', 'evidence of the change', true, 2),
 (18, 'proof', '不动产登记证明', 'registration proof', true, 1),
 (18, 'transfer_evidence', '地役权转移的材料', 'evidence of the transfer', true, 2),
 (19, 'proof', '不动产登记证明', 'registration proof', true, 1),
 (19, 'extinction_evidence', '地役权消灭的材料', 'evidence that the easement ended', true, 2),
 (20, 'error_evidence', '证实登记确有错误的材料', 'evidence that the register is wrong', true, 1),
 (21, 'interest_evidence', '证实对登记的不动产权利有利害关系的材料', 'evidence of an interest in the right', true, 1),
 (21, 'error_evidence', '证实登记簿记载错误的材料', 'evidence that the register is wrong', true, 2),
 (22, 'court_identity', '执行人员工作证和执行公务证', 'identity of the enforcement officers', true, 1),
 (22, 'assistance_notice', '协助执行通知书', 'notice of assistance in enforcement', true, 2),
 (22, 'ruling', '生效法律文书（裁定书）', 'effective ruling', true, 3),
 (23, 'certificate_or_notice', '原不动产权属证书或遗失声明', 'the old certificate, or the notice of loss', true, 1),
 (24, 'query_form', '查询申请书', 'query application form', true, 1),
 (24, 'interest_evidence', '利害关系证明材料', 'evidence of interest', false, 2),
 (25, 'sales_contract', '房屋买卖合同', 'house sales contract', true, 1)
) AS t(seq, code, name_zh, name_en, required, ord);

-- Registration offices per county: names and numbering (fallbacks come from settings).
CREATE TABLE reg.office (
    county_code     char(6) PRIMARY KEY,
    name            text NOT NULL,                  -- 登记机构
    province_abbr   text NOT NULL,                  -- 浙
    city_name       text NOT NULL                   -- 杭州市
);

-- ------------------------------------------------------------------ working-day calendar
-- Local decisions on top of the maintained package: a day off or a make-up working day.
CREATE TABLE reg.calendar_override (
    day         date PRIMARY KEY,
    workday     boolean NOT NULL,
    note        text,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Years whose official notice was imported into the override table (the package lacks them).
CREATE TABLE reg.calendar_year (
    year         integer PRIMARY KEY CHECK (year BETWEEN 2000 AND 2100),
    note         text,
    imported_by  text NOT NULL,
    imported_at  timestamptz NOT NULL DEFAULT now()
);

-- Every day, materialised from the package + overrides (cadastre.cases.calendar.rebuild):
-- idx = number of working days from the first day up to and including this one, so the
-- working days between two dates are a difference and "N working days later" one look-up.
CREATE TABLE reg.calendar_day (
    day      date PRIMARY KEY,
    workday  boolean NOT NULL,
    idx      integer NOT NULL,
    source   text NOT NULL CHECK (source IN ('package', 'local', 'weekday'))
);
CREATE UNIQUE INDEX calendar_day_workday_idx ON reg.calendar_day (idx) WHERE workday;

-- ------------------------------------------------------------------ numbers
-- Sequences per county/kind/year (case numbers, certificate and proof numbers); a row lock
-- serialises numbering per county and year only.
CREATE TABLE reg.number_seq (
    county_code  char(6) NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('case', 'certificate', 'proof')),
    year         integer NOT NULL,
    last         integer NOT NULL DEFAULT 0,
    PRIMARY KEY (county_code, kind, year)
);

-- ------------------------------------------------------------------ cases
CREATE TABLE reg.case (
    case_id            uuid PRIMARY KEY,
    case_no            text NOT NULL UNIQUE,           -- 受理编号 / 业务号 YWH
    county_code        char(6) NOT NULL,               -- the unit's county (属地)
    business_type      smallint NOT NULL REFERENCES reg.business_type(seq),
    channel            text NOT NULL CHECK (channel IN ('window', 'online')),
    stage              text NOT NULL CHECK (stage IN ('applied', 'accepted', 'reviewing',
                           'registered', 'certificate_prepared', 'issued', 'concluded',
                           'archived', 'refused', 'rejected', 'withdrawn')),
    unit_codes         char(28)[] NOT NULL CHECK (cardinality(unit_codes) >= 1),
    target_right_id    uuid,                           -- the right a change/transfer/… acts on
    request            jsonb NOT NULL DEFAULT '{}',    -- what to register; identities are parties
    query_code_hash    bytea NOT NULL,                 -- HMAC of the applicant's query code
    applied_at         timestamptz NOT NULL,           -- online submission / arrival at the window
    accepted_at        timestamptz,                    -- 受理 (SLSJ)
    clock_from         timestamptz,                    -- when the limit started to run
    promised_days      smallint,                       -- limits in force for this case
    statutory_days     smallint,
    start_day          date,                           -- first working day the clock counts from
    paused_days        integer NOT NULL DEFAULT 0,     -- working days excluded by ended pauses
    paused_since       timestamptz,                    -- an open pause: the clock stands still
    yellow_at          timestamptz,
    due_at             timestamptz,                    -- promised deadline
    statutory_due_at   timestamptz,
    calendar_incomplete boolean NOT NULL DEFAULT false, -- a year with no holiday data on the way
    registered_at      timestamptz,                    -- 登簿 / 办结: the clock stops
    working_days_used  integer,
    change_id          bigint REFERENCES cad.change_set(id),
    certificate_no     text,                           -- reserved at 登簿
    assignee           uuid,                           -- staff account working on it
    created_by         text NOT NULL,
    closed_at          timestamptz,                    -- archived / refused / rejected / withdrawn
    reason             text,                           -- refusal or rejection reason
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK ((closed_at IS NULL) = (stage NOT IN ('archived', 'refused', 'rejected', 'withdrawn')))
);
-- clock running: the worklist and the lights
CREATE INDEX case_running_due ON reg.case (county_code, due_at)
    WHERE registered_at IS NULL AND closed_at IS NULL;
CREATE INDEX case_running_type ON reg.case (county_code, business_type, yellow_at, due_at, statutory_due_at, paused_since)
    WHERE registered_at IS NULL AND closed_at IS NULL AND clock_from IS NOT NULL;
CREATE INDEX case_open_assignee ON reg.case (assignee, due_at) WHERE closed_at IS NULL;
CREATE INDEX case_open_stage ON reg.case (county_code, stage, due_at) WHERE closed_at IS NULL;
CREATE INDEX case_registered ON reg.case (registered_at, county_code, business_type)
    WHERE registered_at IS NOT NULL;
CREATE INDEX case_units ON reg.case USING gin (unit_codes);

-- 申请人/权利人/义务人 of a case; identities stay in pii.party (encrypted).
CREATE TABLE reg.case_party (
    case_id       uuid NOT NULL REFERENCES reg.case(case_id),
    party_id      uuid NOT NULL REFERENCES pii.party(party_id),
    role          text NOT NULL CHECK (role IN ('applicant', 'holder', 'mortgagee', 'obligor',
                                                 'agent')),
    seq           smallint NOT NULL DEFAULT 1,
    share         text,
    co_ownership  smallint,
    PRIMARY KEY (case_id, party_id, role)
);

-- Every stage change: who, when, from, to, note (also in the audit chain).
CREATE TABLE reg.case_transition (
    id          bigserial PRIMARY KEY,
    case_id     uuid NOT NULL REFERENCES reg.case(case_id),
    from_stage  text,
    to_stage    text NOT NULL,
    action      text NOT NULL,
    actor       text NOT NULL,
    at          timestamptz NOT NULL,
    note        text
);
CREATE INDEX case_transition_case ON reg.case_transition (case_id, at);

-- DJF_DJ_SH: one row per review step (初审, 复审, 核定 …)
CREATE TABLE reg.case_review (
    id          bigserial PRIMARY KEY,
    case_id     uuid NOT NULL REFERENCES reg.case(case_id),
    step        text NOT NULL,
    reviewer    text NOT NULL,
    opinion     text NOT NULL,
    passed      boolean NOT NULL,
    at          timestamptz NOT NULL
);
CREATE INDEX case_review_case ON reg.case_review (case_id);

-- Pauses of the clock (registration.md §1): reason, who, start and end.
CREATE TABLE reg.case_pause (
    id          bigserial PRIMARY KEY,
    case_id     uuid NOT NULL REFERENCES reg.case(case_id),
    reason      text NOT NULL CHECK (reason IN ('supplement', 'announcement', 'site_visit',
                    'investigation', 'policy_check', 'tax_payment')),
    note        text,
    started_at  timestamptz NOT NULL,
    started_by  text NOT NULL,
    ended_at    timestamptz,
    ended_by    text,
    days        integer,                     -- working days excluded (set at the end)
    CHECK (ended_at IS NULL OR ended_at >= started_at)
);
CREATE UNIQUE INDEX case_pause_open ON reg.case_pause (case_id) WHERE ended_at IS NULL;

-- Materials received, and those asked for in a 补正 (一次性告知).
CREATE TABLE reg.case_material (
    case_id     uuid NOT NULL REFERENCES reg.case(case_id),
    code        text NOT NULL,
    name_zh     text NOT NULL,
    name_en     text NOT NULL,
    status      text NOT NULL CHECK (status IN ('received', 'missing', 'supplied')),
    pause_id    bigint REFERENCES reg.case_pause(id),
    at          timestamptz NOT NULL,
    PRIMARY KEY (case_id, code)
);

-- Settings the stored deadlines were computed with (recomputed when they change).
CREATE TABLE reg.clock_state (
    id          boolean PRIMARY KEY DEFAULT true CHECK (id),
    settings    text NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now()
);

-- progress look-ups fail like owner verification: count failures per client
ALTER TABLE auth.failure DROP CONSTRAINT failure_kind_check;
ALTER TABLE auth.failure ADD CONSTRAINT failure_kind_check
    CHECK (kind IN ('owner_verify', 'login', 'progress'));

-- ------------------------------------------------------------------ the clock, in SQL
-- Working-day index of a date (working days up to and including it).
CREATE FUNCTION reg.wd_idx(d date) RETURNS integer
LANGUAGE sql STABLE STRICT AS $$
    SELECT idx FROM reg.calendar_day WHERE day = d
$$;

-- The working day k working days after working day d (k >= 0).
CREATE FUNCTION reg.wd_add(d date, k integer) RETURNS date
LANGUAGE sql STABLE STRICT AS $$
    SELECT day FROM reg.calendar_day WHERE workday AND idx = reg.wd_idx(d) + k
$$;

-- Deadlines of a case whose clock started at ``clock_from``: the first counted day (the
-- acceptance day if it is a working day before closing time, else the next working day), the
-- promised and statutory deadlines (closing time of the N-th working day after the first day,
-- plus the paused working days), the instant it turns yellow (remaining working days <= share x
-- promised days, whole days; same-day types at a fixed hour) and whether a year without holiday
-- data lies on the way.
CREATE FUNCTION reg.deadlines(clock_from timestamptz, promised integer, statutory integer,
                              paused integer, tz text, closing time, yellow_share numeric,
                              same_day_yellow time)
RETURNS TABLE (start_day date, yellow_at timestamptz, due_at timestamptz,
               statutory_due_at timestamptz, incomplete boolean)
LANGUAGE sql STABLE AS $$
    WITH local AS (
        SELECT (clock_from AT TIME ZONE tz)::date AS d, (clock_from AT TIME ZONE tz)::time AS t
    ), first AS (
        SELECT CASE WHEN c.workday AND l.t < closing THEN l.d
                    ELSE (SELECT day FROM reg.calendar_day
                          WHERE workday AND idx = c.idx + 1) END AS s
        FROM local l JOIN reg.calendar_day c ON c.day = l.d
    ), due AS (
        SELECT f.s, reg.wd_add(f.s, promised + paused) AS p,
               reg.wd_add(f.s, statutory + paused) AS st
        FROM first f
    )
    SELECT due.s,
           CASE WHEN promised = 0 THEN (due.p + same_day_yellow) AT TIME ZONE tz
                ELSE (reg.wd_add(due.s, promised + paused
                                 - floor(promised * yellow_share)::integer)::timestamp)
                     AT TIME ZONE tz END,
           (due.p + closing) AT TIME ZONE tz,
           (due.st + closing) AT TIME ZONE tz,
           EXISTS (SELECT 1 FROM reg.calendar_day k
                   WHERE k.day BETWEEN due.s AND due.st AND k.source = 'weekday')
    FROM due
$$;

-- The light at instant ``at`` (a paused case is judged at the moment its clock stopped).
CREATE FUNCTION reg.light(yellow_at timestamptz, due_at timestamptz, paused_since timestamptz,
                          at timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN due_at IS NULL THEN NULL
                WHEN coalesce(paused_since, at) > due_at THEN 'red'
                WHEN coalesce(paused_since, at) >= yellow_at THEN 'yellow'
                ELSE 'green' END
$$;

-- 0016 combined registrations (issue 15): business types made of ordered constituent
-- registrations (带押过户 modes A, B 三合一 and different lenders, C 双预告, 网签+预告,
-- 转移+抵押权首次, and the combined pre-notice of row 15 as a recipe); documents that other
-- departments file under a unit, building or project code (一码关联); the business types that
-- need such a document; parties assigned to one part of a case; what each part of a combined
-- case wrote; and the 交房即交证 handover batches with one row per unit.
-- Forward-only: never edit this file once applied; add a new numbered file instead.

-- ------------------------------------------------------------------ catalogue
ALTER TABLE reg.business_type DROP CONSTRAINT business_type_registration_type_check;
ALTER TABLE reg.business_type ADD CONSTRAINT business_type_registration_type_check
    CHECK (registration_type IN ('first', 'change', 'transfer', 'cancellation', 'pre_notice',
                                 'correction', 'objection', 'seizure', 'certificate_replacement',
                                 'information_query', 'housing_transaction', 'combined'));
-- a business that sells a unit (transfer of ownership or land use, purchase pre-notice): one
-- open sale per unit (防止一房两卖); a combined business sells when one of its parts does
ALTER TABLE reg.business_type ADD COLUMN sale boolean NOT NULL DEFAULT false;
UPDATE reg.business_type SET sale = true WHERE seq IN (3, 7, 13, 15);

INSERT INTO reg.business_type (seq, name_zh, name_en, registration_type, djlx, right_kinds,
                               statutory_days, promised_days, review_steps, writes_register,
                               issues, sale, note) VALUES
 (26, '带押过户（同一抵押权人）：转移登记＋抵押权变更登记', 'transfer with the mortgage kept, same lender (transfer + mortgage change)', 'combined', 200, '{ownership,mortgage}', 60, 3, 1, true, 'certificate', true, 'statutory: 30 per part'),
 (27, '带押过户（三合一 顺位抵押）：转移登记＋抵押权首次登记＋抵押权注销登记', 'transfer with the mortgage kept, three in one (transfer + buyer''s mortgage + release of the seller''s, last)', 'combined', 200, '{ownership,mortgage}', 90, 3, 1, true, 'certificate', true, 'statutory: 30 per part; the seller''s mortgage is released last'),
 (28, '带押过户（不同抵押权人）：转移登记＋抵押权转移登记＋抵押权变更登记', 'transfer with the mortgage kept, different lenders (transfer + mortgage transfer + mortgage change)', 'combined', 200, '{ownership,mortgage}', 90, 3, 1, true, 'certificate', true, 'statutory: 30 per part'),
 (29, '带押过户（双预告）：买卖预告登记＋抵押权预告登记', 'transfer with the mortgage kept, two pre-notices (purchase + mortgage pre-notice)', 'combined', 700, '{pre_notice}', 60, 5, 1, true, 'proof', true, 'statutory: 30 per part'),
 (30, '网签备案＋预告登记（一窗办理）', 'pre-notice from a filed sales contract (one stop)', 'combined', 700, '{pre_notice}', 30, 1, 1, true, 'proof', true, 'parties and price from the contract filing'),
 (31, '转移登记＋抵押权首次登记（购房贷款）', 'transfer and the buyer''s mortgage (purchase with a loan)', 'combined', 200, '{ownership,mortgage}', 60, 5, 1, true, 'certificate', true, 'statutory: 30 per part; used by the 交房即交证 batch');

-- One row per constituent registration of a combined business, in the order 登簿 applies
-- them. ``roles`` maps a case party's role to its role in this part, for parties that are not
-- assigned to a part (a buyer is the holder of the transfer and the obligor of the buyer's
-- mortgage); ``acts_on = 'initial'``: the part acts on the right of its kind that was current
-- before the case (the seller's mortgage, while the buyer's is already registered).
CREATE TABLE reg.business_part (
    business_type  smallint NOT NULL REFERENCES reg.business_type(seq),
    seq            smallint NOT NULL CHECK (seq BETWEEN 1 AND 9),
    part_key       text NOT NULL CHECK (part_key ~ '^[a-z_]{2,40}$'),
    part_type      smallint NOT NULL REFERENCES reg.business_type(seq),
    roles          jsonb NOT NULL DEFAULT '{}',
    acts_on        text CHECK (acts_on IN ('initial')),
    name_zh        text NOT NULL,
    name_en        text NOT NULL,
    PRIMARY KEY (business_type, seq),
    UNIQUE (business_type, part_key),
    CHECK (part_type <> business_type)
);

INSERT INTO reg.business_part (business_type, seq, part_key, part_type, roles, acts_on,
                               name_zh, name_en) VALUES
 (15, 1, 'purchase_notice', 13, '{"holder": "holder", "obligor": "obligor", "applicant": "applicant"}', NULL, '预购商品房预告登记', 'purchase pre-notice'),
 (15, 2, 'mortgage_notice', 14, '{"mortgagee": "mortgagee"}', NULL, '预购商品房抵押权预告登记', 'mortgage pre-notice'),
 (26, 1, 'transfer', 7, '{"holder": "holder", "obligor": "obligor", "applicant": "applicant", "agent": "agent"}', NULL, '转移登记（卖方→买方）', 'transfer (seller to buyer)'),
 (26, 2, 'mortgage_change', 10, '{"holder": "obligor"}', NULL, '抵押权变更登记（抵押人变更为买方）', 'mortgage change (the buyer becomes the mortgagor)'),
 (27, 1, 'transfer', 7, '{"holder": "holder", "obligor": "obligor", "applicant": "applicant", "agent": "agent"}', NULL, '转移登记（卖方→买方）', 'transfer (seller to buyer)'),
 (27, 2, 'buyer_mortgage', 9, '{"mortgagee": "mortgagee", "holder": "obligor"}', NULL, '抵押权首次登记（买方贷款银行，顺位抵押）', 'first registration of the buyer''s lender''s mortgage (next in rank)'),
 (27, 3, 'seller_release', 12, '{}', 'initial', '抵押权注销登记（卖方原抵押，最后办理）', 'release of the seller''s mortgage (last)'),
 (28, 1, 'transfer', 7, '{"holder": "holder", "obligor": "obligor", "applicant": "applicant", "agent": "agent"}', NULL, '转移登记（卖方→买方）', 'transfer (seller to buyer)'),
 (28, 2, 'mortgage_transfer', 11, '{"mortgagee": "mortgagee"}', NULL, '抵押权转移登记（转至买方贷款银行）', 'mortgage transfer (to the buyer''s lender)'),
 (28, 3, 'mortgage_change', 10, '{"holder": "obligor"}', NULL, '抵押权变更登记（抵押人变更为买方）', 'mortgage change (the buyer becomes the mortgagor)'),
 (29, 1, 'purchase_notice', 13, '{"holder": "holder", "obligor": "obligor", "applicant": "applicant"}', NULL, '买卖预告登记', 'purchase pre-notice'),
 (29, 2, 'mortgage_notice', 14, '{"mortgagee": "mortgagee"}', NULL, '抵押权预告登记', 'mortgage pre-notice'),
 (30, 1, 'purchase_notice', 13, '{"holder": "holder", "obligor": "obligor", "applicant": "applicant"}', NULL, '预告登记（据网签备案合同）', 'pre-notice (from the filed contract)'),
 (31, 1, 'transfer', 7, '{"holder": "holder", "obligor": "obligor", "applicant": "applicant", "agent": "agent"}', NULL, '转移登记', 'transfer'),
 (31, 2, 'buyer_mortgage', 9, '{"mortgagee": "mortgagee", "holder": "obligor"}', NULL, '抵押权首次登记（买方贷款银行）', 'first registration of the buyer''s lender''s mortgage');

INSERT INTO reg.material (business_type, code, name_zh, name_en, required, ord)
SELECT b.seq, m.code, m.name_zh, m.name_en, true, 0
FROM reg.business_type b
CROSS JOIN (VALUES ('application_form', '不动产登记申请书', 'application form'),
                   ('applicant_identity', '申请人身份证明', 'applicant identity documents'))
           AS m(code, name_zh, name_en)
WHERE b.seq BETWEEN 26 AND 31;

INSERT INTO reg.material (business_type, code, name_zh, name_en, required, ord)
SELECT t.seq, t.code, t.name_zh, t.name_en, t.required, t.ord FROM (VALUES
 (26, 'certificate', '不动产权属证书', 'real estate certificate', true, 1),
 (26, 'sales_contract', '买卖合同（网签备案合同）', 'sales contract (filed online)', true, 2),
 (26, 'change_agreement', '抵押权变更协议（同意带押转让）', 'mortgage change agreement (consent to the transfer)', true, 3),
 (26, 'tax_paid', '完税凭证', 'tax payment receipts', true, 4),
 (27, 'certificate', '不动产权属证书', 'real estate certificate', true, 1),
 (27, 'sales_contract', '买卖合同（网签备案合同）', 'sales contract (filed online)', true, 2),
 (27, 'loan_contract', '主债权合同（买方贷款）', 'principal loan contract (buyer)', true, 3),
 (27, 'mortgage_contract', '抵押合同（买方贷款银行）', 'mortgage contract (buyer''s lender)', true, 4),
 (27, 'discharge', '卖方原抵押权人同意注销的材料', 'the seller''s lender''s consent to release', true, 5),
 (27, 'tax_paid', '完税凭证', 'tax payment receipts', true, 6),
 (28, 'certificate', '不动产权属证书', 'real estate certificate', true, 1),
 (28, 'sales_contract', '买卖合同（网签备案合同）', 'sales contract (filed online)', true, 2),
 (28, 'assignment', '债权转让的材料', 'assignment of the claim', true, 3),
 (28, 'change_agreement', '抵押权变更协议', 'mortgage change agreement', true, 4),
 (28, 'tax_paid', '完税凭证', 'tax payment receipts', true, 5),
 (29, 'sales_contract', '买卖合同（网签备案合同）', 'sales contract (filed online)', true, 1),
 (29, 'loan_contract', '主债权合同', 'principal loan contract', true, 2),
 (29, 'mortgage_contract', '抵押合同', 'mortgage contract', true, 3),
 (30, 'sales_contract', '网签备案合同（共享获取）', 'filed sales contract (shared by the housing department)', false, 1),
 (31, 'certificate', '不动产权属证书', 'real estate certificate', true, 1),
 (31, 'sales_contract', '买卖合同（网签备案合同）', 'sales contract (filed online)', true, 2),
 (31, 'loan_contract', '主债权合同', 'principal loan contract', true, 3),
 (31, 'mortgage_contract', '抵押合同', 'mortgage contract', true, 4),
 (31, 'tax_paid', '完税凭证', 'tax payment receipts', true, 5)
) AS t(seq, code, name_zh, name_en, required, ord);

-- ------------------------------------------------------------------ 一码关联 documents
-- Documents other departments file under a code: a unit (28), a building (24) or a project's
-- parcel (19); a pre-sale permit also lists its units. The file is stored once by content hash
-- (read-only) under the data dir; prices, amounts and parties are personal data (parties
-- encrypted in pii.party like every identity).
CREATE TABLE reg.linked_document (
    document_id    uuid PRIMARY KEY,
    doc_type       text NOT NULL CHECK (doc_type IN ('project_approval', 'land_grant_contract',
                       'planning_permit', 'presale_permit', 'sales_contract',
                       'mortgage_contract', 'tax_paid', 'completion_acceptance',
                       'survey_report')),
    doc_no         text NOT NULL CHECK (length(doc_no) BETWEEN 1 AND 64),   -- 文号 / 备案号
    issuer         text NOT NULL CHECK (length(issuer) BETWEEN 1 AND 100),  -- 出具机关
    issued_on      date NOT NULL,
    valid_from     date,
    valid_until    date,
    code           text NOT NULL,                      -- the code it was filed under
    code_kind      text NOT NULL CHECK (code_kind IN ('unit', 'building', 'parcel')),
    county_code    char(6) NOT NULL,
    unit_codes     char(28)[] NOT NULL DEFAULT '{}',   -- a pre-sale permit's units
    price          numeric(14, 2),                     -- sales contract: 成交价 (万元)
    secured_amount numeric(14, 2),                     -- mortgage contract: 被担保主债权数额
    debt_start     date,
    debt_end       date,
    amount         numeric(14, 2),                     -- tax paid
    sha256         char(64) NOT NULL,
    size_bytes     bigint NOT NULL CHECK (size_bytes > 0),
    media_type     text NOT NULL CHECK (media_type IN ('application/pdf', 'image/png',
                                                       'image/jpeg')),
    status         text NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'revoked')),
    revoked_at     timestamptz,
    revoked_by     text,
    posted_by      text NOT NULL,                      -- audit actor (department:<key id>)
    api_key_id     uuid REFERENCES auth.api_key(key_id),
    posted_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (valid_until IS NULL OR valid_from IS NULL OR valid_until >= valid_from),
    CHECK ((status = 'revoked') = (revoked_at IS NOT NULL))
);
CREATE INDEX linked_document_code ON reg.linked_document (code, doc_type);
CREATE INDEX linked_document_units ON reg.linked_document USING gin (unit_codes);
-- one valid document per type and number in a county (a re-filing revokes the old one first)
CREATE UNIQUE INDEX linked_document_number ON reg.linked_document (county_code, doc_type, doc_no)
    WHERE status = 'valid';

CREATE TABLE reg.linked_document_party (
    document_id  uuid NOT NULL REFERENCES reg.linked_document(document_id),
    party_id     uuid NOT NULL REFERENCES pii.party(party_id),
    role         text NOT NULL CHECK (role IN ('buyer', 'seller', 'lender', 'borrower',
                                                'taxpayer')),
    seq          smallint NOT NULL DEFAULT 1,
    PRIMARY KEY (document_id, party_id, role)
);

-- A business that needs a valid document of a type for each of its units (scope unit) or for
-- their building or project (scope building: filed under the building or its parcel);
-- ``fills``: an application without parties takes them (and the price) from the document.
CREATE TABLE reg.business_document (
    business_type  smallint NOT NULL REFERENCES reg.business_type(seq),
    doc_type       text NOT NULL,
    scope          text NOT NULL CHECK (scope IN ('unit', 'building')),
    fills          boolean NOT NULL DEFAULT false,
    PRIMARY KEY (business_type, doc_type)
);
INSERT INTO reg.business_document (business_type, doc_type, scope, fills) VALUES
 (5, 'completion_acceptance', 'building', false),
 (30, 'sales_contract', 'unit', true);

-- ------------------------------------------------------------------ cases
-- a party may belong to one part of a combined case (the buyer's lender to the buyer's
-- mortgage, the seller's lender to the release); NULL = the case as a whole
ALTER TABLE reg.case_party DROP CONSTRAINT case_party_pkey;
ALTER TABLE reg.case_party ADD COLUMN part text CHECK (part ~ '^[a-z_]{2,40}$');
CREATE UNIQUE INDEX case_party_key ON reg.case_party (case_id, party_id, role,
                                                      coalesce(part, ''));
CREATE INDEX case_party_case ON reg.case_party (case_id);

-- What each part of a combined case wrote at 登簿 (same transaction as the register).
CREATE TABLE reg.case_part (
    case_id          uuid NOT NULL REFERENCES reg.case(case_id),
    seq              smallint NOT NULL,
    part_key         text NOT NULL,
    part_type        smallint NOT NULL REFERENCES reg.business_type(seq),
    version_ids      bigint[] NOT NULL DEFAULT '{}',
    closed_ids       bigint[] NOT NULL DEFAULT '{}',
    certificate_nos  text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (case_id, seq)
);

-- ------------------------------------------------------------------ 交房即交证 batches
CREATE TABLE reg.handover_batch (
    batch_id     uuid PRIMARY KEY,
    project      text NOT NULL,                       -- parcel code or project name (XMMC)
    parcel_codes char(19)[] NOT NULL,
    county_code  char(6) NOT NULL,
    job_id       uuid REFERENCES cad.job(job_id),
    status       text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done',
                                                                  'failed')),
    error_code   text,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);

-- One row per unit of the project: its outcome, the cases that handed it over, or the reason
-- it was not (a rule's code and message; never a person).
CREATE TABLE reg.handover_item (
    batch_id        uuid NOT NULL REFERENCES reg.handover_batch(batch_id),
    unit_code       char(28) NOT NULL,
    building_code   char(24) NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done',
                                                                      'failed')),
    first_case_no   text,                             -- the developer's first registration
    case_no         text,                             -- the buyer's transfer (and mortgage)
    certificate_no  text,
    error_code      text,
    error           text,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (batch_id, unit_code)
);
CREATE INDEX handover_item_building ON reg.handover_item (batch_id, building_code, status);

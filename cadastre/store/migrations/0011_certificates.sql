-- 0011 electronic certificates and proofs (电子不动产权证书 / 电子不动产登记证明) and owners'
-- query results (不动产登记信息查询结果): numbers, issued documents, supersession, revocation.
-- Forward-only: never edit this file once applied; add a new numbered file instead.

-- ------------------------------------------------------------------ numbers
-- Every certificate or proof number in use: those reserved here for new documents and those that
-- reached the register by any other path (the demo, imports, earlier systems), so that a new
-- number never repeats one. 浙(2026)杭州市不动产权第0000001号 = series 浙|杭州市|不动产权,
-- year 2026, sequence 1 (sequences run per series and year).
CREATE TABLE cad.certificate_number (
    number       text PRIMARY KEY,
    series       text NOT NULL,
    year         integer,
    seq          integer,                       -- NULL: a number of another format
    source       text NOT NULL CHECK (source IN ('reserved', 'register')),
    reserved_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX certificate_number_seq ON cad.certificate_number (series, year, seq)
    WHERE seq IS NOT NULL;

-- The parts of a number in the national format; series 'other' and NULL year/seq for anything
-- else. String functions, not a regular expression: PostgreSQL's regex engine takes about 0.4 ms
-- a number with the multibyte classes and bounded repeats this format needs.
CREATE FUNCTION cad.certificate_number_parts(number text,
                                             OUT series text, OUT year integer, OUT seq integer)
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    t text := translate(number, '（）', '()');
    province text := split_part(t, '(', 1);
    y text := split_part(split_part(t, '(', 2), ')', 1);
    rest text := substr(t, strpos(t, ')') + 1);
    body text := split_part(rest, '第', 1);
    digits text := split_part(rest, '第', 2);
    word text;
BEGIN
    series := 'other';
    IF strpos(t, '(') = 0 OR strpos(t, ')') = 0 OR length(province) NOT BETWEEN 1 AND 4
       OR y !~ '^[0-9]+$' OR length(y) <> 4 OR right(digits, 1) <> '号' THEN
        RETURN;
    END IF;
    digits := left(digits, -1);
    IF digits !~ '^[0-9]+$' OR length(digits) > 9 THEN
        RETURN;
    END IF;
    FOREACH word IN ARRAY ARRAY['不动产登记信息查询', '不动产登记证明', '不动产证明', '不动产权'] LOOP
        IF right(body, length(word)) = word AND length(body) - length(word) <= 24 THEN
            series := province || '|' || left(body, length(body) - length(word)) || '|' || word;
            year := y::integer;
            seq := digits::integer;
            RETURN;
        END IF;
    END LOOP;
END $$;

CREATE FUNCTION cad.certificate_numbers_in_register() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO cad.certificate_number (number, series, year, seq, source)
    SELECT n.certificate_no, p.series, p.year, p.seq, 'register'
    FROM (SELECT DISTINCT certificate_no FROM new_rows WHERE certificate_no IS NOT NULL) n,
         LATERAL cad.certificate_number_parts(n.certificate_no) p
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER right_record_certificate_numbers_ins AFTER INSERT ON cad.right_record
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION cad.certificate_numbers_in_register();
CREATE TRIGGER right_record_certificate_numbers_upd AFTER UPDATE ON cad.right_record
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION cad.certificate_numbers_in_register();

-- numbers already in the register
INSERT INTO cad.certificate_number (number, series, year, seq, source)
SELECT n.certificate_no, p.series, p.year, p.seq, 'register'
FROM (SELECT DISTINCT certificate_no FROM cad.right_record WHERE certificate_no IS NOT NULL) n,
     LATERAL cad.certificate_number_parts(n.certificate_no) p
ON CONFLICT DO NOTHING;

-- ------------------------------------------------------------------ issued documents
-- One row per electronic document: prepared at 缮证, current from 发证, superseded when a later
-- registration replaces the right (which business, when), revoked (作废) otherwise. The QR code
-- printed on it carries an opaque token of ``serial`` (taken from its sequence before rendering).
CREATE TABLE cad.certificate (
    certificate_id    uuid PRIMARY KEY,
    serial            bigserial UNIQUE,
    kind              text NOT NULL CHECK (kind IN ('certificate', 'proof', 'query_result')),
    number            text NOT NULL UNIQUE REFERENCES cad.certificate_number(number),
    right_version_id  bigint REFERENCES cad.right_record(version_id),
    right_id          uuid,
    unit_code         char(28) NOT NULL,
    business_no       text,                          -- 业务号 it was issued for
    status            text NOT NULL CHECK (status IN ('prepared', 'current', 'superseded',
                                                      'revoked')),
    prepared_at       timestamptz NOT NULL,
    prepared_by       text NOT NULL,
    issued_at         timestamptz,
    issued_by         text,
    superseded_by     text,                          -- 业务号 of the registration replacing it
    superseded_at     timestamptz,
    revoked_at        timestamptz,
    revoked_by        text,
    revoked_reason    text,
    remark            text,                          -- 附记 as printed
    as_of             timestamptz,                   -- query results: the register at this instant
    pdf_sha256        bytea NOT NULL CHECK (length(pdf_sha256) = 32),
    signer            text NOT NULL,                 -- subject and serial of the signing certificate
    parcel_pages      smallint[] NOT NULL DEFAULT '{}',   -- 0-based pages of the parcel map
    plan_pages        smallint[] NOT NULL DEFAULT '{}',   -- ... and of the floor plans
    CHECK ((kind = 'query_result') = (right_version_id IS NULL)),
    CHECK (status = 'prepared' OR issued_at IS NOT NULL OR status = 'revoked'),
    CHECK ((status = 'superseded') = (superseded_at IS NOT NULL)),
    CHECK ((status = 'revoked') = (revoked_at IS NOT NULL))
);
-- at most one live document per right version (a new one after revoking the old)
CREATE UNIQUE INDEX certificate_live_version ON cad.certificate (right_version_id)
    WHERE status IN ('prepared', 'current') AND right_version_id IS NOT NULL;
CREATE INDEX certificate_live_right ON cad.certificate (right_id)
    WHERE status IN ('prepared', 'current');
CREATE INDEX certificate_unit ON cad.certificate (unit_code, prepared_at);
CREATE INDEX certificate_sha256 ON cad.certificate (pdf_sha256);

-- The signed PDF itself, apart from the row that is read often. PDFs are compressed already.
CREATE TABLE cad.certificate_document (
    certificate_id  uuid PRIMARY KEY REFERENCES cad.certificate(certificate_id),
    pdf             bytea NOT NULL
);
ALTER TABLE cad.certificate_document ALTER COLUMN pdf SET STORAGE EXTERNAL;

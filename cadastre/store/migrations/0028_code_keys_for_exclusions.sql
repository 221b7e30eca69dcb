-- 0028: the exclusion constraints that keep a code's versions from overlapping compare two
-- bigint keys of the code instead of the char(n) code itself (issue #18).
--
-- btree_gist on char(n) keeps variable-length keys with prefix unions: adding
-- EXCLUDE (unit_code WITH =, tstzrange WITH &&) to 212,031 units took 30 s (142 µs a row; ~24
-- CPU-minutes for the 10 M units of a 1M-parcel district), the same constraint on two bigint
-- keys of the code 4.9 s. The keys are exact, not hashes: every code of these tables matches
-- its CHECK pattern ^[0-9]{12}[GJZ][ABSXCDEFGHWY][0-9]{5}(F[0-9]{4}|F[0-9]{8})?$, so
--   hi = first 12 digits × 36 + position in 'GJZ' × 12 + position in 'ABSXCDEFGHWY'
--   lo = the remaining digits (5 for a parcel, 9 for a building, 13 for a unit; the 'F' at
--        position 20 is fixed)
-- are a one-to-one image of the code within each table (one code length per table), and two
-- versions conflict exactly when their codes are equal and their periods overlap: the same
-- guarantee as before. Lookups of a code's versions (history, as-of reads) used the old GiST
-- index; a b-tree (code, valid_from) over every version takes that over.

CREATE FUNCTION cad.code_key_hi(c bpchar) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT substr(c, 1, 12)::bigint * 36 + (strpos('GJZ', substr(c, 13, 1)) - 1) * 12
           + (strpos('ABSXCDEFGHWY', substr(c, 14, 1)) - 1)
$$;

CREATE FUNCTION cad.code_key_lo(c bpchar) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (substr(c, 15, 5) || substr(c, 21))::bigint
$$;

-- floors carry their building's code: the same pattern as cad.building's
ALTER TABLE cad.floor ADD CONSTRAINT floor_building_code_check
    CHECK (building_code ~ '^[0-9]{12}[GJZ][ABSXCDEFGHWY][0-9]{5}F[0-9]{4}$');

ALTER TABLE cad.parcel DROP CONSTRAINT parcel_parcel_code_tstzrange_excl;
ALTER TABLE cad.parcel ADD CONSTRAINT parcel_parcel_code_tstzrange_excl EXCLUDE USING gist
    (cad.code_key_hi(parcel_code) WITH =, cad.code_key_lo(parcel_code) WITH =,
     tstzrange(valid_from, valid_to) WITH &&);
CREATE INDEX parcel_code_versions ON cad.parcel (parcel_code, valid_from);

ALTER TABLE cad.building DROP CONSTRAINT building_building_code_tstzrange_excl;
ALTER TABLE cad.building ADD CONSTRAINT building_building_code_tstzrange_excl EXCLUDE USING gist
    (cad.code_key_hi(building_code) WITH =, cad.code_key_lo(building_code) WITH =,
     tstzrange(valid_from, valid_to) WITH &&);
CREATE INDEX building_code_versions ON cad.building (building_code, valid_from);

ALTER TABLE cad.floor DROP CONSTRAINT floor_building_code_floor_no_tstzrange_excl;
ALTER TABLE cad.floor ADD CONSTRAINT floor_building_code_floor_no_tstzrange_excl EXCLUDE USING
    gist (cad.code_key_hi(building_code) WITH =, cad.code_key_lo(building_code) WITH =,
          floor_no WITH =, tstzrange(valid_from, valid_to) WITH &&);
CREATE INDEX floor_code_versions ON cad.floor (building_code, floor_no, valid_from);

CREATE OR REPLACE FUNCTION cad.county_partition_constraints(tbl text, part text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF tbl = 'unit' THEN
        EXECUTE format('ALTER TABLE cad.%I ADD CONSTRAINT %I EXCLUDE USING gist '
                       '(cad.code_key_hi(unit_code) WITH =, cad.code_key_lo(unit_code) WITH =, '
                       'tstzrange(valid_from, valid_to) WITH &&)',
                       part, part || '_code_versions');
    ELSIF tbl = 'right_record' THEN
        EXECUTE format('ALTER TABLE cad.%I ADD CONSTRAINT %I EXCLUDE USING gist '
                       '(right_id WITH =, tstzrange(valid_from, valid_to) WITH &&)',
                       part, part || '_right_versions');
    END IF;
END $$;

DO $$
DECLARE
    part text;
BEGIN
    FOR part IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = 'cad.unit'::regclass ORDER BY 1 LOOP
        EXECUTE format('ALTER TABLE cad.%I DROP CONSTRAINT IF EXISTS %I', part,
                       part || '_code_versions');
        PERFORM cad.county_partition_constraints('unit', part);
    END LOOP;
END $$;
CREATE INDEX unit_code_versions ON cad.unit (unit_code, valid_from);

-- QA's REG_CERT_FORMAT reads the malformed numbers (series 'other') from cad.certificate_number,
-- which parsed every number of the register once, instead of parsing ~15 M numbers per run
CREATE INDEX certificate_number_malformed ON cad.certificate_number (number)
    WHERE series = 'other';

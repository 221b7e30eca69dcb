-- 0024 the large versioned tables partitioned by county (区县, county_code = the first 6
-- characters of the unit or parcel code). Forward-only: never edit this file once applied.
--
-- Converted in place: each table is renamed, a partitioned table of the same name, columns,
-- defaults, checks and sequence takes its place, the rows are copied (same version ids), the old
-- table is dropped, and the foreign keys, triggers and views that named it are created again.
-- The register's content (cadastre.exchange.fingerprint) is unchanged; county_code is derived.
--
-- Partitioned (LIST on county_code): cad.unit, cad.right_record and their details
-- (cad.right_party, cad.*_detail), cad.boundary_point. Each has one partition per county,
-- cad.<table>_<county>, made by cad.county_add(code) (`cadastre db county add CODE`), and a
-- DEFAULT partition cad.<table>_default that takes rows of counties without partitions of
-- their own (an exchange import from a neighbouring county is not refused); county_add moves
-- such rows into the new partitions. cad.county_detach(code) (`cadastre db county detach`)
-- detaches a county's partitions for archive: its rows leave the live register.
--
-- Keys include the partition key, as PostgreSQL requires. Nothing the register relies on is
-- weakened: county_code is a function of the code (CHECK county_code = substr(code, 1, 6)), so
-- a key (code, county_code) is unique exactly when the code is unique, and a version id is
-- unique because every table still takes it from its one sequence:
--   * a current unit code is unique: UNIQUE (unit_code, county_code) WHERE valid_to IS NULL;
--   * a unit code's versions do not overlap, nor do a right's: EXCLUDE on each partition
--     (PostgreSQL 15 has no exclusion constraints on partitioned tables; all versions of one
--     code, and of one right, which never changes unit, live in one county's partition);
--   * details, holders and certificates reference (version_id, county_code) of their right.
-- The audit log is not partitioned here: monthly partitions are for detaching old months, and
-- its hash chain is verified from the first row on (a detached month would read as missing
-- rows) until verification can start from an archived month's last hash (docs/scaling.md).

CREATE FUNCTION cad.county_tables() RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
    -- parents before children (the order partitions are created and attached in)
    SELECT ARRAY['unit', 'boundary_point', 'right_record', 'right_party', 'ownership_detail',
                 'mortgage_detail', 'pre_notice_detail', 'seizure_detail', 'objection_detail',
                 'easement_detail', 'cancellation_detail']
$$;

-- Constraints each partition carries itself (exclusion constraints cannot be declared on the
-- partitioned table in PostgreSQL 15).
CREATE FUNCTION cad.county_partition_constraints(tbl text, part text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF tbl = 'unit' THEN
        EXECUTE format('ALTER TABLE cad.%I ADD CONSTRAINT %I EXCLUDE USING gist '
                       '(unit_code WITH =, tstzrange(valid_from, valid_to) WITH &&)',
                       part, part || '_code_versions');
    ELSIF tbl = 'right_record' THEN
        EXECUTE format('ALTER TABLE cad.%I ADD CONSTRAINT %I EXCLUDE USING gist '
                       '(right_id WITH =, tstzrange(valid_from, valid_to) WITH &&)',
                       part, part || '_right_versions');
    END IF;
END $$;

-- Columns a copy of the rows names (generated columns are computed again).
CREATE FUNCTION cad.county_copy_columns(tbl text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
    WHERE attrelid = ('cad.' || quote_ident(tbl))::regclass AND attnum > 0
      AND NOT attisdropped AND attgenerated = ''
$$;

CREATE FUNCTION cad.county_add(code text) RETURNS integer LANGUAGE plpgsql AS $$
-- Creates the county's partitions (no-op for those that exist); rows of that county waiting in
-- the default partitions move into them. Returns the number of rows moved.
DECLARE
    t text;
    part text;
    cols text;
    n bigint;
    moved integer := 0;
BEGIN
    IF code IS NULL OR code !~ '^[0-9]{6}$' THEN
        RAISE EXCEPTION '区县代码须为6位数字 / a county code is 6 digits'
            USING ERRCODE = '22023';
    END IF;
    FOREACH t IN ARRAY cad.county_tables() LOOP      -- copy out of the default, parents first
        part := t || '_' || code;
        CONTINUE WHEN to_regclass('cad.' || quote_ident(part)) IS NOT NULL;
        EXECUTE format('CREATE TABLE cad.%I (LIKE cad.%I INCLUDING DEFAULTS INCLUDING GENERATED '
                       'INCLUDING CONSTRAINTS INCLUDING STORAGE)', part, t);
        cols := cad.county_copy_columns(t);
        EXECUTE format('INSERT INTO cad.%I (%s) SELECT %s FROM cad.%I WHERE county_code = %L',
                       part, cols, cols, t || '_default', code);
        GET DIAGNOSTICS n = ROW_COUNT;
        moved := moved + n;
    END LOOP;
    IF moved > 0 THEN                                  -- then delete there, children first
        -- (certificates of the moved rights are checked again when the key comes back)
        ALTER TABLE cad.certificate DROP CONSTRAINT certificate_right_fkey;
        FOR i IN REVERSE array_length(cad.county_tables(), 1)..1 LOOP
            t := (cad.county_tables())[i];
            EXECUTE format('DELETE FROM cad.%I WHERE county_code = %L', t || '_default', code);
        END LOOP;
    END IF;
    FOREACH t IN ARRAY cad.county_tables() LOOP      -- and attach, parents first
        part := t || '_' || code;
        CONTINUE WHEN EXISTS (SELECT 1 FROM pg_inherits
                              WHERE inhrelid = ('cad.' || quote_ident(part))::regclass);
        EXECUTE format('ALTER TABLE cad.%I ATTACH PARTITION cad.%I FOR VALUES IN (%L)',
                       t, part, code);
        PERFORM cad.county_partition_constraints(t, part);
    END LOOP;
    IF moved > 0 THEN
        ALTER TABLE cad.certificate ADD CONSTRAINT certificate_right_fkey
            FOREIGN KEY (right_version_id, county_code)
            REFERENCES cad.right_record (version_id, county_code);
    END IF;
    RETURN moved;
END $$;

CREATE FUNCTION cad.county_detach(code text) RETURNS integer LANGUAGE plpgsql AS $$
-- Detaches the county's partitions, children first; they stay as plain tables for archive
-- (dump and drop them), without their keys into the live register. Refused while a certificate
-- in the live register names one of the county's rights. Returns the partitions detached.
DECLARE
    part text;
    k record;
    n integer := 0;
BEGIN
    IF EXISTS (SELECT 1 FROM cad.certificate WHERE county_code = code
                                              AND right_version_id IS NOT NULL) THEN
        RAISE EXCEPTION '该区县仍有证书记录 / certificates of this county are still in the register'
            USING ERRCODE = '55000';
    END IF;
    FOR i IN REVERSE array_length(cad.county_tables(), 1)..1 LOOP
        part := (cad.county_tables())[i] || '_' || code;
        CONTINUE WHEN to_regclass('cad.' || quote_ident(part)) IS NULL
            OR NOT EXISTS (SELECT 1 FROM pg_inherits
                           WHERE inhrelid = ('cad.' || quote_ident(part))::regclass);
        EXECUTE format('ALTER TABLE cad.%I DETACH PARTITION cad.%I',
                       (cad.county_tables())[i], part);
        FOR k IN SELECT conname FROM pg_constraint
                 WHERE conrelid = ('cad.' || quote_ident(part))::regclass AND contype = 'f'
                   AND confrelid = 'cad.right_record'::regclass LOOP
            EXECUTE format('ALTER TABLE cad.%I DROP CONSTRAINT %I', part, k.conname);
        END LOOP;
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

-- ------------------------------------------------------------------ the conversion
-- Views and foreign keys naming the tables go first (created again below).
DROP VIEW cad.unit_current, cad.right_current, cad.boundary_point_current;
ALTER TABLE cad.certificate DROP CONSTRAINT certificate_right_version_id_fkey;
ALTER TABLE cad.right_party DROP CONSTRAINT right_party_right_version_id_fkey;
ALTER TABLE cad.ownership_detail DROP CONSTRAINT ownership_detail_right_version_id_fkey;
ALTER TABLE cad.mortgage_detail DROP CONSTRAINT mortgage_detail_right_version_id_fkey;
ALTER TABLE cad.pre_notice_detail DROP CONSTRAINT pre_notice_detail_right_version_id_fkey;
ALTER TABLE cad.seizure_detail DROP CONSTRAINT seizure_detail_right_version_id_fkey;
ALTER TABLE cad.objection_detail DROP CONSTRAINT objection_detail_right_version_id_fkey;
ALTER TABLE cad.easement_detail DROP CONSTRAINT easement_detail_right_version_id_fkey;
ALTER TABLE cad.cancellation_detail DROP CONSTRAINT cancellation_detail_right_version_id_fkey;

-- Each table: the old one renamed aside with its indexes and constraints renamed out of the way,
-- the partitioned table in its place (same columns, defaults and checks, plus county_code).
CREATE FUNCTION cad.county_swap(tbl text, code_col text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    r record;
    seq text;
BEGIN
    EXECUTE format('ALTER TABLE cad.%I RENAME TO %I', tbl, tbl || '_unpartitioned');
    FOR r IN SELECT conname FROM pg_constraint
             WHERE conrelid = ('cad.' || quote_ident(tbl || '_unpartitioned'))::regclass
               AND contype IN ('p', 'x', 'u') LOOP
        EXECUTE format('ALTER TABLE cad.%I DROP CONSTRAINT %I', tbl || '_unpartitioned',
                       r.conname);
    END LOOP;
    EXECUTE format('CREATE TABLE cad.%I (LIKE cad.%I INCLUDING DEFAULTS INCLUDING GENERATED '
                   'INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS, '
                   'county_code char(6) NOT NULL) PARTITION BY LIST (county_code)',
                   tbl, tbl || '_unpartitioned');
    FOR seq IN SELECT pg_get_serial_sequence('cad.' || quote_ident(tbl || '_unpartitioned'),
                                             attname)
               FROM pg_attribute
               WHERE attrelid = ('cad.' || quote_ident(tbl || '_unpartitioned'))::regclass
                 AND attnum > 0 AND NOT attisdropped LOOP
        CONTINUE WHEN seq IS NULL;
        EXECUTE format('ALTER SEQUENCE %s OWNED BY cad.%I.version_id', seq, tbl);
    END LOOP;
    IF code_col IS NOT NULL THEN
        EXECUTE format('ALTER TABLE cad.%I ADD CONSTRAINT %I CHECK (county_code = substr(%I, 1, 6))',
                       tbl, tbl || '_county', code_col);
    END IF;
    -- the indexes, with the names they had
    FOR r IN SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
             FROM pg_index i
             WHERE i.indrelid = ('cad.' || quote_ident(tbl || '_unpartitioned'))::regclass LOOP
        EXECUTE format('DROP INDEX %s', r.name);
        CONTINUE WHEN r.def LIKE 'CREATE UNIQUE %';    -- made below, with the county
        EXECUTE replace(r.def, format(' ON cad.%s ', tbl || '_unpartitioned'),
                        format(' ON cad.%s ', tbl));
    END LOOP;
    EXECUTE format('CREATE TABLE cad.%I PARTITION OF cad.%I DEFAULT', tbl || '_default', tbl);
    PERFORM cad.county_partition_constraints(tbl, tbl || '_default');
END $$;

SELECT cad.county_swap('unit', 'unit_code');
SELECT cad.county_swap('boundary_point', 'parcel_code');
SELECT cad.county_swap('right_record', 'unit_code');
SELECT cad.county_swap(t, NULL) FROM unnest(ARRAY['right_party', 'ownership_detail',
    'mortgage_detail', 'pre_notice_detail', 'seizure_detail', 'objection_detail',
    'easement_detail', 'cancellation_detail']) t;

ALTER TABLE cad.unit ADD PRIMARY KEY (version_id, county_code);
CREATE UNIQUE INDEX unit_code_current ON cad.unit (unit_code, county_code)
    WHERE valid_to IS NULL;
ALTER TABLE cad.boundary_point ADD PRIMARY KEY (version_id, county_code);
ALTER TABLE cad.right_record ADD PRIMARY KEY (version_id, county_code);
ALTER TABLE cad.right_party ADD PRIMARY KEY (right_version_id, party_id, role, county_code);
ALTER TABLE cad.right_party ADD FOREIGN KEY (right_version_id, county_code)
    REFERENCES cad.right_record (version_id, county_code);
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['ownership_detail', 'mortgage_detail', 'pre_notice_detail',
                             'seizure_detail', 'objection_detail', 'easement_detail',
                             'cancellation_detail'] LOOP
        EXECUTE format('ALTER TABLE cad.%I ADD PRIMARY KEY (right_version_id, county_code)', t);
        EXECUTE format('ALTER TABLE cad.%I ADD FOREIGN KEY (right_version_id, county_code) '
                       'REFERENCES cad.right_record (version_id, county_code)', t);
    END LOOP;
END $$;

-- One partition per county in the data, then the rows (they land in their partitions).
SELECT cad.county_add(c) FROM (
    SELECT substr(unit_code, 1, 6) AS c FROM cad.unit_unpartitioned
    UNION SELECT substr(parcel_code, 1, 6) FROM cad.boundary_point_unpartitioned
    UNION SELECT substr(unit_code, 1, 6) FROM cad.right_record_unpartitioned) counties
ORDER BY c;

INSERT INTO cad.unit (county_code, feature_id, version_id, unit_code, floor_no, floor_count,
    room_no, seat, use, house_type, house_nature, layout, building_area, inner_area,
    shared_area, shared_coefficient, land_share_area, base_elevation, height, srid, geom,
    valid_from, valid_to, change_id, retired_by)
SELECT substr(unit_code, 1, 6), feature_id, version_id, unit_code, floor_no, floor_count,
    room_no, seat, use, house_type, house_nature, layout, building_area, inner_area,
    shared_area, shared_coefficient, land_share_area, base_elevation, height, srid, geom,
    valid_from, valid_to, change_id, retired_by
FROM cad.unit_unpartitioned;
INSERT INTO cad.boundary_point (county_code, version_id, feature_id, parcel_code, point_no, seq,
    ring_no, marker_type, point_type, x_north, y_east, srid, geom, valid_from, valid_to,
    change_id, retired_by)
SELECT substr(parcel_code, 1, 6), version_id, feature_id, parcel_code, point_no, seq, ring_no,
    marker_type, point_type, x_north, y_east, srid, geom, valid_from, valid_to, change_id,
    retired_by
FROM cad.boundary_point_unpartitioned;
INSERT INTO cad.right_record SELECT o.*, substr(o.unit_code, 1, 6)
FROM cad.right_record_unpartitioned o;
CREATE FUNCTION cad.county_copy_child(tbl text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('INSERT INTO cad.%I SELECT o.*, r.county_code FROM cad.%I o '
                   'JOIN cad.right_record r ON r.version_id = o.right_version_id',
                   tbl, tbl || '_unpartitioned');
    EXECUTE format('DROP TABLE cad.%I', tbl || '_unpartitioned');
END $$;
SELECT cad.county_copy_child(t) FROM unnest(ARRAY['right_party', 'ownership_detail',
    'mortgage_detail', 'pre_notice_detail', 'seizure_detail', 'objection_detail',
    'easement_detail', 'cancellation_detail']) t;
DROP TABLE cad.unit_unpartitioned, cad.boundary_point_unpartitioned,
    cad.right_record_unpartitioned;
DROP FUNCTION cad.county_swap(text, text), cad.county_copy_child(text);

-- A certificate names its right's county through its unit code.
ALTER TABLE cad.certificate ADD COLUMN county_code char(6)
    GENERATED ALWAYS AS (substr(unit_code, 1, 6)) STORED;
ALTER TABLE cad.certificate ADD CONSTRAINT certificate_right_fkey
    FOREIGN KEY (right_version_id, county_code) REFERENCES cad.right_record (version_id, county_code);

-- Triggers (statement level, transition tables: they see the rows of every partition).
CREATE TRIGGER unit_tiles_ins AFTER INSERT ON cad.unit REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cad.queue_tile_invalidation('unit');
CREATE TRIGGER unit_tiles_upd AFTER UPDATE ON cad.unit
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cad.queue_tile_invalidation('unit');
CREATE TRIGGER unit_tiles_del AFTER DELETE ON cad.unit REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cad.queue_tile_invalidation('unit');
CREATE TRIGGER boundary_point_tiles_ins AFTER INSERT ON cad.boundary_point
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cad.queue_tile_invalidation('boundary_point');
CREATE TRIGGER boundary_point_tiles_upd AFTER UPDATE ON cad.boundary_point
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cad.queue_tile_invalidation('boundary_point');
CREATE TRIGGER boundary_point_tiles_del AFTER DELETE ON cad.boundary_point
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cad.queue_tile_invalidation('boundary_point');
CREATE TRIGGER right_record_status_ins AFTER INSERT ON cad.right_record
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cad.right_record_changed();
CREATE TRIGGER right_record_status_upd AFTER UPDATE ON cad.right_record
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cad.right_record_changed();
CREATE TRIGGER right_record_status_del AFTER DELETE ON cad.right_record
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cad.right_record_changed();
CREATE TRIGGER right_record_certificate_numbers_ins AFTER INSERT ON cad.right_record
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cad.certificate_numbers_in_register();
CREATE TRIGGER right_record_certificate_numbers_upd AFTER UPDATE ON cad.right_record
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cad.certificate_numbers_in_register();

CREATE VIEW cad.unit_current AS SELECT * FROM cad.unit WHERE valid_to IS NULL;
CREATE VIEW cad.right_current AS SELECT * FROM cad.right_record WHERE valid_to IS NULL;
CREATE VIEW cad.boundary_point_current AS SELECT * FROM cad.boundary_point
    WHERE valid_to IS NULL;
COMMENT ON VIEW cad.unit_current IS 'current units (valid_to IS NULL)';
COMMENT ON VIEW cad.right_current IS 'current versions of registration records (valid_to IS NULL)';
COMMENT ON VIEW cad.boundary_point_current IS 'current boundary points (valid_to IS NULL)';

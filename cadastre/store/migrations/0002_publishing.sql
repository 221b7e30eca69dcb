-- 0002 publishing: unit status summary, tile invalidation queue, accounts.

-- Per unit, the registration status the map shows, kept current by triggers on right_record.
CREATE TABLE cad.unit_status (
    unit_code            char(28) PRIMARY KEY,
    registration_status  text NOT NULL
                         CHECK (registration_status IN ('registered', 'pre_sale', 'unregistered')),
    mortgaged            boolean NOT NULL DEFAULT false,
    seized               boolean NOT NULL DEFAULT false,
    pre_noticed          boolean NOT NULL DEFAULT false,
    objected             boolean NOT NULL DEFAULT false,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION cad.refresh_unit_status(codes char(28)[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO cad.unit_status AS s
        (unit_code, registration_status, mortgaged, seized, pre_noticed, objected, updated_at)
    SELECT c.code,
           CASE WHEN coalesce(bool_or(r.kind = 'ownership'), false) THEN 'registered'
                WHEN coalesce(bool_or(r.kind = 'pre_notice'), false) THEN 'pre_sale'
                ELSE 'unregistered' END,
           coalesce(bool_or(r.kind = 'mortgage'), false),
           coalesce(bool_or(r.kind = 'seizure'), false),
           coalesce(bool_or(r.kind = 'pre_notice'), false),
           coalesce(bool_or(r.kind = 'objection'), false),
           now()
    FROM unnest(codes) AS c(code)
    LEFT JOIN cad.right_record r ON r.unit_code = c.code AND r.status = 1
    GROUP BY c.code
    ON CONFLICT (unit_code) DO UPDATE SET
        registration_status = EXCLUDED.registration_status,
        mortgaged = EXCLUDED.mortgaged, seized = EXCLUDED.seized,
        pre_noticed = EXCLUDED.pre_noticed, objected = EXCLUDED.objected,
        updated_at = EXCLUDED.updated_at
    WHERE (s.registration_status, s.mortgaged, s.seized, s.pre_noticed, s.objected)
          IS DISTINCT FROM (EXCLUDED.registration_status, EXCLUDED.mortgaged, EXCLUDED.seized,
                            EXCLUDED.pre_noticed, EXCLUDED.objected);
$$;

CREATE FUNCTION cad.right_record_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM cad.refresh_unit_status(ARRAY(SELECT DISTINCT unit_code FROM new_rows));
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM cad.refresh_unit_status(ARRAY(
            SELECT unit_code FROM new_rows UNION SELECT unit_code FROM old_rows));
    ELSE
        PERFORM cad.refresh_unit_status(ARRAY(SELECT DISTINCT unit_code FROM old_rows));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER right_record_status_ins AFTER INSERT ON cad.right_record
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cad.right_record_changed();
CREATE TRIGGER right_record_status_upd AFTER UPDATE ON cad.right_record
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cad.right_record_changed();
CREATE TRIGGER right_record_status_del AFTER DELETE ON cad.right_record
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cad.right_record_changed();

-- Every change to published geometry or properties queues the extent it touched; the tile cache
-- drops exactly the tiles those extents cover (see tiles/cache.py). Bulk loads that rebuild the
-- cache anyway set `cadastre.bulk_load = on` to skip the queue.
CREATE TABLE cad.tile_invalidation (
    id          bigserial PRIMARY KEY,
    entity      text NOT NULL,                    -- parcel | building | unit | boundary_point
    bbox        geometry(Polygon, 3857) NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- the extent as a polygon even for points (a degenerate rectangle)
CREATE FUNCTION cad.bbox_3857(g geometry) RETURNS geometry(Polygon, 3857)
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT ST_MakeEnvelope(ST_XMin(g), ST_YMin(g), ST_XMax(g), ST_YMax(g), 3857)
$$;

CREATE FUNCTION cad.queue_tile_invalidation() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    entity text := TG_ARGV[0];
BEGIN
    IF coalesce(current_setting('cadastre.bulk_load', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO cad.tile_invalidation (entity, bbox)
        SELECT entity, cad.bbox_3857(geom_3857) FROM new_rows;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO cad.tile_invalidation (entity, bbox)
        SELECT entity, cad.bbox_3857(geom_3857) FROM old_rows;
    END IF;
    PERFORM pg_notify('tile_invalidation', entity);
    RETURN NULL;
END $$;

DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES ('parcel'), ('building'), ('unit'), ('boundary_point'))
             AS v(name) LOOP
        EXECUTE format('CREATE TRIGGER %1$s_tiles_ins AFTER INSERT ON cad.%1$s
            REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
            EXECUTE FUNCTION cad.queue_tile_invalidation(%1$L)', t.name);
        EXECUTE format('CREATE TRIGGER %1$s_tiles_upd AFTER UPDATE ON cad.%1$s
            REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
            EXECUTE FUNCTION cad.queue_tile_invalidation(%1$L)', t.name);
        EXECUTE format('CREATE TRIGGER %1$s_tiles_del AFTER DELETE ON cad.%1$s
            REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
            EXECUTE FUNCTION cad.queue_tile_invalidation(%1$L)', t.name);
    END LOOP;
END $$;

-- A unit's status change alters its tile properties: queue its extent too.
CREATE FUNCTION cad.unit_status_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('cadastre.bulk_load', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    INSERT INTO cad.tile_invalidation (entity, bbox)
    SELECT 'unit', cad.bbox_3857(u.geom_3857)
    FROM new_rows n JOIN cad.unit u ON u.unit_code = n.unit_code AND u.valid_to IS NULL;
    PERFORM pg_notify('tile_invalidation', 'unit');
    RETURN NULL;
END $$;

CREATE TRIGGER unit_status_tiles_ins AFTER INSERT ON cad.unit_status
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cad.unit_status_changed();
CREATE TRIGGER unit_status_tiles_upd AFTER UPDATE ON cad.unit_status
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cad.unit_status_changed();

-- Accounts of staff and systems (public users are anonymous; owners verify per session).
CREATE SCHEMA IF NOT EXISTS auth;
CREATE TABLE auth.account (
    account_id     uuid PRIMARY KEY,
    username       text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9_.-]{3,64}$'),
    display_name   text NOT NULL,
    role           text NOT NULL CHECK (role IN ('registrar', 'surveyor', 'interested',
                                                 'department', 'auditor')),
    password_hash  text NOT NULL,              -- argon2id
    counties       char(6)[] NOT NULL DEFAULT '{}',  -- scope; empty = all
    disabled       boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- Backfill the status of units registered before this migration.
SET LOCAL cadastre.bulk_load = 'on';
SELECT cad.refresh_unit_status(ARRAY(SELECT DISTINCT unit_code FROM cad.right_record));

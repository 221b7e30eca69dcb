-- 0010 survey field mapping, placement and the cadastral subdistrict layer.
-- Forward-only: never edit this file once applied; add a new numbered file instead.

-- 地籍子区: the polygons that new parcels take their code's first 12 characters from
-- (county 6 + 地籍区 3 + 地籍子区 3, GB/T 37346). A new parcel without a code gets the next
-- sequence of the subdistrict that contains it; outside every subdistrict it cannot be coded.
CREATE TABLE cad.cadastral_subdistrict (
    zone_code   char(12) PRIMARY KEY CHECK (zone_code ~ '^[0-9]{12}$'),
    name        text,
    srid        integer NOT NULL CHECK (srid NOT IN (0, 3857, 4326, 4490)),
    geom        geometry(MultiPolygon) NOT NULL CHECK (ST_SRID(geom) = srid AND ST_IsValid(geom)),
    geom_3857   geometry(MultiPolygon, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cadastral_subdistrict_geom ON cad.cadastral_subdistrict USING gist (geom_3857);

-- What the submitter said about the file: a field mapping (source name -> our key), whether
-- parcels without a code are new parcels, and how a local-coordinate plan is placed.
ALTER TABLE cad.survey_submission ADD COLUMN options jsonb NOT NULL DEFAULT '{}';

-- Teams of surveyors share their field-mapping presets.
ALTER TABLE auth.account ADD COLUMN team text CHECK (team IS NULL OR length(team) BETWEEN 1 AND 64);

CREATE TABLE cad.field_map_preset (
    team        text NOT NULL,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    mapping     jsonb NOT NULL,
    new_parcels boolean NOT NULL DEFAULT false,
    created_by  text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (team, name)
);

-- 0005 search and look-ups of the public query API (cadastre/query, api/routers/public.py).
-- Forward-only: never edit this file once applied; add a new numbered file instead.

-- Fuzzy text search (pg_trgm): 坐落 of units, building and project names, compound names.
-- Current versions only (the API never searches history); building.name gets a partial index
-- like project_name so that the planner can OR the two (0001's covers every version). parcel.seat
-- keeps its index from 0001.
CREATE INDEX building_name_trgm_current ON cad.building USING gin (name gin_trgm_ops)
    WHERE valid_to IS NULL;
CREATE INDEX unit_seat_trgm_current ON cad.unit USING gin (seat gin_trgm_ops)
    WHERE valid_to IS NULL;
CREATE INDEX building_project_trgm_current ON cad.building USING gin (project_name gin_trgm_ops)
    WHERE valid_to IS NULL;
CREATE INDEX parcel_compound_trgm_current ON cad.parcel USING gin (compound_name gin_trgm_ops)
    WHERE valid_to IS NULL;

-- Code prefix search, ranked by code: the database collation is not "C", so the existing btree
-- indexes cannot serve LIKE 'prefix%'. "C"-collated ones serve both the prefix range and the
-- ORDER BY code COLLATE "C" of a top-N (a 6-digit county prefix matches every unit).
CREATE INDEX parcel_code_prefix_current ON cad.parcel ((parcel_code COLLATE "C"))
    WHERE valid_to IS NULL;
CREATE INDEX building_code_prefix_current ON cad.building ((building_code COLLATE "C"))
    WHERE valid_to IS NULL;
CREATE INDEX unit_code_prefix_current ON cad.unit ((unit_code COLLATE "C"))
    WHERE valid_to IS NULL;

-- Opaque ids in URLs resolve to the current version (parcel_feature exists since 0001). Not
-- partial: a partial index over all current rows would also be a cheap "scan everything" path
-- that the planner prefers over the trigram indexes for long queries.
CREATE INDEX building_feature ON cad.building (feature_id);
CREATE INDEX unit_feature ON cad.unit (feature_id);

-- 一码关联: easements in favour of a parcel (需役地) as well as those burdening it.
CREATE INDEX easement_dominant ON cad.easement_detail (dominant_unit_code);

-- pg_trgm's word-similarity operators (<% and %>) are priced like "=" (cost 1), so on tables of a
-- few thousand rows the planner prefers a sequential scan that computes the similarity of every
-- row (about 5 µs each, a hundred times an ILIKE) over the trigram indexes. Tell it their cost.
-- Planner information only: without the privilege (extension owned by another role) nothing breaks.
DO $$
BEGIN
    ALTER FUNCTION word_similarity_op(text, text) COST 100;
    ALTER FUNCTION word_similarity_commutator_op(text, text) COST 100;
EXCEPTION WHEN insufficient_privilege OR undefined_function THEN
    RAISE NOTICE 'pg_trgm operator costs unchanged: %', SQLERRM;
END $$;

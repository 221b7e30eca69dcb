-- 0006 survey staging: no spatial index on staged features.
-- Forward-only: never edit this file once applied; add a new numbered file instead.

-- Staged features are only ever read by submission (the primary key's leading column): the QA
-- scope copies a submission's features into indexed temp tables, and the diff probes the
-- registry's parcel index with each staged geometry. The GiST index on geom_3857 was never
-- used by a plan, yet maintaining it was about half the server's work of staging an upload
-- (row-by-row GiST inserts for 100k polygons).
DROP INDEX IF EXISTS cad.survey_feature_geom_3857;

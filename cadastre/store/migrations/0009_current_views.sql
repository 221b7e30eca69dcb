-- 0009 current versions as views: cad.<table>_current holds the rows with valid_to IS NULL.
-- Forward-only: never edit this file once applied; add a new numbered file instead.
--
-- Reads of "what is registered now" name these views instead of repeating the predicate. They
-- are simple views: PostgreSQL inlines them, so a query on a view is planned as the same query
-- on the table with "valid_to IS NULL" (the partial indexes on current rows still serve it).
-- Writes (closing a version, inserting the next) go to the tables, as do as-of and history
-- queries. A migration that adds a column to one of these tables re-creates its view
-- (CREATE OR REPLACE VIEW ... AS SELECT * ...), or the view will not show the new column.

CREATE VIEW cad.parcel_current AS SELECT * FROM cad.parcel WHERE valid_to IS NULL;
CREATE VIEW cad.boundary_point_current AS SELECT * FROM cad.boundary_point WHERE valid_to IS NULL;
CREATE VIEW cad.boundary_line_current AS SELECT * FROM cad.boundary_line WHERE valid_to IS NULL;
CREATE VIEW cad.building_current AS SELECT * FROM cad.building WHERE valid_to IS NULL;
CREATE VIEW cad.floor_current AS SELECT * FROM cad.floor WHERE valid_to IS NULL;
CREATE VIEW cad.unit_current AS SELECT * FROM cad.unit WHERE valid_to IS NULL;
CREATE VIEW cad.right_current AS SELECT * FROM cad.right_record WHERE valid_to IS NULL;

COMMENT ON VIEW cad.parcel_current IS 'current parcels (valid_to IS NULL)';
COMMENT ON VIEW cad.boundary_point_current IS 'current boundary points (valid_to IS NULL)';
COMMENT ON VIEW cad.boundary_line_current IS 'current boundary lines (valid_to IS NULL)';
COMMENT ON VIEW cad.building_current IS 'current buildings (valid_to IS NULL)';
COMMENT ON VIEW cad.floor_current IS 'current floors (valid_to IS NULL)';
COMMENT ON VIEW cad.unit_current IS 'current units (valid_to IS NULL)';
COMMENT ON VIEW cad.right_current IS 'current versions of registration records (valid_to IS NULL)';

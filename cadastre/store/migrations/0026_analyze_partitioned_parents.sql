-- Statistics of the partitioned parents. Autovacuum analyses partitions but never a partitioned
-- table itself, and migration 0024 converted existing registers in place without an ANALYZE:
-- their parents (cad.unit, cad.right_record, …) had no statistics, so join estimates over them
-- fell back to defaults. On a 2,000-parcel register converted in place, the 交房即交证 benchmark
-- ran 67.7 s before this ANALYZE and 50.4 s after (same machine, same load). A fresh load
-- (cadastre demo) and the registry import already ANALYZE what they write; `cadastre db county
-- add` and `detach` do it for the parent they change.
--
-- First, a repair: a register loaded by `cadastre demo` before this version has three invalid
-- partitioned indexes (the bulk loader rebuilt them ON ONLY the parent, so no partition got
-- them: cad.unit's GiST and seat trigram, cad.boundary_point's GiST). They are built again on
-- every partition.
-- Forward-only: never edit this file once applied; add a new numbered file instead.
DO $$
DECLARE t regclass;
        i record;
BEGIN
    FOR i IN SELECT x.indexrelid::regclass AS idx, pg_get_indexdef(x.indexrelid) AS def
             FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE NOT x.indisvalid AND c.relkind = 'I' AND n.nspname IN ('cad', 'pii')
    LOOP
        EXECUTE format('DROP INDEX %s', i.idx);
        EXECUTE replace(i.def, ' ON ONLY ', ' ON ');
    END LOOP;
    FOR t IN SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'p' AND n.nspname IN ('cad', 'pii', 'reg', 'audit', 'share', 'xchg')
               AND NOT c.relispartition
    LOOP
        EXECUTE format('ANALYZE %s', t);
    END LOOP;
END $$;

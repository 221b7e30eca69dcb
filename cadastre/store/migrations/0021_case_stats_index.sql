-- The supervision dashboard's completed-case figures (count, on time, average and p90 working
-- days of a period per county and business type) read only this index: the entry instant with
-- the columns they need (an index-only scan instead of a heap visit per entered case).
-- Forward-only: never edit this file once applied; add a new numbered file instead.
DROP INDEX reg.case_registered;
CREATE INDEX case_registered ON reg.case (registered_at)
    INCLUDE (county_code, business_type, working_days_used, due_at)
    WHERE registered_at IS NOT NULL;

-- SQL-language functions that are not inlined (they read a table) are parsed and planned anew
-- in every statement that calls them; the same bodies in PL/pgSQL keep their plans for the
-- session. A 登簿 calls refresh_unit_status twice (the right_record triggers) and the clock
-- calls wd_idx/wd_add for each case it computes: a profile of the 交房即交证 batch showed 11 % of
-- the server's time in parsing and planning these bodies. Same signatures, same results.
-- Forward-only: never edit this file once applied; add a new numbered file instead.
CREATE OR REPLACE FUNCTION cad.refresh_unit_status(codes char(28)[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
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
END $$;

CREATE OR REPLACE FUNCTION reg.wd_idx(d date) RETURNS integer
LANGUAGE plpgsql STABLE STRICT AS $$
BEGIN
    RETURN (SELECT idx FROM reg.calendar_day WHERE day = d);
END $$;

CREATE OR REPLACE FUNCTION reg.wd_add(d date, k integer) RETURNS date
LANGUAGE plpgsql STABLE STRICT AS $$
BEGIN
    RETURN (SELECT day FROM reg.calendar_day WHERE workday AND idx = reg.wd_idx(d) + k);
END $$;

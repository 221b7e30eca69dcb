-- 0007 unit look-ups by code as text.
-- Forward-only: never edit this file once applied; add a new numbered file instead.

-- unit_code is character(28); the QA scope exposes it as text (unit_code::text), which the
-- btree on the bpchar column cannot serve. Rules that look a few units up by that text (the
-- candidates of UNIT_OVERLAP among millions of units) need an index on the expression.
CREATE INDEX unit_code_text_current ON cad.unit ((unit_code::text)) WHERE valid_to IS NULL;

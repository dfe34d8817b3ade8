-- Player state is kept as the exact canonical JSON text its hash was computed over.
-- jsonb rewrote numbers (1e16 came back as 10000000000000000, an integer to a JSON reader) and
-- refused NUL characters, so a state read back could differ from the one written: its hash
-- no longer matched its text, and a ruleset saw other numbers depending on how actions were
-- batched. Rows written as jsonb keep its spelling; readers re-encode them canonically.

ALTER TABLE player_state ALTER COLUMN state TYPE text USING state::text;

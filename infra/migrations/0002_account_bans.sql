-- A banned account keeps its rows and scores but may not log in until it is unbanned.

ALTER TABLE accounts ADD COLUMN banned_at timestamptz;

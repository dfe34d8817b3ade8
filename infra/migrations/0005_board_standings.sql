-- What a board keeps per player beyond the score: the subscore compared after it, the metadata
-- of the run that set it (JSON text, for `best` and `set` boards), the time it was reached in
-- whole milliseconds (ties rank by it, and Redis orders by the same number), and the version
-- of the player's state that wrote it, so that a late or repeated write to Redis never
-- overwrites a newer one.

ALTER TABLE board_scores
    ADD COLUMN subscore bigint NOT NULL DEFAULT 0,
    ADD COLUMN metadata text,
    ADD COLUMN reached_ms bigint,
    ADD COLUMN version bigint NOT NULL DEFAULT 0;

UPDATE board_scores SET reached_ms = (extract(epoch FROM reached_at) * 1000)::bigint;
ALTER TABLE board_scores ALTER COLUMN reached_ms SET NOT NULL;
DROP INDEX board_scores_by_rank;
ALTER TABLE board_scores DROP COLUMN reached_at;

CREATE INDEX board_scores_by_period ON board_scores (board, period);

ALTER TABLE score_events ADD COLUMN subscore bigint NOT NULL DEFAULT 0;

-- One row per board period ranking has seen begin: the record that makes each reset happen
-- once, however many ranking replicas watch the clock or restart across the boundary. It
-- lives on the first shard database.
CREATE TABLE board_periods (
    board     text NOT NULL,
    period    text NOT NULL,
    opened_at timestamptz NOT NULL DEFAULT now(),
    closed_at timestamptz,
    PRIMARY KEY (board, period)
);

-- Accounts, player state, the exactly-once ledger, board totals and score history.

CREATE TABLE accounts (
    player_id     uuid PRIMARY KEY,
    username      text NOT NULL,
    -- Lower-cased username: uniqueness is case-insensitive.
    username_key  text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE player_state (
    player_id  uuid PRIMARY KEY,
    state      jsonb NOT NULL,
    state_hash text NOT NULL,
    version    bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per action ever decided, written in the same transaction as its effect.
CREATE TABLE applied_actions (
    player_id  uuid NOT NULL,
    action_id  uuid NOT NULL,
    status     text NOT NULL,
    -- The serialized podium.game.v1.ActionResult, returned again for a repeated action id.
    result     bytea NOT NULL,
    decided_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (player_id, action_id)
);

CREATE TABLE board_scores (
    player_id  uuid NOT NULL,
    board      text NOT NULL,
    period     text NOT NULL,
    score      bigint NOT NULL,
    -- When the current score was reached.
    reached_at timestamptz NOT NULL,
    PRIMARY KEY (player_id, board, period)
);
CREATE INDEX board_scores_by_rank ON board_scores (board, period, score DESC, reached_at);

CREATE TABLE score_events (
    player_id uuid NOT NULL,
    board     text NOT NULL,
    period    text NOT NULL,
    delta     bigint NOT NULL,
    score     bigint NOT NULL,
    action_id uuid NOT NULL,
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX score_events_by_player ON score_events (player_id, at);

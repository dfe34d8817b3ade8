"""SQL for deciding actions: player state, the decision ledger, board totals and score events.

Every function that changes a player's rows runs on a connection inside the caller's
transaction, after lock_player_state; that row lock is what serialises one player's decisions
across workers, so the board and ledger rows need no locks of their own.
"""

from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True)
class StoredState:
    """A player_state row: state as JSON text, its hash, and how many actions it has seen."""

    json: str
    hash: str
    version: int


@dataclass(frozen=True)
class BoardScore:
    """A player's absolute score on one period of one board."""

    board: str
    period: str
    score: int


@dataclass(frozen=True)
class BoardDelta:
    """An amount to add to a player's score on one period of one board."""

    board: str
    period: str
    delta: int


async def lock_player_state(
    conn: asyncpg.Connection, player_id: str, initial_json: str, initial_hash: str
) -> StoredState:
    """Create the player's row on first sight, then lock it until the transaction ends."""
    await conn.execute(
        "INSERT INTO player_state (player_id, state, state_hash) VALUES ($1, $2::jsonb, $3)"
        " ON CONFLICT (player_id) DO NOTHING",
        player_id,
        initial_json,
        initial_hash,
    )
    row = await conn.fetchrow(
        "SELECT state::text AS json, state_hash, version FROM player_state"
        " WHERE player_id = $1 FOR UPDATE",
        player_id,
    )
    return StoredState(row["json"], row["state_hash"], row["version"])


async def fetch_player_state(pool: asyncpg.Pool, player_id: str) -> StoredState | None:
    """Read a player's state without locking it; None if the player never played."""
    row = await pool.fetchrow(
        "SELECT state::text AS json, state_hash, version FROM player_state WHERE player_id = $1",
        player_id,
    )
    if row is None:
        return None
    return StoredState(row["json"], row["state_hash"], row["version"])


async def find_decision(
    db: asyncpg.Connection | asyncpg.Pool, player_id: str, action_id: str
) -> bytes | None:
    """The serialized ActionResult of an action decided before, if it was."""
    return await db.fetchval(
        "SELECT result FROM applied_actions WHERE player_id = $1 AND action_id = $2",
        player_id,
        action_id,
    )


async def record_decision(
    conn: asyncpg.Connection, player_id: str, action_id: str, status: str, result: bytes
) -> None:
    """Remember how an action was decided, so that any repeat gets the same answer."""
    await conn.execute(
        "INSERT INTO applied_actions (player_id, action_id, status, result)"
        " VALUES ($1, $2, $3, $4)",
        player_id,
        action_id,
        status,
        result,
    )


async def save_state(
    conn: asyncpg.Connection, player_id: str, expected_hash: str, state_json: str, new_hash: str
) -> int | None:
    """Replace the state if its hash is still `expected_hash`; the new version, or None."""
    return await conn.fetchval(
        "UPDATE player_state SET state = $3::jsonb, state_hash = $4, version = version + 1,"
        " updated_at = now() WHERE player_id = $1 AND state_hash = $2 RETURNING version",
        player_id,
        expected_hash,
        state_json,
        new_hash,
    )


async def board_scores(
    conn: asyncpg.Connection, player_id: str, deltas: list[BoardDelta]
) -> dict[tuple[str, str], int]:
    """Current scores of the player on the boards and periods the deltas name (absent: none)."""
    rows = await conn.fetch(
        "SELECT s.board, s.period, s.score FROM board_scores s"
        " JOIN unnest($2::text[], $3::text[]) AS k(board, period)"
        " ON s.board = k.board AND s.period = k.period"
        " WHERE s.player_id = $1",
        player_id,
        [d.board for d in deltas],
        [d.period for d in deltas],
    )
    return {(r["board"], r["period"]): r["score"] for r in rows}


async def add_board_scores(
    conn: asyncpg.Connection, player_id: str, action_id: str, deltas: list[BoardDelta]
) -> list[BoardScore]:
    """Add the deltas to the player's board totals and log a score event for each."""
    rows = await conn.fetch(
        "INSERT INTO board_scores (player_id, board, period, score, reached_at)"
        " SELECT $1, board, period, delta, now()"
        " FROM unnest($2::text[], $3::text[], $4::bigint[]) AS d(board, period, delta)"
        " ON CONFLICT (player_id, board, period) DO UPDATE"
        " SET score = board_scores.score + EXCLUDED.score, reached_at = EXCLUDED.reached_at"
        " RETURNING board, period, score",
        player_id,
        [d.board for d in deltas],
        [d.period for d in deltas],
        [d.delta for d in deltas],
    )
    scores = {(r["board"], r["period"]): r["score"] for r in rows}

    await conn.execute(
        "INSERT INTO score_events (player_id, board, period, delta, score, action_id)"
        " SELECT $1, board, period, delta, score, $6"
        " FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[])"
        " AS e(board, period, delta, score)",
        player_id,
        [d.board for d in deltas],
        [d.period for d in deltas],
        [d.delta for d in deltas],
        [scores[d.board, d.period] for d in deltas],
        action_id,
    )
    return [BoardScore(d.board, d.period, scores[d.board, d.period]) for d in deltas]


async def action_board_scores(
    conn: asyncpg.Connection, player_id: str, action_id: str
) -> list[BoardScore]:
    """The player's current totals on every board and period an applied action touched."""
    rows = await conn.fetch(
        "SELECT s.board, s.period, s.score FROM board_scores s"
        " JOIN (SELECT DISTINCT board, period FROM score_events"
        "       WHERE player_id = $1 AND action_id = $2) e"
        " ON s.board = e.board AND s.period = e.period"
        " WHERE s.player_id = $1 ORDER BY s.board, s.period",
        player_id,
        action_id,
    )
    return [BoardScore(r["board"], r["period"], r["score"]) for r in rows]

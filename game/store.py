"""SQL for deciding a batch of actions: player state, the decision ledger, board totals, history.

Every function that changes a player's rows runs on a connection inside the caller's
transaction, after lock_players; those row locks are what serialise decisions on a player
across workers, so the board and ledger rows need no locks of their own. Each call sends the
rows of the whole batch at once (unnest of arrays), so a batch costs a fixed number of round
trips however many actions it holds, and every statement names the players it touches, which
is what lets the same schema run distributed by player_id (Citus).
"""

from dataclasses import dataclass
from typing import NamedTuple

import asyncpg

from infra.leaderboard import Standing


@dataclass(frozen=True)
class StoredState:
    """A player_state row: state as JSON text, its hash, and how many actions it has seen."""

    json: str
    hash: str
    version: int


class BoardKey(NamedTuple):
    """One player's score on one period of one board (a tuple: hashed per action, cheaply)."""

    player_id: str
    board: str
    period: str


@dataclass(frozen=True)
class StateChange:
    """A player's new state after `applied` actions, replacing the one with `old_hash`."""

    player_id: str
    old_hash: str
    json: str
    hash: str
    applied: int


@dataclass(frozen=True)
class DecisionRow:
    """How one action was decided; `result` is its serialized ActionResult."""

    player_id: str
    action_id: str
    status: str
    result: bytes


@dataclass(frozen=True)
class EventRow:
    """One line of score history: the change an applied action made to one board period."""

    key: BoardKey
    delta: int
    score: int
    subscore: int
    action_id: str


async def lock_players(
    conn: asyncpg.Connection, player_ids: list[str], initial_json: str, initial_hash: str
) -> dict[str, StoredState]:
    """Create rows for players seen for the first time, then lock every row of the batch.

    Rows are locked in player order, so two transactions over overlapping players cannot
    deadlock.
    """
    await conn.execute(
        "INSERT INTO player_state (player_id, state, state_hash)"
        " SELECT id, $2, $3 FROM unnest($1::uuid[]) AS id"
        " ON CONFLICT (player_id) DO NOTHING",
        player_ids,
        initial_json,
        initial_hash,
    )
    rows = await conn.fetch(
        "SELECT player_id::text, state AS json, state_hash, version FROM player_state"
        " WHERE player_id = ANY($1::uuid[]) ORDER BY player_id FOR UPDATE",
        player_ids,
    )
    return {r["player_id"]: StoredState(r["json"], r["state_hash"], r["version"]) for r in rows}


async def fetch_player_state(pool: asyncpg.Pool, player_id: str) -> StoredState | None:
    """Read a player's state without locking it; None if the player never played."""
    row = await pool.fetchrow(
        "SELECT state AS json, state_hash, version FROM player_state WHERE player_id = $1",
        player_id,
    )
    if row is None:
        return None
    return StoredState(row["json"], row["state_hash"], row["version"])


async def find_decisions(
    db: asyncpg.Connection | asyncpg.Pool, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], bytes]:
    """The serialized ActionResults of those (player id, action id) pairs decided before."""
    rows = await db.fetch(
        "SELECT player_id::text, action_id::text, result FROM applied_actions"
        " WHERE (player_id, action_id) IN"
        " (SELECT * FROM unnest($1::uuid[], $2::uuid[]))",
        [player for player, _ in keys],
        [action for _, action in keys],
    )
    return {(r["player_id"], r["action_id"]): r["result"] for r in rows}


async def standings(conn: asyncpg.Connection, keys: list[BoardKey]) -> dict[BoardKey, Standing]:
    """Current standings at those keys; a key with no row has none yet."""
    rows = await conn.fetch(
        "SELECT s.player_id::text, s.board, s.period, s.score, s.subscore, s.reached_ms,"
        " s.version, s.metadata FROM board_scores s"
        " JOIN unnest($1::uuid[], $2::text[], $3::text[]) AS k(player_id, board, period)"
        " USING (player_id, board, period)",
        [k.player_id for k in keys],
        [k.board for k in keys],
        [k.period for k in keys],
    )
    return {
        BoardKey(r["player_id"], r["board"], r["period"]): Standing(
            r["player_id"], r["score"], r["subscore"], r["reached_ms"], r["version"], r["metadata"]
        )
        for r in rows
    }


async def write_batch(
    conn: asyncpg.Connection,
    changes: list[StateChange],
    decisions: list[DecisionRow],
    scores: dict[BoardKey, Standing],
    events: list[EventRow],
) -> None:
    """Write what a batch decided, in one statement: the new states (each replacing a state
    whose hash is still the old one, or the batch fails as a bug), how each action was decided
    (so that a repeat gets the same answer), the absolute standings computed under the
    players' locks, and the score history.

    One statement rather than four, because a batch's cost is mostly its round trips: on a
    busy machine each one waits for Postgres and then for the worker's own event loop.
    """
    updated = await conn.fetchval(
        "WITH states AS ("
        " UPDATE player_state AS s SET state = u.json, state_hash = u.hash,"
        " version = s.version + u.applied, updated_at = now()"
        " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[])"
        " AS u(player_id, old_hash, json, hash, applied)"
        " WHERE s.player_id = u.player_id AND s.state_hash = u.old_hash RETURNING 1"
        "), decisions AS ("
        " INSERT INTO applied_actions (player_id, action_id, status, result)"
        " SELECT * FROM unnest($6::uuid[], $7::uuid[], $8::text[], $9::bytea[])"
        "), scores AS ("
        " INSERT INTO board_scores"
        " (player_id, board, period, score, subscore, reached_ms, version, metadata)"
        " SELECT * FROM unnest($10::uuid[], $11::text[], $12::text[], $13::bigint[],"
        " $14::bigint[], $15::bigint[], $16::bigint[], $17::text[])"
        " ON CONFLICT (player_id, board, period) DO UPDATE"
        " SET score = EXCLUDED.score, subscore = EXCLUDED.subscore,"
        " reached_ms = EXCLUDED.reached_ms, version = EXCLUDED.version,"
        " metadata = EXCLUDED.metadata"
        "), events AS ("
        " INSERT INTO score_events"
        " (player_id, board, period, delta, score, subscore, action_id)"
        " SELECT * FROM unnest($18::uuid[], $19::text[], $20::text[], $21::bigint[],"
        " $22::bigint[], $23::bigint[], $24::uuid[])"
        ") SELECT count(*) FROM states",
        [c.player_id for c in changes],
        [c.old_hash for c in changes],
        [c.json for c in changes],
        [c.hash for c in changes],
        [c.applied for c in changes],
        [r.player_id for r in decisions],
        [r.action_id for r in decisions],
        [r.status for r in decisions],
        [r.result for r in decisions],
        [k.player_id for k in scores],
        [k.board for k in scores],
        [k.period for k in scores],
        [s.score for s in scores.values()],
        [s.subscore for s in scores.values()],
        [s.reached_ms for s in scores.values()],
        [s.version for s in scores.values()],
        [s.metadata for s in scores.values()],
        [e.key.player_id for e in events],
        [e.key.board for e in events],
        [e.key.period for e in events],
        [e.delta for e in events],
        [e.score for e in events],
        [e.subscore for e in events],
        [e.action_id for e in events],
    )
    if updated != len(changes):
        raise RuntimeError("player_state changed while its rows were locked")

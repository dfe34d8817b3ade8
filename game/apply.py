"""Decide a batch of actions in one Postgres transaction, each at most once per action id.

The transaction locks the rows of every player in the batch first and only then looks the
action ids up in applied_actions, so two workers handed the same message cannot both decide
it: the second waits for the locks and then finds the first one's answer. The actions are then
decided in order, in memory, against the rows read under those locks (the stored state hash is
compared with the client's, and only a match is applied), and every decision (applied,
mismatch or rejected) is written back with its serialized result in that same transaction.
"""

import re
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
from google.protobuf.message import DecodeError
from podium.game.v1 import game_pb2

from game import standings, store
from game.rules.base import Outcome, Refusal, Ruleset
from game.state import EncodedState, encode_state
from game.store import BoardKey
from infra.boards import boards
from infra.ids import canonical_uuid
from infra.leaderboard import Standing

APPLIED = game_pb2.ACTION_STATUS_APPLIED
MISMATCH = game_pb2.ACTION_STATUS_MISMATCH
REJECTED = game_pb2.ACTION_STATUS_REJECTED

# The ledger's status column, readable in SQL without decoding the result bytes.
_STATUS_TEXT = {APPLIED: "applied", MISMATCH: "mismatch", REJECTED: "rejected"}
FAILED_STATUS_TEXT = "failed"

# A session key becomes one token of the result subject, so it may not hold "." or wildcards.
_SESSION_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")

# 9999-12-31T23:59:59.999Z: beyond it no date, hence no daily period, exists.
_MAX_TS_MS = 253_402_300_799_999


class MalformedAction(ValueError):
    """A message no gateway could have sent: it goes to the dead letters unanswered."""


class RulesetFailed(Exception):
    """The ruleset raised (or returned something unusable) instead of deciding or refusing.

    Whatever it raised, this is a fault of the ruleset on that action, never of a store: an
    OSError out of a ruleset must not be waited out as if the database were down.
    """

    def __init__(self, cause: Exception) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.kind = type(cause).__name__


def _by_ruleset(call, *args):
    """Call into the ruleset, or the code that reads what it returned."""
    try:
        return call(*args)
    except Refusal:
        raise
    except Exception as exc:
        raise RulesetFailed(exc) from exc


@dataclass(frozen=True)
class ActionMessage:
    """An Action from the stream whose ids and routing fields are known to be well formed."""

    # As the client sent it, so that the result correlates; action_key is its canonical form.
    action_id: str
    action_key: str
    player_id: str
    session_key: str
    name: str
    params_json: str
    state_hash: str
    received_ts_ms: int


@dataclass(frozen=True)
class Decision:
    """The answer to an action, and the standings Redis must show after it."""

    result: game_pb2.ActionResult
    duplicate: bool
    scores: dict[BoardKey, Standing]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def parse_action(data: bytes) -> ActionMessage:
    """Decode an Action message; MalformedAction if it cannot be routed or recorded."""
    try:
        action = game_pb2.Action.FromString(data)
    except DecodeError as exc:
        raise MalformedAction("not a podium.game.v1.Action") from exc

    try:
        player_id = canonical_uuid(action.player_id)
        action_key = canonical_uuid(action.action_id)
    except ValueError as exc:
        raise MalformedAction("player_id or action_id is not a UUID") from exc

    if not _SESSION_KEY.fullmatch(action.session_key):
        raise MalformedAction("session_key is not a subject token")
    if not 0 < action.received_ts_ms <= _MAX_TS_MS:
        raise MalformedAction("received_ts_ms is missing or out of range")

    return ActionMessage(
        action_id=action.action_id,
        action_key=action_key,
        player_id=player_id,
        session_key=action.session_key,
        name=action.name,
        params_json=action.params_json,
        state_hash=action.state_hash,
        received_ts_ms=action.received_ts_ms,
    )


async def decide_batch(
    pool: asyncpg.Pool, ruleset: Ruleset, actions: list[ActionMessage], now: int | None = None
) -> list[Decision]:
    """Decide the actions in order (or repeat the decisions already taken for their ids) and
    commit them all in one transaction; a failure commits none of them.

    `now` (Unix ms, the clock by default) decides which periods have closed.
    """
    async with pool.acquire() as conn, conn.transaction():
        batch = await _read_locked(conn, ruleset, actions, now_ms() if now is None else now)
        decisions = [batch.decide(action) for action in actions]
        await _write(conn, batch)
    return decisions


async def record_failure(pool: asyncpg.Pool, ruleset: Ruleset, action: ActionMessage) -> Decision:
    """Answer an action that could not be decided with ACTION_FAILED, once and for good, so a
    retry of its id is refused the same way instead of failing all over again."""
    async with pool.acquire() as conn, conn.transaction():
        batch = await _read_locked(conn, ruleset, [action], now_ms())
        decision = batch.fail(action)
        await _write(conn, batch)
    return decision


async def recorded_result(
    pool: asyncpg.Pool, player_id: str, action_key: str
) -> game_pb2.ActionResult | None:
    """The result an action got when it was decided; None if it has not been (yet)."""
    earlier = await store.find_decisions(pool, [(player_id, action_key)])
    result = earlier.get((player_id, action_key))
    return None if result is None else game_pb2.ActionResult.FromString(result)


async def _read_locked(
    conn: asyncpg.Connection, ruleset: Ruleset, actions: list[ActionMessage], now: int
) -> "_Batch":
    initial = _by_ruleset(lambda: encode_state(ruleset.initial_state()))
    players = sorted({a.player_id for a in actions})
    stored = await store.lock_players(conn, players, initial.json, initial.hash)

    ids = sorted({(a.player_id, a.action_key) for a in actions})
    earlier = await store.find_decisions(conn, ids)
    keys = sorted({key for a in actions for key in _board_keys(a)})
    held = await store.standings(conn, keys)
    return _Batch(ruleset, stored, earlier, held, now)


async def _write(conn: asyncpg.Connection, batch: "_Batch") -> None:
    await store.write_batch(
        conn, batch.state_changes(), batch.decisions, batch.changed_standings(), batch.events
    )


def _board_keys(action: ActionMessage) -> list[BoardKey]:
    """Every standing the action could touch: each board, in the period it was received."""
    return [
        BoardKey(action.player_id, board.id, board.period_at(action.received_ts_ms))
        for board in boards().values()
    ]


@dataclass
class _Player:
    """A player's state as the batch has it so far, and what the database holds."""

    json: str
    hash: str
    stored_hash: str
    version: int
    applied: int = 0


class _Batch:
    """Decides a batch's actions one after another, in memory, and collects the rows to write."""

    def __init__(
        self,
        ruleset: Ruleset,
        stored: dict[str, store.StoredState],
        earlier: dict[tuple[str, str], bytes],
        held: dict[BoardKey, Standing],
        now: int,
    ) -> None:
        self._ruleset = ruleset
        # Canonical JSON, but the stored hash: it is what the player's next action must quote.
        self._players = {
            player_id: _Player(encode_state(orjson.loads(s.json)).json, s.hash, s.hash, s.version)
            for player_id, s in stored.items()
        }
        self._earlier = dict(earlier)
        self._held = dict(held)
        self._changed: set[BoardKey] = set()
        self._now = now
        self.decisions: list[store.DecisionRow] = []
        self.events: list[store.EventRow] = []

    def decide(self, action: ActionMessage) -> Decision:
        earlier = self._earlier.get((action.player_id, action.action_key))
        if earlier is not None:
            return self._repeat(action, earlier)

        player = self._players[action.player_id]
        if player.hash != action.state_hash:
            return self._unchanged(action, MISMATCH)

        try:
            params = _params(action.params_json)
            outcome, changes, encoded = _by_ruleset(self._outcome, action, player, params)
        except Refusal as refusal:
            return self._unchanged(action, REJECTED, refusal)
        return self._apply(action, player, outcome, changes, encoded)

    def fail(self, action: ActionMessage) -> Decision:
        earlier = self._earlier.get((action.player_id, action.action_key))
        if earlier is not None:
            return self._repeat(action, earlier)
        refusal = Refusal("ACTION_FAILED", "the action could not be processed")
        return self._unchanged(action, REJECTED, refusal, FAILED_STATUS_TEXT)

    def state_changes(self) -> list[store.StateChange]:
        return [
            store.StateChange(player_id, p.stored_hash, p.json, p.hash, p.applied)
            for player_id, p in self._players.items()
            if p.applied
        ]

    def changed_standings(self) -> dict[BoardKey, Standing]:
        return {key: self._held[key] for key in self._changed}

    def _outcome(self, action: ActionMessage, player: _Player, params: dict[str, Any]):
        """Run the ruleset on the player's state, then work out and check what it does."""
        outcome = self._ruleset.apply(orjson.loads(player.json), action.name, params)
        changes = self._changes(action, player, standings.submissions_of(outcome))
        return outcome, changes, encode_state(outcome.state)

    def _changes(
        self, action: ActionMessage, player: _Player, submitted: dict
    ) -> dict[BoardKey, Standing]:
        """The standings the action's submissions lead to, in the period it was received in.

        A board the deployment does not have is a bug of the ruleset (TypeError); a period that
        closed before the action got here, or a score out of the board's range, refuses it.
        """
        version = player.version + player.applied + 1
        changes = {}
        for board_id, submission in submitted.items():
            board = boards().get(board_id)
            if board is None:
                raise TypeError(f"ruleset submitted to an unknown board {board_id!r}")
            period = board.period_at(action.received_ts_ms)
            closed_at = board.closed_at_ms(period)
            if closed_at is not None and self._now > closed_at:
                raise Refusal("PERIOD_CLOSED", "the period this action was played in has closed")

            key = BoardKey(action.player_id, board_id, period)
            standing = standings.combine(
                board,
                self._held.get(key),
                submission,
                action.player_id,
                action.received_ts_ms,
                version,
            )
            if standing is not None:
                changes[key] = standing
        return changes

    def _apply(
        self,
        action: ActionMessage,
        player: _Player,
        outcome: Outcome,
        changes: dict[BoardKey, Standing],
        encoded: EncodedState,
    ) -> Decision:
        player.json, player.hash = encoded.json, encoded.hash
        player.applied += 1

        for key, standing in changes.items():
            old = self._held.get(key)
            delta = standing.score - (old.score if old else 0)
            self._held[key] = standing
            self._changed.add(key)
            self.events.append(
                store.EventRow(key, delta, standing.score, standing.subscore, action.action_key)
            )

        result = game_pb2.ActionResult(
            action_id=action.action_id,
            status=APPLIED,
            state_json=encoded.json,
            state_hash=encoded.hash,
            score=outcome.score,
        )
        self._record(action, result)
        return Decision(result, False, changes)

    def _repeat(self, action: ActionMessage, earlier: bytes) -> Decision:
        """The first answer again; if it applied, Redis gets the player's current standings
        again, in case the worker that decided it died before writing them (a write of a
        version Redis already has changes nothing there)."""
        result = game_pb2.ActionResult.FromString(earlier)
        scores = {}
        if result.status == APPLIED:
            keys = _board_keys(action)
            scores = {key: self._held[key] for key in keys if key in self._held}
        return Decision(result, True, scores)

    def _unchanged(
        self,
        action: ActionMessage,
        status: int,
        refusal: Refusal | None = None,
        status_text: str = "",
    ) -> Decision:
        player = self._players[action.player_id]
        result = game_pb2.ActionResult(
            action_id=action.action_id,
            status=status,
            state_json=player.json,
            state_hash=player.hash,
            score=_by_ruleset(self._ruleset.score_of, orjson.loads(player.json)),
        )
        if refusal is not None:
            result.error_code = refusal.code
            result.error_message = refusal.message
        self._record(action, result, status_text)
        return Decision(result, False, {})

    def _record(
        self, action: ActionMessage, result: game_pb2.ActionResult, status_text: str = ""
    ) -> None:
        data = result.SerializeToString()
        self._earlier[action.player_id, action.action_key] = data
        status = status_text or _STATUS_TEXT[result.status]
        self.decisions.append(store.DecisionRow(action.player_id, action.action_key, status, data))


def _params(params_json: str) -> dict[str, Any]:
    try:
        params = orjson.loads(params_json)
    except orjson.JSONDecodeError:
        params = None
    if not isinstance(params, dict):
        raise Refusal("INVALID_PARAMS", "params must be a JSON object")
    return params

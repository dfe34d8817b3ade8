"""Decide one action in one Postgres transaction, at most once per (player, action id).

The transaction locks the player's row first and only then looks the action id up in
applied_actions, so two workers handed the same redelivered message cannot both decide it:
the second waits for the lock and then finds the first one's answer. Every decision (applied,
mismatch or rejected) is recorded with its serialized result in that same transaction.
"""

import re
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
from google.protobuf.message import DecodeError
from podium.game.v1 import game_pb2

from game import store
from game.rules.base import MAX_SCORE, Outcome, Refusal, Ruleset
from game.state import EncodedState, encode_state
from infra.boards import BOARDS
from infra.ids import canonical_uuid

APPLIED = game_pb2.ACTION_STATUS_APPLIED
MISMATCH = game_pb2.ACTION_STATUS_MISMATCH
REJECTED = game_pb2.ACTION_STATUS_REJECTED

# The ledger's status column, readable in SQL without decoding the result bytes.
_STATUS_TEXT = {APPLIED: "applied", MISMATCH: "mismatch", REJECTED: "rejected"}

# A session key becomes one token of the result subject, so it may not hold "." or wildcards.
_SESSION_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# 9999-12-31T23:59:59.999Z: beyond it no date, hence no daily period, exists.
_MAX_TS_MS = 253_402_300_799_999


class MalformedAction(ValueError):
    """A message no gateway could have sent: it is dropped, as nobody can be answered."""


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
    """The answer to an action, and the absolute board scores Redis must show after it."""

    result: game_pb2.ActionResult
    duplicate: bool
    scores: list[store.BoardScore]


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

    if not _SESSION_KEY.match(action.session_key):
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


async def decide(pool: asyncpg.Pool, ruleset: Ruleset, action: ActionMessage) -> Decision:
    """Decide `action`, or return the decision already taken for its id, and commit."""
    initial = encode_state(ruleset.initial_state())

    async with pool.acquire() as conn, conn.transaction():
        stored = await store.lock_player_state(conn, action.player_id, initial.json, initial.hash)

        earlier = await store.find_decision(conn, action.player_id, action.action_key)
        if earlier is not None:
            return await _repeat(conn, action, earlier)

        decision = await _decide_new(conn, ruleset, action, stored)
        await store.record_decision(
            conn,
            action.player_id,
            action.action_key,
            _STATUS_TEXT[decision.result.status],
            decision.result.SerializeToString(),
        )
    return decision


async def recorded_result(
    pool: asyncpg.Pool, player_id: str, action_key: str
) -> game_pb2.ActionResult | None:
    """The result an action got when it was decided; None if it has not been (yet)."""
    earlier = await store.find_decision(pool, player_id, action_key)
    if earlier is None:
        return None
    return game_pb2.ActionResult.FromString(earlier)


async def _repeat(conn: asyncpg.Connection, action: ActionMessage, earlier: bytes) -> Decision:
    """The first answer again; if it applied, Redis gets the player's current totals again,
    in case the worker that decided it died before writing them."""
    result = game_pb2.ActionResult.FromString(earlier)
    scores = []
    if result.status == APPLIED:
        scores = await store.action_board_scores(conn, action.player_id, action.action_key)
    return Decision(result, duplicate=True, scores=scores)


async def _decide_new(
    conn: asyncpg.Connection, ruleset: Ruleset, action: ActionMessage, stored: store.StoredState
) -> Decision:
    state = orjson.loads(stored.json)
    score = ruleset.score_of(state)
    # Quote the stored hash: it is what the player's next action is compared with.
    current = EncodedState(encode_state(state).json, stored.hash)
    if stored.hash != action.state_hash:
        return _unchanged(action, current, score, MISMATCH)

    try:
        outcome = ruleset.apply(state, action.name, _params(action.params_json))
        deltas = _board_deltas(outcome, action.received_ts_ms)
        await _check_range(conn, action.player_id, outcome, deltas)
    except Refusal as refusal:
        return _unchanged(action, current, score, REJECTED, refusal)

    encoded = encode_state(outcome.state)
    version = await store.save_state(
        conn, action.player_id, stored.hash, encoded.json, encoded.hash
    )
    if version is None:
        raise RuntimeError("player_state changed while its row was locked")

    scores = []
    if deltas:
        scores = await store.add_board_scores(conn, action.player_id, action.action_key, deltas)
    result = game_pb2.ActionResult(
        action_id=action.action_id,
        status=APPLIED,
        state_json=encoded.json,
        state_hash=encoded.hash,
        score=outcome.score,
    )
    return Decision(result, duplicate=False, scores=scores)


def _unchanged(
    action: ActionMessage,
    current: EncodedState,
    score: int,
    status: int,
    refusal: Refusal | None = None,
) -> Decision:
    result = game_pb2.ActionResult(
        action_id=action.action_id,
        status=status,
        state_json=current.json,
        state_hash=current.hash,
        score=score,
    )
    if refusal is not None:
        result.error_code = refusal.code
        result.error_message = refusal.message
    return Decision(result, duplicate=False, scores=[])


def _params(params_json: str) -> dict[str, Any]:
    try:
        params = orjson.loads(params_json)
    except orjson.JSONDecodeError:
        params = None
    if not isinstance(params, dict):
        raise Refusal("INVALID_PARAMS", "params must be a JSON object")
    return params


def _board_deltas(outcome: Outcome, received_ts_ms: int) -> list[store.BoardDelta]:
    """Stamp each delta with the period the action was received in; drop zero deltas.

    A delta for an unknown board, or one that is not an int, is a bug in the ruleset, not in
    the action, so it fails the message (and is logged) rather than refusing the player.
    """
    deltas = []
    for board_id, delta in outcome.board_deltas.items():
        board = BOARDS.get(board_id)
        if board is None or type(delta) is not int:
            raise TypeError(f"ruleset returned a bad board delta for {board_id!r}")
        if delta:
            deltas.append(store.BoardDelta(board_id, board.period_at(received_ts_ms), delta))
    return deltas


async def _check_range(
    conn: asyncpg.Connection, player_id: str, outcome: Outcome, deltas: list[store.BoardDelta]
) -> None:
    """Refuse an outcome that would leave a score Redis cannot hold exactly."""
    out_of_range = Refusal("SCORE_OUT_OF_RANGE", "the resulting score is out of range")
    if abs(outcome.score) > MAX_SCORE:
        raise out_of_range
    if not deltas:
        return

    current = await store.board_scores(conn, player_id, deltas)
    for d in deltas:
        if abs(current.get((d.board, d.period), 0) + d.delta) > MAX_SCORE:
            raise out_of_range

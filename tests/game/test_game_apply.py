"""Decoding actions from the stream, and decisions the default game cannot reach.

decide() runs here against the real database with small rulesets of the tests' own, to reach
the score range guard and zero deltas.
"""

import asyncio
import secrets
import time
import uuid

import pytest
from podium.game.v1 import game_pb2

from game.apply import APPLIED, MISMATCH, REJECTED, MalformedAction, decide, parse_action
from game.rules import load_ruleset
from game.rules.base import MAX_SCORE, Outcome
from game.state import state_hash


def _player() -> str:
    return str(uuid.uuid4())


def _action(**fields) -> game_pb2.Action:
    values = {
        "action_id": str(uuid.uuid4()),
        "player_id": _player(),
        "session_key": secrets.token_hex(16),
        "name": "score",
        "params_json": '{"points": 5}',
        "state_hash": "x",
        "received_ts_ms": int(time.time() * 1000),
    }
    values.update(fields)
    return game_pb2.Action(**values)


class _BigRuleset:
    """Puts a fixed delta on the global board each time; its state counts the plays."""

    name = "big"
    primary_board = "global"

    def __init__(self, delta: int) -> None:
        self.delta = delta

    def initial_state(self) -> dict:
        return {"n": 0}

    def score_of(self, state: dict) -> int:
        return state["n"]

    def apply(self, state: dict, action: str, params: dict) -> Outcome:
        n = state["n"] + 1
        return Outcome(state={"n": n}, board_deltas={"global": self.delta, "daily": 0}, score=n)


def test_parse_keeps_the_action_id_as_sent_and_canonicalises_ids():
    player = uuid.uuid4()
    action_id = str(uuid.uuid4()).upper()

    action = parse_action(
        _action(player_id=str(player).upper(), action_id=action_id).SerializeToString()
    )

    assert action.player_id == str(player)
    assert action.action_id == action_id
    assert action.action_key == action_id.lower()


@pytest.mark.parametrize("data", [b"\x0a\xff", b"\xff\xff\xff\xff", b"not a protobuf at all"])
def test_parse_refuses_bytes_that_are_not_an_action(data):
    with pytest.raises(MalformedAction):
        parse_action(data)


@pytest.mark.parametrize(
    "fields",
    [
        {"action_id": "not-a-uuid"},
        {"action_id": ""},
        {"player_id": "42"},
        {"player_id": ""},
        {"session_key": ""},
        {"session_key": "a.b"},
        {"session_key": ">"},
        {"session_key": "x" * 65},
        {"received_ts_ms": 0},
        {"received_ts_ms": -5},
        {"received_ts_ms": 10**15},
    ],
)
def test_parse_refuses_actions_that_cannot_be_routed_or_recorded(fields):
    data = _action(**fields).SerializeToString()

    with pytest.raises(MalformedAction):
        parse_action(data)


async def test_score_beyond_what_redis_holds_exactly_is_refused(pg):
    ruleset = _BigRuleset(MAX_SCORE)
    player = _player()
    first = parse_action(
        _action(player_id=player, state_hash=state_hash({"n": 0})).SerializeToString()
    )
    second_hash = state_hash({"n": 1})
    second = parse_action(_action(player_id=player, state_hash=second_hash).SerializeToString())

    applied = await decide(pg, ruleset, first)
    refused = await decide(pg, ruleset, second)

    assert applied.result.status == APPLIED
    assert [s.score for s in applied.scores] == [MAX_SCORE]
    assert refused.result.status == REJECTED
    assert refused.result.error_code == "SCORE_OUT_OF_RANGE"
    assert refused.result.state_hash == second_hash
    assert refused.scores == []
    row = await pg.fetchrow("SELECT version FROM player_state WHERE player_id = $1", player)
    score = await pg.fetchval(
        "SELECT score FROM board_scores WHERE player_id = $1 AND board = 'global'", player
    )
    assert row["version"] == 1
    assert score == MAX_SCORE


async def test_zero_deltas_apply_the_state_but_touch_no_board(pg):
    ruleset = _BigRuleset(0)
    player = _player()
    action = parse_action(
        _action(player_id=player, state_hash=state_hash({"n": 0})).SerializeToString()
    )

    decision = await decide(pg, ruleset, action)

    assert decision.result.status == APPLIED
    assert decision.scores == []
    boards = await pg.fetchval("SELECT count(*) FROM board_scores WHERE player_id = $1", player)
    events = await pg.fetchval("SELECT count(*) FROM score_events WHERE player_id = $1", player)
    assert (boards, events) == (0, 0)


async def test_racing_transactions_on_one_hash_apply_exactly_once(pg):
    ruleset = load_ruleset("default")
    player = _player()
    initial = state_hash(ruleset.initial_state())
    actions = [
        parse_action(_action(player_id=player, state_hash=initial).SerializeToString())
        for _ in range(5)
    ]

    decisions = await asyncio.gather(*(decide(pg, ruleset, a) for a in actions))

    statuses = sorted(d.result.status for d in decisions)
    assert statuses == [APPLIED, MISMATCH, MISMATCH, MISMATCH, MISMATCH]
    version = await pg.fetchval("SELECT version FROM player_state WHERE player_id = $1", player)
    assert version == 1


async def test_one_action_decided_by_racing_transactions_is_decided_once(pg):
    ruleset = load_ruleset("default")
    player = _player()
    initial = state_hash(ruleset.initial_state())
    action = parse_action(_action(player_id=player, state_hash=initial).SerializeToString())

    decisions = await asyncio.gather(*(decide(pg, ruleset, action) for _ in range(5)))

    assert sorted(d.duplicate for d in decisions) == [False, True, True, True, True]
    first = decisions[0].result.SerializeToString()
    assert all(d.result.SerializeToString() == first for d in decisions)
    assert decisions[0].result.status == APPLIED
    version = await pg.fetchval("SELECT version FROM player_state WHERE player_id = $1", player)
    events = await pg.fetchval("SELECT count(*) FROM score_events WHERE player_id = $1", player)
    assert (version, events) == (1, 2)

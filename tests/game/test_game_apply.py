"""Decoding actions from the stream, deciding batches of them, and decisions the default game
cannot reach.

decide_batch() runs here against the real shard databases, with the default game and with small
rulesets of the tests' own, to reach the score range guard, zero deltas and failures.
"""

import asyncio
import secrets
import time
import uuid

import pytest
from podium.game.v1 import game_pb2

from game import store
from game.apply import (
    APPLIED,
    MISMATCH,
    REJECTED,
    MalformedAction,
    RulesetFailed,
    decide_batch,
    parse_action,
    record_failure,
)
from game.rules import load_ruleset
from game.rules.base import MAX_SCORE, Outcome
from game.state import state_hash
from game.store import BoardKey
from infra.leaderboard import Standing
from tests.game.rulesets import ExplodingRuleset, FloatRuleset


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


def _parsed(**fields):
    return parse_action(_action(**fields).SerializeToString())


async def _decide(shards, ruleset, action):
    [decision] = await decide_batch(shards.for_player(action.player_id), ruleset, [action])
    return decision


async def test_score_beyond_what_redis_holds_exactly_is_refused(shards):
    ruleset = _BigRuleset(MAX_SCORE)
    player = _player()
    pg = shards.for_player(player)
    first = _parsed(player_id=player, state_hash=state_hash({"n": 0}))
    second_hash = state_hash({"n": 1})
    second = _parsed(player_id=player, state_hash=second_hash)

    applied = await _decide(shards, ruleset, first)
    refused = await _decide(shards, ruleset, second)

    assert applied.result.status == APPLIED
    assert [s.score for s in applied.scores.values()] == [MAX_SCORE]
    assert refused.result.status == REJECTED
    assert refused.result.error_code == "SCORE_OUT_OF_RANGE"
    assert refused.result.state_hash == second_hash
    assert refused.scores == {}
    row = await pg.fetchrow("SELECT version FROM player_state WHERE player_id = $1", player)
    score = await pg.fetchval(
        "SELECT score FROM board_scores WHERE player_id = $1 AND board = 'global'", player
    )
    assert row["version"] == 1
    assert score == MAX_SCORE


async def test_zero_deltas_apply_the_state_but_touch_no_board(shards):
    ruleset = _BigRuleset(0)
    player = _player()
    pg = shards.for_player(player)
    action = _parsed(player_id=player, state_hash=state_hash({"n": 0}))

    decision = await _decide(shards, ruleset, action)

    assert decision.result.status == APPLIED
    assert decision.scores == {}
    boards = await pg.fetchval("SELECT count(*) FROM board_scores WHERE player_id = $1", player)
    events = await pg.fetchval("SELECT count(*) FROM score_events WHERE player_id = $1", player)
    assert (boards, events) == (0, 0)


async def test_racing_transactions_on_one_hash_apply_exactly_once(shards):
    ruleset = load_ruleset("default")
    player = _player()
    initial = state_hash(ruleset.initial_state())
    actions = [_parsed(player_id=player, state_hash=initial) for _ in range(5)]

    decisions = await asyncio.gather(*(_decide(shards, ruleset, a) for a in actions))

    statuses = sorted(d.result.status for d in decisions)
    assert statuses == [APPLIED, MISMATCH, MISMATCH, MISMATCH, MISMATCH]
    pg = shards.for_player(player)
    version = await pg.fetchval("SELECT version FROM player_state WHERE player_id = $1", player)
    assert version == 1


async def test_one_action_decided_by_racing_transactions_is_decided_once(shards):
    ruleset = load_ruleset("default")
    player = _player()
    initial = state_hash(ruleset.initial_state())
    action = _parsed(player_id=player, state_hash=initial)

    decisions = await asyncio.gather(*(_decide(shards, ruleset, action) for _ in range(5)))

    assert sorted(d.duplicate for d in decisions) == [False, True, True, True, True]
    first = decisions[0].result.SerializeToString()
    assert all(d.result.SerializeToString() == first for d in decisions)
    assert decisions[0].result.status == APPLIED
    pg = shards.for_player(player)
    version = await pg.fetchval("SELECT version FROM player_state WHERE player_id = $1", player)
    events = await pg.fetchval("SELECT count(*) FROM score_events WHERE player_id = $1", player)
    assert (version, events) == (1, 3)


async def test_a_batch_decides_each_players_actions_in_order(shards):
    """One transaction, two players: a chain applies link by link, a stale hash in the middle
    is a mismatch that the next link (quoting the applied state) gets past, and the same
    action id twice in one batch is decided once."""
    ruleset = load_ruleset("default")
    alice, bob = _player(), _player()
    states = [{"total": t, "plays": n} for n, t in enumerate([0, 10, 30])]
    hashes = [state_hash(state) for state in states]
    chain = [
        _parsed(player_id=alice, state_hash=hashes[0], params_json='{"points": 10}'),
        _parsed(player_id=alice, state_hash=hashes[0], params_json='{"points": 99}'),
        _parsed(player_id=alice, state_hash=hashes[1], params_json='{"points": 20}'),
    ]
    bobs = _parsed(player_id=bob, state_hash=hashes[0], params_json='{"points": 7}')
    batch = [chain[0], bobs, chain[1], chain[2], chain[2]]
    pool = shards.for_player(alice)
    if shards.for_player(bob) is not pool:
        batch.remove(bobs)

    decisions = await decide_batch(pool, ruleset, batch)

    by_id = [(d.result.action_id, d.result.status, d.duplicate) for d in decisions]
    assert [row for row in by_id if row[0] != bobs.action_id] == [
        (chain[0].action_id, APPLIED, False),
        (chain[1].action_id, MISMATCH, False),
        (chain[2].action_id, APPLIED, False),
        (chain[2].action_id, APPLIED, True),
    ]
    assert decisions[-1].result == decisions[-2].result
    assert decisions[-1].result.state_hash == hashes[2]
    row = await pool.fetchrow(
        "SELECT state_hash, version FROM player_state WHERE player_id = $1", alice
    )
    history = await pool.fetch(
        "SELECT delta, score FROM score_events WHERE player_id = $1 AND board = 'global'"
        " ORDER BY score",
        alice,
    )
    assert (row["state_hash"], row["version"]) == (hashes[2], 2)
    assert [(h["delta"], h["score"]) for h in history] == [(10, 10), (20, 30)]
    assert decisions[-1].scores[BoardKey(alice, "global", "all")].score == 30


async def test_a_batch_that_fails_commits_nothing(shards):
    ruleset = ExplodingRuleset()
    player = _player()
    pool = shards.for_player(player)
    initial = state_hash(ruleset.initial_state())
    fine = _parsed(player_id=player, state_hash=initial, params_json='{"points": 1}')
    after_fine = state_hash({"total": 100})
    poison = _parsed(player_id=player, state_hash=after_fine, params_json='{"points": 0}')

    with pytest.raises(RulesetFailed) as failed:
        await decide_batch(pool, ruleset, [fine, poison])

    decided = await pool.fetchval(
        "SELECT count(*) FROM applied_actions WHERE player_id = $1", player
    )
    assert failed.value.kind == "ZeroDivisionError"
    assert decided == 0


async def test_a_failure_is_recorded_once_and_answered_the_same_again(shards):
    ruleset = ExplodingRuleset()
    player = _player()
    pool = shards.for_player(player)
    poison = _parsed(player_id=player, state_hash="whatever", params_json='{"points": 0}')

    first = await record_failure(pool, ruleset, poison)
    again = await record_failure(pool, ruleset, poison)
    [retried] = await decide_batch(pool, ruleset, [poison])

    assert (first.result.status, first.result.error_code) == (REJECTED, "ACTION_FAILED")
    assert first.result.state_hash == state_hash(ruleset.initial_state())
    assert again.duplicate and retried.duplicate
    assert again.result == first.result == retried.result
    rows = await pool.fetch("SELECT status FROM applied_actions WHERE player_id = $1", player)
    assert [r["status"] for r in rows] == ["failed"]


async def test_a_state_reads_back_as_written_so_batching_changes_no_outcome(shards):
    """1e16 is a float to the ruleset; read back from storage it must still be one, or the
    same actions give other states (and hashes) when decided in two batches than in one."""
    ruleset = FloatRuleset()
    together, apart = _player(), _player()
    after_set = state_hash({"v": 1e16})

    def actions(player):
        return [
            _parsed(player_id=player, name="set", state_hash=state_hash({"v": 0})),
            _parsed(player_id=player, name="div", state_hash=after_set),
        ]

    one_batch = await decide_batch(shards.for_player(together), ruleset, actions(together))
    two_batches = [await _decide(shards, ruleset, action) for action in actions(apart)]

    assert [d.result.state_hash for d in one_batch] == [d.result.state_hash for d in two_batches]
    assert one_batch[-1].result.state_json == '{"v":1428571428571428.0}'


async def test_a_state_write_whose_old_hash_no_longer_matches_fails_and_writes_nothing(shards):
    """The guard under write_batch: a state replaced behind the batch's back is a bug, and the
    batch's decisions, standings and history must not land without it."""
    player, action_id = _player(), str(uuid.uuid4())
    pool = shards.for_player(player)
    await pool.execute(
        "INSERT INTO player_state (player_id, state, state_hash) VALUES ($1, '{}', 'h1')", player
    )
    key = BoardKey(player, "global", "all")

    with pytest.raises(RuntimeError, match="changed while its rows were locked"):
        async with pool.acquire() as conn, conn.transaction():
            await store.write_batch(
                conn,
                [store.StateChange(player, "not-h1", '{"total": 1}', "h2", 1)],
                [store.DecisionRow(player, action_id, "applied", b"result")],
                {key: Standing(player, 1, 0, 1, 1, None)},
                [store.EventRow(key, 1, 1, 0, action_id)],
            )

    written = await pool.fetchrow(
        "SELECT (SELECT state_hash FROM player_state WHERE player_id = $1) AS hash,"
        " (SELECT count(*) FROM applied_actions WHERE player_id = $1) AS decisions,"
        " (SELECT count(*) FROM board_scores WHERE player_id = $1) AS scores,"
        " (SELECT count(*) FROM score_events WHERE player_id = $1) AS events",
        player,
    )
    assert tuple(written) == ("h1", 0, 0, 0)

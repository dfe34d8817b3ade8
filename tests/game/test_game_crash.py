"""kill -9 of a worker in the middle of a burst: nothing lost, nothing applied twice."""

import asyncio
import os
import signal
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import orjson
import pytest
from podium.game.v1 import game_pb2

from game.rules import load_ruleset
from game.state import state_hash

ROOT = Path(__file__).resolve().parents[2]
PLAYERS = 50
ACTIONS_PER_PLAYER = 40
KILL_AFTER_RESULTS = 400
SETTLE_SECONDS = 90.0
STOP_SECONDS = 15.0
APPLIED = game_pb2.ACTION_STATUS_APPLIED
REJECTED = game_pb2.ACTION_STATUS_REJECTED


def _plays(client, player: str) -> tuple[list[game_pb2.Action], int]:
    """A player's actions, each quoting the hash the ones before leave; every tenth asks for 0
    points, which the rules refuse without changing the state. Returns them and the total."""
    ruleset = load_ruleset("default")
    state, actions = ruleset.initial_state(), []
    for n in range(ACTIONS_PER_PLAYER):
        points = 0 if n % 10 == 9 else 1 + (n * 7) % 50
        actions.append(client.action(player, state_hash(state), params={"points": points}))
        if points:
            state = ruleset.apply(state, "score", {"points": points}).state
    return actions, state["total"]


async def _start_worker(env: dict, log_path: Path) -> asyncio.subprocess.Process:
    log = log_path.open("ab")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "game", env=env, cwd=ROOT, stdout=log, stderr=log
    )
    log.close()
    deadline = time.monotonic() + 20
    while b'"serving"' not in log_path.read_bytes():
        assert process.returncode is None and time.monotonic() < deadline, "worker did not start"
        await asyncio.sleep(0.05)
    return process


@pytest.fixture
async def worker_env(service_env, spare_names, worker_settings):
    return {
        **os.environ,
        **service_env,
        "PODIUM_NAMESPACE": spare_names.namespace,
        "PODIUM_GAME_LISTEN": "127.0.0.1:0",
        "PODIUM_LEASE_SECONDS": str(worker_settings().lease_seconds),
        "PODIUM_FETCH_TIMEOUT_MS": "200",
    }


async def _answers(client, count: int, on_progress) -> dict[str, game_pb2.ActionResult]:
    """Collect results until `count` actions are answered; every copy of an answer must be the
    same. on_progress(answered) runs after each new answer."""
    answers: dict[str, set[bytes]] = {}
    deadline = time.monotonic() + SETTLE_SECONDS
    while len(answers) < count:
        assert time.monotonic() < deadline, f"only {len(answers)} of {count} answered"
        result = await client.result()
        copies = answers.setdefault(result.action_id, set())
        copies.add(result.SerializeToString())
        if len(copies) == 1:
            await on_progress(len(answers))
    assert all(len(copies) == 1 for copies in answers.values())
    return {key: game_pb2.ActionResult.FromString(c.pop()) for key, c in answers.items()}


async def _assert_each_applied_once(plays, results, shards, redis_score, names) -> None:
    for player, (actions, total) in plays.items():
        expected = [REJECTED if a.params_json == '{"points":0}' else APPLIED for a in actions]
        assert [results[a.action_id].status for a in actions] == expected
        await _assert_stored_exactly_once(shards, player, actions)
        await _assert_totals(shards, redis_score, names, player, actions, total)


async def test_kill_9_in_a_burst_of_2000_loses_nothing_and_applies_nothing_twice(
    worker_env, spare_names, make_client, shards, redis_score, tmp_path
):
    client = await make_client(spare_names)
    plays = {player: _plays(client, player) for player in _players()}
    doomed = await _start_worker(worker_env, tmp_path / "doomed.log")
    survivor = await _start_worker(worker_env, tmp_path / "survivor.log")
    started = [doomed, survivor]

    async def kill_one(answered: int) -> None:
        if answered == KILL_AFTER_RESULTS:
            doomed.send_signal(signal.SIGKILL)
            started.append(await _start_worker(worker_env, tmp_path / "replacement.log"))

    try:
        await asyncio.gather(*(client.send(a) for actions, _ in plays.values() for a in actions))
        results = await _answers(client, PLAYERS * ACTIONS_PER_PLAYER, kill_one)
    finally:
        exits = await _stop(started)

    assert exits == [-signal.SIGKILL, 0, 0]
    assert (
        "partition_consumer_recreated"
        in (tmp_path / "replacement.log").read_text() + (tmp_path / "survivor.log").read_text()
    )
    await _assert_each_applied_once(plays, results, shards, redis_score, spare_names)


async def test_sigterm_in_a_burst_acks_the_batch_in_hand_and_hands_over_the_rest(
    worker_env, spare_names, make_client, shards, redis_score, tmp_path
):
    client = await make_client(spare_names)
    plays = {player: _plays(client, player) for player in _players()}
    leaving = await _start_worker(worker_env, tmp_path / "leaving.log")
    started = [leaving]
    stopped_at = []

    async def stop_one(answered: int) -> None:
        if answered == KILL_AFTER_RESULTS:
            leaving.send_signal(signal.SIGTERM)
            stopped_at.append(time.monotonic())
            started.append(await _start_worker(worker_env, tmp_path / "next.log"))

    try:
        await asyncio.gather(*(client.send(a) for actions, _ in plays.values() for a in actions))
        results = await _answers(client, PLAYERS * ACTIONS_PER_PLAYER, stop_one)
        exit_code = await asyncio.wait_for(leaving.wait(), STOP_SECONDS)
    finally:
        exits = await _stop(started)

    assert exit_code == 0 and exits == [0, 0]
    log = (tmp_path / "leaving.log").read_text()
    assert "partition_let_go" in log and "consumer_stop_timeout" not in log
    await _assert_each_applied_once(plays, results, shards, redis_score, spare_names)


def _players() -> list[str]:
    return [str(uuid.uuid4()) for _ in range(PLAYERS)]


async def _stop(processes: list[asyncio.subprocess.Process]) -> list[int]:
    for process in processes:
        if process.returncode is None:
            process.terminate()
    return [await process.wait() for process in processes]


async def _assert_stored_exactly_once(shards, player, actions) -> None:
    pg = shards.for_player(player)
    decided = await pg.fetch(
        "SELECT action_id::text, status FROM applied_actions WHERE player_id = $1", player
    )
    statuses = {r["action_id"]: r["status"] for r in decided}
    assert Counter(r["action_id"] for r in decided) == Counter(a.action_id for a in actions)
    applied = [a for a in actions if statuses[a.action_id] == "applied"]
    events = await pg.fetch(
        "SELECT action_id::text FROM score_events WHERE player_id = $1 AND board = 'global'",
        player,
    )
    assert Counter(r["action_id"] for r in events) == Counter(a.action_id for a in applied)


async def _assert_totals(shards, redis_score, names, player, actions, total) -> None:
    pg = shards.for_player(player)
    points = sum(orjson.loads(a.params_json)["points"] for a in actions)
    state = await pg.fetchrow(
        "SELECT state::text, version FROM player_state WHERE player_id = $1", player
    )
    boards = await pg.fetch(
        "SELECT board, period, score FROM board_scores WHERE player_id = $1", player
    )
    history = await pg.fetchval(
        "SELECT sum(delta) FROM score_events WHERE player_id = $1 AND board = 'global'", player
    )
    assert total == points
    assert orjson.loads(state["state"])["total"] == total
    assert state["version"] == sum(1 for a in actions if a.params_json != '{"points":0}')
    assert history == total
    for row in boards:
        assert row["score"] == total
        assert await redis_score(names, row["board"], row["period"], player) == total

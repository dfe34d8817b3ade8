"""Poison: actions that keep failing go to the dead letters, once, and nothing waits on them."""

import asyncio
import os
import sys
import uuid
from pathlib import Path

from podium.game.v1 import game_pb2

from game.dead_letters import REASON_HEADER, SEQUENCE_HEADER, TRUNCATED_HEADER
from game.state import state_hash
from game.worker import running
from tests.game.rulesets import ExplodingRuleset, FileReadingRuleset

ROOT = Path(__file__).resolve().parents[2]
INITIAL_HASH = state_hash(ExplodingRuleset().initial_state())
APPLIED = game_pb2.ACTION_STATUS_APPLIED
REJECTED = game_pb2.ACTION_STATUS_REJECTED
MAX_DELIVERIES = 2


async def _ledger(shards, player: str) -> list[str]:
    rows = await shards.for_player(player).fetch(
        "SELECT status FROM applied_actions WHERE player_id = $1 ORDER BY decided_at", player
    )
    return [r["status"] for r in rows]


async def test_a_poison_action_is_dead_lettered_once_and_the_queue_goes_on(
    spare_names, worker_settings, make_client, dead_letters, shards
):
    settings = worker_settings(namespace=spare_names.namespace, max_failures=3)
    player, other = str(uuid.uuid4()), str(uuid.uuid4())

    async with running(settings, ruleset=ExplodingRuleset()):
        client = await make_client(spare_names)
        poison = client.action(player, INITIAL_HASH, params={"points": 0})
        after = client.action(player, INITIAL_HASH, params={"points": 4})
        elsewhere = client.action(other, INITIAL_HASH, params={"points": 5})
        for action in (poison, after, elsewhere):
            await client.send(action)
        results = {r.action_id: r for r in [await client.result() for _ in range(3)]}

        await client.send(poison, msg_id=f"retry-{uuid.uuid4()}")
        repeated = await client.result()
        letters = await dead_letters(spare_names)

    refused = results[poison.action_id]
    assert (refused.status, refused.error_code) == (REJECTED, "ACTION_FAILED")
    assert refused.state_hash == INITIAL_HASH
    assert results[after.action_id].status == APPLIED
    assert results[elsewhere.action_id].status == APPLIED
    assert repeated == refused
    assert len(letters) == 1
    assert game_pb2.Action.FromString(letters[0].data) == poison
    assert letters[0].headers[REASON_HEADER] == "failed 3 times: ZeroDivisionError"
    assert await _ledger(shards, player) == ["failed", "applied"]


async def test_an_oserror_out_of_the_ruleset_is_its_fault_and_is_dead_lettered(
    spare_names, worker_settings, make_client, dead_letters
):
    """Were it taken for a store being down, it would be retried for ever, blocking the
    actions behind it."""
    player = str(uuid.uuid4())

    async with running(worker_settings(namespace=spare_names.namespace), FileReadingRuleset()):
        client = await make_client(spare_names)
        poison = client.action(player, INITIAL_HASH, params={"points": 0})
        behind = client.action(player, INITIAL_HASH, params={"points": 5})
        await client.send(poison)
        await client.send(behind)
        results = {r.action_id: r for r in [await client.result() for _ in range(2)]}
        letters = await dead_letters(spare_names)

    assert results[poison.action_id].error_code == "ACTION_FAILED"
    assert results[behind.action_id].status == APPLIED
    assert [m.headers[REASON_HEADER] for m in letters] == ["failed 3 times: FileNotFoundError"]


async def test_a_poison_as_large_as_nats_allows_is_dead_lettered_cut_to_fit(
    spare_names, worker_settings, make_client, dead_letters, nats_client
):
    """The dead letter adds headers to the original payload; unchecked, NATS would refuse it
    and close the connection for good."""
    player = str(uuid.uuid4())
    client = await make_client(spare_names)
    poison = client.action(player, INITIAL_HASH, params={"points": 0})
    padding = nats_client.max_payload - len(poison.SerializeToString()) - 200
    poison.params_json = '{"points": 0, "pad": "' + "x" * padding + '"}'
    size = len(poison.SerializeToString())

    async with running(worker_settings(namespace=spare_names.namespace), ExplodingRuleset()):
        await client.send(poison)
        refused = await client.result()
        after = await client.play(client.action(str(uuid.uuid4()), INITIAL_HASH))
        letters = await dead_letters(spare_names)

    assert refused.error_code == "ACTION_FAILED"
    assert after.status == APPLIED
    assert len(letters) == 1
    assert int(letters[0].headers[TRUNCATED_HEADER]) == size
    assert poison.SerializeToString().startswith(letters[0].data)


async def test_an_action_that_kills_every_worker_is_dead_lettered_after_its_deliveries(
    spare_names, worker_settings, service_env, make_client, dead_letters, shards
):
    """Each worker process that reaches the poison dies on it; a supervisor starts another,
    which takes the partition over. After MAX_DELIVERIES tries the poison is set aside, and the
    actions queued behind it apply."""
    player = str(uuid.uuid4())
    client = await make_client(spare_names)
    before = client.action(player, INITIAL_HASH, params={"points": 1})
    poison = client.action(player, state_hash({"total": 100}), params={"points": 0})
    behind = client.action(player, state_hash({"total": 100}), params={"points": 2})
    env = {
        **os.environ,
        **service_env,
        "PODIUM_NAMESPACE": spare_names.namespace,
        "PODIUM_GAME_LISTEN": "127.0.0.1:0",
        "PODIUM_RULESET": "tests.game.rulesets:CrashingRuleset",
        "PODIUM_MAX_DELIVERIES": str(MAX_DELIVERIES),
        "PODIUM_LEASE_SECONDS": str(worker_settings().lease_seconds),
        "PODIUM_FETCH_TIMEOUT_MS": "200",
    }

    async with running(worker_settings(namespace=spare_names.namespace)):
        pass  # creates the streams before anything is published
    for action in (before, poison, behind):
        await client.send(action)
    exits = []
    results = {}
    while len(results) < 3:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "game", env=env, cwd=ROOT, stdout=asyncio.subprocess.DEVNULL
        )
        try:
            while len(results) < 3 and process.returncode is None:
                try:
                    result = await asyncio.wait_for(client.result(), 0.5)
                    results[result.action_id] = result
                except TimeoutError:
                    pass
        finally:
            if process.returncode is None:
                process.terminate()
            exits.append(await process.wait())
        assert len(exits) <= MAX_DELIVERIES + 2, f"the poison was never set aside: {exits}"
    letters = await dead_letters(spare_names)

    assert exits[: MAX_DELIVERIES + 1] == [70] * (MAX_DELIVERIES + 1)
    assert results[before.action_id].status == APPLIED
    assert results[poison.action_id].error_code == "ACTION_FAILED"
    assert results[behind.action_id].status == APPLIED
    assert len(letters) == 1
    reason = f"redelivered {MAX_DELIVERIES + 1} times without an answer"
    assert letters[0].headers[REASON_HEADER] == reason
    assert int(letters[0].headers[SEQUENCE_HEADER]) == 2
    assert await _ledger(shards, player) == ["applied", "failed", "applied"]

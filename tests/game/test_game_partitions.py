"""Partitions: one player's actions apply in order while the workers share the partitions."""

import asyncio
import contextlib
import time
import uuid

from podium.game.v1 import game_pb2

from game.rules import load_ruleset
from game.state import state_hash
from game.worker import running
from infra.shards import ACTION_PARTITIONS, partition_of_player

SETTLE_SECONDS = 20.0


async def _until(condition, what: str) -> None:
    deadline = time.monotonic() + SETTLE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.05)


def _chain(client, player: str, length: int) -> list[game_pb2.Action]:
    """Actions that each quote the hash the one before will produce, by the ruleset's own
    functions, so each applies only after the one before it."""
    ruleset = load_ruleset("default")
    state, actions = ruleset.initial_state(), []
    for n in range(length):
        params = {"points": 1 + n % 7}
        actions.append(client.action(player, state_hash(state), params=params))
        state = ruleset.apply(state, "score", params).state
    return actions


async def test_a_chain_of_100_applies_in_order_with_four_workers(
    spare_names, worker_settings, make_client, shards
):
    settings = worker_settings(namespace=spare_names.namespace)
    client = await make_client(spare_names)
    player = str(uuid.uuid4())
    chain = _chain(client, player, 100)

    async with contextlib.AsyncExitStack() as stack:
        workers = [await stack.enter_async_context(running(settings)) for _ in range(4)]
        await asyncio.gather(*(client.send(action) for action in chain))
        results = [await client.result() for _ in chain]
        held = [set(w.consumer.partitions) for w in workers]
        await _until(
            lambda: sorted(len(w.consumer.partitions) for w in workers) == [4, 4, 4, 4],
            "the four workers hold four partitions each",
        )
        spread = [set(w.consumer.partitions) for w in workers]

    assert [r.action_id for r in results] == [a.action_id for a in chain]
    assert {r.status for r in results} == {game_pb2.ACTION_STATUS_APPLIED}
    assert [r.score for r in results] == [sum(1 + k % 7 for k in range(n + 1)) for n in range(100)]
    stored = await shards.for_player(player).fetchrow(
        "SELECT state_hash, version FROM player_state WHERE player_id = $1", player
    )
    assert (stored["state_hash"], stored["version"]) == (results[-1].state_hash, 100)
    assert sum(len(h) for h in held) <= ACTION_PARTITIONS
    assert set().union(*spread) == set(range(ACTION_PARTITIONS))
    assert sum(len(s) for s in spread) == ACTION_PARTITIONS


async def test_a_stopped_workers_partitions_move_to_the_one_left(
    spare_names, worker_settings, make_client
):
    settings = worker_settings(namespace=spare_names.namespace)
    client = await make_client(spare_names)

    async with running(settings) as staying:
        async with running(settings) as leaving:
            await _until(
                lambda: len(staying.consumer.partitions) == len(leaving.consumer.partitions) == 8,
                "the two workers hold eight partitions each",
            )
            moved = set(leaving.consumer.partitions)
        await _until(
            lambda: len(staying.consumer.partitions) == ACTION_PARTITIONS,
            "the staying worker holds every partition",
        )
        player = _player_in(moved)
        result = await client.play(client.action(player, state_hash({"total": 0, "plays": 0})))

    assert result.status == game_pb2.ACTION_STATUS_APPLIED


def _player_in(partitions: set[int]) -> str:
    while True:
        player = str(uuid.uuid4())
        if partition_of_player(player) in partitions:
            return player

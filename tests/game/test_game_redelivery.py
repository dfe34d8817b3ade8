"""Repeats JetStream cannot catch, a crash between commit and Redis, and a lost consumer."""

import asyncio
import uuid

from podium.game.v1 import game_pb2

from game import consumer
from game.state import state_hash
from game.worker import running
from infra.shards import partition_of_player
from infra.streams import ensure_actions_stream

INITIAL_HASH = state_hash({"total": 0, "plays": 0})
POLL_SECONDS = 0.1
REPEATS = 500


async def _snapshot(shards, redis_score, names, players: list[str]) -> dict:
    """Every row and board entry of the players, to compare before and after."""
    rows = {}
    for player in players:
        pg = shards.for_player(player)
        state = await pg.fetchrow(
            "SELECT state_hash, version FROM player_state WHERE player_id = $1", player
        )
        totals = await pg.fetch(
            "SELECT board, period, score FROM board_scores WHERE player_id = $1", player
        )
        counts = await pg.fetchrow(
            "SELECT (SELECT count(*) FROM applied_actions WHERE player_id = $1) AS decided,"
            " (SELECT count(*) FROM score_events WHERE player_id = $1) AS events",
            player,
        )
        shown = await redis_score(names, "global", "all", player)
        rows[player] = (dict(state), sorted(map(tuple, totals)), dict(counts), shown)
    return rows


async def test_500_repeats_after_the_duplicate_window_change_nothing(
    spare_names, worker_settings, make_client, nats_client, shards, redis_score
):
    async with running(worker_settings(namespace=spare_names.namespace)):
        await ensure_actions_stream(nats_client.jetstream(), spare_names, duplicate_window=1.0)
        client = await make_client(spare_names)
        actions = [
            client.action(str(uuid.uuid4()), INITIAL_HASH, params={"points": 1 + n % 1000})
            for n in range(REPEATS)
        ]
        await asyncio.gather(*(client.send(a) for a in actions))
        first = {r.action_id: r for r in [await client.result() for _ in actions]}
        players = [a.player_id for a in actions]
        before = await _snapshot(shards, redis_score, spare_names, players)

        await asyncio.sleep(1.5)
        acks = await asyncio.gather(*(client.send(a) for a in actions))
        second = {r.action_id: r for r in [await client.result() for _ in actions]}
        after = await _snapshot(shards, redis_score, spare_names, players)

    assert not any(ack.duplicate for ack in acks), "JetStream still dedups after its window"
    assert {r.status for r in first.values()} == {game_pb2.ACTION_STATUS_APPLIED}
    assert second == first
    assert after == before
    assert all(state["version"] == 1 for state, *_ in before.values())
    assert all(counts == {"decided": 1, "events": 3} for _, _, counts, _ in before.values())


async def test_a_board_write_redis_refuses_neither_holds_the_answer_nor_dead_letters_it(
    spare_names, worker_settings, make_client, shards, redis_client, redis_score, dead_letters
):
    """A plain string where the board's ZSET belongs makes every ZADD fail after the commit.
    The action is answered anyway (Postgres has it), and the next write repairs the view."""
    board_key = spare_names.board_key("global", "all")
    await redis_client.set(board_key, "not a sorted set")
    player = str(uuid.uuid4())
    pg = shards.for_player(player)

    async with running(worker_settings(namespace=spare_names.namespace)):
        client = await make_client(spare_names)
        first = await client.play(client.action(player, INITIAL_HASH, params={"points": 12}))
        still_refused = await redis_client.get(board_key)
        await redis_client.delete(board_key)
        second = await client.play(client.action(player, first.state_hash, params={"points": 3}))
        letters = await dead_letters(spare_names)

    assert (first.status, first.score) == (game_pb2.ACTION_STATUS_APPLIED, 12)
    assert still_refused == b"not a sorted set"
    assert (second.status, second.score) == (game_pb2.ACTION_STATUS_APPLIED, 15)
    assert await redis_score(spare_names, "global", "all", player) == 15
    assert letters == []
    statuses = await pg.fetch("SELECT status FROM applied_actions WHERE player_id = $1", player)
    assert [r["status"] for r in statuses] == ["applied", "applied"]


async def test_worker_recreates_a_partition_consumer_that_was_deleted(
    spare_names, worker_settings, make_client, nats_client, monkeypatch
):
    monkeypatch.setattr(consumer, "CONSUMER_CHECK_SECONDS", 0.0)
    js = nats_client.jetstream()
    player = str(uuid.uuid4())
    durable = spare_names.partition_consumer(partition_of_player(player))

    async with running(worker_settings(namespace=spare_names.namespace)) as worker:
        while partition_of_player(player) not in worker.consumer.partitions:
            await asyncio.sleep(POLL_SECONDS)
        await js.delete_consumer(spare_names.actions_stream, durable)
        client = await make_client(spare_names)
        result = await client.play(client.action(player, INITIAL_HASH))
        info = await js.consumer_info(spare_names.actions_stream, durable)

    assert result.status == game_pb2.ACTION_STATUS_APPLIED
    assert info.config.max_ack_pending == 2 * worker_settings().fetch_batch

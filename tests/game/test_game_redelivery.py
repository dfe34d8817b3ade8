"""Repeats JetStream cannot catch, and a crash between commit and Redis, on a worker of its own."""

import asyncio
import uuid

from podium.game.v1 import game_pb2

from game import consumer
from game.state import state_hash
from game.worker import running
from infra.streams import ensure_actions_stream

INITIAL_HASH = state_hash({"total": 0, "plays": 0})
POLL_SECONDS = 0.1
POLL_LIMIT = 100


async def test_repeat_after_the_duplicate_window_gets_the_first_result(
    spare_names, worker_settings, make_client, nats_client, pg
):
    async with running(worker_settings(namespace=spare_names.namespace)):
        await ensure_actions_stream(nats_client.jetstream(), spare_names, duplicate_window=1.0)
        client = await make_client(spare_names)
        player = str(uuid.uuid4())
        action = client.action(player, INITIAL_HASH, params={"points": 9})
        first = await client.play(action)

        for _ in range(POLL_LIMIT):
            ack = await client.send(action)
            if not ack.duplicate:
                break
            await asyncio.sleep(POLL_SECONDS)
        second = await client.result()

    assert not ack.duplicate, "JetStream still dedups the id after its window"
    assert first.status == game_pb2.ACTION_STATUS_APPLIED
    assert second.SerializeToString() == first.SerializeToString()
    version = await pg.fetchval("SELECT version FROM player_state WHERE player_id = $1", player)
    decided = await pg.fetchval(
        "SELECT count(*) FROM applied_actions WHERE player_id = $1", player
    )
    assert (version, decided) == (1, 1)


async def test_redis_failure_after_commit_is_repaired_by_the_redelivery(
    spare_names, worker_settings, make_client, pg, redis_client
):
    """A plain string where the board's ZSET belongs makes the ZADD fail after the commit;
    once it is gone, the redelivered message must fill Redis from Postgres and answer."""
    board_key = spare_names.board_key("global", "all")
    await redis_client.set(board_key, "not a sorted set")
    player = str(uuid.uuid4())

    async with running(worker_settings(namespace=spare_names.namespace)):
        client = await make_client(spare_names)
        action = client.action(player, INITIAL_HASH, params={"points": 12})
        await client.send(action)
        for _ in range(POLL_LIMIT):
            if await pg.fetchval("SELECT 1 FROM applied_actions WHERE player_id = $1", player):
                break
            await asyncio.sleep(POLL_SECONDS)
        await redis_client.delete(board_key)
        result = await client.result()

    assert result.status == game_pb2.ACTION_STATUS_APPLIED
    assert result.score == 12
    assert await redis_client.zscore(board_key, player) == -12
    version = await pg.fetchval("SELECT version FROM player_state WHERE player_id = $1", player)
    total = await pg.fetchval(
        "SELECT score FROM board_scores WHERE player_id = $1 AND board = 'global'", player
    )
    events = await pg.fetchval("SELECT count(*) FROM score_events WHERE player_id = $1", player)
    assert (version, total, events) == (1, 12, 2)


async def test_worker_recreates_its_consumer_when_it_is_deleted(
    spare_names, worker_settings, make_client, nats_client, monkeypatch
):
    monkeypatch.setattr(consumer, "CONSUMER_CHECK_SECONDS", 0.0)
    js = nats_client.jetstream()

    async with running(worker_settings(namespace=spare_names.namespace)):
        await js.delete_consumer(spare_names.actions_stream, spare_names.game_consumer)
        client = await make_client(spare_names)
        result = await client.play(client.action(str(uuid.uuid4()), INITIAL_HASH))
        info = await js.consumer_info(spare_names.actions_stream, spare_names.game_consumer)

    assert result.status == game_pb2.ACTION_STATUS_APPLIED
    assert info.config.max_deliver == worker_settings().max_deliver

"""The services' Redis pool: past its connections, callers wait for one instead of failing."""

import asyncio
import uuid

import pytest
import redis.exceptions

from infra.config import CommonSettings
from infra.redis_client import connect_redis

URL = CommonSettings().redis_url


async def test_more_callers_than_connections_wait_their_turn():
    client = connect_redis(URL, max_connections=3, wait_seconds=5)
    key = f"test:empty:{uuid.uuid4().hex}"
    try:
        # Each BLPOP holds its connection for 0.1 s: thirty of them need ten turns.
        replies = await asyncio.gather(*(client.blpop([key], timeout=0.1) for _ in range(30)))
    finally:
        await client.aclose()
    assert replies == [None] * 30


async def test_a_caller_that_waits_too_long_fails_like_a_store_that_is_down():
    client = connect_redis(URL, max_connections=1, wait_seconds=0.05)
    key = f"test:empty:{uuid.uuid4().hex}"
    try:
        holder = asyncio.create_task(client.blpop([key], timeout=1))
        await asyncio.sleep(0.1)
        with pytest.raises(redis.exceptions.ConnectionError):
            await client.get(key)
        await holder
    finally:
        await client.aclose()

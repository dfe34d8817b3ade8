"""Core functions called directly, for outcomes the gRPC surface cannot provoke."""

import dataclasses
import uuid

import pytest
import redis.asyncio as aioredis

from auth import core
from auth.sessions import Sessions
from infra.errors import PodiumError


async def test_register_keeps_the_account_when_redis_is_unreachable(
    deps, accounts, names, new_username
):
    """Postgres is the truth and ranking refills missing names, so a retry must not be needed."""
    unreachable = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    without_redis = dataclasses.replace(deps, sessions=Sessions(unreachable, names, 3600))
    username = new_username()

    try:
        player_id = await core.register(without_redis, username, "password-9")
    finally:
        await unreachable.aclose()

    account = await accounts.find(username)
    assert account is not None
    assert account.player_id == player_id


async def test_a_token_naming_another_players_session_is_refused(deps, sessions, tokens):
    opened = await sessions.open(str(uuid.uuid4()), "owner")
    token = tokens.issue(str(uuid.uuid4()), opened.session_key, "intruder").token

    with pytest.raises(PodiumError) as caught:
        await core.validate_token(deps, token)

    assert caught.value.code == "SESSION_ENDED"

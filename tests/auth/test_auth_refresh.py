"""Refresh over gRPC: each refresh token works once, and a spent one ends its whole session."""

import asyncio

import grpc
import jwt
import pytest
from podium.auth.v1 import auth_pb2
from podium.auth.v1 import auth_service_pb2 as pb

PASSWORD = "refresh tests pw"


@pytest.fixture
async def login(auth_stub, new_username) -> pb.LoginResponse:
    username = new_username()
    await auth_stub.Register(pb.RegisterRequest(username=username, password=PASSWORD))
    return await auth_stub.Login(pb.LoginRequest(username=username, password=PASSWORD))


def _sid(access_token: str) -> str:
    return jwt.decode(access_token, options={"verify_signature": False})["sid"]


async def _validate(auth_stub, access_token: str):
    return await auth_stub.ValidateToken(pb.ValidateTokenRequest(access_token=access_token))


async def test_refresh_gives_new_tokens_of_the_same_session(auth_stub, login):
    refreshed = await auth_stub.Refresh(pb.RefreshRequest(refresh_token=login.refresh_token))

    assert refreshed.player_id == login.player_id
    assert refreshed.refresh_token != login.refresh_token
    assert refreshed.access_token != login.access_token
    assert _sid(refreshed.access_token) == _sid(login.access_token)
    assert refreshed.expires_in_seconds == login.expires_in_seconds
    validated = await _validate(auth_stub, refreshed.access_token)
    assert validated.player_id == login.player_id


async def test_each_new_refresh_token_works_once_in_turn(auth_stub, login):
    token = login.refresh_token

    for _ in range(3):
        token = (await auth_stub.Refresh(pb.RefreshRequest(refresh_token=token))).refresh_token

    last = await auth_stub.Refresh(pb.RefreshRequest(refresh_token=token))
    await _validate(auth_stub, last.access_token)


async def test_a_refresh_token_used_twice_ends_the_session(
    auth_stub, login, refused, ended_events, redis_client, names
):
    first = await auth_stub.Refresh(pb.RefreshRequest(refresh_token=login.refresh_token))

    reused = await refused(auth_stub.Refresh(pb.RefreshRequest(refresh_token=login.refresh_token)))

    assert reused.status == grpc.StatusCode.UNAUTHENTICATED
    assert reused.code == "REFRESH_TOKEN_REUSED"
    # The whole family is gone: the successor token and every access token of the session.
    successor = await refused(
        auth_stub.Refresh(pb.RefreshRequest(refresh_token=first.refresh_token))
    )
    assert successor.code == "INVALID_REFRESH_TOKEN"
    for access_token in (login.access_token, first.access_token):
        assert (await refused(_validate(auth_stub, access_token))).code == "SESSION_ENDED"
    sid = _sid(login.access_token)
    assert not await redis_client.exists(names.session_key(sid), names.spent_refresh_key(sid))
    listed = await redis_client.zrange(names.player_sessions_key(login.player_id), 0, -1)
    assert sid.encode() not in listed
    await asyncio.sleep(0.2)
    reasons = [(e.session_key, e.reason) for e in ended_events]
    assert (sid, auth_pb2.SESSION_END_REASON_REFRESH_REUSED) in reasons


async def test_concurrent_refreshes_with_one_token_leave_one_winner_and_no_session(
    auth_stub, login, refused
):
    """A race between a thief and the player ends the session: neither keeps it silently."""
    request = pb.RefreshRequest(refresh_token=login.refresh_token)

    outcomes = await asyncio.gather(
        *(auth_stub.Refresh(request) for _ in range(5)), return_exceptions=True
    )

    winners = [o for o in outcomes if isinstance(o, pb.RefreshResponse)]
    losers = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(winners) == 1
    assert len(losers) == 4
    assert all(loser.code() == grpc.StatusCode.UNAUTHENTICATED for loser in losers)
    assert (await refused(_validate(auth_stub, winners[0].access_token))).code == "SESSION_ENDED"


async def test_refresh_does_not_extend_the_session_lifetime(auth_stub, login, redis_client, names):
    key = names.session_key(_sid(login.access_token))
    await redis_client.expire(key, 5000)

    await auth_stub.Refresh(pb.RefreshRequest(refresh_token=login.refresh_token))

    assert 0 < await redis_client.ttl(key) <= 5000


async def test_refresh_after_the_session_ended_is_refused(auth_stub, login, refused, redis_client):
    await auth_stub.Logout(pb.LogoutRequest(access_token=login.access_token))

    error = await refused(auth_stub.Refresh(pb.RefreshRequest(refresh_token=login.refresh_token)))

    assert (error.status, error.code) == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_REFRESH_TOKEN")


def _made_up(login: pb.LoginResponse) -> dict[str, str]:
    sid = _sid(login.access_token)
    return {
        "empty": "",
        "garbage": "garbage",
        "no_secret": sid + ".",
        "no_session": "." + "A" * 43,
        "live_session_wrong_secret": sid + "." + "A" * 43,
        "upper_case_session": sid.upper() + login.refresh_token[32:],
        "access_token": login.access_token,
        "oversized": login.refresh_token + "A" * 10_000,
        "unicode": sid + ".é" * 20,
        "nul": login.refresh_token + "\x00",
    }


MADE_UP = [
    "empty",
    "garbage",
    "no_secret",
    "no_session",
    "live_session_wrong_secret",
    "upper_case_session",
    "access_token",
    "oversized",
    "unicode",
    "nul",
]


@pytest.mark.parametrize("kind", MADE_UP)
async def test_a_made_up_refresh_token_is_refused_and_the_session_lives_on(
    auth_stub, login, refused, kind
):
    """Only a spent token proves theft; a guess naming a live session must not end it."""
    token = _made_up(login)[kind]

    error = await refused(auth_stub.Refresh(pb.RefreshRequest(refresh_token=token)))

    assert error.status == grpc.StatusCode.UNAUTHENTICATED
    assert (error.code, error.message) == ("INVALID_REFRESH_TOKEN", "invalid refresh token")
    await _validate(auth_stub, login.access_token)
    await auth_stub.Refresh(pb.RefreshRequest(refresh_token=login.refresh_token))

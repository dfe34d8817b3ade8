"""Logout, bans and EndedSessions over gRPC, seen from this replica and from another one."""

import asyncio
import time
import uuid

import grpc
import jwt
import pytest
from podium.auth.v1 import auth_pb2, auth_service_pb2_grpc
from podium.auth.v1 import auth_service_pb2 as pb

from auth.server import running

PASSWORD = "revocation tests pw"


@pytest.fixture
async def account(auth_stub, new_username) -> tuple[str, str]:
    """A registered (username, player_id) whose password is PASSWORD."""
    username = new_username()
    reply = await auth_stub.Register(pb.RegisterRequest(username=username, password=PASSWORD))
    return username, reply.player_id


@pytest.fixture
async def login(auth_stub, account) -> pb.LoginResponse:
    return await auth_stub.Login(pb.LoginRequest(username=account[0], password=PASSWORD))


@pytest.fixture
async def other_replica(auth_settings):
    """A second AuthService on the same Postgres and Redis, as in a scaled deployment."""
    async with running(auth_settings) as port:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield auth_service_pb2_grpc.AuthServiceStub(channel)


def _sid(access_token: str) -> str:
    return jwt.decode(access_token, options={"verify_signature": False})["sid"]


async def _validate(stub, access_token: str):
    return await stub.ValidateToken(pb.ValidateTokenRequest(access_token=access_token))


async def _events_for(events, session_key: str) -> list[int]:
    for _ in range(50):
        found = [e.reason for e in events if e.session_key == session_key]
        if found:
            return found
        await asyncio.sleep(0.02)
    return []


async def test_logout_ends_the_session_on_every_replica(
    auth_stub, other_replica, login, refused, ended_events
):
    await _validate(other_replica, login.access_token)

    await auth_stub.Logout(pb.LogoutRequest(access_token=login.access_token))

    for stub in (auth_stub, other_replica):
        error = await refused(_validate(stub, login.access_token))
        assert (error.status, error.code) == (grpc.StatusCode.UNAUTHENTICATED, "SESSION_ENDED")
    refresh = await refused(
        other_replica.Refresh(pb.RefreshRequest(refresh_token=login.refresh_token))
    )
    assert refresh.code == "INVALID_REFRESH_TOKEN"
    reasons = await _events_for(ended_events, _sid(login.access_token))
    assert reasons == [auth_pb2.SESSION_END_REASON_LOGOUT]


async def test_logout_survives_a_restart_of_auth(auth_settings, login, refused):
    """Sessions live in Redis, not in a process: a fresh auth still refuses the token."""
    async with (
        running(auth_settings) as port,
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch,
    ):
        await auth_service_pb2_grpc.AuthServiceStub(ch).Logout(
            pb.LogoutRequest(access_token=login.access_token)
        )

    async with (
        running(auth_settings) as port,
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch,
    ):
        error = await refused(
            _validate(auth_service_pb2_grpc.AuthServiceStub(ch), login.access_token)
        )

    assert error.code == "SESSION_ENDED"


async def test_logout_ends_only_its_own_session(auth_stub, account, login, refused):
    other = await auth_stub.Login(pb.LoginRequest(username=account[0], password=PASSWORD))

    await auth_stub.Logout(pb.LogoutRequest(access_token=login.access_token))

    assert (await refused(_validate(auth_stub, login.access_token))).code == "SESSION_ENDED"
    assert (await _validate(auth_stub, other.access_token)).player_id == account[1]


async def test_logout_twice_is_not_an_error(auth_stub, login):
    request = pb.LogoutRequest(access_token=login.access_token)

    await auth_stub.Logout(request)
    await auth_stub.Logout(request)


async def test_logout_accepts_an_expired_but_genuine_token(
    auth_stub, login, signing_key, auth_settings, refused
):
    claims = jwt.decode(login.access_token, options={"verify_signature": False})
    now = int(time.time())
    expired = jwt.encode(
        {**claims, "iat": now - 2000, "exp": now - 1000},
        signing_key,
        algorithm="EdDSA",
        headers={"kid": auth_settings.jwt_key_id},
    )
    assert (await refused(_validate(auth_stub, expired))).code == "INVALID_TOKEN"

    await auth_stub.Logout(pb.LogoutRequest(access_token=expired))

    assert (await refused(_validate(auth_stub, login.access_token))).code == "SESSION_ENDED"


@pytest.mark.parametrize("token", ["", "not-a.jwt", "x" * 5000], ids=["empty", "junk", "long"])
async def test_logout_with_a_bad_token_is_refused_and_ends_nothing(
    auth_stub, login, refused, token
):
    error = await refused(auth_stub.Logout(pb.LogoutRequest(access_token=token)))

    assert (error.status, error.code) == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_TOKEN")
    await _validate(auth_stub, login.access_token)


async def test_ban_ends_every_session_and_refuses_logins_until_unbanned(
    auth_stub, other_replica, account, refused, ended_events
):
    username, player_id = account
    request = pb.LoginRequest(username=username, password=PASSWORD)
    sessions = [await auth_stub.Login(request) for _ in range(2)]

    banned = await other_replica.BanPlayer(pb.BanPlayerRequest(player_id=player_id))

    assert banned.sessions_ended == 2
    for login in sessions:
        assert (await refused(_validate(auth_stub, login.access_token))).code == "SESSION_ENDED"
        reasons = await _events_for(ended_events, _sid(login.access_token))
        assert reasons == [auth_pb2.SESSION_END_REASON_BANNED]
    refusal = await refused(auth_stub.Login(request))
    assert (refusal.status, refusal.code) == (grpc.StatusCode.PERMISSION_DENIED, "ACCOUNT_BANNED")
    # Without the password the ban says nothing: a wrong one is refused as usual.
    wrong = pb.LoginRequest(username=username, password=PASSWORD + "!")
    assert (await refused(auth_stub.Login(wrong))).code == "INVALID_CREDENTIALS"

    await auth_stub.UnbanPlayer(pb.UnbanPlayerRequest(player_id=player_id))

    again = await auth_stub.Login(request)
    assert (await _validate(auth_stub, again.access_token)).player_id == player_id


async def test_banning_twice_keeps_the_ban_and_ends_nothing_more(auth_stub, account, refused):
    request = pb.BanPlayerRequest(player_id=account[1])

    await auth_stub.BanPlayer(request)
    second = await auth_stub.BanPlayer(request)

    assert second.sessions_ended == 0
    login = pb.LoginRequest(username=account[0], password=PASSWORD)
    assert (await refused(auth_stub.Login(login))).code == "ACCOUNT_BANNED"


@pytest.mark.parametrize("rpc", ["BanPlayer", "UnbanPlayer"])
@pytest.mark.parametrize(
    ("player_id", "status", "code"),
    [
        ("", grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PLAYER_ID"),
        ("not-a-uuid", grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PLAYER_ID"),
        ("x" * 10_000, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PLAYER_ID"),
        ("\u0661" * 32, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PLAYER_ID"),
        ("{" + str(uuid.uuid4()) + "}", grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PLAYER_ID"),
        (str(uuid.uuid4()), grpc.StatusCode.NOT_FOUND, "PLAYER_NOT_FOUND"),
    ],
    ids=["empty", "junk", "long", "arabic_indic_digits", "braces", "unknown"],
)
async def test_ban_and_unban_refuse_a_bad_or_unknown_player(
    auth_stub, refused, rpc, player_id, status, code
):
    request_type = getattr(pb, f"{rpc}Request")

    error = await refused(getattr(auth_stub, rpc)(request_type(player_id=player_id)))

    assert (error.status, error.code) == (status, code)


async def test_ended_sessions_names_exactly_the_ended_ones(auth_stub, account, login):
    live = await auth_stub.Login(pb.LoginRequest(username=account[0], password=PASSWORD))
    await auth_stub.Logout(pb.LogoutRequest(access_token=login.access_token))
    never = uuid.uuid4().hex
    keys = [_sid(login.access_token), _sid(live.access_token), never]

    reply = await auth_stub.EndedSessions(pb.EndedSessionsRequest(session_keys=keys))

    assert list(reply.session_keys) == [_sid(login.access_token), never]


@pytest.mark.parametrize(
    "keys",
    [[uuid.uuid4().hex] * 1001, ["not-hex"], [uuid.uuid4().hex.upper()], [""]],
    ids=["1001_keys", "junk", "upper_case", "empty_key"],
)
async def test_ended_sessions_refuses_bad_keys(auth_stub, refused, keys):
    error = await refused(auth_stub.EndedSessions(pb.EndedSessionsRequest(session_keys=keys)))

    assert (error.status, error.code) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_SESSION_KEYS")


async def test_ended_sessions_of_none_is_none(auth_stub):
    reply = await auth_stub.EndedSessions(pb.EndedSessionsRequest())

    assert list(reply.session_keys) == []

"""Login over gRPC: the token it signs, the session it opens, and the refusals that look alike."""

import hashlib
import re
import uuid

import grpc
import jwt
import pytest
from podium.auth.v1 import auth_service_pb2 as pb

from auth.passwords import Passwords

PASSWORD = "a fine password"


@pytest.fixture
async def account(auth_stub, new_username) -> tuple[str, str]:
    """A registered (username, player_id) whose password is PASSWORD."""
    username = new_username()
    response = await auth_stub.Register(pb.RegisterRequest(username=username, password=PASSWORD))
    return username, response.player_id


async def test_login_returns_a_signed_token_with_the_session_claims(
    auth_stub, account, signing_key, auth_settings
):
    username, player_id = account

    response = await auth_stub.Login(pb.LoginRequest(username=username.upper(), password=PASSWORD))

    header = jwt.get_unverified_header(response.access_token)
    claims = jwt.decode(
        response.access_token,
        signing_key.public_key(),
        algorithms=["EdDSA"],
        audience=auth_settings.jwt_audience,
        issuer=auth_settings.jwt_issuer,
    )
    assert (header["alg"], header["kid"]) == ("EdDSA", auth_settings.jwt_key_id)
    assert response.player_id == player_id == claims["sub"]
    assert claims["name"] == username
    assert re.fullmatch(r"[0-9a-f]{32}", claims["sid"])
    assert claims["exp"] - claims["iat"] == auth_settings.access_ttl_seconds
    assert response.expires_in_seconds == auth_settings.access_ttl_seconds
    assert len(claims["jti"]) >= 16


async def test_login_stores_the_session_and_refresh_token_with_the_session_lifetime(
    auth_stub, account, redis_client, names, auth_settings
):
    username, player_id = account

    response = await auth_stub.Login(pb.LoginRequest(username=username, password=PASSWORD))

    session_key = jwt.decode(response.access_token, options={"verify_signature": False})["sid"]
    session = await redis_client.hgetall(names.session_key(session_key))
    digest = hashlib.sha256(response.refresh_token.encode()).hexdigest()
    ttl = auth_settings.session_ttl_seconds
    assert session[b"player_id"].decode() == player_id
    assert session[b"username"].decode() == username
    assert int(session[b"created_at"]) > 0
    assert 0 < await redis_client.ttl(names.session_key(session_key)) <= ttl
    # Only the digest is stored: a read of Redis cannot replay the token.
    assert session[b"refresh"].decode() == digest
    assert response.refresh_token.encode() not in session.values()
    assert response.refresh_token.startswith(session_key + ".")
    assert len(response.refresh_token.partition(".")[2]) >= 43
    listed = await redis_client.zrange(names.player_sessions_key(player_id), 0, -1)
    assert session_key.encode() in listed


async def test_each_login_opens_a_new_session(auth_stub, account):
    username, _ = account
    request = pb.LoginRequest(username=username, password=PASSWORD)

    first = await auth_stub.Login(request)
    second = await auth_stub.Login(request)

    first_sid, second_sid = (
        jwt.decode(r.access_token, options={"verify_signature": False})["sid"]
        for r in (first, second)
    )
    assert first_sid != second_sid
    assert first.refresh_token != second.refresh_token


async def test_wrong_password_and_unknown_user_are_refused_alike(
    auth_stub, account, new_username, refused
):
    username, _ = account

    wrong_password = await refused(
        auth_stub.Login(pb.LoginRequest(username=username, password=PASSWORD + "!"))
    )
    unknown_user = await refused(
        auth_stub.Login(pb.LoginRequest(username=new_username(), password=PASSWORD))
    )

    assert wrong_password.status == unknown_user.status == grpc.StatusCode.UNAUTHENTICATED
    assert wrong_password.code == unknown_user.code == "INVALID_CREDENTIALS"
    assert wrong_password.message == unknown_user.message == "invalid username or password"


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("", PASSWORD),
        ("x" * 10_000, PASSWORD),
        ("bad name", PASSWORD),
        ("someone", ""),
        ("someone", "p" * 129),
        ("someone", "p" * 10_000),
    ],
    ids=[
        "empty_username",
        "10k_username",
        "malformed_username",
        "empty_password",
        "129_char_password",
        "10k_password",
    ],
)
async def test_login_refuses_empty_or_oversized_input(auth_stub, refused, username, password):
    error = await refused(auth_stub.Login(pb.LoginRequest(username=username, password=password)))

    assert error.status == grpc.StatusCode.UNAUTHENTICATED
    assert error.code == "INVALID_CREDENTIALS"


async def test_login_rehashes_a_password_hashed_with_other_parameters(
    auth_stub, new_username, accounts, shards, auth_settings
):
    username = new_username()
    older = Passwords(auth_settings.argon2_memory_kib, auth_settings.argon2_time_cost + 1, 1)
    player_id = await accounts.insert(username, await older.hash(PASSWORD))

    first = await auth_stub.Login(pb.LoginRequest(username=username, password=PASSWORD))
    second = await auth_stub.Login(pb.LoginRequest(username=username, password=PASSWORD))

    stored = await shards.for_player(player_id).fetchval(
        "SELECT password_hash FROM accounts WHERE player_id = $1", uuid.UUID(player_id)
    )
    assert first.player_id == second.player_id == player_id
    assert f",t={auth_settings.argon2_time_cost}," in stored

"""Sessions through the gateway: refresh, logout, revoked sockets, throttled logins, forgeries."""

import asyncio
import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import aiohttp
import grpc
import jwt
import nats
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from podium.auth.v1 import auth_pb2, auth_service_pb2_grpc
from podium.auth.v1 import auth_service_pb2 as pb

from devstack.client import PlayerClient, ProtocolError
from infra.config import CommonSettings

PASSWORD = "correct horse battery"
BASE_NATS_URL = CommonSettings().nats_url
DEV_KEY = Path(__file__).resolve().parents[2] / ".podium" / "jwt-ed25519.pem"

SESSION_ENDED_CLOSE = 4001
# The stack's PODIUM_SESSION_SWEEP_SECONDS.
SWEEP_SECONDS = 1


async def _error(call) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        await call
    return caught.value


async def _upgrade_status(http, stack, token: str) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"}
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(stack.url + "/v1/ws", headers=headers)
    async with http.get(stack.url + "/v1/me", headers=headers) as reply:
        body = await reply.json()
    return refused.value.status, body["error"]["code"]


async def test_logout_is_204_and_ends_the_token_on_rest_and_websocket(players, http, stack):
    player = await players(connect=False)
    token = player.access_token
    me = await player.call("GET", "/v1/me", headers=player.bearer)
    assert me["player_id"] == player.player_id

    await player.logout()

    assert await _upgrade_status(http, stack, token) == (401, "SESSION_ENDED")
    refresh = await _error(player.refresh())
    assert (refresh.status, refresh.code) == (401, "INVALID_REFRESH_TOKEN")


async def test_an_open_socket_gets_its_close_frame_after_logout(players):
    player = await players()
    started = time.monotonic()

    await player.logout()
    code = await player.closed_by_server(2.0)

    assert code == SESSION_ENDED_CLOSE
    assert time.monotonic() - started < 2.0


async def test_logout_ends_only_that_session_s_sockets(players, http, stack):
    player = await players()
    other = PlayerClient(http, stack.url)
    await other.login(player.username, PASSWORD)
    await other.connect()

    await other.logout()

    assert await other.closed_by_server(2.0) == SESSION_ENDED_CLOSE
    await player.send({"type": "ping", "id": 1})
    assert (await player.receive("pong", id=1))["type"] == "pong"
    await player.close()


async def test_the_old_token_stays_refused_after_auth_and_the_gateway_restart(
    players, http, stack
):
    player = await players(connect=False)
    token = player.access_token
    await player.logout()

    await stack.restart("auth")
    assert await _upgrade_status(http, stack, token) == (401, "SESSION_ENDED")
    await stack.restart("gateway")
    assert await _upgrade_status(http, stack, token) == (401, "SESSION_ENDED")


async def test_a_session_ended_without_an_announcement_closes_at_the_next_sweep(
    players, redis_db, stack
):
    """Core NATS may drop the event for a gateway that was away; the sweep catches it."""
    player = await players()
    session_key = jwt.decode(player.access_token, options={"verify_signature": False})["sid"]

    await redis_db.delete(stack.names.session_key(session_key))

    assert await player.closed_by_server(SWEEP_SECONDS + 3) == SESSION_ENDED_CLOSE


async def test_a_ban_closes_every_socket_of_the_player_and_refuses_the_next_login(
    players, http, stack
):
    player = await players()
    second = PlayerClient(http, stack.url)
    await second.login(player.username, PASSWORD)
    await second.connect()

    async with grpc.aio.insecure_channel(stack.auth_target) as channel:
        stub = auth_service_pb2_grpc.AuthServiceStub(channel)
        banned = await stub.BanPlayer(pb.BanPlayerRequest(player_id=player.player_id))

    assert banned.sessions_ended == 2
    assert await player.closed_by_server(2.0) == SESSION_ENDED_CLOSE
    assert await second.closed_by_server(2.0) == SESSION_ENDED_CLOSE
    refused = await _error(player.login(player.username, PASSWORD))
    assert (refused.status, refused.code) == (403, "ACCOUNT_BANNED")


async def test_refresh_rotates_and_a_reused_refresh_token_closes_the_session(players):
    player = await players()
    spent = player.refresh_token
    await player.refresh()
    assert player.refresh_token != spent
    me = await player.call("GET", "/v1/me", headers=player.bearer)
    assert me["player_id"] == player.player_id

    player.refresh_token = spent
    reused = await _error(player.refresh())

    assert (reused.status, reused.code) == (401, "REFRESH_TOKEN_REUSED")
    assert await player.closed_by_server(2.0) == SESSION_ENDED_CLOSE
    ended = await _error(player.call("GET", "/v1/me", headers=player.bearer))
    assert (ended.status, ended.code) == (401, "SESSION_ENDED")


async def test_eleven_wrong_passwords_get_429_with_retry_after(players, http, stack):
    player = await players(connect=False)
    url = stack.url + "/v1/auth/login"
    wrong = {"username": player.username, "password": "not the password"}

    statuses = []
    for _ in range(10):
        async with http.post(url, json=wrong) as reply:
            statuses.append(reply.status)
    async with http.post(url, json=wrong) as reply:
        eleventh = (reply.status, reply.headers.get("Retry-After"), await reply.json())

    assert statuses == [401] * 10
    status, retry_after, body = eleventh
    assert (status, body["error"]["code"]) == (429, "LOGIN_RATE_LIMITED")
    assert retry_after == "1"
    await asyncio.sleep(int(retry_after))
    assert (await player.login(player.username, PASSWORD))["access_token"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "MISSING_FIELD"),
        ({"refresh_token": 7}, 400, "INVALID_FIELD"),
        ({"refresh_token": ""}, 401, "INVALID_REFRESH_TOKEN"),
        ({"refresh_token": "x" * 5000}, 401, "INVALID_REFRESH_TOKEN"),
    ],
    ids=["missing", "not_a_string", "empty", "long"],
)
async def test_bad_refresh_bodies_are_refused(http, stack, body, status, code):
    error = await _error(PlayerClient(http, stack.url).call("POST", "/v1/auth/refresh", body))

    assert (error.status, error.code) == (status, code)


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "MISSING_TOKEN"),
        ({"Authorization": "Basic abc"}, "MISSING_TOKEN"),
        ({"Authorization": "Bearer junk"}, "INVALID_TOKEN"),
    ],
    ids=["none", "basic", "junk"],
)
async def test_logout_without_a_genuine_token_is_401(http, stack, headers, code):
    client = PlayerClient(http, stack.url)

    error = await _error(client.call("POST", "/v1/auth/logout", headers=headers))

    assert (error.status, error.code) == (401, code)


def _hs256_with_public_key(claims: dict, key) -> str:
    """What PyJWT refuses to produce: an HMAC whose secret is our public key."""
    secret = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = {"alg": "HS256", "typ": "JWT", "kid": "dev-1"}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    digest = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(digest)}"


def _forge(claims: dict, kind: str) -> str:
    key = serialization.load_pem_private_key(DEV_KEY.read_bytes(), password=None)
    now = int(time.time())
    forgeries = {
        "other_key": lambda: jwt.encode(
            claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "dev-1"}
        ),
        "alg_none": lambda: jwt.encode(claims, None, algorithm="none", headers={"kid": "dev-1"}),
        "hs256_public_key": lambda: _hs256_with_public_key(claims, key),
        "expired": lambda: jwt.encode(
            {**claims, "iat": now - 2000, "exp": now - 1000},
            key,
            algorithm="EdDSA",
            headers={"kid": "dev-1"},
        ),
        "wrong_audience": lambda: jwt.encode(
            {**claims, "aud": "another-game"}, key, algorithm="EdDSA", headers={"kid": "dev-1"}
        ),
    }
    return forgeries[kind]()


@pytest.mark.parametrize(
    "kind", ["other_key", "alg_none", "hs256_public_key", "expired", "wrong_audience"]
)
async def test_forged_tokens_are_refused_by_the_gateway(players, http, stack, kind):
    player = await players(connect=False)
    claims = jwt.decode(player.access_token, options={"verify_signature": False})

    assert await _upgrade_status(http, stack, _forge(claims, kind)) == (401, "INVALID_TOKEN")


async def test_a_genuine_token_built_the_same_way_is_accepted(players, http, stack):
    """The control for the forgeries: signed with the dev key as auth signs, it passes."""
    player = await players(connect=False)
    claims = jwt.decode(player.access_token, options={"verify_signature": False})
    key = serialization.load_pem_private_key(DEV_KEY.read_bytes(), password=None)
    token = jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": "dev-1"})

    async with http.get(stack.url + "/v1/me", headers={"Authorization": f"Bearer {token}"}) as r:
        assert (r.status, (await r.json())["player_id"]) == (200, player.player_id)


async def test_a_client_that_is_not_reading_still_gets_4001_not_1006(players, http, stack):
    """The server waits for the client's answering close frame before it drops the line."""
    player = await players(connect=False)
    ws = await http.ws_connect(stack.url + "/v1/ws", headers=player.bearer)
    assert (await ws.receive_json())["type"] == "welcome"

    await player.logout()
    await asyncio.sleep(0.3)
    message = await ws.receive(timeout=2.0)

    assert (message.type, message.data, message.extra) == (
        aiohttp.WSMsgType.CLOSE,
        SESSION_ENDED_CLOSE,
        "session ended: logout",
    )
    assert ws.close_code == SESSION_ENDED_CLOSE


async def _connect_or_refused(http, stack, player: PlayerClient):
    try:
        return await http.ws_connect(stack.url + "/v1/ws", headers=player.bearer)
    except aiohttp.WSServerHandshakeError as refused:
        assert refused.status == 401
        return None


async def _logout_after(player: PlayerClient, delay: float) -> None:
    await asyncio.sleep(delay)
    await player.logout()


@pytest.mark.parametrize("delay", [ms / 1000 for ms in range(0, 24, 2)])
async def test_a_socket_opened_while_its_session_ends_is_closed_too(players, http, stack, delay):
    """A connect racing a logout: whichever wins, no socket of the ended session stays open.

    The close must come from the event, before the stack's once-a-second sweep could mask a
    socket the event missed.
    """
    player = await players(connect=False)

    ws, _ = await asyncio.gather(
        _connect_or_refused(http, stack, player), _logout_after(player, delay)
    )

    if ws is not None:
        await asyncio.wait_for(ws.receive_json(), 2.0)
        message = await ws.receive(timeout=SWEEP_SECONDS * 0.8)
        assert (message.type, message.data) == (aiohttp.WSMsgType.CLOSE, SESSION_ENDED_CLOSE)


async def test_an_end_reason_newer_than_the_gateway_still_closes_the_socket(players, stack):
    player = await players()
    session_key = jwt.decode(player.access_token, options={"verify_signature": False})["sid"]
    event = auth_pb2.SessionEnded(session_key=session_key, player_id=player.player_id, reason=42)

    nc = await nats.connect(BASE_NATS_URL)
    try:
        await nc.publish(stack.names.sessions_ended_subject, event.SerializeToString())
        await nc.flush()
    finally:
        await nc.close()

    assert await player.closed_by_server(2.0) == SESSION_ENDED_CLOSE


@pytest.mark.parametrize(
    "value", [b"Bearer \xff\xfe", b"Bearer eyJ\xe9.e30.sig"], ids=["not_utf8", "latin1_inside"]
)
async def test_authorization_bytes_that_are_not_ascii_are_401(stack, value):
    port = int(stack.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"GET /v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: " + value + b"\r\n"
        b"Connection: close\r\n\r\n"
    )
    await writer.drain()
    reply = await asyncio.wait_for(reader.read(), 5.0)
    writer.close()

    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401 Unauthorized\r\n")
    assert json.loads(body)["error"]["code"] == "INVALID_TOKEN"


async def test_a_request_aiohttp_cannot_parse_leaves_its_token_out_of_the_log(players, stack):
    player = await players(connect=False)
    port = int(stack.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    token = player.access_token.encode()
    writer.write(
        b"GET /v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token + b"\x01\r\n\r\n"
    )
    await writer.drain()
    reply = await asyncio.wait_for(reader.read(), 5.0)
    writer.close()
    await asyncio.sleep(0.3)

    log = stack.log_path.read_text()
    assert reply.split(b" ", 2)[1] == b"400"
    assert player.access_token not in log
    assert "bad_http_request: BadHttpMessage (400)" in log

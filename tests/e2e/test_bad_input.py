"""Bad input on every player-facing path gets a clear error with a stable code."""

import os
import struct
import time
import uuid

import aiohttp
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devstack.client import PlayerClient, ProtocolError

PASSWORD = "correct horse battery"


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "INVALID_JSON"),
        ("[1, 2]", "INVALID_JSON"),
        ('{"type": "dance"}', "UNKNOWN_TYPE"),
        ('{"no_type": 1}', "MISSING_FIELD"),
        ('{"type": "action", "action": "score", "state_hash": ""}', "MISSING_FIELD"),
        ('{"type": "subscribe", "board": "global", "limit": "10"}', "INVALID_FIELD"),
        ('{"type": "subscribe", "board": "global", "limit": 0}', "INVALID_FIELD"),
        ('{"type": "subscribe", "board": "global", "limit": true}', "INVALID_FIELD"),
        ('{"type": "subscribe", "board": "global", "view": "moon"}', "UNSUPPORTED_VIEW"),
        ('{"type": "subscribe", "board": "nope"}', "UNKNOWN_BOARD"),
        (
            '{"type": "subscribe", "board": "global", "view": "around", "radius": 51}',
            "INVALID_FIELD",
        ),
        ('{"type": "subscribe", "board": "global", "view": "around", "rows": 0}', "INVALID_FIELD"),
        ('{"type": "subscribe", "board": "global", "view": "players"}', "MISSING_FIELD"),
        (
            '{"type": "subscribe", "board": "global", "view": "players", "players": []}',
            "INVALID_FIELD",
        ),
        (
            '{"type": "subscribe", "board": "global", "view": "players", "players": ["x"]}',
            "INVALID_FIELD",
        ),
        ('{"type": "subscribe", "board": "global", "seq": -1}', "INVALID_FIELD"),
        ('{"type": "unsubscribe", "board": "global", "view": "friends"}', "UNSUPPORTED_VIEW"),
        ('{"type": "ping", "id": {"a": 1}}', "INVALID_FIELD"),
        (
            '{"type": "action", "action_id": "x", "action": "score", "state_hash": ""}',
            "INVALID_FIELD",
        ),
        (
            orjson.dumps(
                {
                    "type": "action",
                    "action_id": str(uuid.uuid4()),
                    "action": "score",
                    "params": [],
                    "state_hash": "",
                }
            ).decode(),
            "INVALID_FIELD",
        ),
        ('{"type": "ping", "pad": "%s"}' % ("x" * 20_000), "FRAME_TOO_LARGE"),
    ],
)
async def test_bad_frame_gets_an_error_frame_and_the_socket_stays_open(players, frame, code):
    player = await players()

    await player.send(frame)
    error = await player.receive("error")
    await player.send({"type": "ping", "id": 9})
    pong = await player.receive("pong")

    assert error["error"]["code"] == code
    assert error["error"]["message"]
    assert pong["id"] == 9


async def test_error_frame_echoes_the_client_id(players):
    player = await players()

    await player.send({"type": "dance", "id": "req-7"})
    error = await player.receive("error")

    assert (error["id"], error["error"]["code"]) == ("req-7", "UNKNOWN_TYPE")


async def test_binary_frame_gets_an_error_frame(players):
    player = await players()

    await player.ws.send_bytes(b"\x00\x01")
    error = await player.receive("error")

    assert error["error"]["code"] == "BINARY_NOT_SUPPORTED"


async def test_a_client_that_keeps_breaking_the_protocol_is_closed(players):
    player = await players()

    for _ in range(25):
        await player.send("garbage")
    await player._reader

    assert player.ws.close_code == aiohttp.WSCloseCode.POLICY_VIOLATION


async def test_a_frame_beyond_the_hard_limit_closes_with_1009(players):
    """The gateway refuses on the frame's header alone, without reading its payload. Only the
    header is sent here: with megabytes of payload still unread, the server's close would turn
    into a TCP reset, which may reach the client before it has read the close frame."""
    player = await players()
    length = 2 * 1024 * 1024
    text_frame_header = b"\x81\xff" + struct.pack("!Q", length) + os.urandom(4)

    player.ws._writer.transport.write(text_frame_header)
    await player._reader

    assert player.ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG


NOBODY = str(uuid.uuid4())
MANY = ",".join(str(uuid.uuid4()) for _ in range(101))


async def _rest_error(http, stack, method, path, **kwargs) -> ProtocolError:
    client = PlayerClient(http, stack.url)
    with pytest.raises(ProtocolError) as caught:
        await client.call(method, path, **kwargs)
    return caught.value


async def test_wrong_password_and_unknown_user_look_the_same(players, http, stack):
    player = await players(connect=False)

    wrong = await _rest_error(
        http,
        stack,
        "POST",
        "/v1/auth/login",
        body={"username": player.username, "password": "x" * 9},
    )
    unknown = await _rest_error(
        http,
        stack,
        "POST",
        "/v1/auth/login",
        body={"username": "nobody_here", "password": PASSWORD},
    )

    assert (wrong.status, wrong.code) == (401, "INVALID_CREDENTIALS")
    assert (unknown.status, unknown.code, str(unknown)) == (401, wrong.code, str(wrong))


async def test_duplicate_username_in_another_case_is_taken(players, http, stack):
    player = await players(connect=False)

    error = await _rest_error(
        http,
        stack,
        "POST",
        "/v1/auth/register",
        body={"username": player.username.upper(), "password": PASSWORD},
    )

    assert (error.status, error.code) == (409, "USERNAME_TAKEN")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"username": "ab", "password": PASSWORD}, 400, "INVALID_USERNAME"),
        ({"username": "good_name", "password": "short"}, 400, "INVALID_PASSWORD"),
        ({"username": "good_name"}, 400, "MISSING_FIELD"),
        ({"username": 5, "password": PASSWORD}, 400, "INVALID_FIELD"),
        ([1, 2], 400, "INVALID_JSON"),
    ],
)
async def test_bad_registration_is_refused(http, stack, body, status, code):
    error = await _rest_error(http, stack, "POST", "/v1/auth/register", body=body)

    assert (error.status, error.code) == (status, code)


async def test_rest_edges_answer_with_protocol_errors(http, stack):
    not_json = await _rest_error(http, stack, "POST", "/v1/auth/login", data=b"{oops")
    too_big = await _rest_error(http, stack, "POST", "/v1/auth/login", data=b"x" * 100_000)
    no_route = await _rest_error(http, stack, "GET", "/v1/nothing")
    bad_method = await _rest_error(http, stack, "GET", "/v1/auth/login")

    assert (not_json.status, not_json.code) == (400, "INVALID_JSON")
    assert (too_big.status, too_big.code) == (413, "PAYLOAD_TOO_LARGE")
    assert (no_route.status, no_route.code) == (404, "NOT_FOUND")
    assert (bad_method.status, bad_method.code) == (405, "METHOD_NOT_ALLOWED")


async def test_a_body_that_is_not_what_its_encoding_claims_is_refused(http, stack):
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}

    error = await _rest_error(
        http, stack, "POST", "/v1/auth/login", data=b'{"username": "a"}', headers=headers
    )

    assert (error.status, error.code) == (400, "INVALID_BODY")


async def test_the_websocket_route_without_an_upgrade_says_so(http, stack):
    async with http.get(stack.url + "/v1/ws") as reply:
        body = await reply.json()

    assert reply.status == 426
    assert body["error"]["code"] == "UPGRADE_REQUIRED"


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/v1/boards/nope/top", 404, "UNKNOWN_BOARD"),
        ("/v1/boards/global/top?limit=abc", 400, "INVALID_LIMIT"),
        ("/v1/boards/global/top?limit=0", 400, "INVALID_LIMIT"),
        ("/v1/boards/global/top?limit=101", 400, "INVALID_LIMIT"),
        ("/v1/boards/global/top?limit=%C2%B2", 400, "INVALID_LIMIT"),
        ("/v1/boards/daily/top?period=yesterday", 400, "INVALID_PERIOD"),
        ("/v1/boards/global/around/not-a-uuid", 400, "INVALID_PLAYER_ID"),
        (f"/v1/boards/global/around/{uuid.uuid4()}", 404, "PLAYER_NOT_RANKED"),
        (f"/v1/boards/global/around/{uuid.uuid4()}?radius=-1", 400, "INVALID_RADIUS"),
        ("/v1/boards/best_run/top?cursor=not-a-cursor", 400, "INVALID_CURSOR"),
        ("/v1/boards/best_run/top?cursor=%C3%A9", 400, "INVALID_CURSOR"),
        ("/v1/boards/best_run/top?cursor=" + "A" * 513, 400, "INVALID_CURSOR"),
        ("/v1/boards/best_run/top?pin=yes", 400, "INVALID_PIN"),
        ("/v1/boards/best_run/top?pin=2", 400, "INVALID_PIN"),
        ("/v1/boards/best_run/top?pin=", 400, "INVALID_PIN"),
        ("/v1/boards/best_run/top?period=2026-12-04", 400, "INVALID_PERIOD"),
        ("/v1/boards/daily/top?period=2026-13-01", 400, "INVALID_PERIOD"),
        ("/v1/boards/daily/top?period=%FF", 400, "INVALID_PERIOD"),
        (f"/v1/boards/best_run/around/{NOBODY}?rows=0", 400, "INVALID_ROWS"),
        (f"/v1/boards/best_run/around/{NOBODY}?rows=102", 400, "INVALID_ROWS"),
        (f"/v1/boards/best_run/around/{NOBODY}?rows=-3", 400, "INVALID_ROWS"),
        (f"/v1/boards/best_run/around/{NOBODY}?rows=%C2%B3", 400, "INVALID_ROWS"),
        (f"/v1/boards/best_run/around/{NOBODY}?rows=3&radius=1", 400, "INVALID_ROWS"),
        (f"/v1/boards/best_run/around/{NOBODY}?radius=51", 400, "INVALID_RADIUS"),
        (f"/v1/boards/best_run/around/{NOBODY}?rows=3", 404, "PLAYER_NOT_RANKED"),
        ("/v1/boards/best_run/around/not-a-uuid?rows=3", 400, "INVALID_PLAYER_ID"),
        (f"/v1/boards/nope/around/{NOBODY}?rows=3", 404, "UNKNOWN_BOARD"),
        (f"/v1/boards/best_run/players/{NOBODY}", 404, "PLAYER_NOT_RANKED"),
        (f"/v1/boards/best_run/players/{NOBODY.upper()}x", 400, "INVALID_PLAYER_ID"),
        (f"/v1/boards/nope/players/{NOBODY}", 404, "UNKNOWN_BOARD"),
        (f"/v1/boards/daily/players/{NOBODY}?period=today", 400, "INVALID_PERIOD"),
        ("/v1/boards/best_run/players", 400, "INVALID_PLAYER_IDS"),
        ("/v1/boards/best_run/players?ids=", 400, "INVALID_PLAYER_IDS"),
        (f"/v1/boards/best_run/players?ids={NOBODY},", 400, "INVALID_PLAYER_IDS"),
        (f"/v1/boards/best_run/players?ids={NOBODY},{NOBODY}", 400, "INVALID_PLAYER_IDS"),
        (f"/v1/boards/best_run/players?ids={NOBODY},{NOBODY.upper()}", 400, "INVALID_PLAYER_IDS"),
        (f"/v1/boards/best_run/players?ids={NOBODY}&ids={NOBODY}", 400, "INVALID_PLAYER_IDS"),
        ("/v1/boards/best_run/players?ids=not-a-uuid", 400, "INVALID_PLAYER_IDS"),
        (f"/v1/boards/best_run/players?ids={MANY}", 400, "INVALID_PLAYER_IDS"),
        (f"/v1/boards/nope/players?ids={NOBODY}", 404, "UNKNOWN_BOARD"),
        (f"/v1/boards/daily/players?ids={NOBODY}&period=x", 400, "INVALID_PERIOD"),
        ("/v1/boards/daily/periods?limit=0", 400, "INVALID_LIMIT"),
        ("/v1/boards/daily/periods?limit=101", 400, "INVALID_LIMIT"),
        ("/v1/boards/daily/periods?limit=ten", 400, "INVALID_LIMIT"),
        ("/v1/boards/nope/periods", 404, "UNKNOWN_BOARD"),
    ],
)
async def test_bad_board_reads_are_refused(http, stack, path, status, code):
    error = await _rest_error(http, stack, "GET", path)

    assert (error.status, error.code) == (status, code)


def _forged_token(player_id: str) -> str:
    now = int(time.time())
    claims = {
        "sub": player_id,
        "sid": "0" * 32,
        "iss": "podium-auth",
        "aud": "podium",
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, Ed25519PrivateKey.generate(), "EdDSA", headers={"kid": "dev-1"})


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "MISSING_TOKEN"),
        ("Bearer", "MISSING_TOKEN"),
        ("Basic dXNlcjpwYXNz", "MISSING_TOKEN"),
        ("Bearer not.a.token", "INVALID_TOKEN"),
        ("Bearer " + _forged_token(str(uuid.uuid4())), "INVALID_TOKEN"),
    ],
)
async def test_websocket_without_a_valid_token_is_refused_before_upgrade(
    http, stack, header, code
):
    headers = {} if header is None else {"Authorization": header}
    upgrade = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }

    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await http.ws_connect(stack.url + "/v1/ws", headers=headers)
    async with http.get(stack.url + "/v1/ws", headers=headers | upgrade) as reply:
        body = await reply.json()

    assert caught.value.status == 401
    assert body["error"]["code"] == code

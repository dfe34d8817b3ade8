"""Protobuf binary frames, chosen by subprotocol at connect: the same game, the same board
frames as JSON sockets get, and the same answers to bad frames."""

import os
import uuid

import aiohttp
from podium.realtime.v1 import realtime_pb2 as pb

from gateway.codec import decode_server


async def _proto_socket(http, stack, player) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(
        stack.url + "/v1/ws", headers=player.bearer, protocols=("podium.v1.proto",)
    )
    assert ws.protocol == "podium.v1.proto"
    return ws


async def _receive(ws, kind: str | None = None) -> dict:
    """The next binary frame (of a type, if given), decoded to its JSON shape."""
    while True:
        message = await ws.receive(timeout=10)
        assert message.type == aiohttp.WSMsgType.BINARY, message
        frame = decode_server(message.data)
        if kind is None or frame["type"] == kind:
            return frame


async def _send(ws, frame_id: str = "", **payload) -> None:
    await ws.send_bytes(pb.Envelope(id=frame_id, **payload).SerializeToString())


async def test_a_protobuf_socket_plays_and_watches_the_board_like_a_json_one(players, http, stack):
    player, watcher = await players(connect=False), await players()
    ws = await _proto_socket(http, stack, player)
    welcome = await _receive(ws)
    assert (welcome["type"], welcome["player_id"]) == ("welcome", player.player_id)

    await _send(ws, "s1", subscribe=pb.Subscribe(board="global", view="top", limit=5))
    assert (await _receive(ws, "board"))["id"] == "s1"
    await watcher.send({"type": "subscribe", "id": "s1", "board": "global", "limit": 5})
    await watcher.receive("board", id="s1")

    action_id = str(uuid.uuid4())
    action = pb.Action(
        action_id=action_id,
        action="score",
        params_json='{"points": 7}',
        state_hash=welcome["state_hash"],
    )
    await _send(ws, "a1", action=action)
    result = await _receive(ws, "result")
    assert (result["id"], result["status"], result["score"]) == ("a1", "applied", 7)

    mine = await _receive(ws, "board")
    theirs = await watcher.board("top", until=lambda frame: frame["seq"] == mine["seq"])
    assert mine == theirs

    await _send(ws, "p", ping=pb.Ping())
    assert await _receive(ws, "pong") == {"type": "pong", "id": "p"}
    await ws.close()


async def test_bad_binary_frames_get_binary_errors_and_the_socket_stays_open(players, http, stack):
    player = await players(connect=False)
    ws = await _proto_socket(http, stack, player)
    await _receive(ws, "welcome")

    await ws.send_bytes(os.urandom(64) + b"\xff\xff\xff\xff")
    await ws.send_str('{"type": "ping"}')
    await _send(ws, "big", action=pb.Action(params_json="x" * 20_000))
    await _send(ws, "srv", pong=pb.Pong())
    await _send(ws, "j", action=pb.Action(action_id=str(uuid.uuid4()), params_json="[1]"))
    codes = [(await _receive(ws, "error"))["error"]["code"] for _ in range(5)]

    assert codes[0] in ("INVALID_FRAME", "UNKNOWN_TYPE")
    assert codes[1:] == ["TEXT_NOT_SUPPORTED", "FRAME_TOO_LARGE", "UNKNOWN_TYPE", "INVALID_JSON"]
    await _send(ws, "alive", ping=pb.Ping())
    assert (await _receive(ws, "pong"))["id"] == "alive"
    await ws.close()


async def test_a_client_that_offers_json_or_nothing_gets_json(players, http, stack):
    player = await players(connect=False)
    for protocols in ((), ("podium.v1.json",), ("chat", "podium.v1.json", "podium.v1.proto")):
        ws = await http.ws_connect(
            stack.url + "/v1/ws", headers=player.bearer, protocols=protocols
        )
        assert ws.protocol == (None if not protocols else "podium.v1.json")
        assert (await ws.receive_json())["type"] == "welcome"
        await ws.send_bytes(b"\x00")
        assert (await ws.receive_json())["error"]["code"] == "BINARY_NOT_SUPPORTED"
        await ws.close()

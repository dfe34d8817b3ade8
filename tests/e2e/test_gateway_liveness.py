"""Heartbeats both ways: a client that only listens stays connected for many heartbeats, and
a peer that stops answering pings is dropped within about two.
"""

import time

import aiohttp
import orjson

HEARTBEAT = 0.5
STACK_ENV = {"PODIUM_HEARTBEAT_SECONDS": str(HEARTBEAT)}


async def test_a_push_only_client_that_answers_pings_stays_connected(players, http, stack):
    """Twelve heartbeats of listening only: pinged all along, never dropped."""
    player = await players(connect=False)
    ws = await http.ws_connect(stack.url + "/v1/ws", headers=player.bearer, autoping=False)
    assert (await ws.receive_json())["type"] == "welcome"
    await ws.send_str(orjson.dumps({"type": "subscribe", "board": "global"}).decode())

    pings, deadline = 0, time.monotonic() + 12 * HEARTBEAT
    while time.monotonic() < deadline:
        try:
            message = await ws.receive(timeout=deadline - time.monotonic())
        except TimeoutError:
            break
        assert message.type in (aiohttp.WSMsgType.PING, aiohttp.WSMsgType.TEXT), message
        if message.type == aiohttp.WSMsgType.PING:
            pings += 1
            await ws.pong(message.data)

    assert pings >= 6 and not ws.closed
    await ws.ping(b"are you there")
    message = await ws.receive(timeout=5)
    assert (message.type, message.data) == (aiohttp.WSMsgType.PONG, b"are you there")
    await ws.close()


async def test_a_peer_that_stops_answering_pings_is_dropped(players, http, stack):
    player = await players(connect=False)
    ws = await http.ws_connect(stack.url + "/v1/ws", headers=player.bearer, autoping=False)
    assert (await ws.receive_json())["type"] == "welcome"

    # The pings go unanswered; within about two heartbeats the gateway gives up.
    kinds = []
    while not ws.closed:
        message = await ws.receive(timeout=20 * HEARTBEAT)
        kinds.append(message.type)
        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            break
    assert aiohttp.WSMsgType.PING in kinds
    assert kinds[-1] in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)

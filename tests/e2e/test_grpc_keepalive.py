"""A board stream with nothing to say stays open: the gateway's keepalive pings are welcome at
ranking, so a quiet board is never cut off (GOAWAY) and reopened."""

import asyncio

import orjson

KEEPALIVE_MS = 200
STACK_ENV = {"PODIUM_GRPC_KEEPALIVE_MS": str(KEEPALIVE_MS)}


async def test_a_quiet_board_stream_outlives_many_keepalive_pings(players, stack):
    watcher, scorer = await players(), await players()
    await watcher.send({"type": "subscribe", "id": "s", "board": "global"})
    await watcher.receive("board", id="s")

    # Some fifteen pings on a stream that carries nothing.
    await asyncio.sleep(15 * KEEPALIVE_MS / 1000)
    await scorer.play("score", {"points": 11})
    frame = await watcher.board("top", until=lambda f: any(e["score"] == 11 for e in f["entries"]))

    assert frame["entries"][0]["player_id"] == scorer.player_id
    events = [
        orjson.loads(line).get("event")
        for line in stack.log_path.read_text().splitlines()
        if line.startswith("{")
    ]
    assert "board_stream_failed" not in events and "board_stream_ended" not in events

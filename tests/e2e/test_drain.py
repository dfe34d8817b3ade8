"""A gateway told to stop (SIGTERM) drains: readiness turns false and new sockets are refused
at once; open sockets get the results they wait for, then 1001 after the grace period."""

import asyncio

import aiohttp

STACK_ENV = {"PODIUM_DRAIN_GRACE_SECONDS": "1.5"}


async def test_sigterm_refuses_new_sockets_and_answers_open_ones_before_going_away(
    players, http, stack
):
    staying, late = await players(), await players(connect=False)
    action_id = await staying.act("score", {"points": 3})
    restart = asyncio.create_task(stack.restart("gateway"))

    for _ in range(100):
        async with http.get(stack.url + "/readyz") as reply:
            if reply.status == 503:
                assert await reply.json() == {"status": "draining"}
                break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("readiness never turned false")
    async with http.get(
        stack.url + "/v1/ws",
        headers={
            **late.bearer,
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        },
    ) as reply:
        assert (reply.status, (await reply.json())["error"]["code"]) == (503, "DRAINING")

    result = await staying.result(action_id)
    assert (result["status"], result["score"]) == ("applied", 3)
    # An action sent while draining is still answered before the socket is closed.
    during = await staying.play("score", {"points": 4})
    assert (during["status"], during["score"]) == ("applied", 7)
    assert await staying.closed_by_server() == aiohttp.WSCloseCode.GOING_AWAY
    await restart

    # The new gateway is ready and takes sockets again.
    await late.connect()
    assert (await late.play("score", {"points": 1}))["status"] == "applied"

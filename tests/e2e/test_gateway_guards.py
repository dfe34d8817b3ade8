"""The gateway's guards and its REST path for actions: tickets for browsers, the Origin
allow-list, the per-player action rate, POST /v1/actions, and readiness.
"""

import asyncio
import uuid

import aiohttp
import pytest

STACK_ENV = {
    "PODIUM_ACTION_RATE_PER_SECOND": "5",
    "PODIUM_ACTION_BURST": "3",
    "PODIUM_ALLOWED_ORIGINS": "https://game.example, https://studio.example/",
}


async def _ticket(http, stack, player) -> str:
    async with http.post(stack.url + "/v1/auth/ticket", headers=player.bearer) as reply:
        assert reply.status == 200, await reply.text()
        body = await reply.json()
    assert body["expires_in"] == 30 and 0 < len(body["ticket"]) <= 64
    return body["ticket"]


async def test_a_ticket_opens_one_socket_once(players, http, stack):
    player = await players(connect=False)
    ticket = await _ticket(http, stack, player)

    ws = await http.ws_connect(f"{stack.url}/v1/ws?ticket={ticket}")
    welcome = await ws.receive_json()
    assert (welcome["type"], welcome["player_id"]) == ("welcome", player.player_id)
    await ws.close()

    with pytest.raises(aiohttp.WSServerHandshakeError) as reused:
        await http.ws_connect(f"{stack.url}/v1/ws?ticket={ticket}")
    assert reused.value.status == 401


@pytest.mark.parametrize("ticket", ["", "nope", "x" * 65, "é" * 10, "a%00b"])
async def test_made_up_tickets_are_refused_before_the_upgrade(http, stack, ticket):
    async with http.get(stack.url + "/v1/ws", params={"ticket": ticket}) as reply:
        # Without upgrade headers the route says so first; with them, the ticket is checked.
        assert reply.status == 426
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(stack.url + "/v1/ws", params={"ticket": ticket})
    assert refused.value.status == 401


async def test_a_reused_ticket_answers_invalid_ticket(players, http, stack):
    player = await players(connect=False)
    ticket = await _ticket(http, stack, player)
    await (await http.ws_connect(f"{stack.url}/v1/ws?ticket={ticket}")).close()

    status, body = await _upgrade(http, f"{stack.url}/v1/ws?ticket={ticket}")
    assert (status, body["error"]["code"]) == (401, "INVALID_TICKET")


async def test_a_ticket_of_a_session_that_ended_opens_nothing(players, http, stack):
    player = await players(connect=False)
    ticket = await _ticket(http, stack, player)
    await player.logout()

    status, body = await _upgrade(http, f"{stack.url}/v1/ws?ticket={ticket}")
    assert (status, body["error"]["code"]) == (401, "SESSION_ENDED")


async def test_tickets_need_a_genuine_token(http, stack):
    async with http.post(stack.url + "/v1/auth/ticket") as reply:
        assert (reply.status, (await reply.json())["error"]["code"]) == (401, "MISSING_TOKEN")
    bad = {"Authorization": "Bearer not.a.token"}
    async with http.post(stack.url + "/v1/auth/ticket", headers=bad) as reply:
        assert (reply.status, (await reply.json())["error"]["code"]) == (401, "INVALID_TOKEN")


async def _upgrade(http, url: str, headers: dict | None = None) -> tuple[int, dict]:
    """Ask for an upgrade by hand, so that a refusal's body can be read."""
    upgrade = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        **(headers or {}),
    }
    async with http.get(url, headers=upgrade) as reply:
        return reply.status, await reply.json()


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "https://game.example.evil", "null", "http://game.example"]
)
async def test_a_page_from_an_origin_not_listed_may_not_connect(players, http, stack, origin):
    player = await players(connect=False)

    status, body = await _upgrade(http, stack.url + "/v1/ws", {**player.bearer, "Origin": origin})
    assert (status, body["error"]["code"]) == (403, "ORIGIN_NOT_ALLOWED")


@pytest.mark.parametrize("origin", ["https://game.example", "https://studio.example", "own"])
async def test_listed_origins_and_the_gateways_own_page_may_connect(players, http, stack, origin):
    player = await players(connect=False)
    origin = stack.url if origin == "own" else origin

    ws = await http.ws_connect(stack.url + "/v1/ws", headers={**player.bearer, "Origin": origin})
    assert (await ws.receive_json())["type"] == "welcome"
    await ws.close()


async def test_actions_past_the_rate_are_refused_with_a_hint_and_nothing_is_lost(players):
    player = await players()
    sent = [await player.act("score", {"points": 1}) for _ in range(6)]

    results, refused = [], []
    for _ in sent:
        frame = await player.receive()
        (results if frame["type"] == "result" else refused).append(frame)
    assert len(results) == 3 and len(refused) == 3
    for frame in refused:
        assert frame["error"]["code"] == "ACTION_RATE_LIMITED"
        assert 0 < frame["error"]["retry_after_ms"] <= 1000
    # Only the first action had the right state hash; the others were mismatches.
    assert [r["status"] for r in results] == ["applied", "mismatch", "mismatch"]

    await asyncio.sleep(max(f["error"]["retry_after_ms"] for f in refused) / 1000)
    player.state_hash = results[-1]["state_hash"]
    retry = await player.play("score", {"points": 1})
    assert (retry["status"], retry["score"]) == ("applied", 2)


def _action(player, **overrides) -> dict:
    return {
        "action_id": str(uuid.uuid4()),
        "action": "score",
        "params": {"points": 5},
        "state_hash": player.state_hash,
        **overrides,
    }


async def _post_action(http, stack, player, body) -> tuple[int, dict, aiohttp.ClientResponse]:
    async with http.post(stack.url + "/v1/actions", json=body, headers=player.bearer) as reply:
        return reply.status, await reply.json(), reply


async def test_an_action_over_rest_is_applied_once_and_answers_the_same_again(
    players, http, stack
):
    player = await players()
    body = _action(player)

    status, first, _ = await _post_action(http, stack, player, body)
    assert (status, first["status"], first["score"]) == (200, "applied", 5)
    assert first["action_id"] == body["action_id"] and first["state_hash"]
    status, again, _ = await _post_action(http, stack, player, body)
    assert (status, again) == (200, first)

    # The player's socket sees the same state: the next action over WS builds on it.
    player.state_hash = first["state_hash"]
    assert (await player.play("score", {"points": 1}))["score"] == 6


async def test_a_stale_state_hash_over_rest_is_a_mismatch(players, http, stack):
    player = await players()
    status, body, _ = await _post_action(http, stack, player, _action(player, state_hash="0" * 64))
    assert (status, body["status"], body["score"]) == (200, "mismatch", 0)


async def test_rest_actions_are_rate_limited_with_retry_after(players, http, stack):
    player = await players()
    answers = await asyncio.gather(
        *(_post_action(http, stack, player, _action(player)) for _ in range(6))
    )

    assert sorted(status for status, _, _ in answers) == [200, 200, 200, 429, 429, 429]
    for status, body, reply in answers:
        if status == 429:
            assert body["error"]["code"] == "ACTION_RATE_LIMITED"
            assert reply.headers["Retry-After"] == "1"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"action_id": "not-a-uuid"}, "INVALID_FIELD"),
        ({"action_id": None}, "INVALID_FIELD"),
        ({"action": ""}, "INVALID_FIELD"),
        ({"action": 7}, "INVALID_FIELD"),
        ({"params": [1]}, "INVALID_FIELD"),
        ({"state_hash": "f" * 129}, "INVALID_FIELD"),
        ({"ts": -1}, "INVALID_FIELD"),
        ({"ts": True}, "INVALID_FIELD"),
        ({"id": {"nested": 1}}, None),
    ],
)
async def test_bad_rest_actions_are_refused_with_a_code(players, http, stack, change, code):
    player = await players(connect=False)
    body = _action(player, **change)

    status, answer, _ = await _post_action(http, stack, player, body)
    if code is None:  # an envelope field in the body is ignored, not echoed
        assert status == 200 and "id" not in answer
    else:
        assert (status, answer["error"]["code"]) == (400, code)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"", "INVALID_JSON"),
        (b"[1]", "INVALID_JSON"),
        (b"{", "INVALID_JSON"),
        (b'{"action": "score"}', "MISSING_FIELD"),
    ],
)
async def test_rest_action_bodies_that_are_not_actions(players, http, stack, raw, code):
    player = await players(connect=False)
    async with http.post(stack.url + "/v1/actions", data=raw, headers=player.bearer) as reply:
        assert (reply.status, (await reply.json())["error"]["code"]) == (400, code)


async def test_rest_actions_need_a_genuine_token(http, stack):
    async with http.post(stack.url + "/v1/actions", json={}) as reply:
        assert (reply.status, (await reply.json())["error"]["code"]) == (401, "MISSING_TOKEN")


async def test_readyz_says_ready(http, stack):
    async with http.get(stack.url + "/readyz") as reply:
        assert (reply.status, await reply.json()) == (200, {"status": "ready"})


async def test_ten_thousand_subscriptions_are_capped_and_the_gateway_is_fine(players):
    """7 boards x 3 views is 21 keys: past 16 each is refused, the rest replace one another.
    A client that sends them faster than it reads the answers is closed with 1013."""
    player, bystander = await players(), await players()
    boards = ["global", "daily", "weekly", "best_run", "fastest", "hourly_set", "penalties"]
    views = [
        {"view": "top", "limit": 3},
        {"view": "around", "radius": 1},
        {"view": "players", "players": [player.player_id]},
    ]
    frames = [
        {"type": "subscribe", "id": n, "board": boards[n % 7], **views[(n // 7) % 3]}
        for n in range(10_000)
    ]

    try:
        for frame in frames:
            await player.send(frame)
    except aiohttp.ClientConnectionResetError:
        pass  # closed while sending
    code = await player.closed_by_server(timeout=30)

    assert code == aiohttp.WSCloseCode.TRY_AGAIN_LATER
    answers = [frame for frame in player.frames if "id" in frame]
    refused = {f["error"]["code"] for f in answers if f["type"] == "error"}
    assert refused <= {"TOO_MANY_SUBSCRIPTIONS"}
    watched = {(f["board"], f["view"]) for f in answers if f["type"] == "board"}
    assert len(watched) <= 16
    await bystander.send({"type": "ping", "id": "fine"})
    assert (await bystander.receive("pong", id="fine"))["id"] == "fine"

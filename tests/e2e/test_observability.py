"""What the gateway tells operators: GET /metrics counting routes by pattern, sockets, board
subscriptions, frames and actions; log lines that name the action and session they are about
and never a secret; and a /readyz that follows the services behind it."""

import asyncio
import json

from aiohttp.test_utils import TestClient, TestServer

from gateway.app import build_app
from gateway.config import GatewaySettings
from tests.e2e.conftest import PASSWORD
from tests.game.stall_proxy import StallProxy
from tests.scrape import Scrape, scrape, scrape_until

# One action at once per player: a second one sent straight after is refused.
STACK_ENV = {"PODIUM_ACTION_BURST": "1", "PODIUM_ACTION_RATE_PER_SECOND": "0.5"}
SETTLE_SECONDS = 20.0


def _grew(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


async def test_requests_are_counted_by_route_pattern_and_timed(http, stack):
    url = stack.url + "/metrics"
    before = await scrape(url)

    async with http.get(stack.url + "/v1/boards/global/top") as top:
        assert top.status == 200
    async with http.get(stack.url + "/no/such/route") as missing:
        assert missing.status == 404
    after = await scrape(url)

    pattern = {"method": "GET", "route": "/v1/boards/{board}/top"}
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert _grew(before, after, "podium_http_requests_total", **pattern, status="200") == 1
    assert _grew(before, after, "podium_http_request_seconds_count", **pattern) == 1
    assert _grew(before, after, "podium_http_requests_total", **unmatched) == 1
    routes = after.labels("podium_http_requests_total", "route")
    assert not [route for route in routes if "global" in route or "no/such" in route]


async def test_sockets_subscriptions_frames_and_actions_are_counted(players, stack):
    url = stack.url + "/metrics"
    before = await scrape(url)

    player = await players()
    await player.send({"type": "subscribe", "board": "global", "id": "s1"})
    await player.board("top")
    result = await player.play("score", {"points": 3})
    during = await scrape(url)
    await player.close()
    after = await scrape_until(
        url,
        lambda now: (
            now.value("podium_gateway_sockets_open") == before.value("podium_gateway_sockets_open")
        ),
    )

    assert result["status"] == "applied"
    assert _grew(before, during, "podium_gateway_sockets_open") == 1
    assert _grew(before, during, "podium_gateway_board_subscriptions", board="global") == 1
    assert _grew(before, during, "podium_gateway_ws_frames_total", type="subscribe") == 1
    assert _grew(before, during, "podium_gateway_ws_frames_total", type="action") == 1
    assert _grew(before, during, "podium_gateway_actions_total", outcome="queued") == 1
    assert _grew(before, after, "podium_gateway_board_subscriptions", board="global") == 0
    ws_route = {"method": "GET", "route": "/v1/ws", "status": "101"}
    assert _grew(before, after, "podium_http_requests_total", **ws_route) == 1


async def test_a_refused_action_is_counted_and_logged_with_its_action_and_session(players, stack):
    url = stack.url + "/metrics"
    player = await players()
    await player.play("score", {"points": 1})
    before = await scrape(url)

    refused_id = await player.act("score", {"points": 1})
    refusal = await player.answer(refused_id)
    after = await scrape(url)
    opened = await _gateway_line(stack, "socket_opened", player_id=player.player_id)
    logged = await _gateway_line(stack, "frame_refused", action_id=refused_id)

    assert refusal["error"]["code"] == "ACTION_RATE_LIMITED"
    code = {"code": "ACTION_RATE_LIMITED"}
    assert _grew(before, after, "podium_gateway_ws_frame_errors_total", **code) == 1
    assert logged["session_key"] == opened["session_key"]
    assert logged["player_id"] == player.player_id


async def test_no_log_line_holds_a_token_or_a_password(players, stack):
    player = await players()
    first = [player.access_token, player.refresh_token]
    await player.refresh()
    await player.play("score", {"points": 2})
    await player.logout()

    logged = stack.log_path.read_text()
    secrets = [*first, player.access_token, player.refresh_token, PASSWORD]

    assert all(secrets)
    assert [secret for secret in secrets if secret in logged] == []


async def test_readyz_is_503_naming_a_service_while_it_is_unreachable_and_200_once_back(stack):
    auth_host, auth_port = stack.auth_target.rsplit(":", 1)

    async with StallProxy(int(auth_port)) as proxy:
        settings = GatewaySettings(
            namespace=stack.names.namespace,
            auth_target=f"{auth_host}:{proxy.port}",
            game_target=f"127.0.0.1:{stack.ports['game']}",
            ranking_target=stack.ranking_target,
        )
        async with TestServer(build_app(settings)) as server, TestClient(server) as gateway:
            ready = await _readyz_until(gateway, 200)
            proxy.cut()
            down = await _readyz_until(gateway, 503)
            metrics = Scrape(await (await gateway.get("/metrics")).text())
            await proxy.restore()
            back = await _readyz_until(gateway, 200)

    assert ready == back == {"status": "ready"}
    assert down == {"status": "unavailable", "down": ["auth"]}
    assert metrics.value("podium_dependency_up", dependency="auth") == 0
    assert metrics.value("podium_dependency_up", dependency="ranking") == 1


async def _readyz_until(gateway: TestClient, status: int) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_SECONDS
    while True:
        async with gateway.get("/readyz") as reply:
            if reply.status == status:
                return await reply.json()
        assert loop.time() < deadline, f"/readyz never answered {status}"
        await asyncio.sleep(0.1)


async def _gateway_line(stack, event: str, **fields) -> dict:
    """The gateway's first log line of `event` holding `fields`, waiting for it a little."""
    for _ in range(100):
        for line in stack.log_path.read_text().splitlines():
            if not line.startswith("{"):
                continue
            entry = json.loads(line)
            if entry.get("service") == "gateway" and entry.get("event") == event:
                if fields.items() <= entry.items():
                    return entry
        await asyncio.sleep(0.05)
    raise AssertionError(f"the gateway never logged {event} with {fields}")

"""What a game worker tells operators: counts of what it decided, batch sizes, queue lag and
dead letters on its metrics port, log lines that name the action they are about, and a health
status that follows its stores."""

import asyncio
import uuid
from urllib.parse import urlsplit

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from podium.game.v1 import game_pb2
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from game.rules import load_ruleset
from game.state import state_hash
from game.worker import running
from infra.shards import partition_of_player
from tests.game.rulesets import ExplodingRuleset
from tests.game.stall_proxy import StallProxy
from tests.scrape import metrics_port, scrape, scrape_until

INITIAL_HASH = state_hash(load_ruleset("default").initial_state())
EXPLODING_HASH = state_hash(ExplodingRuleset().initial_state())
SETTLE_SECONDS = 15.0
ACTIONS = "podium_game_actions_total"
DEAD_LETTERS = "podium_game_dead_letters_total"
STATUSES = ("applied", "mismatch", "repeated", "rejected", "failed")


def _observed(worker_settings, namespace: str, **overrides):
    """Settings of a worker on `namespace` that serves its metrics, and their URL."""
    port = metrics_port()
    settings = worker_settings(
        namespace=namespace, metrics_port=port, metrics_host="127.0.0.1", **overrides
    )
    return settings, f"http://127.0.0.1:{port}/metrics"


async def test_counters_follow_applied_mismatched_repeated_and_malformed_actions(
    spare_names, worker_settings, make_client
):
    settings, url = _observed(worker_settings, spare_names.namespace)
    player = str(uuid.uuid4())

    async with running(settings):
        client = await make_client(spare_names)
        before = await scrape(url)
        first = client.action(player, INITIAL_HASH)
        applied = await client.play(first)
        stale = await client.play(client.action(player, INITIAL_HASH))
        await client.send(first, msg_id=f"retry-{uuid.uuid4()}")
        again = await client.result()
        await client.send_bytes(player, b"not an action", f"junk-{uuid.uuid4()}")
        malformed = before.value(DEAD_LETTERS, reason="malformed") + 1
        after = await scrape_until(
            url, lambda now: now.value(DEAD_LETTERS, reason="malformed") == malformed
        )

    def grew(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    partition = str(partition_of_player(player))
    assert applied.status == game_pb2.ACTION_STATUS_APPLIED
    assert stale.status == game_pb2.ACTION_STATUS_MISMATCH
    assert again == applied
    assert [grew(ACTIONS, status=status) for status in STATUSES] == [1, 1, 1, 0, 0]
    assert grew("podium_game_batch_actions_sum") == 4
    assert grew("podium_game_batch_seconds_count") == grew("podium_game_batch_actions_count")
    assert grew("podium_game_queue_lag_seconds_count") >= 1
    assert after.value("podium_game_partition_pending", partition=partition) == 0


async def test_lines_logged_about_a_failing_action_name_it_and_its_session(
    spare_names, worker_settings, make_client
):
    settings, url = _observed(worker_settings, spare_names.namespace, max_failures=2)
    player = str(uuid.uuid4())

    with capture_logs(processors=[merge_contextvars]) as logs:
        async with running(settings, ruleset=ExplodingRuleset()):
            client = await make_client(spare_names)
            before = await scrape(url)
            poison = client.action(player, EXPLODING_HASH, params={"points": 0})
            result = await client.play(poison)
            after = await scrape(url)

    about = [line for line in logs if line["event"] in ("action_failed", "action_dead_lettered")]
    assert result.error_code == "ACTION_FAILED"
    assert [line["event"] for line in about] == ["action_failed"] * 2 + ["action_dead_lettered"]
    assert {(line["action_id"], line["session_key"]) for line in about} == {
        (poison.action_id, client.session_key)
    }
    assert after.value(ACTIONS, status="failed") - before.value(ACTIONS, status="failed") == 1
    assert (
        after.value(DEAD_LETTERS, reason="failed") - before.value(DEAD_LETTERS, reason="failed")
        == 1
    )


async def _health(port: int) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return (await stub.Check(health_pb2.HealthCheckRequest())).status


async def _until_health(port: int, status: int) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_SECONDS
    while await _health(port) != status:
        assert loop.time() < deadline, f"health never became {status}"
        await asyncio.sleep(0.05)


async def test_health_follows_postgres_down_and_back(
    spare_names, worker_settings, make_client, service_env
):
    dsns = service_env["PODIUM_POSTGRES_SHARDS"].split(",")

    async with StallProxy(urlsplit(dsns[0]).port) as proxy:
        through = [proxy.through(dsn) for dsn in dsns]
        settings = worker_settings(
            namespace=spare_names.namespace,
            postgres_dsn=through[0],
            postgres_shards=through,
            dependency_check_ms=100,
        )
        async with running(settings) as worker:
            await _until_health(worker.port, health_pb2.HealthCheckResponse.SERVING)
            proxy.cut()
            await _until_health(worker.port, health_pb2.HealthCheckResponse.NOT_SERVING)
            await proxy.restore()
            await _until_health(worker.port, health_pb2.HealthCheckResponse.SERVING)
            client = await make_client(spare_names)
            result = await client.play(client.action(str(uuid.uuid4()), INITIAL_HASH))

    assert result.status == game_pb2.ACTION_STATUS_APPLIED

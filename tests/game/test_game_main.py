"""Starting and stopping a worker: `python -m game` as a process, and a bad configuration."""

import asyncio
import os
import signal
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import grpc
import orjson
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from podium.game.v1 import game_pb2

from game.state import state_hash
from game.worker import running
from tests.game.rulesets import ExplodingRuleset

ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 20
STOP_SECONDS = 15


async def _read_until_serving(stdout: asyncio.StreamReader) -> tuple[int, list[dict]]:
    lines = []
    while True:
        line = await stdout.readline()
        assert line, "the worker exited before serving"
        event = orjson.loads(line)
        lines.append(event)
        if event["event"] == "serving":
            return event["port"], lines


async def test_worker_process_serves_plays_and_stops_cleanly_on_sigterm(
    service_env, spare_names, make_client
):
    env = {
        **os.environ,
        **service_env,
        "PODIUM_NAMESPACE": spare_names.namespace,
        "PODIUM_GAME_LISTEN": "127.0.0.1:0",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "game", env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    try:
        port, _ = await asyncio.wait_for(_read_until_serving(process.stdout), START_SECONDS)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
        client = await make_client(spare_names)
        initial = state_hash({"total": 0, "plays": 0})
        result = await client.play(client.action(str(uuid.uuid4()), initial))

        process.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(process.communicate(), STOP_SECONDS)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert result.status == game_pb2.ACTION_STATUS_APPLIED
    assert process.returncode == 0
    events = [orjson.loads(line) for line in rest.splitlines()]
    assert events[-1]["event"] == "stopped"
    assert all(e["service"] == "game" and e["level"] != "error" for e in events)


async def test_worker_with_an_unknown_ruleset_refuses_to_start(worker_settings, spare_names):
    settings = worker_settings(namespace=spare_names.namespace, ruleset="chess")

    with pytest.raises(ValueError, match="unknown ruleset"):
        async with running(settings):
            pass


async def test_worker_makes_the_missing_history_partitions_on_every_shard(
    worker_settings, spare_names, shards
):
    """Migrations made this month and three ahead; a month dropped from that range (empty, so
    nothing is lost) is made again when a worker starts."""
    today = datetime.now(UTC)
    year, month_index = divmod(today.year * 12 + today.month - 1 + 3, 12)
    month = f"score_events_y{year}m{month_index + 1:02d}"
    for pool in shards:
        await pool.execute(f"DROP TABLE {month}")

    async with running(worker_settings(namespace=spare_names.namespace)):
        present = [
            await pool.fetchval("SELECT to_regclass($1) IS NOT NULL", month) for pool in shards
        ]

    assert present == [True] * len(shards)


class _Escape(BaseException):
    """Not an Exception: nothing in the worker may swallow it."""


class _EscapingRuleset(ExplodingRuleset):
    def apply(self, state: dict, action: str, params: dict):
        raise _Escape()


async def test_an_applier_that_dies_fails_the_worker_instead_of_stalling_it(
    worker_settings, spare_names, make_client
):
    client = await make_client(spare_names)
    settings = worker_settings(namespace=spare_names.namespace)

    async with running(settings, ruleset=_EscapingRuleset()) as worker:
        await client.send(client.action(str(uuid.uuid4()), state_hash({"total": 0})))
        done, _ = await asyncio.wait({worker.task}, timeout=STOP_SECONDS)

    assert done, "the worker kept running without an applier"
    with pytest.raises(RuntimeError, match="an applier stopped"):
        worker.task.result()

"""Stores that stall without closing the connection, as in a network partition."""

import asyncio
import os
import signal
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

from podium.game.v1 import game_pb2

import game.worker
from game.rules import load_ruleset
from game.state import state_hash
from game.worker import running
from infra.config import CommonSettings
from infra.shards import ACTION_PARTITIONS
from infra.streams import ensure_actions_stream
from tests.game.stall_proxy import StallProxy

ROOT = Path(__file__).resolve().parents[2]
APPLIED = game_pb2.ACTION_STATUS_APPLIED
INITIAL_HASH = state_hash({"total": 0, "plays": 0})
SETTLE_SECONDS = 20.0
# A stopping worker must be gone within what an orchestrator allows (ten seconds), plus slack.
EXIT_SECONDS = 12.0


def _port(url: str) -> int:
    return urlsplit(url).port


def _chain(client, player: str, length: int) -> list[game_pb2.Action]:
    ruleset = load_ruleset("default")
    state, actions = ruleset.initial_state(), []
    for _ in range(length):
        actions.append(client.action(player, state_hash(state), params={"points": 3}))
        state = ruleset.apply(state, "score", {"points": 3}).state
    return actions


async def _until(condition, what: str) -> None:
    deadline = time.monotonic() + SETTLE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.05)


async def test_a_worker_cut_off_from_redis_stops_pulling_before_its_leases_run_out(
    spare_names, worker_settings, make_client, monkeypatch
):
    """Its renewals hang, its leases lapse and another worker takes every partition over; had
    it gone on pulling from the same consumers, chains would break into mismatches. Redis calls
    are let hang far longer than a lease, so only the fetchers' own lease check stops them."""
    monkeypatch.setattr(game.worker, "_REDIS_TIMEOUT_SECONDS", 30.0)
    redis_port = _port(CommonSettings().redis_url)
    client = await make_client(spare_names)
    chains = [_chain(client, str(uuid.uuid4()), 10) for _ in range(30)]

    async with StallProxy(redis_port) as proxy:
        cut_off_url = f"redis://127.0.0.1:{proxy.port}/0"
        cut_off = worker_settings(namespace=spare_names.namespace, redis_url=cut_off_url)
        async with running(cut_off) as stalled:
            await _until(
                lambda: len(stalled.consumer.partitions) == ACTION_PARTITIONS,
                "the first worker holds every partition",
            )
            proxy.stall()
            await asyncio.sleep(cut_off.lease_seconds + 0.2)
            async with running(worker_settings(namespace=spare_names.namespace)) as taker:
                await _until(
                    lambda: len(taker.consumer.partitions) == ACTION_PARTITIONS,
                    "the second worker holds every partition",
                )
                for link in range(10):
                    await asyncio.gather(*(client.send(chain[link]) for chain in chains))
                results = [await client.result() for _ in range(300)]
                proxy.resume()

    assert Counter(r.status for r in results) == {APPLIED: 300}


async def test_sigterm_while_postgres_stalls_still_ends_the_worker_and_loses_nothing(
    spare_names, service_env, worker_settings, make_client, nats_client
):
    await ensure_actions_stream(nats_client.jetstream(), spare_names)
    client = await make_client(spare_names)
    actions = [client.action(str(uuid.uuid4()), INITIAL_HASH) for _ in range(20)]
    pg_port = _port(service_env["PODIUM_POSTGRES_DSN"])

    async with StallProxy(pg_port) as proxy:
        through = {
            key: value.replace(f":{pg_port}/", f":{proxy.port}/")
            for key, value in service_env.items()
        }
        env = {
            **os.environ,
            **through,
            "PODIUM_NAMESPACE": spare_names.namespace,
            "PODIUM_GAME_LISTEN": "127.0.0.1:0",
            "PODIUM_LEASE_SECONDS": str(worker_settings().lease_seconds),
        }
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "game", env=env, cwd=ROOT, stdout=asyncio.subprocess.DEVNULL
        )
        try:
            first = await client.play(actions[0])
            proxy.stall()
            await asyncio.gather(*(client.send(action) for action in actions[1:]))
            await asyncio.sleep(1.0)
            worker.send_signal(signal.SIGTERM)
            exit_code = await asyncio.wait_for(worker.wait(), EXIT_SECONDS)
        finally:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()

    async with running(worker_settings(namespace=spare_names.namespace)):
        rest = {r.action_id: r for r in [await client.result() for _ in actions[1:]]}

    assert first.status == APPLIED
    assert exit_code is not None
    assert set(rest) == {a.action_id for a in actions[1:]}
    assert {r.status for r in rest.values()} == {APPLIED}

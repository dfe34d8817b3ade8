"""The whole system started by the README's own start command, on real services.

Each test module gets a stack of its own (a fresh namespace and shard databases, as many as the
session has), so board ranks in one module never depend on another's scores.
"""

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import uuid
from pathlib import Path

import aiohttp
import nats
import pytest
import redis.asyncio as aioredis

from devstack.client import PlayerClient
from infra.config import CommonSettings
from infra.names import Names
from infra.shards import ShardPools

ROOT = Path(__file__).resolve().parents[2]
BASE = CommonSettings()
PASSWORD = "correct horse battery"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Stack:
    """A running `python -m devstack up` and what it points at."""

    def __init__(self, namespace: str, dsns: list[str], url: str, process, log_path: Path) -> None:
        self.names = Names(namespace)
        self.dsns = dsns
        self.url = url
        self.process = process
        self.log_path = log_path
        # Where the stack's auth and ranking listen, for RPCs no player route exposes and for
        # gateway parts run inside a test.
        self.auth_target = ""
        self.ranking_target = ""

    def pid_of(self, module: str) -> int | None:
        """The pid of the service's current process, from the stack's own log."""
        pid = None
        for line in self.log_path.read_text().splitlines():
            if line.startswith("{") and '"service_started"' in line:
                entry = json.loads(line)
                if entry.get("event") == "service_started" and entry.get("name") == module:
                    pid = entry["pid"]
        return pid

    async def restart(self, module: str) -> None:
        """Stop the service's process (SIGTERM); devstack starts a new one, awaited here."""
        old = self.pid_of(module)
        os.kill(old, signal.SIGTERM)
        for _ in range(300):
            await asyncio.sleep(0.1)
            if self.pid_of(module) not in (None, old):
                break
        else:
            raise RuntimeError(f"{module} was not restarted")
        await _wait_ready(self.url, self.process, str(self.log_path))


@pytest.fixture(scope="module")
async def stack(request, tmp_path_factory, shard_dsns_for):
    """The stack of one test module; a module's STACK_ENV adds settings of its own."""
    namespace = "e" + uuid.uuid4().hex[:10]
    dsns = shard_dsns_for(namespace)
    http_port = _free_port()
    env = {
        **os.environ,
        "PODIUM_NAMESPACE": namespace,
        # Both replace what settings_env may have exported for the session's own services.
        "PODIUM_POSTGRES_DSN": dsns[0],
        "PODIUM_POSTGRES_SHARDS": ",".join(dsns),
        "PODIUM_HTTP_PORT": str(http_port),
        "PODIUM_AUTH_PORT": str(_free_port()),
        "PODIUM_RANKING_PORT": str(_free_port()),
        "PODIUM_GAME_PORT": str(_free_port()),
        "PODIUM_JWT_PRIVATE_KEY_FILE": str(ROOT / ".podium" / "jwt-ed25519.pem"),
        # Login lockouts last a second, so that a test can wait one out.
        "PODIUM_LOGIN_LOCKOUT_SECONDS": "1",
        # Gateways check their sockets' sessions with auth every second.
        "PODIUM_SESSION_SWEEP_SECONDS": "1",
        **getattr(request.module, "STACK_ENV", {}),
    }
    log_file = (tmp_path_factory.mktemp("stack") / "stack.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "devstack",
        "up",
        env=env,
        cwd=ROOT,
        stdout=log_file,
        stderr=asyncio.subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{http_port}"
    try:
        await _wait_ready(url, process, log_file.name)
        stack = Stack(namespace, dsns, url, process, Path(log_file.name))
        stack.auth_target = f"127.0.0.1:{env['PODIUM_AUTH_PORT']}"
        stack.ranking_target = f"127.0.0.1:{env['PODIUM_RANKING_PORT']}"
        yield stack

        process.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(process.wait(), 30)
        assert code == 0, Path(log_file.name).read_text()[-4000:]
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        log_file.close()
        await _remove(namespace)


async def _wait_ready(url: str, process, log_path: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            if process.returncode is not None:
                break
            try:
                async with session.get(url + "/healthz") as reply:
                    if reply.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("stack did not become ready:\n" + Path(log_path).read_text()[-4000:])


async def _remove(namespace: str) -> None:
    names = Names(namespace)
    client = aioredis.from_url(BASE.redis_url)
    keys = [key async for key in client.scan_iter(match=f"{namespace}:*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()

    nc = await nats.connect(BASE.nats_url)
    for stream in (names.actions_stream, names.dead_letters_stream):
        # A stack that never took an action has no dead-letter stream.
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await nc.jetstream().delete_stream(stream)
    await nc.close()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def players(stack, http):
    """A factory of registered, logged-in and connected players; closes them afterwards."""
    made: list[PlayerClient] = []

    async def make(connect: bool = True) -> PlayerClient:
        player = PlayerClient(http, stack.url)
        username = "p" + uuid.uuid4().hex[:12]
        await player.register(username, PASSWORD)
        await player.login(username, PASSWORD)
        player.username = username
        if connect:
            await player.connect()
        made.append(player)
        return player

    yield make

    for player in made:
        await player.close()


@pytest.fixture
async def databases(stack):
    """The stack's shard databases, routed as its services route: databases.for_player(id)."""
    pools = await ShardPools.open(stack.dsns, min_size=1, max_size=2)
    yield pools
    await pools.close()


@pytest.fixture
async def redis_db():
    client = aioredis.from_url(BASE.redis_url)
    yield client
    await client.aclose()

"""The whole system started by the README's own start command, on real services.

Each test module gets a stack of its own (a fresh namespace and shard databases, as many as the
session has unless the module's SHARD_DATABASES says), so board ranks in one module never
depend on another's scores.
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
import grpc
import nats
import pytest
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devstack.client import PlayerClient
from infra.config import CommonSettings
from infra.names import Names
from infra.shards import ShardPools

ROOT = Path(__file__).resolve().parents[2]
BASE = CommonSettings()
PASSWORD = "correct horse battery"


# Ports a stack's replicas may take past each service's first one (replica i on port + i).
REPLICA_PORTS = 4


def _free_port(span: int = REPLICA_PORTS) -> int:
    """A port that nothing holds, nor the `span - 1` ports after it."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port + span <= 65536 and all(_bindable(port + i) for i in range(1, span)):
            return port


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Stack:
    """A running `python -m devstack up` and what it points at."""

    def __init__(
        self, namespace: str, dsns: list[str], process, log_path: Path, ports: dict[str, int]
    ) -> None:
        self.names = Names(namespace)
        self.dsns = dsns
        self.process = process
        self.log_path = log_path
        # The first port of each service, by module; replica i listens on port + i.
        self.ports = ports
        # Every gateway, as devstack announced them once all answered; url is the first.
        self.urls = self.entries("podium_ready")[-1]["urls"]
        self.url = self.urls[0]
        # Where the stack's auth and ranking listen, for RPCs no player route exposes and for
        # gateway parts run inside a test.
        self.auth_target = f"127.0.0.1:{ports['auth']}"
        self.ranking_target = f"127.0.0.1:{ports['ranking']}"

    def entries(self, event: str) -> list[dict]:
        """devstack's own log lines of one event, oldest first."""
        entries = []
        for line in self.log_path.read_text().splitlines():
            if line.startswith("{") and f'"{event}"' in line:
                entry = json.loads(line)
                if entry.get("event") == event:
                    entries.append(entry)
        return entries

    def pid_of(self, module: str, replica: int = 0) -> int | None:
        """The pid of a service replica's current process, from the stack's own log."""
        started = [
            entry["pid"]
            for entry in self.entries("service_started")
            if entry["name"] == module and entry["replica"] == replica
        ]
        return started[-1] if started else None

    async def restart(self, module: str, replica: int = 0, sig: int = signal.SIGTERM) -> None:
        """Stop a replica's process (SIGTERM unless told); devstack starts a new one, awaited
        here until it serves: a gateway until its /healthz answers, another service until its
        gRPC health says SERVING and the first gateway's /healthz answers again."""
        old = self.pid_of(module, replica)
        os.kill(old, sig)
        for _ in range(300):
            await asyncio.sleep(0.1)
            if self.pid_of(module, replica) not in (None, old):
                break
        else:
            raise RuntimeError(f"{module} replica {replica} was not restarted")
        if module != "gateway":
            await _wait_serving(f"127.0.0.1:{self.ports[module] + replica}", self)
        await _wait_ready(
            self.urls[replica if module == "gateway" else 0], self.process, str(self.log_path)
        )


@pytest.fixture(scope="module")
async def stack(request, tmp_path_factory, shard_dsns_for):
    """The stack of one test module; a module's STACK_ENV adds settings of its own."""
    namespace = "e" + uuid.uuid4().hex[:10]
    dsns = shard_dsns_for(namespace, getattr(request.module, "SHARD_DATABASES", None))
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
        # A process group of devstack and the services it starts: a stack that does not stop
        # when asked is killed whole, leaving no service behind.
        start_new_session=True,
    )
    ports = {"gateway": int(env["PODIUM_HTTP_PORT"])} | {
        module: int(env[f"PODIUM_{module.upper()}_PORT"]) for module in ("auth", "ranking", "game")
    }
    try:
        await _wait_announced(process, log_file.name)
        stack = Stack(namespace, dsns, process, Path(log_file.name), ports)
        yield stack

        process.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(process.wait(), 30)
        assert code == 0, Path(log_file.name).read_text()[-4000:]
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
        log_file.close()
        await _remove(namespace)


async def _wait_announced(process, log_path: str) -> None:
    """Wait until devstack says every gateway is up."""
    for _ in range(600):
        if process.returncode is not None:
            break
        if "Podium is up" in Path(log_path).read_text():
            return
        await asyncio.sleep(0.2)
    raise RuntimeError("stack did not come up:\n" + Path(log_path).read_text()[-4000:])


async def _wait_serving(address: str, stack: Stack) -> None:
    """Wait until the gRPC server at `address` reports SERVING (its stores answer)."""
    for _ in range(300):
        if stack.process.returncode is not None:
            break
        # A new channel each time: one that failed to connect waits out a growing backoff.
        async with grpc.aio.insecure_channel(address) as channel:
            if await _serving(channel):
                return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{address} did not serve:\n" + stack.log_path.read_text()[-4000:])


async def _serving(channel: grpc.aio.Channel) -> bool:
    """Whether the server says SERVING; a server not up yet fails the call, which says no."""
    try:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=1
        )
    except grpc.aio.AioRpcError:
        return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


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
    """A factory of registered, logged-in and connected players, on the first gateway unless
    told another's URL; closes them afterwards."""
    made: list[PlayerClient] = []

    async def make(
        connect: bool = True, url: str | None = None, username: str | None = None
    ) -> PlayerClient:
        player = PlayerClient(http, url or stack.url)
        username = username or "p" + uuid.uuid4().hex[:12]
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

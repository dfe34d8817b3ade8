"""Start the whole system on this machine and stop all of it on Ctrl-C.

Finds Postgres, Redis and NATS, or starts embedded ones where nobody configured them and nothing
answers (devstack.embedded), prepares what the services expect to exist (database schema,
JetStream stream), starts auth, ranking, the game workers and the gateway, as many replicas of
each as configured, as child processes whose JSON log lines share this terminal, waits until
every gateway's /healthz says all its dependencies answer, and restarts a process that exits
on its own.
"""

import asyncio
import os
import signal
import sys
from collections import Counter

import aiohttp
import nats
import structlog
from nats.js.errors import APIError

from devstack.config import StackSettings
from devstack.embedded import backing_stores
from devstack.stores import StoreUnavailable
from infra.migrate import migrate_all
from infra.names import Names
from infra.streams import ensure_actions_stream

log = structlog.get_logger(__name__)

STOP_GRACE_SECONDS = 10.0
RESTART_PAUSE_SECONDS = 1.0
# A service that exits more often than this within the window is given up on, with the stack.
MAX_RESTARTS = 5
RESTART_WINDOW_SECONDS = 60.0


def service_commands(settings: StackSettings) -> list[tuple[str, dict[str, str]]]:
    """(module, extra environment) for every process of the stack, each service's replicas in
    order; every gateway is pointed at every replica of auth, ranking and game."""
    host = "127.0.0.1"
    ports = settings.port_ranges
    addresses = {module: [f"{host}:{port}" for port in ports[module]] for module in ports}
    key = str(settings.jwt_private_key_file.resolve())
    registrations = str(settings.registrations_per_address)
    commands = [
        (
            "auth",
            {"PODIUM_AUTH_LISTEN": address, "PODIUM_REGISTRATIONS_PER_ADDRESS": registrations},
        )
        for address in addresses["auth"]
    ]
    commands += [
        ("ranking", {"PODIUM_RANKING_LISTEN": address}) for address in addresses["ranking"]
    ]
    commands += [("game", {"PODIUM_GAME_LISTEN": address}) for address in addresses["game"]]
    gateway = {
        "PODIUM_HTTP_HOST": settings.http_host,
        "PODIUM_AUTH_TARGET": _target(addresses["auth"]),
        "PODIUM_RANKING_TARGET": _target(addresses["ranking"]),
        "PODIUM_GAME_TARGET": _target(addresses["game"]),
        "PODIUM_DRAIN_GRACE_SECONDS": str(settings.drain_grace_seconds),
    }
    commands += [
        ("gateway", {**gateway, "PODIUM_HTTP_PORT": str(port)}) for port in ports["gateway"]
    ]
    if settings.metrics_port:
        # Processes sharing a machine cannot share a port: each gRPC one serves its metrics on
        # the next (gateways serve /metrics on their HTTP ports), on loopback like the rest of
        # the stack unless PODIUM_METRICS_HOST says otherwise.
        served = [extra for module, extra in commands if module != "gateway"]
        host = settings.metrics_host if "metrics_host" in settings.model_fields_set else host
        for port, extra in zip(settings.metrics_ports, served, strict=True):
            extra.update({"PODIUM_METRICS_PORT": str(port), "PODIUM_METRICS_HOST": host})
    common = {"PODIUM_JWT_PRIVATE_KEY_FILE": key, **store_env(settings)}
    return [(module, {**common, **extra}) for module, extra in commands]


def _target(addresses: list[str]) -> str:
    """A gRPC target naming every replica; the gateway's channels balance calls over them."""
    return "ipv4:" + ",".join(addresses)


def gateway_urls(settings: StackSettings) -> list[str]:
    """Where players reach each gateway, the first one first."""
    return [f"http://{settings.http_host}:{port}" for port in settings.port_ranges["gateway"]]


def store_env(settings: StackSettings) -> dict[str, str]:
    """Where every service finds the stores: as configured, by default, or an embedded server."""
    dsns = settings.shard_dsns
    return {
        "PODIUM_POSTGRES_DSN": dsns[0],
        # Derived from PODIUM_SHARD_DATABASES when not given. One database goes alone in
        # PODIUM_POSTGRES_DSN, where a comma (in a password, say) cannot split it.
        "PODIUM_POSTGRES_SHARDS": ",".join(dsns) if len(dsns) > 1 else "",
        "PODIUM_REDIS_URL": settings.redis_url,
        "PODIUM_NATS_URL": settings.nats_url,
    }


async def prepare(settings: StackSettings) -> None:
    """Create and migrate the shard databases and the actions stream (all idempotent)."""
    await migrate_all(settings.shard_dsns)
    nc = await nats.connect(settings.nats_url)
    try:
        await ensure_actions_stream(
            nc.jetstream(), Names(settings.namespace), replicas=settings.stream_replicas
        )
    except APIError as error:
        # PODIUM_STREAM_REPLICAS above the servers there are, most likely.
        raise StoreUnavailable(f"NATS refused the actions stream: {error.description}") from error
    finally:
        await nc.close()


async def run(settings: StackSettings) -> int:
    """Run the stack until SIGINT/SIGTERM, or until a service keeps dying; return an exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    try:
        async with backing_stores(settings) as settings:
            return await _run_services(settings, stop)
    except StoreUnavailable as error:
        log.error("store_unavailable", reason=str(error))
        print(f"Podium cannot start: {error}", file=sys.stderr, flush=True)
        return 1


async def _run_services(settings: StackSettings, stop: asyncio.Event) -> int:
    await prepare(settings)
    failed = asyncio.Event()
    replicas: Counter[str] = Counter()
    services = []
    for module, extra in service_commands(settings):
        services.append(Service(module, replicas[module], extra))
        replicas[module] += 1
    keepers = [asyncio.create_task(service.keep_running(stop, failed)) for service in services]
    try:
        return await _supervise(settings, gateway_urls(settings), stop, failed)
    finally:
        stop.set()
        await _stop_all(services)
        await asyncio.gather(*keepers, return_exceptions=True)


class Service:
    """One child process of the stack, restarted when it exits on its own.

    Restarting is what a process supervisor (or Kubernetes) would do, and it lets a developer,
    or a test, stop one service and watch the rest carry on.
    """

    process: asyncio.subprocess.Process | None

    def __init__(self, module: str, replica: int, extra: dict[str, str]) -> None:
        self.module = module
        # Which of the module's replicas this is (0 for the first), as logs name it.
        self.replica = replica
        self._env = {**os.environ, **extra}
        self.process = None
        self._starts: list[float] = []

    async def keep_running(self, stop: asyncio.Event, failed: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            self._starts = [t for t in self._starts if loop.time() - t < RESTART_WINDOW_SECONDS]
            if len(self._starts) > MAX_RESTARTS:
                log.error("service_keeps_dying", name=self.module, replica=self.replica)
                failed.set()
                return

            self._starts.append(loop.time())
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", self.module, env=self._env
            )
            log.info(
                "service_started", name=self.module, replica=self.replica, pid=self.process.pid
            )
            code = await self.process.wait()
            if not stop.is_set():
                log.warning("service_exited", name=self.module, replica=self.replica, code=code)
                await asyncio.sleep(RESTART_PAUSE_SECONDS)


async def _supervise(settings, urls: list[str], stop: asyncio.Event, failed: asyncio.Event) -> int:
    ready = asyncio.create_task(_wait_healthy(urls, settings.ready_timeout_seconds))
    ended = asyncio.create_task(_first_set(stop, failed))

    done, _ = await asyncio.wait({ready, ended}, return_when=asyncio.FIRST_COMPLETED)
    if ready in done and ready.result():
        log.info("podium_ready", url=urls[0], urls=urls)
        # The first line is what scripts wait for; the others name the further gateways.
        print(f"Podium is up: {urls[0]}  (Ctrl-C stops it)", file=sys.stderr, flush=True)
        for number, url in enumerate(urls[1:], start=2):
            print(f"Gateway {number} of {len(urls)}: {url}", file=sys.stderr, flush=True)
        await ended
    ready.cancel()
    ended.cancel()

    if failed.is_set():
        return 1
    if not stop.is_set():
        log.error("not_ready", urls=urls, timeout=settings.ready_timeout_seconds)
        return 1
    return 0


async def _first_set(*events: asyncio.Event) -> None:
    waits = [asyncio.create_task(event.wait()) for event in events]
    _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()


async def _wait_healthy(urls: list[str], timeout: float) -> bool:
    """Whether every gateway's /healthz answers 200 (all its dependencies up) in time."""
    deadline = asyncio.get_running_loop().time() + timeout
    waiting = list(urls)
    async with aiohttp.ClientSession() as session:
        while asyncio.get_running_loop().time() < deadline:
            waiting = [url for url in waiting if not await _healthy(session, url)]
            if not waiting:
                return True
            await asyncio.sleep(0.2)
    return False


async def _healthy(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.get(f"{url}/healthz") as reply:
            return reply.status == 200
    except aiohttp.ClientError:
        return False


async def _stop_all(services: list[Service]) -> None:
    """SIGTERM everything still running, gateway first; SIGKILL what outlives the grace."""
    running = [s.process for s in reversed(services) if s.process and s.process.returncode is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(
            asyncio.gather(*(process.wait() for process in running)), STOP_GRACE_SECONDS
        )
    except TimeoutError:
        for process in running:
            if process.returncode is None:
                log.warning("service_killed", pid=process.pid)
                process.kill()
        await asyncio.gather(*(process.wait() for process in running))
    log.info("podium_stopped")

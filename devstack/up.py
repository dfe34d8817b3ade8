"""Start the whole system on this machine and stop all of it on Ctrl-C.

Finds Postgres, Redis and NATS, or starts embedded ones where nobody configured them and nothing
answers (devstack.embedded), prepares what the services expect to exist (database schema,
JetStream stream), starts auth, ranking, the game workers and the gateway as child processes
whose JSON log lines share this terminal, waits until the gateway's /healthz says every
dependency answers, and restarts a service that exits on its own.
"""

import asyncio
import os
import signal
import sys

import aiohttp
import nats
import structlog

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
    """(module, extra environment) for every process of the stack."""
    host = "127.0.0.1"
    game_addrs = [f"{host}:{settings.game_port + i}" for i in range(settings.game_workers)]
    key = str(settings.jwt_private_key_file.resolve())
    commands = [
        (
            "auth",
            {
                "PODIUM_AUTH_LISTEN": f"{host}:{settings.auth_port}",
                "PODIUM_REGISTRATIONS_PER_ADDRESS": str(settings.registrations_per_address),
            },
        ),
        ("ranking", {"PODIUM_RANKING_LISTEN": f"{host}:{settings.ranking_port}"}),
    ]
    commands += [("game", {"PODIUM_GAME_LISTEN": addr}) for addr in game_addrs]
    commands.append(
        (
            "gateway",
            {
                "PODIUM_HTTP_HOST": settings.http_host,
                "PODIUM_HTTP_PORT": str(settings.http_port),
                "PODIUM_AUTH_TARGET": f"{host}:{settings.auth_port}",
                "PODIUM_RANKING_TARGET": f"{host}:{settings.ranking_port}",
                "PODIUM_GAME_TARGET": "ipv4:" + ",".join(game_addrs),
                "PODIUM_DRAIN_GRACE_SECONDS": str(settings.drain_grace_seconds),
            },
        )
    )
    common = {"PODIUM_JWT_PRIVATE_KEY_FILE": key, **store_env(settings)}
    return [(module, {**common, **extra}) for module, extra in commands]


def store_env(settings: StackSettings) -> dict[str, str]:
    """Where every service finds the stores: as configured, by default, or an embedded server."""
    return {
        "PODIUM_POSTGRES_DSN": settings.postgres_dsn,
        "PODIUM_POSTGRES_SHARDS": ",".join(settings.postgres_shards),
        "PODIUM_REDIS_URL": settings.redis_url,
        "PODIUM_NATS_URL": settings.nats_url,
    }


async def prepare(settings: StackSettings) -> None:
    """Create and migrate the shard databases and the actions stream (all idempotent)."""
    await migrate_all(settings.shard_dsns)
    nc = await nats.connect(settings.nats_url)
    try:
        await ensure_actions_stream(nc.jetstream(), Names(settings.namespace))
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
    services = [Service(module, extra) for module, extra in service_commands(settings)]
    keepers = [asyncio.create_task(service.keep_running(stop, failed)) for service in services]
    url = f"http://{settings.http_host}:{settings.http_port}"
    try:
        return await _supervise(settings, url, stop, failed)
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

    def __init__(self, module: str, extra: dict[str, str]) -> None:
        self.module = module
        self._env = {**os.environ, **extra}
        self.process = None
        self._starts: list[float] = []

    async def keep_running(self, stop: asyncio.Event, failed: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            self._starts = [t for t in self._starts if loop.time() - t < RESTART_WINDOW_SECONDS]
            if len(self._starts) > MAX_RESTARTS:
                log.error("service_keeps_dying", name=self.module)
                failed.set()
                return

            self._starts.append(loop.time())
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", self.module, env=self._env
            )
            log.info("service_started", name=self.module, pid=self.process.pid)
            code = await self.process.wait()
            if not stop.is_set():
                log.warning("service_exited", name=self.module, code=code)
                await asyncio.sleep(RESTART_PAUSE_SECONDS)


async def _supervise(settings, url: str, stop: asyncio.Event, failed: asyncio.Event) -> int:
    ready = asyncio.create_task(_wait_healthy(url, settings.ready_timeout_seconds))
    ended = asyncio.create_task(_first_set(stop, failed))

    done, _ = await asyncio.wait({ready, ended}, return_when=asyncio.FIRST_COMPLETED)
    if ready in done and ready.result():
        log.info("podium_ready", url=url)
        print(f"Podium is up: {url}  (Ctrl-C stops it)", file=sys.stderr, flush=True)
        await ended
    ready.cancel()
    ended.cancel()

    if failed.is_set():
        return 1
    if not stop.is_set():
        log.error("not_ready", url=url, timeout=settings.ready_timeout_seconds)
        return 1
    return 0


async def _first_set(*events: asyncio.Event) -> None:
    waits = [asyncio.create_task(event.wait()) for event in events]
    _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()


async def _wait_healthy(url: str, timeout: float) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    async with aiohttp.ClientSession() as session:
        while asyncio.get_running_loop().time() < deadline:
            try:
                async with session.get(f"{url}/healthz") as reply:
                    if reply.status == 200:
                        return True
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
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

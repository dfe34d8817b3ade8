"""Start the whole system on this machine and stop all of it on Ctrl-C.

Prepares what the services expect to exist (database schema, JetStream stream), starts auth,
ranking, the game workers and the gateway as child processes whose JSON log lines share this
terminal, and waits until the gateway's /healthz says every dependency answers.
"""

import asyncio
import os
import signal
import sys

import aiohttp
import nats
import structlog

from devstack.config import StackSettings
from infra.migrate import migrate_all
from infra.names import Names
from infra.streams import ensure_actions_stream

log = structlog.get_logger(__name__)

STOP_GRACE_SECONDS = 10.0


def service_commands(settings: StackSettings) -> list[tuple[str, dict[str, str]]]:
    """(module, extra environment) for every process of the stack."""
    host = "127.0.0.1"
    game_addrs = [f"{host}:{settings.game_port + i}" for i in range(settings.game_workers)]
    key = str(settings.jwt_private_key_file.resolve())
    commands = [
        ("auth", {"PODIUM_AUTH_LISTEN": f"{host}:{settings.auth_port}"}),
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
            },
        )
    )
    return [(module, {"PODIUM_JWT_PRIVATE_KEY_FILE": key, **extra}) for module, extra in commands]


async def prepare(settings: StackSettings) -> None:
    """Create and migrate the shard databases and the actions stream (all idempotent)."""
    await migrate_all(settings.shard_dsns)
    nc = await nats.connect(settings.nats_url)
    try:
        await ensure_actions_stream(nc.jetstream(), Names(settings.namespace))
    finally:
        await nc.close()


async def run(settings: StackSettings) -> int:
    """Run the stack until SIGINT/SIGTERM or until a service dies; return an exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    await prepare(settings)
    children = [await _spawn(module, extra) for module, extra in service_commands(settings)]
    url = f"http://{settings.http_host}:{settings.http_port}"
    try:
        return await _supervise(settings, children, url, stop)
    finally:
        await _stop_all(children)


async def _spawn(module: str, extra: dict[str, str]) -> asyncio.subprocess.Process:
    env = {**os.environ, **extra}
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", module, env=env)
    log.info("service_started", service=module, pid=process.pid)
    return process


async def _supervise(settings, children, url: str, stop: asyncio.Event) -> int:
    died = asyncio.create_task(_first_exit(children))
    ready = asyncio.create_task(_wait_healthy(url, settings.ready_timeout_seconds))
    stopped = asyncio.create_task(stop.wait())
    tasks = {died, ready, stopped}

    done, _ = await asyncio.wait({died, ready, stopped}, return_when=asyncio.FIRST_COMPLETED)
    if ready in done and ready.result():
        log.info("podium_ready", url=url)
        print(f"Podium is up: {url}  (Ctrl-C stops it)", file=sys.stderr, flush=True)
        done, _ = await asyncio.wait({died, stopped}, return_when=asyncio.FIRST_COMPLETED)

    for task in tasks:
        task.cancel()
    if stopped in done:
        return 0
    if died in done:
        log.error("service_died", pid=died.result())
    else:
        log.error("not_ready", url=url, timeout=settings.ready_timeout_seconds)
    return 1


async def _first_exit(children: list[asyncio.subprocess.Process]) -> int:
    waits = [asyncio.create_task(child.wait()) for child in children]
    done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    return children[waits.index(next(iter(done)))].pid


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


async def _stop_all(children: list[asyncio.subprocess.Process]) -> None:
    """SIGTERM everything still running, gateway first; SIGKILL what outlives the grace."""
    for child in reversed(children):
        if child.returncode is None:
            child.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(
            asyncio.gather(*(child.wait() for child in children)), STOP_GRACE_SECONDS
        )
    except TimeoutError:
        for child in children:
            if child.returncode is None:
                log.warning("service_killed", pid=child.pid)
                child.kill()
        await asyncio.gather(*(child.wait() for child in children))
    log.info("podium_stopped")

"""A whole Podium stack of a benchmark's own: started, stopped, and removed without a trace.

`python -m devstack up` runs with a namespace, a database and ports nobody else uses, so a
benchmark never measures (or disturbs) another stack on the machine.
"""

import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import nats
import redis.asyncio as aioredis
from harness import database_dsn, free_port

from infra.config import CommonSettings

ROOT = Path(__file__).resolve().parents[1]
START_SECONDS = 90
STOP_SECONDS = 60


@dataclass(frozen=True)
class Stack:
    """A running stack: the gateway's URL, ranking's gRPC target and the devstack process."""

    url: str
    ranking: str
    process: asyncio.subprocess.Process


async def start_stack(namespace: str, logs: Path, env: dict[str, str] | None = None) -> Stack:
    """Start the stack in `namespace`, logging to logs/stack.log; return once it is up.

    `env` adds to (or overrides) the PODIUM_* settings given to every service.
    """
    dsn = database_dsn(CommonSettings().postgres_dsn, f"podium_{namespace}")
    http_port, ranking_port = free_port(), free_port()
    full_env = {
        **os.environ,
        "PODIUM_NAMESPACE": namespace,
        "PODIUM_POSTGRES_DSN": dsn,
        "PODIUM_POSTGRES_SHARDS": dsn,
        "PODIUM_HTTP_PORT": str(http_port),
        "PODIUM_AUTH_PORT": str(free_port()),
        "PODIUM_RANKING_PORT": str(ranking_port),
        "PODIUM_GAME_PORT": str(free_port()),
        "PODIUM_JWT_PRIVATE_KEY_FILE": str(ROOT / ".podium" / "jwt-ed25519.pem"),
        **(env or {}),
    }
    log_path = logs / "stack.log"
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "devstack", "up", env=full_env, cwd=ROOT, stdout=log, stderr=log
        )
    deadline = time.monotonic() + START_SECONDS
    while b"Podium is up" not in log_path.read_bytes():
        if process.returncode is not None or time.monotonic() > deadline:
            await stop_stack(process)
            raise RuntimeError(f"the stack did not start; see {log_path}")
        await asyncio.sleep(0.1)
    return Stack(f"http://127.0.0.1:{http_port}", f"127.0.0.1:{ranking_port}", process)


async def stop_stack(process: asyncio.subprocess.Process) -> None:
    """Ctrl-C, as a developer would stop it; killed if it has not ended within a minute."""
    if process.returncode is None:
        process.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(process.wait(), STOP_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()


async def remove(namespace: str, databases: list[str] | None = None) -> None:
    """Drop the stack's databases (its own one unless told which), streams and Redis keys."""
    base = CommonSettings()
    admin = await asyncpg.connect(database_dsn(base.postgres_dsn, "postgres"))
    try:
        for name in databases if databases is not None else [f"podium_{namespace}"]:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()

    nc = await nats.connect(base.nats_url)
    js = nc.jetstream()
    for info in await js.streams_info():
        if info.config.name.startswith(namespace.upper() + "_"):
            await js.delete_stream(info.config.name)
    await nc.close()

    client = aioredis.from_url(base.redis_url)
    keys = [key async for key in client.scan_iter(match=f"{namespace}:*", count=1000)]
    for start in range(0, len(keys), 1000):
        await client.unlink(*keys[start : start + 1000])
    await client.aclose()

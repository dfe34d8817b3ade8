"""The machine a benchmark ran on: what its figures can only be compared under."""

import os
import platform
from pathlib import Path

import asyncpg
import nats
import redis.asyncio as aioredis
from harness import database_dsn

from infra.config import CommonSettings


def _cpu_model() -> str | None:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return None


def _memory_gib() -> float | None:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 2**20, 1)
    return None


async def _postgres_version(dsn: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()


async def _redis_version(url: str) -> str:
    client = aioredis.from_url(url)
    try:
        return (await client.info("server"))["redis_version"]
    finally:
        await client.aclose()


async def _nats_version(url: str) -> str:
    nc = await nats.connect(url)
    try:
        version = nc.connected_server_version
        return f"{version.major}.{version.minor}.{version.patch}"
    finally:
        await nc.close()


async def describe() -> dict:
    """CPU, memory, kernel, Python and the versions of the stores the stack runs on."""
    settings = CommonSettings()
    return {
        "cpu_model": _cpu_model(),
        "cpus": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "kernel": platform.release(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "postgres": await _postgres_version(database_dsn(settings.postgres_dsn, "postgres")),
        "redis": await _redis_version(settings.redis_url),
        "nats": await _nats_version(settings.nats_url),
        "load_average": list(os.getloadavg()),
    }

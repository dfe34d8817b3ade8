"""Fixtures shared by every test: a private namespace on the real Postgres, Redis and NATS.

Each test session gets its own Postgres database and its own namespace for NATS subjects,
JetStream streams and Redis keys, and removes them at the end, so runs never see each other.
"""

import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import nats
import pytest
import redis.asyncio as aioredis

from infra.config import CommonSettings
from infra.migrate import migrate
from infra.names import Names

BASE = CommonSettings()


def _dsn_for(database: str) -> str:
    return urlunsplit(urlsplit(BASE.postgres_dsn)._replace(path=f"/{database}"))


@pytest.fixture(scope="session")
def namespace() -> str:
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def names(namespace: str) -> Names:
    return Names(namespace)


@pytest.fixture(scope="session")
async def postgres_dsn(namespace: str):
    """A freshly migrated database of this session's own, dropped afterwards."""
    dsn = _dsn_for(f"podium_{namespace}")
    await migrate(dsn)
    yield dsn

    admin = await asyncpg.connect(_dsn_for("postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "podium_{namespace}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def service_env(namespace: str, postgres_dsn: str) -> dict[str, str]:
    """PODIUM_* variables that point a service at this session's namespace and database."""
    return {
        "PODIUM_NAMESPACE": namespace,
        "PODIUM_POSTGRES_DSN": postgres_dsn,
        "PODIUM_REDIS_URL": BASE.redis_url,
        "PODIUM_NATS_URL": BASE.nats_url,
    }


@pytest.fixture(scope="session")
def settings_env(service_env: dict[str, str]):
    """Export service_env into this process so settings classes built in tests pick it up."""
    saved = {key: os.environ.get(key) for key in service_env}
    os.environ.update(service_env)
    yield service_env

    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
async def pg(postgres_dsn: str):
    pool = await asyncpg.create_pool(postgres_dsn, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def redis_client(names: Names):
    client = aioredis.from_url(BASE.redis_url)
    yield client

    keys = [key async for key in client.scan_iter(match=f"{names.namespace}:*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture(scope="session")
async def nats_client(names: Names):
    client = await nats.connect(BASE.nats_url)
    yield client

    js = client.jetstream()
    try:
        await js.delete_stream(names.actions_stream)
    except nats.js.errors.NotFoundError:
        pass
    await client.drain()

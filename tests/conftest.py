"""Fixtures shared by every test: a private namespace on the real Postgres, Redis and NATS.

Each test session gets its own Postgres shard databases (two unless PODIUM_TEST_SHARDS says
otherwise, so that players land on both) and its own namespace for NATS subjects, JetStream
streams and Redis keys, and removes them at the end, so runs never see each other.
"""

import os
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import nats
import pytest
import redis.asyncio as aioredis

from infra.boards import boards
from infra.config import CommonSettings
from infra.leaderboard import PeriodKeys
from infra.migrate import migrate
from infra.names import Names
from infra.shards import ShardPools

# Every test, and every service a test starts, reads the test boards (set before any read).
os.environ["PODIUM_BOARDS_FILE"] = str(Path(__file__).with_name("boards.toml"))

BASE = CommonSettings()
# How many shard databases the session spreads players over; the suite passes with 1 or 2.
SHARD_DATABASES = int(os.environ.get("PODIUM_TEST_SHARDS", "2"))


def _dsn_for(database: str) -> str:
    return urlunsplit(urlsplit(BASE.postgres_dsn)._replace(path=f"/{database}"))


@pytest.fixture(scope="session")
def namespace() -> str:
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def names(namespace: str) -> Names:
    return Names(namespace)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run a test that takes `shard_index` once for each shard database of the session."""
    if "shard_index" in metafunc.fixturenames:
        metafunc.parametrize("shard_index", range(SHARD_DATABASES))


def _shard_dsns_of(namespace: str, count: int = SHARD_DATABASES) -> list[str]:
    first = f"podium_{namespace}"
    databases = [first] + [f"{first}_{i}" for i in range(1, count)]
    return [_dsn_for(database) for database in databases]


async def _drop_databases(dsns: list[str]) -> None:
    admin = await asyncpg.connect(_dsn_for("postgres"))
    try:
        for dsn in dsns:
            name = urlsplit(dsn).path.lstrip("/")
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
async def shard_dsns(namespace: str):
    """Freshly migrated shard databases of this session's own, dropped afterwards."""
    dsns = _shard_dsns_of(namespace)
    for dsn in dsns:
        await migrate(dsn)
    yield dsns

    await _drop_databases(dsns)


@pytest.fixture(scope="module")
async def shard_dsns_for():
    """Name shard databases for a namespace of a module's own: shard_dsns_for(namespace).

    As many as the session has unless `count` says, for a stack that creates and migrates them
    itself as it would in production; whatever the module named is dropped after it.
    """
    named: list[str] = []

    def dsns_for(namespace: str, count: int | None = None) -> list[str]:
        dsns = _shard_dsns_of(namespace, count or SHARD_DATABASES)
        named.extend(dsns)
        return dsns

    yield dsns_for

    await _drop_databases(named)


@pytest.fixture(scope="session")
def postgres_dsn(shard_dsns: list[str]) -> str:
    """The first shard database, which also answers for anything not owned by a player."""
    return shard_dsns[0]


@pytest.fixture(scope="session")
def service_env(namespace: str, shard_dsns: list[str]) -> dict[str, str]:
    """PODIUM_* variables that point a service at this session's namespace and databases."""
    return {
        "PODIUM_NAMESPACE": namespace,
        "PODIUM_POSTGRES_DSN": shard_dsns[0],
        "PODIUM_POSTGRES_SHARDS": ",".join(shard_dsns),
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
async def shards(shard_dsns: list[str]):
    """Pools of every shard database, routed as the services route: shards.for_player(id)."""
    pools = await ShardPools.open(shard_dsns, min_size=1, max_size=4)
    yield pools
    await pools.close()


@pytest.fixture
def redis_score(redis_client):
    """A player's score on a board period as Redis shows it (None if absent), checked to sit in
    the ranked set where the player's index entry says."""

    async def read(names: Names, board: str, period: str, player: str) -> int | None:
        keys = PeriodKeys.of(names.board_key(board, period), names.board_seq_key(board))
        entry = await redis_client.hget(keys.index, player)
        if entry is None:
            return None
        _, zscore, member, _ = entry.decode().split("|", 3)
        assert await redis_client.zscore(keys.ranked, member) == float(zscore)
        return -int(zscore) if boards()[board].order == "desc" else int(zscore)

    return read


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
    for stream in (names.actions_stream, names.dead_letters_stream):
        try:
            await js.delete_stream(stream)
        except nats.js.errors.NotFoundError:
            pass
    await client.drain()

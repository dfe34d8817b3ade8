"""Accounts spread over two Postgres databases: one name per account, whatever its case."""

import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import grpc
import pytest
from podium.auth.v1 import auth_service_pb2 as pb
from podium.auth.v1 import auth_service_pb2_grpc

from auth.server import running
from infra.migrate import migrate
from infra.shards import database_of, shard_of_player, shard_of_username

PASSWORD = "shards tests pw"


@pytest.fixture(scope="module")
async def shard_dsns(postgres_dsn: str, namespace: str):
    parts = urlsplit(postgres_dsn)
    dsns = [urlunsplit(parts._replace(path=f"/podium_{namespace}_s{i}")) for i in range(2)]
    for dsn in dsns:
        await migrate(dsn)
    yield dsns

    admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        for i in range(2):
            await admin.execute(f'DROP DATABASE IF EXISTS "podium_{namespace}_s{i}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="module")
async def sharded_stub(auth_settings, shard_dsns):
    settings = auth_settings.model_copy(update={"postgres_shards": shard_dsns})
    async with running(settings) as port:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield auth_service_pb2_grpc.AuthServiceStub(channel)


def _name_on(database: int) -> str:
    """A fresh mixed-case username whose accounts belong on the given database of two."""
    while True:
        name = "Al_" + uuid.uuid4().hex[:10]
        if database_of(shard_of_username(name.lower()), 2) == database:
            return name


async def _rows(dsn: str, key: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch("SELECT player_id FROM accounts WHERE username_key = $1", key)
    finally:
        await conn.close()


@pytest.mark.parametrize("database", [0, 1])
async def test_a_name_in_another_case_is_taken_on_either_database(
    sharded_stub, shard_dsns, refused, database
):
    name = _name_on(database)

    first = await sharded_stub.Register(pb.RegisterRequest(username=name, password=PASSWORD))
    error = await refused(
        sharded_stub.Register(pb.RegisterRequest(username=name.lower(), password=PASSWORD))
    )

    assert (error.status, error.code) == (grpc.StatusCode.ALREADY_EXISTS, "USERNAME_TAKEN")
    here = await _rows(shard_dsns[database], name.lower())
    there = await _rows(shard_dsns[1 - database], name.lower())
    assert [str(row["player_id"]) for row in here] == [first.player_id]
    assert there == []
    assert database_of(shard_of_player(first.player_id), 2) == database


@pytest.mark.parametrize("database", [0, 1])
async def test_login_finds_the_account_on_its_database_in_any_case(sharded_stub, database):
    name = _name_on(database)
    registered = await sharded_stub.Register(pb.RegisterRequest(username=name, password=PASSWORD))

    login = await sharded_stub.Login(pb.LoginRequest(username=name.upper(), password=PASSWORD))
    banned = await sharded_stub.BanPlayer(pb.BanPlayerRequest(player_id=registered.player_id))

    assert login.player_id == registered.player_id
    assert banned.sessions_ended == 1

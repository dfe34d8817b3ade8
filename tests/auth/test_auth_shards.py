"""Accounts spread over the session's shard databases: one name per account, whatever its case.

The auth server under test holds every shard database of the session (PODIUM_POSTGRES_SHARDS),
so these tests run once per database, and with two databases players land on both.
"""

import uuid

import grpc
from podium.auth.v1 import auth_service_pb2 as pb

from infra.shards import database_of, shard_of_player, shard_of_username

PASSWORD = "shards tests pw"
# Fixed names, fresh in each session's databases, whose hashes fall on each of two databases.
SPREAD = [f"spread_{i:02d}" for i in range(16)]
# The player ids of the accounts holding a username key, on one database.
_HOLDERS = (
    "SELECT coalesce(array_agg(player_id::text), '{}') FROM accounts WHERE username_key = $1"
)


def _name_on(database: int, databases: int) -> str:
    """A fresh mixed-case username whose account belongs on the given database."""
    while True:
        name = "Al_" + uuid.uuid4().hex[:10]
        if database_of(shard_of_username(name.lower()), databases) == database:
            return name


async def test_a_name_in_another_case_is_taken_on_its_database(
    auth_stub, shards, refused, shard_index
):
    name = _name_on(shard_index, len(shards))

    first = await auth_stub.Register(pb.RegisterRequest(username=name, password=PASSWORD))
    error = await refused(
        auth_stub.Register(pb.RegisterRequest(username=name.lower(), password=PASSWORD))
    )

    assert (error.status, error.code) == (grpc.StatusCode.ALREADY_EXISTS, "USERNAME_TAKEN")
    held = [await pool.fetchval(_HOLDERS, name.lower()) for pool in shards]
    expected = [[] for _ in shards]
    expected[shard_index] = [first.player_id]
    assert held == expected
    assert database_of(shard_of_player(first.player_id), len(shards)) == shard_index


async def test_login_finds_the_account_on_its_database_in_any_case(auth_stub, shards, shard_index):
    name = _name_on(shard_index, len(shards))
    registered = await auth_stub.Register(pb.RegisterRequest(username=name, password=PASSWORD))

    login = await auth_stub.Login(pb.LoginRequest(username=name.upper(), password=PASSWORD))
    banned = await auth_stub.BanPlayer(pb.BanPlayerRequest(player_id=registered.player_id))

    assert login.player_id == registered.player_id
    assert banned.sessions_ended == 1


async def test_registered_players_land_on_every_shard_database(auth_stub, shards):
    for name in SPREAD:
        await auth_stub.Register(pb.RegisterRequest(username=name, password=PASSWORD))

    counts = [
        await pool.fetchval(
            "SELECT count(*) FROM accounts WHERE username_key = ANY($1::text[])", SPREAD
        )
        for pool in shards
    ]
    assert sum(counts) == len(SPREAD)
    assert 0 not in counts

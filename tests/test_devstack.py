"""What the one-machine stack hands each service it starts."""

from devstack.config import StackSettings
from devstack.up import service_commands


def test_each_service_is_pointed_at_the_others_and_auth_allows_bots_to_register():
    settings = StackSettings(auth_port=51001, ranking_port=51003, game_port=51010, game_workers=2)

    commands = dict(service_commands(settings))

    assert [module for module, _ in service_commands(settings)] == [
        "auth",
        "ranking",
        "game",
        "game",
        "gateway",
    ]
    assert commands["auth"]["PODIUM_AUTH_LISTEN"] == "127.0.0.1:51001"
    assert commands["auth"]["PODIUM_REGISTRATIONS_PER_ADDRESS"] == "1000000"
    assert commands["gateway"]["PODIUM_AUTH_TARGET"] == "127.0.0.1:51001"
    assert commands["gateway"]["PODIUM_GAME_TARGET"] == "ipv4:127.0.0.1:51010,127.0.0.1:51011"
    key = str(settings.jwt_private_key_file.resolve())
    assert all(env["PODIUM_JWT_PRIVATE_KEY_FILE"] == key for _, env in service_commands(settings))


def test_each_service_is_handed_the_stores_the_stack_settled_on():
    settings = StackSettings(
        postgres_dsn="postgresql://postgres@127.0.0.1:6001/podium",
        postgres_shards=[],
        redis_url="redis://127.0.0.1:6002/0",
        nats_url="nats://127.0.0.1:6003",
    )

    envs = [env for _, env in service_commands(settings)]

    assert all(env["PODIUM_POSTGRES_DSN"] == settings.postgres_dsn for env in envs)
    assert all(env["PODIUM_POSTGRES_SHARDS"] == "" for env in envs)
    assert all(env["PODIUM_REDIS_URL"] == "redis://127.0.0.1:6002/0" for env in envs)
    assert all(env["PODIUM_NATS_URL"] == "nats://127.0.0.1:6003" for env in envs)

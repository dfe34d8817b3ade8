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

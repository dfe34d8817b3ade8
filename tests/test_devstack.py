"""What the one-machine stack hands each service it starts, and the settings it refuses."""

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError

from devstack.config import StackSettings, problems
from devstack.embedded import free_port
from devstack.up import gateway_urls, service_commands

ROOT = Path(__file__).resolve().parents[1]


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
    assert commands["gateway"]["PODIUM_AUTH_TARGET"] == "ipv4:127.0.0.1:51001"
    assert commands["gateway"]["PODIUM_GAME_TARGET"] == "ipv4:127.0.0.1:51010,127.0.0.1:51011"
    key = str(settings.jwt_private_key_file.resolve())
    assert all(env["PODIUM_JWT_PRIVATE_KEY_FILE"] == key for _, env in service_commands(settings))


def test_replicas_listen_on_ports_of_their_own_and_every_gateway_reaches_them_all():
    settings = StackSettings(
        http_port=9000,
        auth_port=51001,
        ranking_port=51003,
        game_port=51010,
        gateways=2,
        auth_replicas=2,
        ranking_replicas=2,
        game_workers=3,
    )

    commands = service_commands(settings)
    listening = [
        env.get(f"PODIUM_{module.upper()}_LISTEN", env.get("PODIUM_HTTP_PORT"))
        for module, env in commands
    ]
    gateways = [env for module, env in commands if module == "gateway"]

    assert listening == [
        "127.0.0.1:51001",
        "127.0.0.1:51002",
        "127.0.0.1:51003",
        "127.0.0.1:51004",
        "127.0.0.1:51010",
        "127.0.0.1:51011",
        "127.0.0.1:51012",
        "9000",
        "9001",
    ]
    for env in gateways:
        assert env["PODIUM_AUTH_TARGET"] == "ipv4:127.0.0.1:51001,127.0.0.1:51002"
        assert env["PODIUM_RANKING_TARGET"] == "ipv4:127.0.0.1:51003,127.0.0.1:51004"
        assert env["PODIUM_GAME_TARGET"] == (
            "ipv4:127.0.0.1:51010,127.0.0.1:51011,127.0.0.1:51012"
        )
    assert gateway_urls(settings) == ["http://127.0.0.1:9000", "http://127.0.0.1:9001"]


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


def test_shard_databases_are_named_after_the_dsns_database_unless_listed():
    base = "postgresql://postgres@127.0.0.1:5432/podium?sslmode=disable"
    listed = ["postgresql://a/x", "postgresql://b/y"]

    derived = StackSettings(postgres_dsn=base, postgres_shards=[], shard_databases=3)
    given = StackSettings(postgres_dsn=base, postgres_shards=listed)
    agreeing = StackSettings(postgres_dsn=base, postgres_shards=listed, shard_databases=2)

    assert derived.shard_dsns == [
        base,
        "postgresql://postgres@127.0.0.1:5432/podium_1?sslmode=disable",
        "postgresql://postgres@127.0.0.1:5432/podium_2?sslmode=disable",
    ]
    assert dict(service_commands(derived))["auth"]["PODIUM_POSTGRES_SHARDS"] == ",".join(
        derived.shard_dsns
    )
    assert given.shard_dsns == agreeing.shard_dsns == listed


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"gateways": 0}, "PODIUM_GATEWAYS=0: Input should be greater than or equal to 1"),
        ({"auth_replicas": -1}, "PODIUM_AUTH_REPLICAS=-1: Input should be greater than or equal"),
        ({"ranking_replicas": 17}, "PODIUM_RANKING_REPLICAS=17: Input should be less than or"),
        ({"game_workers": "two"}, "PODIUM_GAME_WORKERS=two: Input should be a valid integer"),
        ({"shard_databases": 0}, "PODIUM_SHARD_DATABASES=0: Input should be greater than or"),
        (
            {"auth_replicas": 3},
            "auth ports 50051-50053 overlap ranking ports 50053; move one of them with "
            "PODIUM_AUTH_PORT or PODIUM_RANKING_PORT",
        ),
        (
            {"http_port": 65535, "gateways": 2},
            "gateway ports 65535-65536 run past 65535; lower PODIUM_HTTP_PORT",
        ),
        (
            {"shard_databases": 3, "postgres_shards": ["postgresql://a/x", "postgresql://b/y"]},
            "PODIUM_SHARD_DATABASES=3 disagrees with the 2 DSNs in PODIUM_POSTGRES_SHARDS",
        ),
        (
            {
                "shard_databases": 2,
                "postgres_dsn": "postgresql://postgres@127.0.0.1",
                "postgres_shards": [],
            },
            "PODIUM_SHARD_DATABASES needs a database name in PODIUM_POSTGRES_DSN",
        ),
        (
            {"metrics_port": 65535},
            "metrics ports 65535-65537 run past 65535; lower PODIUM_METRICS_PORT",
        ),
        (
            {"metrics_port": 50050},
            "auth ports 50051 overlap metrics ports 50050-50052; move one of them with "
            "PODIUM_AUTH_PORT or PODIUM_METRICS_PORT",
        ),
        (
            {"postgres_shards": ["postgresql://u:a,b@h/x", "postgresql://h/y"]},
            "a DSN with a comma cannot be one of several shards",
        ),
    ],
)
def test_a_topology_that_cannot_run_is_refused_naming_what_to_change(settings, problem):
    with pytest.raises(ValidationError) as refused:
        StackSettings(**settings)

    assert [line for line in problems(refused.value) if line.startswith(problem)]


def test_the_start_command_refuses_bad_settings_in_a_line_and_starts_nothing():
    env = {"PATH": "", "PODIUM_GATEWAYS": "0", "PODIUM_RANKING_REPLICAS": "-2"}

    done = subprocess.run(
        [sys.executable, "-m", "devstack", "up"],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
    )

    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "Podium cannot start: PODIUM_GATEWAYS=0: Input should be greater than or equal to 1",
        "Podium cannot start: PODIUM_RANKING_REPLICAS=-2: Input should be greater than or "
        "equal to 1",
    ]


def test_each_grpc_process_gets_a_metrics_port_of_its_own_when_metrics_are_asked_for():
    settings = StackSettings(metrics_port=9100, auth_replicas=2, game_workers=3)

    envs = [env for _, env in service_commands(settings)]
    unset = [env.get("PODIUM_METRICS_PORT") for _, env in service_commands(StackSettings())]

    assert [env.get("PODIUM_METRICS_PORT") for env in envs] == [
        "9100", "9101", "9102", "9103", "9104", "9105", None
    ]  # fmt: skip
    assert {env.get("PODIUM_METRICS_HOST") for env in envs[:-1]} == {"127.0.0.1"}
    assert set(unset) == {None}


def test_a_lone_database_whose_dsn_holds_a_comma_reaches_the_services_whole():
    dsn = "postgresql://postgres:pa,ss@127.0.0.1:5432/podium"

    settings = StackSettings(postgres_dsn=dsn, postgres_shards=[], shard_databases=1)

    envs = [env for _, env in service_commands(settings)]

    assert {(env["PODIUM_POSTGRES_DSN"], env["PODIUM_POSTGRES_SHARDS"]) for env in envs} == {
        (dsn, "")
    }


async def test_a_stream_the_nats_server_refuses_stops_the_start_with_one_line(shard_dsns):
    """Three stream replicas on the machine's single NATS server: a clear refusal, no
    traceback, and no service started."""
    env = {
        **os.environ,
        "PODIUM_NAMESPACE": "r" + uuid.uuid4().hex[:10],
        "PODIUM_POSTGRES_DSN": shard_dsns[0],
        "PODIUM_STREAM_REPLICAS": "3",
        "PODIUM_EMBEDDED_SERVERS": "never",
        "PODIUM_HTTP_PORT": str(free_port()),
        "PODIUM_AUTH_PORT": str(free_port()),
        "PODIUM_RANKING_PORT": str(free_port()),
        "PODIUM_GAME_PORT": str(free_port()),
    }
    stack = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "devstack", "up", env=env, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(stack.communicate(), 60)

    assert stack.returncode == 1
    assert "Podium cannot start: NATS refused the actions stream" in err.decode()
    assert "Traceback" not in out.decode() + err.decode()
    assert "service_started" not in out.decode()

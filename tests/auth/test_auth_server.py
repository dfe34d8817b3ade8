"""The auth server as a process: health, reflection, hidden internal errors, SIGTERM."""

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import grpc
import orjson
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from podium.auth.v1 import auth_service_pb2 as pb
from podium.auth.v1 import auth_service_pb2_grpc

from auth.api import SERVICE_NAME
from auth.server import running
from infra.migrate import create_database

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVING = health_pb2.HealthCheckResponse.SERVING


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
async def bare_database_dsn(postgres_dsn: str):
    """A database without the schema, so that every query fails in a way no client caused."""
    parts = urlsplit(postgres_dsn)
    name = parts.path.lstrip("/") + "_bare"
    dsn = urlunsplit(parts._replace(path=f"/{name}"))
    await create_database(dsn)
    yield dsn

    admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.mark.parametrize("service", ["", SERVICE_NAME])
async def test_health_reports_serving(auth_channel, service):
    stub = health_pb2_grpc.HealthStub(auth_channel)

    response = await stub.Check(health_pb2.HealthCheckRequest(service=service))

    assert response.status == SERVING


async def test_reflection_lists_the_auth_service(auth_channel):
    stub = reflection_pb2_grpc.ServerReflectionStub(auth_channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")

    responses = [r async for r in stub.ServerReflectionInfo(iter([request]))]

    listed = {s.name for s in responses[0].list_services_response.service}
    assert {SERVICE_NAME, "grpc.health.v1.Health"} <= listed


async def test_unexpected_failure_is_internal_and_hides_its_cause(
    auth_settings, bare_database_dsn, new_username, refused
):
    bare = {"postgres_dsn": bare_database_dsn, "postgres_shards": [bare_database_dsn]}
    settings = auth_settings.model_copy(update=bare)
    request = pb.RegisterRequest(username=new_username(), password="password-1")

    async with running(settings) as port:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = auth_service_pb2_grpc.AuthServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.Register(request)

    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert info.value.details() == "internal error"
    assert "accounts" not in str(info.value.trailing_metadata())


async def _read_until_serving(stdout: asyncio.StreamReader) -> list[dict]:
    lines = []
    while not lines or lines[-1].get("event") != "serving":
        raw = await stdout.readline()
        if not raw:
            raise AssertionError(f"auth exited before serving; it said {lines}")
        lines.append(orjson.loads(raw))
    return lines


async def test_python_m_auth_serves_then_exits_cleanly_on_sigterm(service_env, jwt_key_file):
    port = _free_port()
    env = {
        **os.environ,
        **service_env,
        "PODIUM_AUTH_LISTEN": f"127.0.0.1:{port}",
        "PODIUM_JWT_PRIVATE_KEY_FILE": str(jwt_key_file),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "auth",
        cwd=REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )

    try:
        started = await asyncio.wait_for(_read_until_serving(process.stdout), 30)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAME)
            )
        process.send_signal(signal.SIGTERM)
        rest, errors = await asyncio.wait_for(process.communicate(), 20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    logged = started + [orjson.loads(line) for line in rest.splitlines()]
    assert health.status == SERVING
    assert process.returncode == 0, errors.decode()
    assert started[-1]["port"] == port
    assert {"serving", "stopped"} <= {line["event"] for line in logged}
    assert all(line["service"] == "auth" for line in logged)

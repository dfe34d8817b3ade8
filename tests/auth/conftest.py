"""Fixtures for auth: a signing key, an in-process AuthService on a free port, and a stub."""

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from podium.auth.v1 import auth_pb2, auth_service_pb2_grpc

from auth.announcer import Announcer
from auth.config import AuthSettings
from auth.core import Deps
from auth.limits import Limiter
from auth.passwords import Passwords
from auth.server import running
from auth.sessions import Sessions
from auth.store import Accounts
from auth.tokens import Tokens
from infra.errors import PodiumError, from_rpc_error
from infra.keygen import write_key


@pytest.fixture(scope="session")
def jwt_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth-keys") / "jwt-ed25519.pem"
    write_key(path)
    return path


@pytest.fixture(scope="session")
def signing_key(jwt_key_file: Path) -> Ed25519PrivateKey:
    return serialization.load_pem_private_key(jwt_key_file.read_bytes(), password=None)


@pytest.fixture(scope="session")
def auth_settings(settings_env, jwt_key_file: Path) -> AuthSettings:
    """Settings at the argon2 minimum, the session's namespace and database, and port 0.

    Lockouts last a second, so a test can wait one out.
    """
    return AuthSettings(
        auth_listen="127.0.0.1:0", jwt_private_key_file=jwt_key_file, login_lockout_seconds=1
    )


@pytest.fixture(scope="session")
async def auth_port(auth_settings: AuthSettings):
    async with running(auth_settings) as port:
        yield port


@pytest.fixture(scope="session")
async def auth_channel(auth_port: int):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{auth_port}") as channel:
        yield channel


@pytest.fixture(scope="session")
def auth_stub(auth_channel: grpc.aio.Channel) -> auth_service_pb2_grpc.AuthServiceStub:
    return auth_service_pb2_grpc.AuthServiceStub(auth_channel)


@pytest.fixture
def new_username() -> Callable[[], str]:
    """Make usernames no other test (or earlier run) has used."""
    return lambda: "u_" + uuid.uuid4().hex[:16]


@pytest.fixture(scope="session")
def accounts(shards) -> Accounts:
    """Accounts over every shard database of the session, as the auth server holds them."""
    return Accounts(shards)


@pytest.fixture(scope="session")
def sessions(redis_client, names, auth_settings: AuthSettings) -> Sessions:
    return Sessions(redis_client, names, auth_settings.session_ttl_seconds)


@pytest.fixture(scope="session")
def passwords(auth_settings: AuthSettings) -> Passwords:
    return Passwords(
        auth_settings.argon2_memory_kib,
        auth_settings.argon2_time_cost,
        auth_settings.argon2_parallelism,
    )


@pytest.fixture(scope="session")
def tokens(auth_settings: AuthSettings) -> Tokens:
    return Tokens.from_settings(auth_settings)


@pytest.fixture(scope="session")
def refused() -> Callable[[Awaitable[object]], Awaitable[PodiumError]]:
    """Await a call that must fail, and return the PodiumError the server sent."""

    async def failure(call: Awaitable[object]) -> PodiumError:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        return from_rpc_error(info.value)

    return failure


@pytest.fixture(scope="session")
def deps(accounts, passwords, sessions, tokens, redis_client, names, nats_client, auth_settings):
    """The core's dependencies, built like the server builds them, for direct calls."""
    limiter = Limiter.from_settings(auth_settings, redis_client, names)
    return Deps(accounts, passwords, sessions, tokens, limiter, Announcer(nats_client, names))


@pytest.fixture
async def ended_events(nats_client, names):
    """SessionEnded events published while the test runs."""
    events: list[auth_pb2.SessionEnded] = []

    async def collect(message) -> None:
        events.append(auth_pb2.SessionEnded.FromString(message.data))

    subscription = await nats_client.subscribe(names.sessions_ended_subject, cb=collect)
    await nats_client.flush()
    yield events
    await subscription.unsubscribe()

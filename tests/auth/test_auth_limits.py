"""Login throttling per username (over gRPC) and per client address, and registration
throttling per address (through the core, with limits small enough to reach).

The test settings lock out for one second, doubling per further attempt, so a lockout can be
waited out within a test.
"""

import asyncio
import dataclasses
import uuid

import grpc
import pytest
from podium.auth.v1 import auth_service_pb2 as pb

from auth import core
from auth.limits import ADDRESS, REGISTER, USERNAME, Limit, Limiter
from infra.errors import PodiumError

PASSWORD = "limits tests pw"


@pytest.fixture
async def username(auth_stub, new_username) -> str:
    name = new_username()
    await auth_stub.Register(pb.RegisterRequest(username=name, password=PASSWORD))
    return name


def _strict(deps, redis_client, names, address: int = 100, register: int = 100):
    """The core's dependencies with small limits for addresses."""
    limits = {
        USERNAME: Limit(10, 60),
        ADDRESS: Limit(address, 60),
        REGISTER: Limit(register, 60),
    }
    return dataclasses.replace(deps, limiter=Limiter(redis_client, names, limits, 1, 4))


def _address() -> str:
    return f"2001:db8::{uuid.uuid4().hex[:4]}"


def _login(username: str, password: str, address: str = "") -> pb.LoginRequest:
    return pb.LoginRequest(username=username, password=password, client_address=address)


async def _fail(auth_stub, refused, username: str, times: int) -> list[str]:
    codes = []
    for _ in range(times):
        error = await refused(auth_stub.Login(_login(username, "wrong password")))
        codes.append(error.code)
    return codes


async def test_the_eleventh_wrong_password_is_throttled_and_the_right_one_works_after(
    auth_stub, refused, username
):
    codes = await _fail(auth_stub, refused, username, 10)

    eleventh = await refused(auth_stub.Login(_login(username, "wrong password")))

    assert codes == ["INVALID_CREDENTIALS"] * 10
    assert eleventh.status == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert eleventh.code == "LOGIN_RATE_LIMITED"
    assert eleventh.retry_after_seconds == 1
    # While locked out even the right password waits: a guess must not be confirmable.
    locked = await refused(auth_stub.Login(_login(username, PASSWORD)))
    assert locked.code == "LOGIN_RATE_LIMITED"
    await asyncio.sleep(eleventh.retry_after_seconds)
    assert (await auth_stub.Login(_login(username, PASSWORD))).access_token


async def test_a_success_forgets_the_failures(auth_stub, refused, username):
    await _fail(auth_stub, refused, username, 9)
    await auth_stub.Login(_login(username, PASSWORD))

    codes = await _fail(auth_stub, refused, username, 9)

    assert codes == ["INVALID_CREDENTIALS"] * 9


async def test_each_failure_past_the_limit_doubles_the_lockout(auth_stub, refused, username):
    await _fail(auth_stub, refused, username, 10)
    await asyncio.sleep(1)

    again = await refused(auth_stub.Login(_login(username, "wrong password")))
    throttled = await refused(auth_stub.Login(_login(username, PASSWORD)))

    assert again.code == "INVALID_CREDENTIALS"
    assert (throttled.code, throttled.retry_after_seconds) == ("LOGIN_RATE_LIMITED", 2)


async def test_an_unknown_username_is_throttled_exactly_like_a_known_one(
    auth_stub, refused, username, new_username
):
    unknown = new_username()

    known_codes = await _fail(auth_stub, refused, username, 11)
    unknown_codes = await _fail(auth_stub, refused, unknown, 11)

    assert known_codes == unknown_codes == ["INVALID_CREDENTIALS"] * 10 + ["LOGIN_RATE_LIMITED"]


async def test_usernames_are_throttled_whatever_their_case(auth_stub, refused, username):
    await _fail(auth_stub, refused, username.upper(), 10)

    error = await refused(auth_stub.Login(_login(username, PASSWORD)))

    assert error.code == "LOGIN_RATE_LIMITED"


async def test_failures_from_one_address_throttle_that_address_only(
    deps, redis_client, names, auth_stub, new_username
):
    strict = _strict(deps, redis_client, names, address=3)
    names_tried, attacker = [new_username() for _ in range(3)], _address()
    victim = new_username()
    await auth_stub.Register(pb.RegisterRequest(username=victim, password=PASSWORD))

    for name in names_tried:
        with pytest.raises(PodiumError) as failed:
            await core.login(strict, name, "wrong password", attacker)
        assert failed.value.code == "INVALID_CREDENTIALS"

    with pytest.raises(PodiumError) as throttled:
        await core.login(strict, victim, PASSWORD, attacker)
    assert throttled.value.code == "LOGIN_RATE_LIMITED"
    assert throttled.value.retry_after_seconds == 1
    # Another address, and the same player, are unaffected.
    assert (await core.login(strict, victim, PASSWORD, "198.51.100.4")).access_token


@pytest.mark.parametrize(
    "username", ["", "bad name", "x" * 10_000], ids=["empty", "malformed", "10k"]
)
async def test_malformed_usernames_count_against_the_address(deps, redis_client, names, username):
    strict = _strict(deps, redis_client, names, address=2)
    address = _address()

    codes = []
    for _ in range(3):
        with pytest.raises(PodiumError) as refused:
            await core.login(strict, username, PASSWORD, address)
        codes.append(refused.value.code)

    assert codes == ["INVALID_CREDENTIALS", "INVALID_CREDENTIALS", "LOGIN_RATE_LIMITED"]
    stored = [key async for key in redis_client.scan_iter(match=f"{names.namespace}:login_*")]
    assert all(len(key) < 200 for key in stored)


async def test_a_burst_of_parallel_guesses_gets_exactly_the_limit_checked(
    auth_stub, refused, username
):
    """Each attempt is charged before its password is checked, so in-flight ones count too."""
    guesses = [refused(auth_stub.Login(_login(username, f"guess {i}"))) for i in range(30)]

    codes = sorted(error.code for error in await asyncio.gather(*guesses))

    assert codes == ["INVALID_CREDENTIALS"] * 10 + ["LOGIN_RATE_LIMITED"] * 20


async def test_logins_that_succeed_are_not_charged_to_the_address(
    deps, redis_client, names, auth_stub, new_username
):
    strict = _strict(deps, redis_client, names, address=3)
    address, players = _address(), [new_username() for _ in range(5)]
    for name in players:
        await auth_stub.Register(pb.RegisterRequest(username=name, password=PASSWORD))

    for name in players:
        assert (await core.login(strict, name, PASSWORD, address)).access_token

    codes = []
    for name in players[:4]:
        with pytest.raises(PodiumError) as refused:
            await core.login(strict, name, "wrong password", address)
        codes.append(refused.value.code)
    assert codes == ["INVALID_CREDENTIALS"] * 3 + ["LOGIN_RATE_LIMITED"]


async def test_registrations_are_limited_per_address(deps, redis_client, names, new_username):
    strict = _strict(deps, redis_client, names, register=3)
    address = _address()

    created = [await core.register(strict, new_username(), PASSWORD, address) for _ in range(3)]
    with pytest.raises(PodiumError) as throttled:
        await core.register(strict, new_username(), PASSWORD, address)

    assert len(set(created)) == 3
    assert throttled.value.code == "REGISTRATION_RATE_LIMITED"
    assert throttled.value.status == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert throttled.value.retry_after_seconds == 1
    assert await core.register(strict, new_username(), PASSWORD, _address())
    assert await core.register(strict, new_username(), PASSWORD)


async def test_refused_registrations_cost_the_address_nothing(
    deps, redis_client, names, new_username
):
    strict = _strict(deps, redis_client, names, register=2)
    address = _address()

    for _ in range(5):
        with pytest.raises(PodiumError) as refused:
            await core.register(strict, new_username(), "short", address)
        assert refused.value.code == "INVALID_PASSWORD"

    assert await core.register(strict, new_username(), PASSWORD, address)

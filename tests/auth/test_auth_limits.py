"""Login throttling per username (over gRPC) and per client address (through the core).

The test settings lock out for one second, doubling per further failure, so a lockout can be
waited out within a test.
"""

import asyncio
import dataclasses
import uuid

import grpc
import pytest
from podium.auth.v1 import auth_service_pb2 as pb

from auth import core
from auth.limits import ADDRESS, USERNAME, Limit, LoginLimiter
from infra.errors import PodiumError

PASSWORD = "limits tests pw"


@pytest.fixture
async def username(auth_stub, new_username) -> str:
    name = new_username()
    await auth_stub.Register(pb.RegisterRequest(username=name, password=PASSWORD))
    return name


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
    limits = {USERNAME: Limit(10, 60), ADDRESS: Limit(3, 60)}
    strict = dataclasses.replace(deps, limiter=LoginLimiter(redis_client, names, limits, 1, 4))
    names_tried = [new_username() for _ in range(3)]
    victim = new_username()
    await auth_stub.Register(pb.RegisterRequest(username=victim, password=PASSWORD))

    for name in names_tried:
        with pytest.raises(PodiumError) as failed:
            await core.login(strict, name, "wrong password", "203.0.113.7")
        assert failed.value.code == "INVALID_CREDENTIALS"

    with pytest.raises(PodiumError) as throttled:
        await core.login(strict, victim, PASSWORD, "203.0.113.7")
    assert throttled.value.code == "LOGIN_RATE_LIMITED"
    assert throttled.value.retry_after_seconds == 1
    # Another address, and the same player, are unaffected.
    assert (await core.login(strict, victim, PASSWORD, "198.51.100.4")).access_token


@pytest.mark.parametrize(
    "username", ["", "bad name", "x" * 10_000], ids=["empty", "malformed", "10k"]
)
async def test_malformed_usernames_count_against_the_address(deps, redis_client, names, username):
    limits = {USERNAME: Limit(10, 60), ADDRESS: Limit(2, 60)}
    strict = dataclasses.replace(deps, limiter=LoginLimiter(redis_client, names, limits, 1, 4))
    address = f"2001:db8::{uuid.uuid4().hex[:4]}"

    codes = []
    for _ in range(3):
        with pytest.raises(PodiumError) as refused:
            await core.login(strict, username, PASSWORD, address)
        codes.append(refused.value.code)

    assert codes == ["INVALID_CREDENTIALS", "INVALID_CREDENTIALS", "LOGIN_RATE_LIMITED"]
    stored = [key async for key in redis_client.scan_iter(match=f"{names.namespace}:login_*")]
    assert all(len(key) < 200 for key in stored)

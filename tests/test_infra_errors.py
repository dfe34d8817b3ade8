"""A PodiumError survives the trip through a gRPC status: code, message, status, retry."""

import grpc
import pytest
from grpc.aio import AioRpcError, Metadata

from infra.errors import PodiumError, from_rpc_error, to_rpc_status


def _through_grpc(error: PodiumError) -> PodiumError:
    status = to_rpc_status(error)
    rpc_error = AioRpcError(
        status.code, Metadata(), Metadata(*status.trailing_metadata), status.details
    )
    return from_rpc_error(rpc_error)


def test_code_message_and_status_come_back():
    sent = PodiumError("USERNAME_TAKEN", "username is taken", grpc.StatusCode.ALREADY_EXISTS)

    received = _through_grpc(sent)

    assert (received.code, received.message, received.status) == (
        "USERNAME_TAKEN",
        "username is taken",
        grpc.StatusCode.ALREADY_EXISTS,
    )
    assert received.retry_after_seconds is None


def test_retry_after_comes_back():
    sent = PodiumError("TOO_MANY_ATTEMPTS", "wait", grpc.StatusCode.RESOURCE_EXHAUSTED, 42)

    assert _through_grpc(sent).retry_after_seconds == 42


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "UNAVAILABLE"),
        (grpc.StatusCode.UNKNOWN, "INTERNAL"),
    ],
)
def test_a_status_without_podium_details_becomes_a_generic_code(code, expected):
    rpc_error = AioRpcError(code, Metadata(), Metadata(), "raw text that must not leak")

    received = from_rpc_error(rpc_error)

    assert received.code == expected
    assert "raw text" not in received.message

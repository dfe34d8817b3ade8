"""Domain errors with stable codes, and how they cross a gRPC boundary.

A core function raises PodiumError; only the gRPC handler turns it into a status, with the code
packed as a google.rpc.ErrorInfo reason so that the caller can map it without parsing text.
"""

import functools

import asyncpg
import grpc
import redis.exceptions
import structlog
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

log = structlog.get_logger(__name__)

DOMAIN = "podium"
_DETAILS_KEY = "grpc-status-details-bin"

# A lost connection to a backing store is worth a retry by the caller; anything else is a bug.
STORE_DOWN = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    OSError,
    TimeoutError,
)


class PodiumError(Exception):
    """A failure with a stable UPPER_SNAKE code and a short, fixed message for the caller."""

    def __init__(
        self,
        code: str,
        message: str,
        status: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT,
        retry_after_seconds: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        # When set, the caller may try again after this many seconds (HTTP Retry-After).
        self.retry_after_seconds = retry_after_seconds


def to_rpc_status(error: PodiumError) -> grpc.Status:
    """Pack the error for context.abort_with_status."""
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason=error.code, domain=DOMAIN))
    details = [info]
    if error.retry_after_seconds is not None:
        retry = any_pb2.Any()
        retry.Pack(error_details_pb2.RetryInfo(retry_delay={"seconds": error.retry_after_seconds}))
        details.append(retry)
    status = status_pb2.Status(code=error.status.value[0], message=error.message, details=details)
    return rpc_status.to_status(status)


async def abort(context: grpc.aio.ServicerContext, error: PodiumError) -> None:
    """End the current RPC with the error's status and code."""
    await context.abort_with_status(to_rpc_status(error))


def from_rpc_error(error: grpc.aio.AioRpcError) -> PodiumError:
    """Recover the PodiumError a server sent; unknown failures become UNAVAILABLE/INTERNAL."""
    for key, value in error.trailing_metadata() or ():
        if key != _DETAILS_KEY:
            continue
        status = status_pb2.Status.FromString(value)
        info, retry = error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()
        has_info = any(detail.Unpack(info) for detail in status.details)
        has_retry = any(detail.Unpack(retry) for detail in status.details)
        if has_info and info.domain == DOMAIN:
            retry_after = retry.retry_delay.seconds if has_retry else None
            return PodiumError(info.reason, status.message, error.code(), retry_after)

    if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return PodiumError("UNAVAILABLE", "a service is unavailable; try again", error.code())
    return PodiumError("INTERNAL", "internal error", grpc.StatusCode.INTERNAL)


INTERNAL = PodiumError("INTERNAL", "internal error", grpc.StatusCode.INTERNAL)
STORE_UNAVAILABLE = PodiumError(
    "UNAVAILABLE", "storage is unavailable; try again", grpc.StatusCode.UNAVAILABLE
)


def guarded(handler):
    """Wrap a servicer method: PodiumError ends the RPC with its own code, a lost store
    connection with UNAVAILABLE, and anything else with a fixed INTERNAL that leaks nothing."""

    @functools.wraps(handler)
    async def run(self, request, context: grpc.aio.ServicerContext):
        try:
            return await handler(self, request, context)
        except PodiumError as error:
            await abort(context, error)
        except STORE_DOWN as error:
            log.warning("store_unavailable", rpc=handler.__name__, error=repr(error))
            await abort(context, STORE_UNAVAILABLE)
        except Exception:
            log.exception("rpc_failed", rpc=handler.__name__)
            await abort(context, INTERNAL)

    return run

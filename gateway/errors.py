"""Errors as players see them: an HTTP status and {"error": {"code", "message"}}.

Codes come from the services (packed in gRPC ErrorInfo) or from the gateway's own checks; the
status follows from the gRPC code, so a new service error needs no change here.
"""

import grpc
from aiohttp import web

from infra.errors import PodiumError

_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 503,
}


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def error_response(status: int, code: str, message: str) -> web.Response:
    return web.json_response(error_body(code, message), status=status)


def podium_error_response(error: PodiumError) -> web.Response:
    """The HTTP answer for an error that a service (or the gateway) raised."""
    response = error_response(_HTTP_STATUS.get(error.status, 500), error.code, error.message)
    if error.retry_after_seconds is not None:
        response.headers["Retry-After"] = str(max(1, error.retry_after_seconds))
    return response

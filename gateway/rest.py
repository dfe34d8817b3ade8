"""REST routes of the player protocol: accounts, the health probe, and errors as JSON.

Board reads are in gateway.board_routes.
"""

import orjson
import structlog
from aiohttp import web

from gateway.context import CONTEXT
from gateway.errors import error_response, podium_error_response
from gateway.identity import authenticate, bearer_token, client_address
from infra.errors import PodiumError
from infra.health import DEPENDENCY_UP

log = structlog.get_logger(__name__)


async def register(request: web.Request) -> web.Response:
    """POST /v1/auth/register {"username", "password"} -> 201 {"player_id"}."""
    body = await json_body(request)
    username, password = _string(body, "username"), _string(body, "password")

    clients = request.app[CONTEXT].clients
    reply = await clients.register(username, password, client_address(request))
    return web.json_response({"player_id": reply.player_id}, status=201)


async def login(request: web.Request) -> web.Response:
    """POST /v1/auth/login {"username", "password"} -> 200 with the session's tokens."""
    body = await json_body(request)
    username, password = _string(body, "username"), _string(body, "password")

    clients = request.app[CONTEXT].clients
    reply = await clients.login(username, password, client_address(request))
    return web.json_response(_tokens_body(reply))


async def refresh(request: web.Request) -> web.Response:
    """POST /v1/auth/refresh {"refresh_token"} -> 200 with new tokens; the old one is spent."""
    body = await json_body(request)
    refresh_token = _string(body, "refresh_token")

    reply = await request.app[CONTEXT].clients.refresh(refresh_token)
    return web.json_response(_tokens_body(reply))


async def logout(request: web.Request) -> web.Response:
    """POST /v1/auth/logout with the bearer token -> 204; the session ends everywhere."""
    token = bearer_token(request)

    await request.app[CONTEXT].clients.logout(token)
    return web.Response(status=204)


async def ticket(request: web.Request) -> web.Response:
    """POST /v1/auth/ticket with the bearer token -> a single-use ticket for GET /v1/ws."""
    token = bearer_token(request)

    reply = await request.app[CONTEXT].clients.issue_ticket(token)
    return web.json_response({"ticket": reply.ticket, "expires_in": reply.expires_in_seconds})


async def me(request: web.Request) -> web.Response:
    """GET /v1/me with the bearer token -> who the session belongs to."""
    identity = await authenticate(request)
    return web.json_response({"player_id": identity.player_id, "username": identity.username})


async def healthz(request: web.Request) -> web.Response:
    """200 once every service the gateway needs answers; 503 naming those that do not."""
    down = await _unhealthy(request.app[CONTEXT])
    if down:
        return web.json_response({"status": "unavailable", "down": down}, status=503)
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Whether load balancers should send players here: not while draining, nor while a
    service behind the gateway is down."""
    context = request.app[CONTEXT]
    down = await _unhealthy(context)
    # Checked after the services answered: a drain may have begun while they were asked.
    if context.draining:
        return web.json_response({"status": "draining"}, status=503)
    if down:
        return web.json_response({"status": "unavailable", "down": down}, status=503)
    return web.json_response({"status": "ready"})


async def _unhealthy(context) -> list[str]:
    """The dependencies that do not answer now; each one's state is also a metric, so that an
    alert can name it."""
    down = await context.clients.unhealthy()
    for name in context.clients.dependencies:
        DEPENDENCY_UP.labels(name).set(0 if name in down else 1)
    return down


@web.middleware
async def errors_as_json(request: web.Request, handler) -> web.StreamResponse:
    """Give every failure the protocol's error body, and never leak internal text."""
    try:
        return await handler(request)
    except PodiumError as error:
        return podium_error_response(error)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        code = _HTTP_CODES.get(error.status, "HTTP_ERROR")
        return error_response(error.status, code, error.reason)
    except Exception:
        log.exception("request_failed", path=request.path)
        return error_response(500, "INTERNAL", "internal error")


_HTTP_CODES = {
    400: "BAD_REQUEST",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
}


def _tokens_body(reply) -> dict:
    return {
        "access_token": reply.access_token,
        "refresh_token": reply.refresh_token,
        "expires_in": reply.expires_in_seconds,
        "player_id": reply.player_id,
    }


async def json_body(request: web.Request) -> dict:
    try:
        raw = await request.read()
    except web.RequestPayloadError:
        # A body that does not decode as its Content-Encoding claims.
        raise PodiumError("INVALID_BODY", "the request body could not be decoded") from None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise PodiumError("INVALID_JSON", "body is not valid JSON") from None
    if not isinstance(body, dict):
        raise PodiumError("INVALID_JSON", "body must be a JSON object")
    return body


def _string(body: dict, name: str) -> str:
    if name not in body:
        raise PodiumError("MISSING_FIELD", f"field '{name}' is required")
    if not isinstance(body[name], str):
        raise PodiumError("INVALID_FIELD", f"field '{name}' must be a string")
    return body[name]

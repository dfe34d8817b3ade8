"""REST routes of the player protocol: accounts, board reads and the health probe."""

import orjson
import structlog
from aiohttp import web

from gateway.context import CONTEXT
from gateway.errors import error_response, podium_error_response
from gateway.identity import authenticate, bearer_token, client_address
from infra.errors import PodiumError

log = structlog.get_logger(__name__)

DEFAULT_TOP_LIMIT = 10
DEFAULT_RADIUS = 5


async def register(request: web.Request) -> web.Response:
    """POST /v1/auth/register {"username", "password"} -> 201 {"player_id"}."""
    body = await _json_body(request)
    username, password = _string(body, "username"), _string(body, "password")

    clients = request.app[CONTEXT].clients
    reply = await clients.register(username, password, client_address(request))
    return web.json_response({"player_id": reply.player_id}, status=201)


async def login(request: web.Request) -> web.Response:
    """POST /v1/auth/login {"username", "password"} -> 200 with the session's tokens."""
    body = await _json_body(request)
    username, password = _string(body, "username"), _string(body, "password")

    clients = request.app[CONTEXT].clients
    reply = await clients.login(username, password, client_address(request))
    return web.json_response(_tokens_body(reply))


async def refresh(request: web.Request) -> web.Response:
    """POST /v1/auth/refresh {"refresh_token"} -> 200 with new tokens; the old one is spent."""
    body = await _json_body(request)
    refresh_token = _string(body, "refresh_token")

    reply = await request.app[CONTEXT].clients.refresh(refresh_token)
    return web.json_response(_tokens_body(reply))


async def logout(request: web.Request) -> web.Response:
    """POST /v1/auth/logout with the bearer token -> 204; the session ends everywhere."""
    token = bearer_token(request)

    await request.app[CONTEXT].clients.logout(token)
    return web.Response(status=204)


async def me(request: web.Request) -> web.Response:
    """GET /v1/me with the bearer token -> who the session belongs to."""
    identity = await authenticate(request)
    return web.json_response({"player_id": identity.player_id, "username": identity.username})


async def top(request: web.Request) -> web.Response:
    """GET /v1/boards/{board}/top?limit=N[&period=P]."""
    limit = _int_query(request, "limit", DEFAULT_TOP_LIMIT, "INVALID_LIMIT")
    board, period = request.match_info["board"], request.query.get("period", "")

    reply = await request.app[CONTEXT].clients.get_top(board, period, limit)
    return web.json_response(_board_body(reply))


async def around(request: web.Request) -> web.Response:
    """GET /v1/boards/{board}/around/{player_id}?radius=R[&period=P]."""
    radius = _int_query(request, "radius", DEFAULT_RADIUS, "INVALID_RADIUS")
    board, period = request.match_info["board"], request.query.get("period", "")
    player_id = request.match_info["player_id"]

    reply = await request.app[CONTEXT].clients.get_around(board, period, player_id, radius)
    return web.json_response(_board_body(reply))


async def healthz(request: web.Request) -> web.Response:
    """200 once every service the gateway needs answers; 503 naming those that do not."""
    down = await request.app[CONTEXT].clients.unhealthy()
    if down:
        return web.json_response({"status": "unavailable", "down": down}, status=503)
    return web.json_response({"status": "ok"})


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


def _board_body(reply) -> dict:
    return {
        "board": reply.board,
        "period": reply.period,
        "seq": reply.seq,
        "entries": [
            {
                "rank": entry.rank,
                "player_id": entry.player_id,
                "username": entry.username,
                "score": entry.score,
            }
            for entry in reply.entries
        ],
    }


async def _json_body(request: web.Request) -> dict:
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


def _int_query(request: web.Request, name: str, default: int, code: str) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    # isdigit() alone would let "²" and other non-ASCII digits through to int().
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 6:
        raise PodiumError(code, f"'{name}' must be a small non-negative integer")
    return int(raw)

"""The gateway's Prometheus metrics, and the middleware that counts and times its routes.

Routes are labelled by their pattern ("/v1/boards/{board}/top"), never by the path asked for,
and methods outside the standard few by "other", so that no client can grow the label set.
"""

import time

from aiohttp import web
from prometheus_client import Counter, Gauge, Histogram

from infra.metrics import LATENCY_BUCKETS

HTTP_REQUESTS = Counter(
    "podium_http_requests",
    "HTTP requests the gateway answered, by method, route pattern and status.",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "podium_http_request_seconds",
    "Time to answer an HTTP request (WebSocket upgrades, which last the socket's life, "
    "are left out).",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
SOCKETS_OPEN = Gauge("podium_gateway_sockets_open", "Player WebSockets open on this gateway.")
BOARD_SUBSCRIPTIONS = Gauge(
    "podium_gateway_board_subscriptions",
    "Views of a board that this gateway's sockets subscribe to.",
    ["board"],
)
BOARD_STREAM_FAILURES = Counter(
    "podium_gateway_board_stream_failures",
    "Board streams from ranking that failed and were opened again.",
)
FRAMES = Counter(
    "podium_gateway_ws_frames",
    "Frames received from players and understood, by type.",
    ["type"],
)
FRAME_ERRORS = Counter(
    "podium_gateway_ws_frame_errors",
    "Error frames sent to players in answer to a frame, by error code.",
    ["code"],
)
SOCKET_CLOSES = Counter(
    "podium_gateway_socket_closes",
    "Sockets the gateway chose to close, by close code.",
    ["code"],
)
ACTIONS = Counter(
    "podium_gateway_actions",
    "Actions handed to JetStream: queued, repeated (an id JetStream already held), or "
    "not_queued (the publish failed; the client is told to retry).",
    ["outcome"],
)
ACTIONS_QUEUED = ACTIONS.labels("queued")
ACTIONS_REPEATED = ACTIONS.labels("repeated")
ACTIONS_NOT_QUEUED = ACTIONS.labels("not_queued")

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@web.middleware
async def count_requests(request: web.Request, handler) -> web.StreamResponse:
    """Count every answered request and time those that are not WebSockets.

    Placed outermost, it sees the status the error middleware settled on.
    """
    started = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as error:
        _record(request, error.status, time.perf_counter() - started)
        raise
    if isinstance(response, web.WebSocketResponse):
        HTTP_REQUESTS.labels(*_route(request), response.status).inc()
    else:
        _record(request, response.status, time.perf_counter() - started)
    return response


def _record(request: web.Request, status: int, seconds: float) -> None:
    method, route = _route(request)
    HTTP_REQUESTS.labels(method, route, status).inc()
    HTTP_SECONDS.labels(method, route).observe(seconds)


def _route(request: web.Request) -> tuple[str, str]:
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    method = request.method if request.method in _METHODS else "other"
    return method, route

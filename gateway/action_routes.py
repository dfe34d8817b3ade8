"""POST /v1/actions: an action over REST, for clients that hold no socket.

The same checks, rate limit, queue and exactly-once rule as a WebSocket action. The handler
listens on the session's result subject before it queues the action, so the result cannot
arrive unheard; if it is not back in time the answer is 202, and sending the same request
again (same action_id) fetches the result once there, without applying anything twice.
"""

import asyncio
import math

import grpc
import structlog
from aiohttp import web
from podium.game.v1 import game_pb2
from structlog.contextvars import bound_contextvars

from gateway import actions
from gateway.context import CONTEXT
from gateway.frames import FrameError, parse_fields
from gateway.identity import authenticate
from gateway.rest import json_body
from gateway.results import result_body
from infra.errors import PodiumError

log = structlog.get_logger(__name__)

_STATUS = {
    "ACTION_RATE_LIMITED": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "ACTION_NOT_ACCEPTED": grpc.StatusCode.UNAVAILABLE,
}


async def submit(request: web.Request) -> web.Response:
    """POST /v1/actions {"action_id", "action", "params", "state_hash", "ts"} with the bearer
    token -> 200 with the result, or 202 {"action_id", "status": "pending"}."""
    context = request.app[CONTEXT]
    identity = await authenticate(request)
    body = await json_body(request)
    try:
        # The body is a frame without its envelope: no type, and no id to echo.
        frame = parse_fields({**body, "type": "action", "id": None})
        actions.check_rate(context, identity.player_id, frame)
    except FrameError as error:
        raise _rest_error(error) from None

    action_id = frame.action_id.lower()
    results: asyncio.Queue = asyncio.Queue()
    subject = context.names.result_subject(identity.session_key)
    # What is logged while the action is queued and awaited names it and its session.
    with bound_contextvars(action_id=frame.action_id, session_key=identity.session_key):
        subscription = await context.clients.nc.subscribe(subject, cb=results.put)
        try:
            try:
                repeat = await actions.publish(
                    context, identity.player_id, identity.session_key, frame
                )
            except FrameError as error:
                raise _rest_error(error) from None
            result = await _result(context, identity.player_id, action_id, repeat, results)
        finally:
            await subscription.unsubscribe()

    if result is None:
        pending = {"action_id": frame.action_id, "status": "pending"}
        return web.json_response(pending, status=202)
    result.action_id = frame.action_id
    return web.json_response(result_body(result))


async def _result(context, player_id: str, action_id: str, repeat: bool, results: asyncio.Queue):
    """The action's result within the configured wait, or None."""
    if repeat:
        lookup = actions.first_result(context, player_id, action_id, lambda: True)
    else:
        lookup = _heard(results, action_id)
    try:
        async with asyncio.timeout(context.settings.rest_action_wait_seconds):
            return await lookup
    except TimeoutError:
        log.info("action_result_pending", action_id=action_id, player_id=player_id)
        return None


async def _heard(results: asyncio.Queue, action_id: str) -> game_pb2.ActionResult:
    """The result of `action_id` among the session's results (its sockets' ones pass too)."""
    while True:
        message = await results.get()
        try:
            result = game_pb2.ActionResult.FromString(message.data)
        except Exception:
            log.warning("result_undecodable", subject=message.subject)
            continue
        if result.action_id.lower() == action_id:
            return result


def _rest_error(error: FrameError) -> PodiumError:
    status = _STATUS.get(error.code, grpc.StatusCode.INVALID_ARGUMENT)
    retry = None
    if error.retry_after_ms is not None:
        retry = math.ceil(error.retry_after_ms / 1000)
    return PodiumError(error.code, error.message, status, retry)

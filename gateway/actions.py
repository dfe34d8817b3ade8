"""Putting a player's action on its JetStream partition, for sockets and REST alike.

JetStream keeps an action id for its dedup window: a repeat is acknowledged as a duplicate and
no worker sees it, so its sender must fetch the first copy's result from game instead.
"""

import asyncio
import itertools
import time
from collections.abc import Callable

import orjson
import structlog
from nats.errors import Error as NatsError
from podium.game.v1 import game_pb2

from gateway import metrics
from gateway.context import Context
from gateway.frames import ActionFrame, FrameError
from infra.errors import PodiumError

log = structlog.get_logger(__name__)

PUBLISH_TIMEOUT_SECONDS = 2.0
# Pauses between asks for the first result of a repeated action id that is still queued; the
# last one repeats for as long as the sender waits.
RESULT_LOOKUP_DELAYS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)


def rate_limited(frame_id, retry_after: float) -> FrameError:
    return FrameError(
        "ACTION_RATE_LIMITED",
        "too many actions; wait before sending more",
        frame_id,
        violation=False,
        retry_after_ms=max(1, round(retry_after * 1000)),
    )


def check_rate(context: Context, player_id: str, frame: ActionFrame) -> None:
    """Spend the player's allowance for one action, or raise ACTION_RATE_LIMITED."""
    wait = context.action_rates.take(player_id)
    if wait:
        raise rate_limited(frame.frame_id, wait)


async def publish(context: Context, player_id: str, session_key: str, frame: ActionFrame) -> bool:
    """Queue the action; True when JetStream already had its id (a repeat).

    ACTION_NOT_ACCEPTED when it could not be queued: the client may send it again, as is, and
    the allowance it spent is given back.
    """
    names = context.names
    action = game_pb2.Action(
        action_id=frame.action_id.lower(),
        player_id=player_id,
        session_key=session_key,
        name=frame.action,
        params_json=orjson.dumps(frame.params).decode(),
        state_hash=frame.state_hash,
        client_ts_ms=frame.ts,
        received_ts_ms=int(time.time() * 1000),
    )
    try:
        ack = await context.clients.js.publish(
            names.action_subject(player_id),
            action.SerializeToString(),
            timeout=PUBLISH_TIMEOUT_SECONDS,
            headers={"Nats-Msg-Id": names.action_msg_id(player_id, action.action_id)},
        )
    except (NatsError, TimeoutError) as error:
        log.warning("action_not_queued", action_id=action.action_id, error=repr(error))
        metrics.ACTIONS_NOT_QUEUED.inc()
        context.action_rates.give_back(player_id)
        raise FrameError(
            "ACTION_NOT_ACCEPTED",
            "the action could not be queued; retry with the same action_id",
            frame.frame_id,
            violation=False,
        ) from None
    (metrics.ACTIONS_REPEATED if ack.duplicate else metrics.ACTIONS_QUEUED).inc()
    return ack.duplicate


async def first_result(
    context: Context, player_id: str, action_id: str, wanted: Callable[[], bool]
) -> game_pb2.ActionResult | None:
    """The result of the first copy of a repeated action, asked of game until it is there.

    Keeps asking, at the last delay, for as long as `wanted()` holds: a first copy may wait in
    the queue for minutes while workers are down, and its sender must still get its answer.
    Stops (None) once `wanted()` turns false: the result came by another way, or nobody waits.
    """
    for attempt in itertools.count():
        if not wanted():
            return None
        try:
            reply = await context.clients.get_action_result(player_id, action_id)
        except PodiumError as error:
            log.warning("result_lookup_failed", action_id=action_id, code=error.code)
        else:
            if reply.found:
                return reply.result
        if attempt == len(RESULT_LOOKUP_DELAYS):
            log.warning("result_still_missing", action_id=action_id, player_id=player_id)
        await asyncio.sleep(RESULT_LOOKUP_DELAYS[min(attempt, len(RESULT_LOOKUP_DELAYS) - 1)])

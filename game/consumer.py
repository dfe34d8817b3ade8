"""The JetStream side of a game worker: a durable pull consumer, fetched and acked in a loop.

Each message is seen through before the next: decide it (commit), write the boards to Redis,
publish the result, and only then ack. A failure before the ack leaves the message to be
redelivered, and a redelivered action is found in Postgres and answered with its first result,
so a crash at any step loses nothing and applies nothing twice. Messages of one batch are
handled in order, which keeps one player's actions in order while a single worker pulls them.
"""

import asyncio
import contextlib
import time

import nats.aio.client
import nats.errors
import structlog
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from podium.game.v1 import game_pb2

from game.apply import ActionMessage, MalformedAction, decide, parse_action
from game.board_writer import BoardWriter
from game.config import GameSettings
from game.rules.base import Ruleset
from infra.names import Names
from infra.shards import ShardPools
from infra.streams import ensure_actions_stream

log = structlog.get_logger(__name__)

# Every replica shares the one durable consumer, and JetStream stops delivering, silently, once
# this many messages are unacked across all of them. A worker holds at most one batch, so the
# cap leaves room for this many replicas with a full batch each, while a stuck worker can pin
# no more than its own batch and the others keep going.
MAX_ACK_PENDING_BATCHES = 16

# After a failed pull (NATS restarting, the consumer gone): wait, then set the consumer up again.
_REOPEN_PAUSE_SECONDS = 1.0

# How often an idle worker checks that its consumer still exists.
CONSUMER_CHECK_SECONDS = 10.0


class ActionConsumer:
    """Pulls actions for one namespace and sees each one through to its ack."""

    def __init__(
        self,
        settings: GameSettings,
        nc: nats.aio.client.Client,
        pools: ShardPools,
        ruleset: Ruleset,
        boards: BoardWriter,
    ) -> None:
        self._settings = settings
        self._names = Names(settings.namespace)
        self._nc = nc
        self._js = nc.jetstream()
        self._pools = pools
        self._ruleset = ruleset
        self._boards = boards
        self._sub = None
        self._checked_at = time.monotonic()

    async def open(self) -> None:
        """Create or update the stream and the durable consumer, and bind to it."""
        await ensure_actions_stream(self._js, self._names)
        await self._js.add_consumer(self._names.actions_stream, self._consumer_config())
        self._sub = await self._js.pull_subscribe_bind(
            durable=self._names.game_consumer, stream=self._names.actions_stream
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Fetch and handle batches until `stop` is set; a batch in hand is always finished."""
        try:
            while not stop.is_set():
                try:
                    batch = await self._fetch()
                    if not batch:
                        await self._check_consumer()
                except nats.errors.ConnectionClosedError:
                    raise
                except nats.errors.Error:
                    log.exception("pull_failed")
                    await self._reopen(stop)
                    continue

                for msg in batch:
                    await self._handle(msg)
        finally:
            await self.close()

    def _consumer_config(self) -> ConsumerConfig:
        return ConsumerConfig(
            name=self._names.game_consumer,
            durable_name=self._names.game_consumer,
            filter_subject=self._names.actions_subjects,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=float(self._settings.ack_wait_seconds),
            max_deliver=self._settings.max_deliver,
            max_ack_pending=self._settings.fetch_batch * MAX_ACK_PENDING_BATCHES,
        )

    async def _fetch(self) -> list[Msg]:
        try:
            return await self._sub.fetch(
                self._settings.fetch_batch, timeout=self._settings.fetch_timeout_ms / 1000
            )
        except TimeoutError:
            # nats-py raises its own TimeoutError or asyncio's, depending on where the wait
            # ended; both subclass the builtin and both just mean "no messages this time".
            return []

    async def _check_consumer(self) -> None:
        """Now and then, when idle, make sure the consumer still exists: fetching from a deleted
        one only times out, just like fetching from an empty stream."""
        now = time.monotonic()
        if now - self._checked_at < CONSUMER_CHECK_SECONDS:
            return

        self._checked_at = now
        await self._js.consumer_info(self._names.actions_stream, self._names.game_consumer)

    async def _reopen(self, stop: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), _REOPEN_PAUSE_SECONDS)
        if stop.is_set():
            return

        await self.close()
        try:
            await self.open()
        except nats.errors.Error:
            log.exception("consumer_reopen_failed")

    async def close(self) -> None:
        """Unsubscribe (again is harmless). nc.drain() would wait on this subscription's queue,
        which fetch empties without marking items done, until its timeout; so drop it first."""
        sub, self._sub = self._sub, None
        if sub is not None and not self._nc.is_closed:
            await sub.unsubscribe()

    async def _handle(self, msg: Msg) -> None:
        try:
            action = parse_action(msg.data)
        except MalformedAction as exc:
            log.warning("action_malformed", reason=str(exc), subject=msg.subject)
            await self._ack(msg)
            return

        try:
            await self._see_through(action)
        except Exception:
            log.exception("action_failed", action_id=action.action_id, player_id=action.player_id)
            await self._retry_later(msg, action)
            return

        await self._ack(msg)

    async def _see_through(self, action: ActionMessage) -> None:
        """Everything that must happen before the ack, in the order that makes a retry safe."""
        pool = self._pools.for_player(action.player_id)
        decision = await decide(pool, self._ruleset, action)

        await self._boards.write(action.player_id, decision.scores)

        subject = self._names.result_subject(action.session_key)
        await self._nc.publish(subject, decision.result.SerializeToString())
        log.debug(
            "action_decided",
            action_id=action.action_id,
            player_id=action.player_id,
            status=game_pb2.ActionStatus.Name(decision.result.status),
            duplicate=decision.duplicate,
        )

    async def _ack(self, msg: Msg) -> None:
        try:
            await msg.ack()
        except nats.errors.Error:
            log.warning("ack_failed", subject=msg.subject)

    async def _retry_later(self, msg: Msg, action: ActionMessage) -> None:
        """Nak with a delay that doubles per delivery, so an outage is not hammered."""
        attempt = msg.metadata.num_delivered
        if attempt >= self._settings.max_deliver:
            log.error("action_given_up", action_id=action.action_id, attempts=attempt)

        delay = min(2 ** (attempt - 1), self._settings.ack_wait_seconds)
        try:
            await msg.nak(delay=delay)
        except nats.errors.Error:
            log.warning("nak_failed", action_id=action.action_id)

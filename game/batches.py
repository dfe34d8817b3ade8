"""Seeing fetched actions through: decide, show on the boards, answer, and only then ack.

The steps run in this order, and each is safe to repeat: the decisions commit first (one
transaction per shard database for the whole batch), then Redis gets absolute totals, then each
session gets its result, then the messages are acked. A crash anywhere leaves the messages
unacked; they come back, are found decided in Postgres, and get their first answer again.

A lost connection to Postgres, Redis or NATS is waited out with the batch in hand: the actions
are not at fault. Any other failure of a batch is retried one action at a time, so that only
the action that fails again and again ends in the dead letters, answered ACTION_FAILED.
Messages that may have been half handled before (see game.feed) are seen through one at a time
from the start, and their deliveries are counted.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
import nats.aio.client
import nats.errors
import redis.asyncio as aioredis
import redis.exceptions
import structlog
from nats.aio.msg import Msg
from structlog.contextvars import bound_contextvars

from game import metrics
from game.apply import (
    ActionMessage,
    Decision,
    MalformedAction,
    RulesetFailed,
    decide_batch,
    now_ms,
    parse_action,
    record_failure,
)
from game.board_writer import BoardWriter
from game.config import GameSettings
from game.dead_letters import DeadLetters
from game.feed import PartitionFeed
from game.rules.base import Ruleset
from infra.errors import STORE_DOWN
from infra.names import Names
from infra.shards import ShardPools

log = structlog.get_logger(__name__)

# Unix milliseconds now: what decides whether an action's period has closed.
Clock = Callable[[], int]

# Failures that say nothing about the actions: wait them out and try the same work again.
TRANSIENT = (
    *STORE_DOWN,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.TransactionRollbackError,
    # A connection left in a bad state by a killed backend; the pool replaces it.
    asyncpg.exceptions.InternalClientError,
    nats.errors.Error,
)
_MAX_PAUSE_SECONDS = 5.0
# A partition's delivery counts outlive any outage a message could be redelivered across.
_DELIVERIES_TTL_SECONDS = 86400


@dataclass
class PartitionBatch:
    """Messages fetched from one partition; the partition fetches again once `done` is set.

    A batch holding any suspect message (game.feed) is seen through one message at a time.
    """

    feed: PartitionFeed
    msgs: list[Msg]
    suspect: bool
    done: asyncio.Event = field(default_factory=asyncio.Event)
    failed: bool = False


@dataclass
class _Item:
    """A message, the action it holds (None if malformed) and the decision it got."""

    msg: Msg
    action: ActionMessage | None
    decision: Decision | None = None


class BatchHandler:
    """Decides, shows, answers and acks the batches an applier hands it."""

    def __init__(
        self,
        settings: GameSettings,
        nc: nats.aio.client.Client,
        redis: aioredis.Redis,
        pools: ShardPools,
        ruleset: Ruleset,
        clock: Clock = now_ms,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._names = Names(settings.namespace)
        self._nc = nc
        self._redis = redis
        self._pools = pools
        self._ruleset = ruleset
        self._boards = BoardWriter(redis, nc, self._names)
        self._dead = DeadLetters(nc, self._names)

    async def handle(self, batches: list[PartitionBatch]) -> None:
        """See every message of the batches through; suspect partitions one at a time."""
        started = time.perf_counter()
        items = []
        for batch in batches:
            if not batch.suspect:
                items += [await self._item(msg) for msg in batch.msgs]
        oldest = min((item.action.received_ts_ms for item in items if item.action), default=0)
        if oldest:
            metrics.QUEUE_LAG.observe(max(now_ms() - oldest, 0) / 1000)

        groups: dict[asyncpg.Pool, list[_Item]] = {}
        for item in items:
            if item.action is not None:
                groups.setdefault(self._pools.for_player(item.action.player_id), []).append(item)
        await asyncio.gather(*(self._decide(pool, group) for pool, group in groups.items()))
        await self._settle(items)

        for batch in batches:
            if batch.suspect:
                await self._handle_suspects(batch)
        metrics.BATCH_ACTIONS.observe(sum(len(batch.msgs) for batch in batches))
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)

    async def _item(self, msg: Msg) -> _Item:
        """Parse the message; one no gateway could have sent goes to the dead letters."""
        try:
            action = parse_action(msg.data)
            if msg.subject != self._names.action_subject(action.player_id):
                raise MalformedAction("the subject is not the player's partition")
        except MalformedAction as exc:
            reason = f"malformed: {exc}"
            log.warning("action_malformed", reason=reason, subject=msg.subject)
            await self._retry(lambda: self._dead.send(msg, reason), [msg])
            metrics.DEAD_LETTERS.labels("malformed").inc()
            return _Item(msg, None)
        return _Item(msg, action)

    async def _decide(self, pool: asyncpg.Pool, items: list[_Item]) -> None:
        """Decide a shard's actions in one transaction, or one by one if that fails."""
        attempt = 0
        while True:
            try:
                actions = [item.action for item in items]
                decisions = await decide_batch(pool, self._ruleset, actions, self._clock())
            except TRANSIENT as error:
                attempt += 1
                await self._pause(error, [item.msg for item in items], attempt)
                continue
            except Exception:
                log.exception("batch_failed", actions=len(items))
                for item in items:
                    with _naming(item.action):
                        item.decision = await self._decide_one(pool, item)
                return
            for item, decision in zip(items, decisions, strict=True):
                item.decision = decision
            return

    async def _decide_one(self, pool: asyncpg.Pool, item: _Item) -> Decision | None:
        """Decide one action, dead-lettering it once it has failed max_failures times."""
        failures = attempt = 0
        while True:
            try:
                actions = [item.action]
                [decision] = await decide_batch(pool, self._ruleset, actions, self._clock())
                return decision
            except TRANSIENT as error:
                attempt += 1
                await self._pause(error, [item.msg], attempt)
            except Exception as error:
                failures += 1
                log.exception("action_failed", action_id=item.action.action_id, failures=failures)
                if failures >= self._settings.max_failures:
                    kind = error.kind if isinstance(error, RulesetFailed) else type(error).__name__
                    reason = f"failed {failures} times: {kind}"
                    return await self._give_up(pool, item, reason, "failed")

    async def _handle_suspects(self, batch: PartitionBatch) -> None:
        """One message at a time, each acked before the next, so that only a message that
        keeps killing its worker piles up deliveries."""
        key = self._names.partition_deliveries_key(batch.feed.partition)
        for msg in batch.msgs:
            item = await self._item(msg)
            if item.action is not None:
                with _naming(item.action):
                    pool = self._pools.for_player(item.action.player_id)
                    deliveries = await self._retry(lambda m=msg: self._count(key, m), [msg])
                    if deliveries > self._settings.max_deliveries:
                        reason = f"redelivered {deliveries} times without an answer"
                        item.decision = await self._give_up(pool, item, reason, "redelivered")
                    else:
                        item.decision = await self._decide_one(pool, item)

            await self._settle([item])
            seq = str(msg.metadata.sequence.stream)
            await self._retry(lambda s=seq: self._redis.hdel(key, s), [msg])

    async def _count(self, key: str, msg: Msg) -> int:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, str(msg.metadata.sequence.stream), 1)
            pipe.expire(key, _DELIVERIES_TTL_SECONDS)
            deliveries, _ = await pipe.execute()
        return deliveries

    async def _give_up(
        self, pool: asyncpg.Pool, item: _Item, reason: str, kind: str
    ) -> Decision | None:
        """Answer the action ACTION_FAILED for good, then dead-letter it (counted by `kind`).

        An action found decided already (it applied, and only its settling kept failing) keeps
        its answer and is not dead-lettered: replaying it would apply it twice. The answer is
        recorded before the dead letter is sent, so a crash in between only sends it again on
        the redelivery, where its message id makes JetStream store it once.
        """
        action = item.action
        try:
            decision = await self._retry(lambda: record_failure(pool, self._ruleset, action), [])
        except Exception:
            log.exception("action_failure_not_recorded", action_id=action.action_id)
            decision = None
        if decision is not None and decision.result.error_code != "ACTION_FAILED":
            log.warning("given_up_action_was_decided", action_id=action.action_id)
            return decision

        await self._retry(lambda: self._dead.send(item.msg, reason), [item.msg])
        metrics.DEAD_LETTERS.labels(kind).inc()
        log.error(
            "action_dead_lettered",
            action_id=action.action_id,
            player_id=action.player_id,
            reason=reason,
        )
        return decision

    async def _settle(self, items: list[_Item]) -> None:
        """Show the decided scores, answer each session, then ack every message."""
        scores = {}
        for item in items:
            if item.decision is not None:
                scores.update(item.decision.scores)
        await self._show(scores, [item.msg for item in items])

        for item in items:
            if item.decision is not None:
                subject = self._names.result_subject(item.action.session_key)
                result = item.decision.result.SerializeToString()
                await self._quietly(self._nc.publish(subject, result), "result_not_published")
        for item in items:
            await self._quietly(item.msg.ack(), "ack_failed")
        metrics.count_decisions(item.decision for item in items)

    async def _show(self, scores: dict, msgs: list[Msg]) -> None:
        """Write the totals to Redis, waiting out a lost connection. A write Redis refuses
        (a key of the wrong type, out of memory, a read-only replica) is tried max_failures
        times and then skipped: the decisions are committed, so holding their answers back
        would help nobody, and the view is repaired by the player's next write or a rebuild."""
        failures = 0
        while True:
            try:
                await self._retry(lambda: self._boards.write(scores), msgs)
                return
            except redis.exceptions.RedisError as error:
                failures += 1
                log.error("board_write_refused", error=repr(error), failures=failures)
                if failures >= self._settings.max_failures:
                    return
                await asyncio.sleep(min(0.05 * 2**failures, _MAX_PAUSE_SECONDS))

    async def _retry(self, work: Callable[[], Awaitable], msgs: list[Msg]):
        """Run `work` until it gets past every transient failure."""
        attempt = 0
        while True:
            try:
                return await work()
            except TRANSIENT as error:
                attempt += 1
                await self._pause(error, msgs, attempt)

    async def _pause(self, error: Exception, msgs: list[Msg], attempt: int) -> None:
        """Back off, and tell JetStream the messages in hand are still being worked on.

        A NATS connection the client has closed for good never comes back: that one is raised,
        and fails the worker, whose replacement starts with a new connection.
        """
        if isinstance(error, nats.errors.ConnectionClosedError):
            raise error
        log.warning("store_unavailable", error=repr(error), attempt=attempt)
        await asyncio.sleep(min(0.05 * 2**attempt, _MAX_PAUSE_SECONDS))
        for msg in msgs:
            await self._quietly(msg.in_progress(), "in_progress_failed")

    async def _quietly(self, step: Awaitable, event: str) -> None:
        """A publish or ack that fails leaves its message to be redelivered, which is safe."""
        try:
            await step
        except nats.errors.Error as error:
            log.warning(event, error=repr(error))


def _naming(action: ActionMessage):
    """Name the action and its session in every line logged while it is handled alone."""
    return bound_contextvars(action_id=action.action_id, session_key=action.session_key)

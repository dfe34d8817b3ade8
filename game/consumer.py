"""The JetStream side of a game worker: hold partition leases, pull partitions, apply batches.

Actions are partitioned by player (infra.shards.partition_of_player), and each partition is
pulled by the one worker holding its lease (game.leases), one batch at a time: a partition asks
for more only once its last batch is acked. So one player's actions apply in the order they
were sent, while different partitions, spread over every live worker, proceed in parallel.

Within a worker a fetcher task per held partition hands its batches to a few appliers, and an
applier takes every batch that is ready at once, so under load one transaction per shard
database decides hundreds of actions.
"""

import asyncio
import contextlib
import os
import secrets
import socket
import time
from dataclasses import dataclass

import nats.aio.client
import nats.errors
import redis.asyncio as aioredis
import structlog

from game import metrics
from game.batches import TRANSIENT, BatchHandler, PartitionBatch
from game.config import GameSettings
from game.feed import PartitionFeed
from game.leases import Leases, fair_share
from infra.names import Names
from infra.streams import ensure_actions_stream

log = structlog.get_logger(__name__)

# How often an idle fetcher checks that its consumer still exists.
CONSUMER_CHECK_SECONDS = 10.0
# After a failed pull (NATS restarting, the consumer gone): wait, then set the consumer up again.
_REOPEN_PAUSE_SECONDS = 1.0
# Setting a partition up takes several JetStream round trips; the leases already held are
# renewed after every few, so that taking many never lets them run out.
_TAKES_PER_ROUND = 4
# A fetch is only started while the lease outlasts it by this much.
_LEASE_MARGIN_SECONDS = 0.1
# How often a fetcher whose lease is about to run out looks again.
_LEASE_RECHECK_SECONDS = 0.05


@dataclass
class _Held:
    """A partition this worker holds: its feed, its fetcher, the signal to stop it, and until
    when (monotonic) its lease is surely this worker's: counted from before the request that
    took or renewed it, so never later than Redis's own expiry."""

    feed: PartitionFeed
    halt: asyncio.Event
    valid_until: float
    fetcher: asyncio.Task | None = None


class ActionConsumer:
    """Pulls the actions of one namespace's partitions that this worker holds."""

    def __init__(
        self,
        settings: GameSettings,
        nc: nats.aio.client.Client,
        redis: aioredis.Redis,
        handler: BatchHandler,
    ) -> None:
        self._settings = settings
        self._names = Names(settings.namespace)
        self._js = nc.jetstream()
        worker_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._leases = Leases(redis, self._names, worker_id, settings.lease_seconds)
        self._handler = handler
        self._ready: asyncio.Queue[PartitionBatch | None] = asyncio.Queue()
        self._held: dict[int, _Held] = {}
        self._letting_go: set[asyncio.Task] = set()

    async def open(self) -> None:
        """Create or update the streams (the partition consumers come with their leases)."""
        await ensure_actions_stream(self._js, self._names, replicas=self._settings.stream_replicas)

    async def run(self, stop: asyncio.Event) -> None:
        """Keep a fair share of partitions and apply their actions until `stop` is set; then
        finish every batch in hand, ack it, and give the partitions back."""
        appliers = [asyncio.create_task(self._apply()) for _ in range(self._settings.appliers)]
        try:
            await self._keep_leases(stop, appliers)
        finally:
            try:
                await self._wind_down(appliers)
            except asyncio.CancelledError:
                # Out of time: what is in hand stays unacked for the partitions' next holders.
                for task in [*appliers, *self._letting_go]:
                    task.cancel()
                raise

    async def _wind_down(self, appliers: list[asyncio.Task]) -> None:
        for partition in list(self._held):
            self._let_go(partition, release=True)
        await asyncio.gather(*self._letting_go, return_exceptions=True)
        for _ in appliers:
            self._ready.put_nowait(None)
        await asyncio.gather(*appliers, return_exceptions=True)
        with contextlib.suppress(*TRANSIENT):
            await self._leases.withdraw()

    @property
    def partitions(self) -> list[int]:
        """The partitions this worker holds now."""
        return sorted(self._held)

    async def _keep_leases(self, stop: asyncio.Event, appliers: list[asyncio.Task]) -> None:
        """Renew, take and give back leases every third of a lease time. If renewing keeps
        failing, the partitions are let go before their leases can run out under them."""
        every = self._settings.lease_seconds / 3
        renewed = time.monotonic()
        while not stop.is_set():
            _check_alive([held.fetcher for held in self._held.values()], "a partition fetcher")
            _check_alive(appliers, "an applier")
            try:
                await self._rebalance()
                renewed = time.monotonic()
            except TRANSIENT as error:
                log.warning("leases_not_renewed", error=repr(error))
                if time.monotonic() - renewed > every * 2:
                    for partition in list(self._held):
                        self._let_go(partition, release=False)

            await _wait(stop, every)

    async def _rebalance(self) -> None:
        workers = await self._leases.announce()
        await self._renew()

        share = fair_share(workers)
        for partition in sorted(self._held)[share:]:
            self._let_go(partition, release=True)
        while len(self._held) < share:
            wanted = min(share - len(self._held), _TAKES_PER_ROUND)
            taken = 0
            for partition in (await self._leases.free())[:wanted]:
                asked = time.monotonic()
                if await self._leases.acquire(partition):
                    await self._take(partition, asked + self._settings.lease_seconds)
                    taken += 1
            if not taken:
                return
            await self._renew()

    async def _renew(self) -> None:
        """Extend every held lease; let go of those another worker has taken meanwhile."""
        asked = time.monotonic()
        kept = await self._leases.renew(list(self._held))
        for partition in set(self._held) - kept:
            log.warning("partition_lease_lost", partition=partition)
            self._let_go(partition, release=False)
        for partition in kept & set(self._held):
            self._held[partition].valid_until = asked + self._settings.lease_seconds

    async def _take(self, partition: int, valid_until: float) -> None:
        feed = PartitionFeed(self._js, self._names, partition, self._settings)
        try:
            await feed.open()
        except nats.errors.Error as error:
            log.warning("partition_not_opened", partition=partition, error=repr(error))
            await self._leases.release(partition)
            return

        held = _Held(feed, asyncio.Event(), valid_until)
        held.fetcher = asyncio.create_task(self._fetch(held), name=f"fetch-p{partition:02d}")
        self._held[partition] = held
        log.info("partition_taken", partition=partition)

    def _let_go(self, partition: int, release: bool) -> None:
        """Stop pulling the partition: its batch in hand is finished and acked first, then the
        lease is given back (unless it is lost already)."""
        held = self._held.pop(partition)
        held.halt.set()
        task = asyncio.create_task(self._finish_with(partition, held, release))
        self._letting_go.add(task)
        task.add_done_callback(self._letting_go.discard)

    async def _finish_with(self, partition: int, held: _Held, release: bool) -> None:
        try:
            await asyncio.wait({held.fetcher})
        except asyncio.CancelledError:
            held.fetcher.cancel()
            raise
        try:
            await held.feed.close()
            if release:
                await self._leases.release(partition)
        except TRANSIENT as error:
            log.warning("partition_not_released", partition=partition, error=repr(error))
        # Its next holder reports it from now on.
        metrics.PARTITION_PENDING.remove(partition)
        log.info("partition_let_go", partition=partition)

    async def _fetch(self, held: _Held) -> None:
        """Fetch the partition's next batch once the last one is done, until halted."""
        feed, checked = held.feed, time.monotonic()
        fetch_seconds = self._settings.fetch_timeout_ms / 1000 + _LEASE_MARGIN_SECONDS
        while not held.halt.is_set():
            if time.monotonic() + fetch_seconds > held.valid_until:
                # A stalled renewal: never pull past the lease, or a worker that took the
                # partition over would be pulling from the same consumer at the same time.
                await _wait(held.halt, _LEASE_RECHECK_SECONDS)
                continue
            try:
                msgs = await _unless_halted(held.halt, feed.fetch())
                if not msgs and time.monotonic() - checked > CONSUMER_CHECK_SECONDS:
                    checked = time.monotonic()
                    if not await feed.exists():
                        raise nats.errors.Error("the partition's consumer is gone")
            except nats.errors.ConnectionClosedError:
                raise
            except nats.errors.Error as error:
                log.warning("pull_failed", partition=feed.partition, error=repr(error))
                await self._reopen(held)
                continue

            if msgs:
                metrics.PARTITION_PENDING.labels(feed.partition).set(msgs[-1].metadata.num_pending)
                suspect = any(feed.is_suspect(msg) for msg in msgs)
                batch = PartitionBatch(feed, msgs, suspect)
                self._ready.put_nowait(batch)
                await batch.done.wait()
                if batch.failed:
                    await self._reopen(held)

    async def _reopen(self, held: _Held) -> None:
        """Set the partition's consumer up again, which redelivers what is unacked, in order."""
        await _wait(held.halt, _REOPEN_PAUSE_SECONDS)
        if held.halt.is_set():
            return

        try:
            await held.feed.close()
            await held.feed.open()
        except nats.errors.Error as error:
            log.warning("partition_not_reopened", partition=held.feed.partition, error=repr(error))

    async def _apply(self) -> None:
        """Take every batch that is ready, up to apply_batch_max actions, and see it through."""
        while True:
            batch = await self._ready.get()
            if batch is None:
                return
            batches, size = [batch], len(batch.msgs)
            while size < self._settings.apply_batch_max and not self._ready.empty():
                more = self._ready.get_nowait()
                if more is None:
                    self._ready.put_nowait(None)
                    break
                batches.append(more)
                size += len(more.msgs)

            try:
                await self._handler.handle(batches)
            except nats.errors.ConnectionClosedError:
                raise
            except Exception:
                log.exception("batch_not_handled", messages=size)
                for each in batches:
                    each.failed = True
            finally:
                for each in batches:
                    each.done.set()


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Sleep for `seconds`, or less if the event is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


def _check_alive(tasks: list[asyncio.Task], what: str) -> None:
    """Fetchers and appliers end on their own only by failing, which fails the worker."""
    for task in tasks:
        if task.done():
            raise RuntimeError(f"{what} stopped") from task.exception()


async def _unless_halted(halt: asyncio.Event, fetch) -> list:
    """The fetch's messages, or none if the partition is halted first (the fetch is cancelled;
    what it may still be handed stays unacked for the partition's next holder)."""
    fetching = asyncio.ensure_future(fetch)
    halted = asyncio.ensure_future(halt.wait())
    await asyncio.wait({fetching, halted}, return_when=asyncio.FIRST_COMPLETED)
    halted.cancel()
    if fetching.done():
        return fetching.result()

    fetching.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await fetching
    return []

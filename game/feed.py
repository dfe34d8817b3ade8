"""One action partition's durable pull consumer, as the worker holding its lease sees it.

JetStream hands a consumer's new messages out before the unacked ones it redelivers, so a
worker taking over a partition whose previous holder died with messages in hand would apply
that player's later actions before the earlier ones. So a new holder that finds messages
delivered and not acked (or pull requests still waiting) recreates the consumer: the stream is
a work queue, which keeps every unacked message, and a new consumer starts again from the
oldest of them, in order. Those messages may have been half handled before, so they are
suspects: the worker handles them one at a time and counts their deliveries, and one that keeps
killing workers ends in the dead letters instead of stalling the partition for good.
"""

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, ConsumerInfo, DeliverPolicy
from nats.js.errors import NotFoundError

from game.config import GameSettings
from infra.names import Names

log = structlog.get_logger(__name__)


class PartitionFeed:
    """Fetches the messages of one partition, in stream order."""

    def __init__(
        self, js: JetStreamContext, names: Names, partition: int, settings: GameSettings
    ) -> None:
        self.partition = partition
        self._js = js
        self._names = names
        self._settings = settings
        self._stream = names.actions_stream
        self._durable = names.partition_consumer(partition)
        self._sub = None
        # Messages up to this stream sequence were delivered to an earlier holder.
        self._suspect_upto = 0

    async def open(self) -> None:
        """Bind to the consumer, creating it, or recreating it if it has messages in flight."""
        info = await self._info()
        if info is not None and (info.num_ack_pending or info.num_waiting):
            self._suspect_upto = max(self._suspect_upto, info.delivered.stream_seq)
            log.info(
                "partition_consumer_recreated",
                partition=self.partition,
                in_flight=info.num_ack_pending,
                suspect_upto=self._suspect_upto,
            )
            await self._js.delete_consumer(self._stream, self._durable)

        await self._js.add_consumer(self._stream, self._config())
        self._sub = await self._js.pull_subscribe_bind(durable=self._durable, stream=self._stream)

    async def fetch(self) -> list[Msg]:
        """The next messages, waiting up to the fetch timeout; none if there were none."""
        try:
            return await self._sub.fetch(
                self._settings.fetch_batch, timeout=self._settings.fetch_timeout_ms / 1000
            )
        except TimeoutError:
            # nats-py raises its own TimeoutError or asyncio's, depending on where the wait
            # ended; both subclass the builtin and both just mean "no messages this time".
            return []

    async def exists(self) -> bool:
        """Whether the consumer is still there: fetching from a deleted one only times out,
        exactly as fetching from an empty partition does."""
        return await self._info() is not None

    def is_suspect(self, msg: Msg) -> bool:
        """Whether the message may have been handled, in part, by an earlier delivery."""
        metadata = msg.metadata
        return metadata.num_delivered > 1 or metadata.sequence.stream <= self._suspect_upto

    async def close(self) -> None:
        """Unsubscribe. Messages a cancelled fetch left in flight stay unacked on the server,
        and whoever holds the partition next recreates the consumer for them."""
        sub, self._sub = self._sub, None
        if sub is not None:
            await sub.unsubscribe()

    async def _info(self) -> ConsumerInfo | None:
        try:
            return await self._js.consumer_info(self._stream, self._durable)
        except NotFoundError:
            return None

    def _config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self._durable,
            filter_subject=self._names.partition_subjects(self.partition),
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=float(self._settings.ack_wait_seconds),
            # JetStream stops delivering a message silently at this limit, which would leave
            # its action unanswered for good; the worker counts deliveries and dead-letters.
            max_deliver=-1,
            # One batch is in flight per partition; the margin covers what a fetch that was
            # cancelled may still have been handed.
            max_ack_pending=self._settings.fetch_batch * 2,
        )

"""The JetStream stream that carries actions from gateways to game workers."""

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from infra.names import Names

# Long enough to cover a client's retries after a dropped socket; the database dedupes beyond.
DUPLICATE_WINDOW_SECONDS = 120.0


async def ensure_actions_stream(
    js: JetStreamContext, names: Names, duplicate_window: float = DUPLICATE_WINDOW_SECONDS
) -> None:
    """Create the actions stream, or bring an existing one to this configuration."""
    config = StreamConfig(
        name=names.actions_stream,
        subjects=[names.actions_subjects],
        # Work queue: a message is gone once a worker acks it, so the stream stays small.
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        discard=DiscardPolicy.NEW,
        duplicate_window=duplicate_window,
    )
    try:
        await js.stream_info(names.actions_stream)
    except NotFoundError:
        await js.add_stream(config)
        return
    await js.update_stream(config)

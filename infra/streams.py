"""The JetStream streams of actions: the one gateways publish to, and its dead letters.

Both are file-backed. Actions are a work queue: a message is gone once a worker has applied
(or refused) it and acked it, so the stream holds only what is still to be done. When it is
full, publishing fails (discard new) and the gateway tells the player to retry, instead of the
oldest unapplied actions being thrown away.
"""

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from infra.names import Names

# Long enough to cover a client's retries after a dropped socket; the database dedupes beyond.
DUPLICATE_WINDOW_SECONDS = 120.0

# A backlog this large means the workers are down or far behind: refuse more rather than grow.
MAX_ACTIONS_BYTES = 1024**3

# Dead letters wait this long for someone to look at them and replay or discard them.
DEAD_LETTER_MAX_AGE_SECONDS = 14 * 86400.0


async def ensure_actions_stream(
    js: JetStreamContext,
    names: Names,
    duplicate_window: float = DUPLICATE_WINDOW_SECONDS,
    replicas: int = 1,
) -> None:
    """Create the actions stream and its dead letters, or bring them to this configuration.

    `replicas` is how many servers of a NATS cluster keep each stream; it is set on every
    start, so it must be the deployment's (PODIUM_STREAM_REPLICAS), or a stream an operator
    replicated by hand would be scaled back down.
    """
    await _ensure(
        js,
        StreamConfig(
            name=names.actions_stream,
            subjects=names.actions_subjects,
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            discard=DiscardPolicy.NEW,
            max_bytes=MAX_ACTIONS_BYTES,
            duplicate_window=duplicate_window,
            num_replicas=replicas,
        ),
    )
    await _ensure(
        js,
        StreamConfig(
            name=names.dead_letters_stream,
            subjects=[names.dead_letters_subject],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=DEAD_LETTER_MAX_AGE_SECONDS,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
            num_replicas=replicas,
        ),
    )


async def _ensure(js: JetStreamContext, config: StreamConfig) -> None:
    try:
        await js.stream_info(config.name)
    except NotFoundError:
        await js.add_stream(config)
        return
    await js.update_stream(config)

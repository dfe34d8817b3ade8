"""Actions a worker gave up on, kept in a stream of their own with the reason, for a person.

The original message goes in unchanged, so it can be read, fixed and replayed. It keeps its
message id there (the player and action id the gateway gave it), so the retries that can follow
a crash between the dead letter and the ack store it once; the ACTION_FAILED answer recorded in
Postgres covers later repeats of the action id.
"""

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from infra.names import Names

REASON_HEADER = "Podium-Reason"
SUBJECT_HEADER = "Podium-Subject"
SEQUENCE_HEADER = "Podium-Stream-Sequence"
# Set, to the original size in bytes, on a dead letter cut short to fit a NATS message.
TRUNCATED_HEADER = "Podium-Truncated-From"

# Room left for the headers: NATS refuses a message whose payload and headers together exceed
# its max_payload, and nats-py answers that by closing the connection for good.
_HEADER_ROOM = 4096

# Reasons are log-sized, not payload-sized.
_MAX_REASON_CHARS = 200


class DeadLetters:
    """Publishes given-up actions to the namespace's dead-letter subject."""

    def __init__(self, nc: NATS, names: Names) -> None:
        self._nc = nc
        self._js = nc.jetstream()
        self._names = names

    async def send(self, msg: Msg, reason: str) -> None:
        """Store the message with why it was given up; returns once JetStream has it."""
        sequence = str(msg.metadata.sequence.stream)
        original_id = (msg.headers or {}).get("Nats-Msg-Id") or f"seq:{sequence}"
        headers = {
            "Nats-Msg-Id": original_id[:_MAX_REASON_CHARS],
            REASON_HEADER: reason[:_MAX_REASON_CHARS],
            SUBJECT_HEADER: msg.subject,
            SEQUENCE_HEADER: sequence,
        }
        data = msg.data
        room = self._nc.max_payload - _HEADER_ROOM
        if len(data) > room:
            headers[TRUNCATED_HEADER] = str(len(data))
            data = data[:room]
        await self._js.publish(self._names.dead_letters_subject, data, headers=headers)

"""Actions a worker gave up on, kept in a stream of their own with the reason, for a person.

The original message goes in unchanged, so it can be read, fixed and replayed. It keeps its
message id there (the player and action id the gateway gave it), so the retries that can follow
a crash between the dead letter and the ack store it once; the ACTION_FAILED answer recorded in
Postgres covers later repeats of the action id.
"""

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from infra.names import Names

REASON_HEADER = "Podium-Reason"
SUBJECT_HEADER = "Podium-Subject"
SEQUENCE_HEADER = "Podium-Stream-Sequence"

# Reasons are log-sized, not payload-sized.
_MAX_REASON_CHARS = 200


class DeadLetters:
    """Publishes given-up actions to the namespace's dead-letter subject."""

    def __init__(self, js: JetStreamContext, names: Names) -> None:
        self._js = js
        self._names = names

    async def send(self, msg: Msg, reason: str) -> None:
        """Store the message with why it was given up; returns once JetStream has it."""
        sequence = str(msg.metadata.sequence.stream)
        original_id = (msg.headers or {}).get("Nats-Msg-Id") or f"seq:{sequence}"
        headers = {
            "Nats-Msg-Id": original_id,
            REASON_HEADER: reason[:_MAX_REASON_CHARS],
            SUBJECT_HEADER: msg.subject,
            SEQUENCE_HEADER: sequence,
        }
        await self._js.publish(self._names.dead_letters_subject, msg.data, headers=headers)

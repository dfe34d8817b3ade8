"""Every NATS subject, JetStream stream and Redis key Podium uses, under one namespace.

A namespace lets tests (or two studios) share one NATS and one Redis without seeing each
other's data.
"""

from dataclasses import dataclass

from infra.shards import ACTION_PARTITIONS, partition_of_player


@dataclass(frozen=True)
class Names:
    """Names derived from a namespace such as "podium"."""

    namespace: str

    @property
    def actions_stream(self) -> str:
        return f"{self.namespace.upper()}_ACTIONS"

    @property
    def actions_subjects(self) -> list[str]:
        """Exactly the partitions' subjects: the stream refuses a message no worker would pull."""
        return [self.partition_subjects(p) for p in range(ACTION_PARTITIONS)]

    def action_subject(self, player_id: str) -> str:
        """Actions of a player go to its partition: <ns>.actions.<partition>.<player>."""
        return f"{self.namespace}.actions.{partition_of_player(player_id):02d}.{player_id}"

    def partition_subjects(self, partition: int) -> str:
        return f"{self.namespace}.actions.{partition:02d}.*"

    def partition_consumer(self, partition: int) -> str:
        """The durable consumer of one partition, pulled by the worker holding its lease."""
        return f"{self.namespace}_game_p{partition:02d}"

    @property
    def dead_letters_stream(self) -> str:
        return f"{self.namespace.upper()}_DEAD_ACTIONS"

    @property
    def dead_letters_subject(self) -> str:
        return f"{self.namespace}.dead.actions"

    def action_msg_id(self, player_id: str, action_id: str) -> str:
        """JetStream dedup id: action ids are unique per player, so the player is part of it."""
        return f"{player_id}:{action_id}"

    def result_subject(self, session_key: str) -> str:
        return f"{self.namespace}.results.{session_key}"

    @property
    def board_changes_subject(self) -> str:
        return f"{self.namespace}.boards.changed"

    def board_key(self, board: str, period: str) -> str:
        return f"{self.namespace}:board:{board}:{period}"

    def board_seq_key(self, board: str) -> str:
        return f"{self.namespace}:board:{board}:seq"

    @property
    def usernames_key(self) -> str:
        return f"{self.namespace}:usernames"

    def session_key(self, session_key: str) -> str:
        # The braces are a Redis Cluster hash tag: a session's keys share one slot, so the
        # refresh script may touch them together.
        return f"{self.namespace}:session:{{{session_key}}}"

    def spent_refresh_key(self, session_key: str) -> str:
        return f"{self.namespace}:session:{{{session_key}}}:spent"

    @property
    def sessions_ended_subject(self) -> str:
        return f"{self.namespace}.sessions.ended"

    def ticket_key(self, digest: str) -> str:
        return f"{self.namespace}:ticket:{digest}"

    def tickets_issued_key(self, session_key: str) -> str:
        return f"{self.namespace}:tickets_issued:{session_key}"

    def player_sessions_key(self, player_id: str) -> str:
        return f"{self.namespace}:player_sessions:{player_id}"

    def login_failures_key(self, kind: str, subject: str) -> str:
        return f"{self.namespace}:login_failures:{kind}:{subject}"

    def login_lock_key(self, kind: str, subject: str) -> str:
        return f"{self.namespace}:login_lock:{kind}:{subject}"

    @property
    def game_workers_key(self) -> str:
        return f"{self.namespace}:game:workers"

    def partition_lease_key(self, partition: int) -> str:
        return f"{self.namespace}:game:lease:{partition:02d}"

    def partition_deliveries_key(self, partition: int) -> str:
        return f"{self.namespace}:game:deliveries:{partition:02d}"

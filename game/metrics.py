"""A game worker's Prometheus metrics: what it decided, how fast, and how far behind it is.

They are updated once per batch, with counts, never once per action: a batch holds hundreds.
"""

import collections
from collections.abc import Iterable

from podium.game.v1 import game_pb2
from prometheus_client import Counter, Gauge, Histogram

from infra.metrics import LATENCY_BUCKETS

ACTIONS = Counter(
    "podium_game_actions",
    "Actions decided: applied, mismatch (stale state hash), rejected (by the rules), failed "
    "(ACTION_FAILED, given up) or repeated (decided before; the first answer is sent again).",
    ["status"],
)
_BY_STATUS = {
    game_pb2.ACTION_STATUS_APPLIED: ACTIONS.labels("applied"),
    game_pb2.ACTION_STATUS_MISMATCH: ACTIONS.labels("mismatch"),
    game_pb2.ACTION_STATUS_REJECTED: ACTIONS.labels("rejected"),
}
_FAILED = ACTIONS.labels("failed")
_REPEATED = ACTIONS.labels("repeated")
# The error code game.apply.record_failure answers an action the worker gave up on with.
_FAILED_CODE = "ACTION_FAILED"

BATCH_ACTIONS = Histogram(
    "podium_game_batch_actions",
    "Messages seen through together (decided, shown, answered and acked) in one batch.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096),
)
BATCH_SECONDS = Histogram(
    "podium_game_batch_seconds",
    "Time to see one batch through, from decision to ack.",
    buckets=LATENCY_BUCKETS,
)
QUEUE_LAG = Histogram(
    "podium_game_queue_lag_seconds",
    "Age of the oldest action of each batch when the worker took it up: how long actions "
    "wait in JetStream (measured from the gateway's clock).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
PARTITION_PENDING = Gauge(
    "podium_game_partition_pending",
    "Actions waiting in a partition behind the last one this worker fetched; reported by the "
    "worker holding the partition.",
    ["partition"],
)
DEAD_LETTERS = Counter(
    "podium_game_dead_letters",
    "Actions given up on and stored in the dead letters: malformed, failed (the ruleset or a "
    "store kept failing on it) or redelivered (it kept ending its workers).",
    ["reason"],
)


def count_decisions(decisions: Iterable) -> None:
    """Count a batch's decisions (game.apply.Decision, None for an undecided message)."""
    counts = collections.Counter(_kind(d) for d in decisions if d is not None)
    for kind, count in counts.items():
        kind.inc(count)


def _kind(decision):
    result = decision.result
    if decision.duplicate:
        return _REPEATED
    if result.status == game_pb2.ACTION_STATUS_REJECTED and result.error_code == _FAILED_CODE:
        return _FAILED
    return _BY_STATUS[result.status]

"""How fast each player may send actions through this gateway: a token bucket per player.

Every action costs a worker a transaction, so a player who floods is told to wait, with a hint
of how long, instead of filling the queue for everyone. The buckets live in this process, so a
player holding sockets on two gateways gets each gateway's allowance.
"""

import time

# Buckets left full for this long are forgotten; a full bucket and no bucket are the same.
_PRUNE_EVERY_SECONDS = 30.0


class ActionRates:
    """Token buckets by player id: `rate` actions a second, bursts of up to `burst`."""

    def __init__(self, rate: float, burst: int, clock=time.monotonic) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        # player id -> (tokens, when they were counted)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._pruned_at = clock()

    def take(self, player_id: str) -> float:
        """Spend one action's token; 0.0 when granted, else the seconds until one is there."""
        now = self._clock()
        tokens, counted = self._buckets.get(player_id, (self._burst, now))
        tokens = min(self._burst, tokens + (now - counted) * self._rate)
        self._prune(now)

        if tokens < 1.0:
            self._buckets[player_id] = (tokens, now)
            return (1.0 - tokens) / self._rate
        self._buckets[player_id] = (tokens - 1.0, now)
        return 0.0

    def give_back(self, player_id: str) -> None:
        """Return the token of an action that was granted but could not be queued."""
        tokens, counted = self._buckets.get(player_id, (self._burst, self._clock()))
        self._buckets[player_id] = (min(self._burst, tokens + 1.0), counted)

    def __len__(self) -> int:
        return len(self._buckets)

    def _prune(self, now: float) -> None:
        if now - self._pruned_at < _PRUNE_EVERY_SECONDS:
            return
        self._pruned_at = now
        refill = self._burst / self._rate
        self._buckets = {
            player: (tokens, counted)
            for player, (tokens, counted) in self._buckets.items()
            if now - counted < refill
        }

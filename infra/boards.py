"""The boards of the default game and the period an instant falls in.

Both game workers (which stamp each action with its period) and ranking (which reads the
current period) use this one definition, so they cannot disagree on a period key.
"""

import functools
from dataclasses import dataclass
from datetime import date, timedelta

ALL_TIME = "all"


@dataclass(frozen=True)
class Board:
    """A leaderboard: highest score first, reset never or every UTC day."""

    id: str
    reset: str

    def period_at(self, ts_ms: int) -> str:
        """Period key for an instant: "all" for all-time boards, "YYYY-MM-DD" for daily ones."""
        if self.reset == "never":
            return ALL_TIME
        return _utc_day(ts_ms // _DAY_MS)


_DAY_MS = 86_400_000
_EPOCH = date(1970, 1, 1)


@functools.lru_cache(maxsize=256)
def _utc_day(days_since_epoch: int) -> str:
    """A UTC date as "YYYY-MM-DD"; cached, since workers ask for the same few days all day."""
    return (_EPOCH + timedelta(days=days_since_epoch)).isoformat()


BOARDS: dict[str, Board] = {
    "global": Board("global", "never"),
    "daily": Board("daily", "daily"),
}

"""The boards of the default game and the period an instant falls in.

Both game workers (which stamp each action with its period) and ranking (which reads the
current period) use this one definition, so they cannot disagree on a period key.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

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
        return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%d")


BOARDS: dict[str, Board] = {
    "global": Board("global", "never"),
    "daily": Board("daily", "daily"),
}

"""The board views one socket watches, each named by (board, view), up to a cap.

Each subscription costs the gateway a share of every refresh of its board, so a socket may hold
only a few; subscribing again to a view it holds replaces it and costs nothing more.
"""

from gateway.frames import FrameError, SubscribeFrame
from gateway.views import ViewSpec

MAX_SUBSCRIPTIONS = 16

Key = tuple[str, str]


def spec_of(frame: SubscribeFrame, player_id: str) -> ViewSpec:
    """What a subscribe frame asks to watch; `around` is always around the socket's player."""
    if frame.view == "around":
        return ViewSpec("around", player_id=player_id, radius=frame.radius, rows=frame.rows)
    if frame.view == "players":
        return ViewSpec("players", players=frame.players)
    return ViewSpec("top", limit=frame.limit)


class Subscriptions:
    """The (board, view) keys of one socket."""

    _keys: set[Key]

    def __init__(self, cap: int = MAX_SUBSCRIPTIONS) -> None:
        self._keys = set()
        self._cap = cap

    def add(self, frame: SubscribeFrame) -> Key:
        """Take the frame's key, or refuse it with TOO_MANY_SUBSCRIPTIONS."""
        key = (frame.board, frame.view)
        if key not in self._keys and len(self._keys) >= self._cap:
            raise FrameError(
                "TOO_MANY_SUBSCRIPTIONS",
                f"a socket may watch {self._cap} board views; unsubscribe one first",
                frame.frame_id,
                violation=False,
            )
        self._keys.add(key)
        return key

    def remove(self, board: str, view: str | None = None) -> list[Key]:
        """Drop one view of a board, or all of them; returns the keys dropped."""
        gone = [key for key in self._keys if key[0] == board and view in (None, key[1])]
        self._keys.difference_update(gone)
        return gone

    def boards(self) -> set[str]:
        return {board for board, _ in self._keys}

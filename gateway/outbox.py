"""What waits to be written to one socket.

Results and replies queue in order, up to a bound; board frames do not queue at all: each
(board, view) keeps only its latest frame, since a newer view makes an older one worthless. So
a slow reader costs a bounded amount of memory and never holds up anyone else's broadcast.

One exception: a frame the client must see as such (a snapshot, which tells it the board
reset, or the answer to its subscribe, which echoes the subscribe's id) is never replaced. When
a newer frame of the same view arrives first, the kept one moves to the ordered queue, so the
client gets both, in order.
"""

import asyncio
from collections import deque

from gateway.wire import Frame

MAX_QUEUED_FRAMES = 256
# Board entries across the queued frames: kept snapshots of big views queue too, and a client
# that resubscribes without reading must not make the queue hold megabytes.
MAX_QUEUED_ENTRIES = 2000

Key = tuple[str, str]


class Outbox:
    """Frames for one socket, drained by that socket's writer task."""

    _frames: deque[Frame]
    # (board, view) -> (frame, keep)
    _boards: dict[Key, tuple[Frame, bool]]
    _wake: asyncio.Event

    def __init__(
        self, max_frames: int = MAX_QUEUED_FRAMES, max_entries: int = MAX_QUEUED_ENTRIES
    ) -> None:
        self._frames = deque()
        self._boards = {}
        self._wake = asyncio.Event()
        self._max_frames = max_frames
        self._max_entries = max_entries
        self._entries = 0

    @property
    def waiting(self) -> bool:
        """Whether any frame waits to be taken."""
        return bool(self._frames or self._boards)

    def put(self, frame: Frame) -> bool:
        """Queue a frame; False when the queue is full and the reader is too slow to keep."""
        entries = len(frame.body.get("entries", ()))
        if len(self._frames) >= self._max_frames or self._entries + entries > self._max_entries:
            return False
        self._entries += entries
        self._frames.append(frame)
        self._wake.set()
        return True

    def put_board(self, key: Key, frame: Frame, keep: bool = False) -> bool:
        """Replace whatever frame of this view was still waiting, unless that one is kept.

        False when a kept frame had to be queued and the queue is full.
        """
        pending = self._boards.get(key)
        queued = pending is None or not pending[1] or self.put(pending[0])
        self._boards[key] = (frame, keep)
        self._wake.set()
        return queued

    def drop_board(self, key: Key) -> None:
        self._boards.pop(key, None)

    async def take(self) -> list[Frame]:
        """Wait for frames, then hand over all of them: queued ones first, then board views."""
        await self._wake.wait()
        self._wake.clear()

        frames = list(self._frames)
        self._frames.clear()
        self._entries = 0
        frames.extend(frame for frame, _ in self._boards.values())
        self._boards.clear()
        return frames

"""What waits to be written to one socket.

Results and replies queue in order, up to a bound; board frames do not queue at all: each
board keeps only its latest frame, since a newer view makes an older one worthless. So a slow
reader costs a bounded amount of memory and never holds up anyone else's broadcast.
"""

import asyncio
from collections import deque

MAX_QUEUED_FRAMES = 256


class Outbox:
    """Frames for one socket, drained by that socket's writer task."""

    _frames: deque[str]
    _boards: dict[str, str]
    _wake: asyncio.Event

    def __init__(self, max_frames: int = MAX_QUEUED_FRAMES) -> None:
        self._frames = deque()
        self._boards = {}
        self._wake = asyncio.Event()
        self._max_frames = max_frames

    def put(self, frame: str) -> bool:
        """Queue a frame; False when the queue is full and the reader is too slow to keep."""
        if len(self._frames) >= self._max_frames:
            return False
        self._frames.append(frame)
        self._wake.set()
        return True

    def put_board(self, board: str, frame: str) -> None:
        """Replace whatever board frame was still waiting for this board."""
        self._boards[board] = frame
        self._wake.set()

    def drop_board(self, board: str) -> None:
        self._boards.pop(board, None)

    async def take(self) -> list[str]:
        """Wait for frames, then hand over all of them: queued ones first, then board views."""
        await self._wake.wait()
        self._wake.clear()

        frames = list(self._frames)
        self._frames.clear()
        frames.extend(self._boards.values())
        self._boards.clear()
        return frames

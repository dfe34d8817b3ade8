"""One ranking stream per board, shared by every socket on this gateway that watches it.

Each stream message is encoded once per distinct `limit` and handed to each subscriber's
outbox without awaiting it, so a broadcast costs the same whether a reader is fast or stuck.
"""

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
import orjson
import structlog

from gateway.clients import Clients

log = structlog.get_logger(__name__)

RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)

# Called with (board, frame text); the subscriber decides where the frame goes.
Deliver = Callable[[str, str], None]


def board_frame(view, limit: int, snapshot: bool, frame_id: Any = None) -> str:
    """Encode a ranking view (WatchBoardResponse) as a protocol `board` frame."""
    frame = {
        "type": "board",
        "board": view.board,
        "period": view.period,
        "seq": view.seq,
        "snapshot": snapshot,
        "entries": [
            {
                "rank": entry.rank,
                "player_id": entry.player_id,
                "username": entry.username,
                "score": entry.score,
            }
            for entry in view.entries[:limit]
        ],
    }
    if frame_id is not None:
        frame["id"] = frame_id
    return orjson.dumps(frame).decode()


class BoardFeed:
    """Follows one board's WatchBoard stream and fans each view out to its subscribers."""

    def __init__(self, board: str, clients: Clients, view_size: int) -> None:
        self.board = board
        self._clients = clients
        self._view_size = view_size
        self._subscribers: dict[Deliver, int] = {}
        # Subscribers that joined before the first view arrived, with the id to echo.
        self._awaiting: dict[Deliver, Any] = {}
        self._latest = None
        self._task = asyncio.create_task(self._follow(), name=f"board-feed-{board}")

    @property
    def empty(self) -> bool:
        return not self._subscribers

    def add(self, deliver: Deliver, limit: int, frame_id: Any) -> str | None:
        """Subscribe; returns the snapshot frame at once when a view is already known."""
        self._subscribers[deliver] = limit
        if self._latest is None:
            self._awaiting[deliver] = frame_id
            return None
        return board_frame(self._latest, limit, snapshot=True, frame_id=frame_id)

    def remove(self, deliver: Deliver) -> None:
        self._subscribers.pop(deliver, None)
        self._awaiting.pop(deliver, None)

    async def close(self) -> None:
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    async def _follow(self) -> None:
        """Keep a stream open for as long as the feed lives, reconnecting after failures."""
        failures = 0
        while True:
            try:
                async for view in self._clients.watch_board(self.board, self._view_size):
                    failures = 0
                    self._publish(view)
                log.info("board_stream_ended", board=self.board)
            except grpc.aio.AioRpcError as error:
                log.warning("board_stream_failed", board=self.board, code=error.code().name)
            delay = RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)]
            failures += 1
            await asyncio.sleep(delay)

    def _publish(self, view) -> None:
        self._latest = view
        encoded: dict[tuple[int, bool], str] = {}
        awaiting, self._awaiting = self._awaiting, {}

        for deliver, limit in list(self._subscribers.items()):
            if deliver in awaiting:
                frame = board_frame(view, limit, snapshot=True, frame_id=awaiting[deliver])
            else:
                key = (limit, view.snapshot)
                if key not in encoded:
                    encoded[key] = board_frame(view, limit, view.snapshot)
                frame = encoded[key]
            deliver(self.board, frame)


class Fanout:
    """The board feeds of this gateway, opened on first subscriber and closed on the last."""

    def __init__(self, clients: Clients, view_size: int) -> None:
        self._clients = clients
        self._view_size = view_size
        self._feeds: dict[str, BoardFeed] = {}

    def subscribe(self, board: str, deliver: Deliver, limit: int, frame_id: Any) -> str | None:
        feed = self._feeds.get(board)
        if feed is None:
            feed = self._feeds[board] = BoardFeed(board, self._clients, self._view_size)
        return feed.add(deliver, limit, frame_id)

    async def unsubscribe(self, board: str, deliver: Deliver) -> None:
        feed = self._feeds.get(board)
        if feed is None:
            return
        feed.remove(deliver)
        if feed.empty:
            del self._feeds[board]
            await feed.close()

    async def close(self) -> None:
        for feed in self._feeds.values():
            await feed.close()
        self._feeds.clear()

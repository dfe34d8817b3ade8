"""One ranking stream per board, shared by every socket on this gateway that watches it.

Each stream message is the board's complete top view: it is built once per distinct `limit`,
encoded at most once per encoding (gateway.wire), and handed to each top subscriber's outbox
without awaiting it, so a broadcast costs the same whether a reader is fast or stuck. The same
message tells the board's around and players views (gateway.watched_views) that the board
changed.
"""

import asyncio
import contextvars
from typing import Any

import grpc
import structlog

from gateway import metrics
from gateway.clients import Clients
from gateway.views import Deliver, Resume, ViewSpec, board_frame
from gateway.watched_views import RETRY_DELAYS, WatchedViews
from gateway.wire import Frame

log = structlog.get_logger(__name__)


def top_frame(view, limit: int, snapshot: bool, frame_id: Any = None) -> Frame:
    """A ranking top view (WatchBoardResponse) cut to `limit` as a `board` frame."""
    entries = view.entries[:limit]
    body = board_frame(view.board, "top", view.period, view.seq, snapshot, entries, frame_id)
    return Frame(body)


def _snapshot(resume: Resume | None, view) -> bool:
    return resume is None or not resume.unchanged(view.seq, view.period)


class BoardFeed:
    """Follows one board's WatchBoard stream and fans each view out to its subscribers."""

    def __init__(self, board: str, clients: Clients, view_size: int) -> None:
        self.board = board
        self._clients = clients
        self._view_size = view_size
        self._top: dict[Deliver, int] = {}
        # Top subscribers that joined before the first view arrived: the id to echo, and the
        # frame they saw before reconnecting.
        self._awaiting: dict[Deliver, tuple[Any, Resume | None]] = {}
        self._latest = None
        self._views = WatchedViews(board, clients)
        self._subscriptions = metrics.BOARD_SUBSCRIPTIONS.labels(board)
        self._counted = 0
        # In a context of its own: the socket that opened the feed is only its first
        # subscriber, and its session must not be named in what the feed logs.
        self._task = asyncio.create_task(
            self._follow(), name=f"board-feed-{board}", context=contextvars.Context()
        )

    @property
    def empty(self) -> bool:
        return not self._top and self._views.empty

    def add(
        self, deliver: Deliver, spec: ViewSpec, frame_id: Any, resume: Resume | None
    ) -> Frame | None:
        """Subscribe; returns the answer at once when it is a top view already known."""
        if spec.view != "top":
            self._views.add(deliver, spec, frame_id, resume)
            self._recount()
            return None

        self._top[deliver] = spec.limit
        self._recount()
        if self._latest is None:
            self._awaiting[deliver] = (frame_id, resume)
            return None
        return top_frame(self._latest, spec.limit, _snapshot(resume, self._latest), frame_id)

    def remove(self, deliver: Deliver, view: str | None = None) -> None:
        """Unsubscribe from one view, or from every view of the board."""
        if view in (None, "top"):
            self._top.pop(deliver, None)
            self._awaiting.pop(deliver, None)
        if view != "top":
            self._views.remove(deliver, view)
        self._recount()

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._views.close()
        self._subscriptions.dec(self._counted)
        self._counted = 0

    def _recount(self) -> None:
        """Move the board's gauge by this feed's change: gateways sharing a process (in
        tests) each add their own subscriptions to it."""
        count = len(self._top) + len(self._views)
        self._subscriptions.inc(count - self._counted)
        self._counted = count

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
                metrics.BOARD_STREAM_FAILURES.inc()
            delay = RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)]
            failures += 1
            await asyncio.sleep(delay)

    def _publish(self, view) -> None:
        self._latest = view
        self._views.board_changed(view.seq, view.period)
        key = (self.board, "top")
        encoded: dict[int, Frame] = {}
        awaiting, self._awaiting = self._awaiting, {}

        for deliver, limit in list(self._top.items()):
            if deliver in awaiting:
                frame_id, resume = awaiting[deliver]
                deliver(key, top_frame(view, limit, _snapshot(resume, view), frame_id), True)
                continue
            if limit not in encoded:
                encoded[limit] = top_frame(view, limit, view.snapshot)
            deliver(key, encoded[limit], view.snapshot)


class Fanout:
    """The board feeds of this gateway, opened on first subscriber and closed on the last."""

    def __init__(self, clients: Clients, view_size: int) -> None:
        self._clients = clients
        self._view_size = view_size
        self._feeds: dict[str, BoardFeed] = {}

    def subscribe(
        self,
        board: str,
        deliver: Deliver,
        spec: ViewSpec,
        frame_id: Any,
        resume: Resume | None = None,
    ) -> Frame | None:
        feed = self._feeds.get(board)
        if feed is None:
            feed = self._feeds[board] = BoardFeed(board, self._clients, self._view_size)
        return feed.add(deliver, spec, frame_id, resume)

    async def unsubscribe(self, board: str, deliver: Deliver, view: str | None = None) -> None:
        feed = self._feeds.get(board)
        if feed is None:
            return
        feed.remove(deliver, view)
        if feed.empty:
            del self._feeds[board]
            await feed.close()

    async def close(self) -> None:
        for feed in self._feeds.values():
            await feed.close()
        self._feeds.clear()

"""The around and players views that this gateway's sockets watch of one board.

When the board's stream reports a change, every watched view is read again with one GetViews
call (not one per socket), each distinct view is encoded once, and the frames go to the
subscribers' outboxes without waiting on any socket. Reads coalesce: changes that arrive while
a read is in flight only mark the views stale, and the next read takes them all. A new
subscriber alone is answered by a read of the views still unanswered, not of every view.
"""

import asyncio
import contextvars
from dataclasses import dataclass
from typing import Any

import structlog

from gateway.clients import Clients
from gateway.views import Deliver, Resume, ViewSpec, board_frame
from gateway.wire import Frame
from infra.errors import PodiumError

log = structlog.get_logger(__name__)

# Ranking reads at most this many views in one GetViews.
MAX_VIEWS_PER_CALL = 1000
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)


@dataclass(eq=False)
class _Watch:
    """One socket's subscription to one view, and what it has been sent."""

    deliver: Deliver
    spec: ViewSpec
    frame_id: Any
    resume: Resume | None
    # Period and seq of the last frame sent; period is None until the subscribe is answered.
    period: str | None = None
    seq: int = -1


class WatchedViews:
    """Keeps every around and players view of one board fresh for its subscribers."""

    def __init__(self, board: str, clients: Clients) -> None:
        self.board = board
        self._clients = clients
        self._watches: dict[tuple[Deliver, str], _Watch] = {}
        # The board changed since every view was last read.
        self._stale = False
        # (seq, period) of the last read of every view.
        self._read_at: tuple[int, str] | None = None
        self._wake = asyncio.Event()
        # Shared by every subscriber, so not in the context of the socket that opened it.
        self._task = asyncio.create_task(
            self._refresh_forever(), name=f"board-views-{board}", context=contextvars.Context()
        )

    @property
    def empty(self) -> bool:
        return not self._watches

    def __len__(self) -> int:
        """How many views are watched, one per subscriber and view."""
        return len(self._watches)

    def add(self, deliver: Deliver, spec: ViewSpec, frame_id: Any, resume: Resume | None) -> None:
        """Watch a view; the answer comes through `deliver` once it has been read."""
        self._watches[(deliver, spec.view)] = _Watch(deliver, spec, frame_id, resume)
        self._wake.set()

    def remove(self, deliver: Deliver, view: str | None = None) -> None:
        for name in (view,) if view else ("around", "players"):
            self._watches.pop((deliver, name), None)

    def board_changed(self, seq: int, period: str) -> None:
        """The stream saw the board at (seq, period); read again unless already read there."""
        read = self._read_at
        if read is None or seq > read[0] or period != read[1]:
            self._stale = True
            self._wake.set()

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _refresh_forever(self) -> None:
        failures = 0
        while True:
            await self._wake.wait()
            self._wake.clear()

            try:
                await self._refresh()
                failures = 0
            except PodiumError as error:
                log.warning("board_views_failed", board=self.board, code=error.code)
                # Read everything again: a change may have been missed meanwhile.
                self._stale = True
                await asyncio.sleep(RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)])
                failures += 1
                self._wake.set()

    async def _refresh(self) -> None:
        stale, self._stale = self._stale, False
        watches = [w for w in self._watches.values() if stale or w.period is None]
        # Reading only the unanswered views may still be reading every view (the first
        # subscribers of a board): then the stream's next message at this seq needs no read.
        every = len(watches) == len(self._watches)
        specs = list(dict.fromkeys(watch.spec for watch in watches))

        read = {}
        for start in range(0, len(specs), MAX_VIEWS_PER_CALL):
            chunk = specs[start : start + MAX_VIEWS_PER_CALL]
            reply = await self._clients.get_views(self.board, chunk)
            for spec, result in zip(chunk, reply.results, strict=True):
                read[spec] = (reply.period, reply.seq, result.entries)
            if every and start == 0:
                self._read_at = (reply.seq, reply.period)
        self._publish(watches, read)

    def _publish(self, watches: list[_Watch], read: dict) -> None:
        encoded: dict[tuple[ViewSpec, bool], Frame] = {}
        for watch in watches:
            key = (watch.deliver, watch.spec.view)
            if self._watches.get(key) is not watch:
                continue  # unsubscribed, or replaced, while the views were read
            period, seq, entries = read[watch.spec]
            frame_key = (self.board, watch.spec.view)

            if (period, seq) == (watch.period, watch.seq):
                continue  # read again at the version the subscriber already has
            if watch.period is None:
                resumed = watch.resume is not None and watch.resume.unchanged(seq, period)
                body = board_frame(
                    self.board, watch.spec.view, period, seq, not resumed, entries, watch.frame_id
                )
                watch.deliver(frame_key, Frame(body), True)
            else:
                reset = watch.period != period
                if (watch.spec, reset) not in encoded:
                    encoded[watch.spec, reset] = Frame(
                        board_frame(self.board, watch.spec.view, period, seq, reset, entries)
                    )
                watch.deliver(frame_key, encoded[watch.spec, reset], reset)
            watch.period, watch.seq = period, seq

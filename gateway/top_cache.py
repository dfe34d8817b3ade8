"""First pages of a board's top, as REST answers them, kept until the board changes.

Top pages are what a game's leaderboard screen asks for, by every player, again and again, and
each is the same bytes until the board changes. So the gateway keeps the encoded answer of a
first page (no cursor, no pin) and drops it when the board's change event arrives: the same
events ranking follows, published by workers before they publish results, so a player who saw
their own result and then reads the top sees it there. A change event lost on the way (core
NATS is at most once) costs at most `ttl` of staleness: entries are also dropped by age.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog
from google.protobuf.message import DecodeError
from podium.game.v1 import game_pb2

log = structlog.get_logger(__name__)

# (board, period as asked, limit)
Key = tuple[str, str, int]
MAX_ENTRIES = 1024


class TopCache:
    """Encoded first pages by (board, period, limit); each read of a missing page is shared
    by every request for it that arrives meanwhile."""

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._pages: dict[Key, tuple[float, bytes]] = {}
        self._reading: dict[Key, asyncio.Future] = {}

    @property
    def enabled(self) -> bool:
        return self._ttl > 0

    async def page(self, key: Key, read: Callable[[], Awaitable[bytes]]) -> bytes:
        """The page's bytes, from the cache or from `read()` (whose errors pass through)."""
        kept = self._pages.get(key)
        if kept is not None and self._clock() - kept[0] < self._ttl:
            return kept[1]
        pending = self._reading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)

        future = self._reading[key] = asyncio.get_running_loop().create_future()
        started = self._clock()
        try:
            body = await read()
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # read here, so that nobody waiting is no error
            raise
        else:
            future.set_result(body)
            if key in self._reading:  # no change arrived while it was read
                self._keep(key, started, body)
            return body
        finally:
            self._reading.pop(key, None)

    def board_changed(self, board: str) -> None:
        """Forget every page of the board, and let reads in flight not be kept."""
        for key in [key for key in self._pages if key[0] == board]:
            del self._pages[key]
        for key in [key for key in self._reading if key[0] == board]:
            del self._reading[key]

    async def on_change(self, message) -> None:
        """NATS callback for the board change subject."""
        try:
            change = game_pb2.BoardChange.FromString(message.data)
        except DecodeError:
            log.warning("board_change_undecodable", size=len(message.data))
            return
        self.board_changed(change.board)

    def _keep(self, key: Key, started: float, body: bytes) -> None:
        if len(self._pages) >= MAX_ENTRIES:
            self._pages.clear()
        self._pages[key] = (started, body)

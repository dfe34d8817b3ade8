"""Paging through a board without duplicates or gaps while it changes.

A cursor names the board version its chain started at. A pinned chain reads a copy of the
board made at its first page, so every page shows that version; an unpinned chain (or one on a
board too large to copy) reads the live board and is refused with BOARD_MOVED as soon as the
board's version moved on. Cursors are opaque to clients; what they name is checked again here,
and the copy's keys are derived from the request, never taken from the cursor.
"""

import base64
import binascii
import secrets
from dataclasses import dataclass

import grpc
import orjson
import redis.asyncio as aioredis

from infra.boards import Board
from infra.errors import PodiumError
from infra.leaderboard import PeriodKeys
from ranking.board_store import BoardStore, BoardView

PIN_MAX_MEMBERS = 100_000
PIN_TTL_SECONDS = 300

# KEYS: live ranked, index, values, ready, seq, then the copy's ranked, index, values, ready.
# ARGV: most members to copy, ttl. Returns the seq copied, or -1 if the board is too large or
# not built.
_PIN = """
if redis.call('EXISTS', KEYS[4]) == 0 or redis.call('ZCARD', KEYS[1]) > tonumber(ARGV[1]) then
  return -1
end
for i = 1, 3 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('COPY', KEYS[i], KEYS[5 + i])
    redis.call('EXPIRE', KEYS[5 + i], ARGV[2])
  end
end
redis.call('SET', KEYS[9], 1, 'EX', ARGV[2])
return tonumber(redis.call('GET', KEYS[5]) or '0')
"""


def invalid_cursor() -> PodiumError:
    return PodiumError("INVALID_CURSOR", "the cursor is not one this board gave")


def board_moved() -> PodiumError:
    return PodiumError(
        "BOARD_MOVED",
        "the board changed since the first page; start again",
        grpc.StatusCode.FAILED_PRECONDITION,
    )


def cursor_expired() -> PodiumError:
    return PodiumError(
        "CURSOR_EXPIRED",
        "the pinned board has expired; start again",
        grpc.StatusCode.FAILED_PRECONDITION,
    )


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: the chain's board version, and its copy's token if pinned."""

    board: str
    period: str
    seq: int
    offset: int
    token: str = ""

    def encode(self) -> str:
        data = orjson.dumps([self.board, self.period, self.seq, self.offset, self.token])
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, board: str, period: str) -> "Cursor":
        try:
            data = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        except (binascii.Error, ValueError, orjson.JSONDecodeError):
            raise invalid_cursor() from None
        if not _well_formed(data) or data[:2] != [board, period]:
            raise invalid_cursor()
        return cls(*data)


def _well_formed(data: object) -> bool:
    if not isinstance(data, list) or len(data) != 5:
        return False
    board, period, seq, offset, token = data
    texts = isinstance(board, str) and isinstance(period, str) and isinstance(token, str)
    numbers = all(type(n) is int and 0 <= n < 2**63 for n in (seq, offset))
    return texts and numbers and (token == "" or (len(token) == 16 and token.isalnum()))


class Pager:
    """Reads pages of a board's top for GetTop."""

    def __init__(self, redis: aioredis.Redis, store: BoardStore) -> None:
        self._store = store
        self._pin = redis.register_script(_PIN)

    async def page(
        self, board: Board, period: str, limit: int, cursor: str, pin: bool
    ) -> tuple[BoardView, str]:
        """A page and the cursor of the next one ("" at the end of the board)."""
        if cursor:
            at = Cursor.decode(cursor, board.id, period)
        else:
            at = await self._first(board, period, pin)

        if at.token:
            view = await self._store.top(board, period, limit, at.offset, self._copy(at))
            if not view.found:
                raise cursor_expired()
            view = BoardView(view.entries, at.seq, view.total)
        else:
            view = await self._store.top(board, period, limit, at.offset)
            if cursor and view.seq != at.seq:
                raise board_moved()

        following = at.offset + len(view.entries)
        more = following < view.total and len(view.entries) == limit
        after = Cursor(board.id, period, view.seq, following, at.token) if more else None
        return view, after.encode() if after else ""

    async def _first(self, board: Board, period: str, pin: bool) -> Cursor:
        if not pin:
            return Cursor(board.id, period, 0, 0)

        await self._store.top(board, period, 1)  # builds the period if Redis lacks it
        token = secrets.token_hex(8)
        at = Cursor(board.id, period, 0, 0, token)
        live, copy = self._store.keys(board.id, period), self._copy(at)
        keys = [live.ranked, live.index, live.values, live.ready, live.seq]
        keys += [copy.ranked, copy.index, copy.values, copy.ready]
        seq = await self._pin(keys=keys, args=[PIN_MAX_MEMBERS, PIN_TTL_SECONDS])
        if seq < 0:
            return Cursor(board.id, period, 0, 0)
        return Cursor(board.id, period, int(seq), 0, token)

    def _copy(self, at: Cursor) -> PeriodKeys:
        live = self._store.keys(at.board, at.period)
        return PeriodKeys.of(f"{live.ranked}:page:{at.token}", live.seq)

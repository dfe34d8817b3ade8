"""Ranked reads of board periods from Redis (infra.leaderboard holds the form they take).

Every read is one script, so the entries, their ranks and the board version a caller gets all
belong to one moment. A period Redis has not built from Postgres (it came back empty, or the
period expired) is rebuilt first, by the `rebuild` callback, then read.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
import redis.asyncio as aioredis
import structlog
from podium.ranking.v1 import ranking_pb2
from redis.exceptions import RedisError

from infra.boards import Board
from infra.leaderboard import PeriodKeys, player_of, subscore_of
from infra.names import Names
from infra.shards import ShardPools

log = structlog.get_logger(__name__)

# Read the rows of one board period. KEYS: ranked, index, values, ready, seq. ARGV: rank style,
# mode, then for "range": start, stop; for "around": player, before, after, rows (0: use
# before and after); for "players": the player ids. Returns {0} for a period not built, else
# {1, seq, total, then per row: member, zscore, rank, metadata}.
_READ = """
if redis.call('EXISTS', KEYS[4]) == 0 then return {0} end
local style, mode = ARGV[1], ARGV[2]
local seq = tonumber(redis.call('GET', KEYS[5]) or '0')
local total = redis.call('ZCARD', KEYS[1])
local out = {1, seq, total}

local function entry(player)
  local text = redis.call('HGET', KEYS[2], player)
  if not text then return nil end
  local a = string.find(text, '|', 1, true)
  local b = string.find(text, '|', a + 1, true)
  local c = string.find(text, '|', b + 1, true)
  return string.sub(text, a + 1, b - 1), string.sub(text, b + 1, c - 1), string.sub(text, c + 1)
end

local function rank_at(index, zscore, member)
  if style == 'ordinal' then return index + 1 end
  local tie = string.sub(member, 1, 16)
  if style == 'dense' then return redis.call('ZRANK', KEYS[3], tie .. '/' .. zscore) + 1 end
  local lo, hi = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. zscore), index
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if string.sub(redis.call('ZRANGE', KEYS[1], mid, mid)[1], 1, 16) == tie then
      hi = mid
    else
      lo = mid + 1
    end
  end
  return lo + 1
end

local function range(first, last)
  local members = redis.call('ZRANGE', KEYS[1], first, last)
  local prev_zscore, prev_tie, prev_rank
  for i, member in ipairs(members) do
    local zscore, _, meta = entry(string.sub(member, -36))
    if not zscore then return false end
    local index, tie = first + i - 1, string.sub(member, 1, 16)
    local rank
    if prev_rank == nil then
      rank = rank_at(index, zscore, member)
    elseif style == 'ordinal' then
      rank = index + 1
    elseif zscore == prev_zscore and tie == prev_tie then
      rank = prev_rank
    elseif style == 'dense' then
      rank = prev_rank + 1
    else
      rank = index + 1
    end
    for _, v in ipairs({member, zscore, rank, meta}) do out[#out + 1] = v end
    prev_zscore, prev_tie, prev_rank = zscore, tie, rank
  end
  return true
end

-- Keys of a period expire one by one; a set and index caught out of step read as not built.
local complete = true
if mode == 'range' then
  complete = range(tonumber(ARGV[3]), tonumber(ARGV[4]))
elseif mode == 'around' then
  local zscore, member = entry(ARGV[3])
  if not member then return out end
  local index = redis.call('ZRANK', KEYS[1], member)
  if not index then return {0} end
  local rows = tonumber(ARGV[6])
  local first, last = index - tonumber(ARGV[4]), index + tonumber(ARGV[5])
  if rows > 0 then
    first = math.max(math.min(index - math.floor((rows - 1) / 2), total - rows), 0)
    last = first + rows - 1
  end
  complete = range(math.max(first, 0), last)
else
  for i = 3, #ARGV do
    local zscore, member, meta = entry(ARGV[i])
    if member then
      local index = redis.call('ZRANK', KEYS[1], member)
      if not index then return {0} end
      for _, v in ipairs({member, zscore, rank_at(index, zscore, member), meta}) do
        out[#out + 1] = v
      end
    end
  end
end
if not complete then return {0} end
return out
"""

Rebuild = Callable[[Board, str], Awaitable[None]]


def around_args(player_id: str, radius: int, rows: int = 0) -> list:
    return ["around", player_id, radius, radius, rows]


def players_args(player_ids: list[str]) -> list:
    return ["players", *player_ids]


@dataclass(frozen=True)
class BoardView:
    """Consecutive ranked entries (or a list of them) and the board version they were read at.

    `found` is False when `around` names a player absent from the period, or when a paging
    copy's keys have expired.
    """

    entries: list[ranking_pb2.Entry]
    seq: int
    total: int = 0
    found: bool = True


class BoardStore:
    """Reads ranked slices of board periods, and usernames to show beside them."""

    def __init__(self, redis: aioredis.Redis, pools: ShardPools, names: Names) -> None:
        self._redis = redis
        self._pools = pools
        self.names = names
        self._read = redis.register_script(_READ)
        self.rebuild: Rebuild | None = None

    def keys(self, board: str, period: str) -> PeriodKeys:
        return PeriodKeys.of(self.names.board_key(board, period), self.names.board_seq_key(board))

    async def top(
        self,
        board: Board,
        period: str,
        limit: int,
        offset: int = 0,
        keys: PeriodKeys | None = None,
    ) -> BoardView:
        """`limit` entries from rank `offset + 1` (of a paging snapshot's keys, if given)."""
        return await self._view(board, period, ["range", offset, offset + limit - 1], keys)

    async def around(
        self, board: Board, period: str, player_id: str, radius: int, rows: int = 0
    ) -> BoardView:
        """The player's entry with `radius` entries on each side, or a window of `rows`."""
        [view] = await self.views(board, period, [around_args(player_id, radius, rows)])
        return view

    async def players(self, board: Board, period: str, player_ids: list[str]) -> BoardView:
        """The listed players who are on the period, each with their board rank, best first."""
        [view] = await self.views(board, period, [players_args(player_ids)])
        return view

    async def views(self, board: Board, period: str, specs: list[list]) -> list[BoardView]:
        """Several views (around_args / players_args) read at one board version."""
        return await self._views(board, period, specs)

    async def seqs(self, boards: list[str]) -> dict[str, int]:
        """The current version of each board, 0 for a board that never changed."""
        values = await self._redis.mget([self.names.board_seq_key(b) for b in boards])
        return {board: int(value or 0) for board, value in zip(boards, values, strict=True)}

    async def _view(
        self, board: Board, period: str, args: list, keys: PeriodKeys | None = None
    ) -> BoardView:
        [view] = await self._views(board, period, [args], keys)
        return view

    async def _views(
        self, board: Board, period: str, specs: list[list], keys: PeriodKeys | None = None
    ) -> list[BoardView]:
        live = keys is None
        keys = keys or self.keys(board.id, period)
        replies = await self._run(board, keys, specs)
        if not replies[0][0] and live and self.rebuild is not None:
            await self.rebuild(board, period)
            replies = await self._run(board, keys, specs)
        pairs = zip(specs, replies, strict=True)
        return [await self._shape(board, spec, reply) for spec, reply in pairs]

    async def _run(self, board: Board, keys: PeriodKeys, specs: list[list]) -> list[list]:
        """Each spec's script run, all in one MULTI, so that they read one version.

        One spec alone needs no MULTI (a script runs atomically) and goes as one EVALSHA: a
        pipeline would first ask Redis whether the script is loaded, a round trip per read.
        """
        script_keys = [keys.ranked, keys.index, keys.values, keys.ready, keys.seq]
        if len(specs) == 1:
            return [await self._read(keys=script_keys, args=[board.ranks, *specs[0]])]
        async with self._redis.pipeline(transaction=True) as pipe:
            for args in specs:
                await self._read(keys=script_keys, args=[board.ranks, *args], client=pipe)
            return await pipe.execute()

    async def _shape(self, board: Board, spec: list, reply: list) -> BoardView:
        if not reply[0]:
            # Only a paging copy can be missing here: it expired.
            return BoardView([], 0, found=False)

        _, seq, total, *flat = reply
        rows = [flat[i : i + 4] for i in range(0, len(flat), 4)]
        if spec[0] == "players":
            # Rank, then the member, which spells the rest of the board's order for equal ranks.
            rows.sort(key=lambda row: (int(row[2]), row[0]))
        entries = await self._entries(board, rows)
        found = spec[0] != "around" or any(entry.player_id == spec[1] for entry in entries)
        return BoardView(entries, int(seq), int(total), found)

    async def _entries(self, board: Board, rows: list[list]) -> list[ranking_pb2.Entry]:
        players = [player_of(member) for member, *_ in rows]
        usernames = await self._usernames(players)
        sign = -1 if board.order == "desc" else 1
        return [
            ranking_pb2.Entry(
                rank=int(rank),
                board_rank=int(rank),
                player_id=player,
                username=usernames.get(player, ""),
                score=sign * int(zscore),
                subscore=subscore_of(board, member),
                metadata_json=metadata,
            )
            for player, (member, zscore, rank, metadata) in zip(players, rows, strict=True)
        ]

    async def _usernames(self, player_ids: list[str]) -> dict[str, str]:
        if not player_ids:
            return {}
        values = await self._redis.hmget(self.names.usernames_key, player_ids)
        known = {
            pid: name for pid, name in zip(player_ids, values, strict=True) if name is not None
        }

        missing = [pid for pid in player_ids if pid not in known]
        if missing:
            known.update(await self._refill_usernames(missing))
        return known

    async def _refill_usernames(self, player_ids: list[str]) -> dict[str, str]:
        """Fetch usernames absent from the hash from Postgres and write them back.

        A name is decoration on a ranked entry: when Postgres cannot answer, the entry goes
        out with an empty name rather than failing the whole read.
        """
        by_pool: dict[asyncpg.Pool, list[str]] = {}
        for player_id in player_ids:
            by_pool.setdefault(self._pools.for_player(player_id), []).append(player_id)

        found = {}
        try:
            for pool, ids in by_pool.items():
                rows = await pool.fetch(
                    "SELECT player_id::text, username FROM accounts"
                    " WHERE player_id = ANY($1::text[]::uuid[])",
                    ids,
                )
                found.update((row["player_id"], row["username"]) for row in rows)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("username_lookup_failed", players=len(player_ids), error=repr(exc))
            return {}

        if found:
            try:
                await self._redis.hset(self.names.usernames_key, mapping=found)
            except RedisError as exc:
                log.warning("username_writeback_failed", players=len(found), error=repr(exc))
        return found

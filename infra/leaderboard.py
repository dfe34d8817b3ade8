"""The Redis form of a board period, written by game workers and by rebuilds, read by ranking.

A board period is a sorted set whose order is the board's ranking rule exactly:

- the set's score is the board score, negated for boards where higher ranks first;
- equal scores are ordered by member, and a member spells out the rest of the rule in
  fixed-width text that sorts the right way: the subscore (in the board's subscore order),
  then the millisecond the standing was reached (earlier first), then the player id.

So ZRANK is the ordinal rank, with the same ties as `row_number()` over Postgres ordered by
score, subscore, reached time and player id. Beside the set an index hash maps each player to
`version|zscore|member|metadata`: the version is that of the player's state when the standing
was written, and a write only lands when it is newer, so a repeated or late write never
undoes a newer one. Boards that rank dense keep the distinct values in a second set (with a
count of players per value), whose ZRANK is the dense rank.

A rebuild (ranking/rebuild.py) marks the period while it copies Postgres into scratch keys;
writes meanwhile also note their players, whose newer standings the rebuild carries over as
it swaps the scratch keys in. A `ready` key says the period was built from Postgres; readers
rebuild a period that lacks it (Redis came back empty, or the period had expired).
"""

from dataclasses import dataclass

import redis.asyncio as aioredis

from infra.boards import Board

PLAYER_ID_CHARS = 36
_SUBSCORE_CHARS = 16
_REACHED_CHARS = 12
_SUBSCORE_OFFSET = 2**63 - 1


@dataclass(frozen=True)
class Standing:
    """What places a player on a board period."""

    player_id: str
    score: int
    subscore: int
    reached_ms: int
    version: int
    metadata: str | None = None


@dataclass(frozen=True)
class PeriodKeys:
    """Every Redis key of one board period, and its board's seq key."""

    ranked: str
    index: str
    values: str
    counts: str
    ready: str
    rebuild: str
    touched: str
    seq: str

    @classmethod
    def of(cls, ranked: str, seq: str) -> "PeriodKeys":
        return cls(
            ranked,
            f"{ranked}:idx",
            f"{ranked}:values",
            f"{ranked}:counts",
            f"{ranked}:ready",
            f"{ranked}:rebuild",
            f"{ranked}:touched",
            seq,
        )

    def scratch(self, token: str) -> "PeriodKeys":
        """The keys a rebuild fills before swapping them in."""
        return PeriodKeys.of(f"{self.ranked}:scratch:{token}", self.seq)

    @property
    def write_keys(self) -> list[str]:
        keys = [self.ranked, self.index, self.values, self.counts, self.rebuild, self.touched]
        return [*keys, self.seq]


def zscore(board: Board, score: int) -> int:
    """The sorted-set score: lower sorts first, so boards where higher wins negate it."""
    return -score if board.order == "desc" else score


def member(board: Board, standing: Standing) -> str:
    """Subscore, reached time and player id, as text that sorts in ranking order."""
    if board.subscore is None:
        subscore = 0
    else:
        subscore = standing.subscore if board.subscore == "asc" else -standing.subscore
    return (
        f"{subscore + _SUBSCORE_OFFSET:0{_SUBSCORE_CHARS}x}"
        f"{standing.reached_ms:0{_REACHED_CHARS}x}"
        f"{standing.player_id}"
    )


def player_of(member_text: str) -> str:
    return member_text[-PLAYER_ID_CHARS:]


def subscore_of(board: Board, member_text: str) -> int:
    """The subscore a member spells (0 on boards without one)."""
    encoded = int(member_text[:_SUBSCORE_CHARS], 16) - _SUBSCORE_OFFSET
    return encoded if board.subscore == "asc" else -encoded


def tie_of(member_text: str) -> str:
    """The part of a member that equal standings share (the subscore)."""
    return member_text[:_SUBSCORE_CHARS]


def write_args(board: Board, standings: list[Standing], seq_floor: int = 0) -> list:
    """The script's arguments for writing standings of one board period.

    With a seq_floor the board's seq steps once if anything landed, starting from the floor if
    it is missing (a clock reading in microseconds, so that a seq lost with Redis restarts above
    every seq a client could have seen); without one (a rebuild's scratch keys) it stays.
    """
    args: list = ["1" if board.ranks == "dense" else "0", seq_floor]
    for s in standings:
        place = member(board, s)
        args += [s.player_id, zscore(board, s.score), place, s.version, s.metadata or ""]
    return args


# Shared by the scripts below. parse: an index entry's version, zscore and member. count: step
# the number of players holding a value (a subscore and zscore) in a dense board's counts,
# keeping the set of distinct values in step.
LUA_HELPERS = """
local function parse(entry)
  local a = string.find(entry, '|', 1, true)
  local b = string.find(entry, '|', a + 1, true)
  local c = string.find(entry, '|', b + 1, true)
  return tonumber(string.sub(entry, 1, a - 1)), string.sub(entry, a + 1, b - 1),
    string.sub(entry, b + 1, c - 1)
end
local function count(values, counts, zscore, member, step)
  local value = string.sub(member, 1, 16) .. '/' .. zscore
  local left = redis.call('HINCRBY', counts, value, step)
  if left <= 0 then
    redis.call('HDEL', counts, value)
    redis.call('ZREM', values, value)
  elseif step > 0 then
    redis.call('ZADD', values, zscore, value)
  end
end
"""

# KEYS: ranked, index, values, counts, rebuild mark, touched, seq. ARGV: dense flag, seq floor
# (0: leave the seq), then per standing: player, zscore, member, version, metadata.
# Returns {standings that landed, the board's seq}.
WRITE = (
    LUA_HELPERS
    + """
local dense = ARGV[1] == '1'
local rebuilding = redis.call('EXISTS', KEYS[5]) == 1
local landed = 0
for i = 3, #ARGV, 5 do
  local player, zscore, member, version = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local old = redis.call('HGET', KEYS[2], player)
  local newer = true
  if old then
    local old_version, old_zscore, old_member = parse(old)
    newer = tonumber(version) > old_version
    if newer then
      redis.call('ZREM', KEYS[1], old_member)
      if dense then count(KEYS[3], KEYS[4], old_zscore, old_member, -1) end
    end
  end
  if newer then
    redis.call('ZADD', KEYS[1], zscore, member)
    local entry = version .. '|' .. zscore .. '|' .. member .. '|' .. ARGV[i + 4]
    redis.call('HSET', KEYS[2], player, entry)
    if dense then count(KEYS[3], KEYS[4], zscore, member, 1) end
    if rebuilding then redis.call('SADD', KEYS[6], player) end
    landed = landed + 1
  end
end
local floor = tonumber(ARGV[2])
if floor == 0 then return {landed, 0} end
if landed > 0 then
  if redis.call('EXISTS', KEYS[7]) == 0 then redis.call('SET', KEYS[7], floor) end
  return {landed, redis.call('INCR', KEYS[7])}
end
return {0, tonumber(redis.call('GET', KEYS[7]) or '0')}
"""
)


def register_write(redis: aioredis.Redis):
    """The write script, registered on this client (EVALSHA, loaded on first use)."""
    return redis.register_script(WRITE)

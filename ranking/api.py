"""gRPC handlers of podium.ranking.v1.RankingService: validate, call the core, map errors."""

from datetime import UTC, datetime

import grpc
import nats.aio.client
from podium.ranking.v1 import ranking_service_pb2 as pb
from podium.ranking.v1 import ranking_service_pb2_grpc

from infra.boards import BOARDS, Board
from infra.errors import PodiumError, guarded
from infra.ids import canonical_uuid
from infra.shards import ShardPools
from ranking.board_store import BoardStore
from ranking.feed import BoardFeed, Clock
from ranking.rebuild import rebuild_board

MAX_LIMIT = 100
MAX_RADIUS = 50


class RankingApi(ranking_service_pb2_grpc.RankingServiceServicer):
    """Reads and streams boards; each handler checks its request before touching a store."""

    def __init__(
        self,
        store: BoardStore,
        feed: BoardFeed,
        pools: ShardPools,
        nc: nats.aio.client.Client,
        clock: Clock,
    ) -> None:
        self._store = store
        self._feed = feed
        self._pools = pools
        self._nc = nc
        self._clock = clock

    @guarded
    async def GetTop(self, request: pb.GetTopRequest, context) -> pb.GetTopResponse:
        """Answer with the head of a board period."""
        board = _board(request.board)
        period = self._period(board, request.period)
        _check_limit(request.limit)

        view = await self._store.top(board.id, period, request.limit)
        return pb.GetTopResponse(board=board.id, period=period, entries=view.entries, seq=view.seq)

    @guarded
    async def GetAround(self, request: pb.GetAroundRequest, context) -> pb.GetAroundResponse:
        """Answer with a player's entry and its neighbours."""
        board = _board(request.board)
        period = self._period(board, request.period)
        player_id = _player_id(request.player_id)
        if not 0 <= request.radius <= MAX_RADIUS:
            raise PodiumError("INVALID_RADIUS", f"radius must be 0-{MAX_RADIUS}")

        view = await self._store.around(board.id, period, player_id, request.radius)
        if not view.found:
            raise PodiumError(
                "PLAYER_NOT_RANKED", "player is not on this board", grpc.StatusCode.NOT_FOUND
            )
        return pb.GetAroundResponse(
            board=board.id, period=period, entries=view.entries, seq=view.seq
        )

    @guarded
    async def WatchBoard(self, request: pb.WatchBoardRequest, context) -> None:
        """Stream a snapshot, then the newest view after each change, until either side ends."""
        board = _board(request.board)
        _check_limit(request.limit)

        async with self._feed.watch(board, request.limit) as watcher:
            while (view := await watcher.next()) is not None:
                await context.write(view)

    @guarded
    async def RebuildBoard(
        self, request: pb.RebuildBoardRequest, context
    ) -> pb.RebuildBoardResponse:
        """Rebuild a board period from Postgres and report its size and version."""
        board = _board(request.board)
        period = self._period(board, request.period)

        rebuilt = await rebuild_board(self._pools, self._store, self._nc, board.id, period)
        return pb.RebuildBoardResponse(members=rebuilt.members, seq=rebuilt.seq)

    def _period(self, board: Board, period: str) -> str:
        """The requested period key, or the current one for an empty request."""
        if not period:
            return board.period_at(self._clock())
        if not _is_period_of(board, period):
            raise PodiumError("INVALID_PERIOD", "period is not a valid key for this board")
        return period


def _board(board_id: str) -> Board:
    board = BOARDS.get(board_id)
    if board is None:
        raise PodiumError("UNKNOWN_BOARD", "no such board", grpc.StatusCode.NOT_FOUND)
    return board


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise PodiumError("INVALID_LIMIT", f"limit must be 1-{MAX_LIMIT}")


def _player_id(raw: str) -> str:
    """The canonical lower-case text of a UUID, the form board members are stored in."""
    try:
        return canonical_uuid(raw)
    except ValueError:
        raise PodiumError("INVALID_PLAYER_ID", "player_id must be a UUID") from None


def _is_period_of(board: Board, period: str) -> bool:
    """Whether the board would name some instant `period`.

    A key is valid when it is what the board itself computes: "all" for a board that never
    resets, and for a daily one a date whose own midnight maps back to the same text (which
    also refuses "2024-1-5" and other spellings strptime would let through).
    """
    if board.period_at(0) == period:
        return True
    try:
        day = datetime.strptime(period, "%Y-%m-%d").replace(tzinfo=UTC)
        return board.period_at(int(day.timestamp() * 1000)) == period
    except (ValueError, OverflowError, OSError):
        return False

"""gRPC handlers of podium.ranking.v1.RankingService: validate, call the core, map errors."""

import grpc
from podium.ranking.v1 import ranking_pb2, ranking_service_pb2_grpc
from podium.ranking.v1 import ranking_service_pb2 as pb

from infra.boards import Board, boards
from infra.errors import PodiumError, guarded
from infra.ids import canonical_uuid
from ranking.board_store import BoardStore, around_args, players_args
from ranking.feed import BoardFeed, Clock
from ranking.paging import Pager
from ranking.periods import Periods
from ranking.rebuild import Rebuilder

MAX_LIMIT = 100
MAX_RADIUS = 50
MAX_ROWS = 2 * MAX_RADIUS + 1
MAX_PLAYERS = 100
MAX_VIEWS = 1000


class RankingApi(ranking_service_pb2_grpc.RankingServiceServicer):
    """Reads and streams boards; each handler checks its request before touching a store."""

    def __init__(
        self,
        store: BoardStore,
        feed: BoardFeed,
        pager: Pager,
        rebuilder: Rebuilder,
        periods: Periods,
        clock: Clock,
    ) -> None:
        self._store = store
        self._feed = feed
        self._pager = pager
        self._rebuilder = rebuilder
        self._periods = periods
        self._clock = clock

    @guarded
    async def GetTop(self, request: pb.GetTopRequest, context) -> pb.GetTopResponse:
        """Answer with a page of a board period, from its head or from a cursor."""
        board = _board(request.board)
        period = self._period(board, request.period)
        _check_limit(request.limit)

        view, following = await self._pager.page(
            board, period, request.limit, request.cursor, request.pin
        )
        return pb.GetTopResponse(
            board=board.id,
            period=period,
            entries=view.entries,
            seq=view.seq,
            next_cursor=following,
            total=view.total,
        )

    @guarded
    async def GetAround(self, request: pb.GetAroundRequest, context) -> pb.GetAroundResponse:
        """Answer with a player's entry and its neighbours."""
        board = _board(request.board)
        period = self._period(board, request.period)
        player_id = _player_id(request.player_id)
        _check_window(request.radius, request.rows)

        view = await self._store.around(board, period, player_id, request.radius, request.rows)
        if not view.found:
            raise _not_ranked()
        return pb.GetAroundResponse(
            board=board.id, period=period, entries=view.entries, seq=view.seq
        )

    @guarded
    async def GetPlayerRank(
        self, request: pb.GetPlayerRankRequest, context
    ) -> pb.GetPlayerRankResponse:
        """Answer with one player's entry."""
        board = _board(request.board)
        period = self._period(board, request.period)
        player_id = _player_id(request.player_id)

        view = await self._store.players(board, period, [player_id])
        if not view.entries:
            raise _not_ranked()
        return pb.GetPlayerRankResponse(
            board=board.id, period=period, entry=view.entries[0], seq=view.seq
        )

    @guarded
    async def GetPlayers(self, request: pb.GetPlayersRequest, context) -> pb.GetPlayersResponse:
        """Answer with the listed players ranked among themselves."""
        board = _board(request.board)
        period = self._period(board, request.period)
        players = _player_ids(request.player_ids)

        view = await self._store.players(board, period, players)
        return pb.GetPlayersResponse(
            board=board.id, period=period, entries=among(board, view.entries), seq=view.seq
        )

    @guarded
    async def GetViews(self, request: pb.GetViewsRequest, context) -> pb.GetViewsResponse:
        """Answer with every view asked for, read at one board version."""
        board = _board(request.board)
        period = self._period(board, request.period)
        if not 1 <= len(request.views) <= MAX_VIEWS:
            raise PodiumError("INVALID_VIEWS", f"ask for 1-{MAX_VIEWS} views")
        specs = [_view_spec(view) for view in request.views]

        views = await self._store.views(board, period, specs)
        results = [
            pb.ViewResult(
                entries=among(board, v.entries) if spec[0] == "players" else v.entries,
                found=v.found,
            )
            for spec, v in zip(specs, views, strict=True)
        ]
        seq = views[0].seq if views else 0
        return pb.GetViewsResponse(board=board.id, period=period, seq=seq, results=results)

    @guarded
    async def ListPeriods(self, request: pb.ListPeriodsRequest, context) -> pb.ListPeriodsResponse:
        """Answer with the periods recorded for a board, newest first."""
        board = _board(request.board)
        _check_limit(request.limit)

        records = await self._periods.list(board, request.limit)
        periods = [
            ranking_pb2.Period(
                period=r.period, opened_at_unix_ms=r.opened_ms, closed_at_unix_ms=r.closed_ms
            )
            for r in records
        ]
        return pb.ListPeriodsResponse(board=board.id, periods=periods)

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

        rebuilt = await self._rebuilder.rebuild(board, period)
        if rebuilt is None:
            raise PodiumError(
                "REBUILD_IN_PROGRESS",
                "another rebuild of this period was under way and has finished",
                grpc.StatusCode.ABORTED,
            )
        return pb.RebuildBoardResponse(members=rebuilt.members, seq=rebuilt.seq)

    def _period(self, board: Board, period: str) -> str:
        """The requested period key, or the current one for an empty request."""
        if not period:
            return board.period_at(self._clock())
        if not board.is_period(period):
            raise PodiumError("INVALID_PERIOD", "period is not a valid key for this board")
        return period


def among(board: Board, entries: list[ranking_pb2.Entry]) -> list[ranking_pb2.Entry]:
    """Entries (in board order) renumbered as places within the list, by the board's style."""
    ranked = []
    for place, entry in enumerate(entries, start=1):
        if ranked and entry.board_rank == ranked[-1].board_rank and board.ranks != "ordinal":
            rank = ranked[-1].rank
        elif board.ranks == "dense" and ranked:
            rank = ranked[-1].rank + 1
        else:
            rank = place
        ranked.append(ranking_pb2.Entry(**_fields(entry), rank=rank))
    return ranked


def _fields(entry: ranking_pb2.Entry) -> dict:
    return {
        "player_id": entry.player_id,
        "username": entry.username,
        "score": entry.score,
        "subscore": entry.subscore,
        "metadata_json": entry.metadata_json,
        "board_rank": entry.board_rank,
    }


def _view_spec(view: pb.View) -> list:
    if view.WhichOneof("kind") == "around":
        _check_window(view.around.radius, view.around.rows)
        return around_args(_player_id(view.around.player_id), view.around.radius, view.around.rows)
    if view.WhichOneof("kind") == "players":
        return players_args(_player_ids(view.players.player_ids))
    raise PodiumError("INVALID_VIEWS", "each view must be around or players")


def _check_window(radius: int, rows: int) -> None:
    if not 0 <= radius <= MAX_RADIUS:
        raise PodiumError("INVALID_RADIUS", f"radius must be 0-{MAX_RADIUS}")
    if not 0 <= rows <= MAX_ROWS:
        raise PodiumError("INVALID_ROWS", f"rows must be 1-{MAX_ROWS}")


def _player_ids(raw: list[str]) -> list[str]:
    if not 1 <= len(raw) <= MAX_PLAYERS:
        raise PodiumError("INVALID_PLAYER_IDS", f"list 1-{MAX_PLAYERS} player ids")
    return list(dict.fromkeys(_player_id(player_id) for player_id in raw))


def _not_ranked() -> PodiumError:
    return PodiumError(
        "PLAYER_NOT_RANKED", "player is not on this board", grpc.StatusCode.NOT_FOUND
    )


def _board(board_id: str) -> Board:
    board = boards().get(board_id)
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

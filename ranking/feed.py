"""Board change events in, coalesced board views out to every WatchBoard stream.

The process subscribes once to the board change subject. A change marks its board dirty; the
board's top is read at most once per coalescing window (the first change of a quiet board at
once), at the largest limit any watcher asked for, and each watcher gets its slice. A
once-a-second tick also catches period rolls and changes whose event was lost (core NATS is at
most once), by comparing the board's seq.
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import grpc
import nats.aio.client
import nats.errors
import structlog
from google.protobuf.message import DecodeError
from podium.game.v1 import game_pb2
from podium.ranking.v1 import ranking_pb2, ranking_service_pb2
from redis.exceptions import RedisError

from infra.boards import Board
from infra.errors import PodiumError
from infra.names import Names
from ranking import metrics
from ranking.board_store import BoardStore

log = structlog.get_logger(__name__)

Clock = Callable[[], int]

# How often watched boards are checked for a new period or a change whose event went missing.
TICK_SECONDS = 1.0


def now_ms() -> int:
    """Wall-clock time in Unix milliseconds, the unit periods are computed from."""
    return time.time_ns() // 1_000_000


async def publish_change(
    nc: nats.aio.client.Client, names: Names, board: str, period: str, seq: int
) -> None:
    """Tell every ranking process that a board period changed in Redis."""
    change = game_pb2.BoardChange(board=board, period=period, seq=seq)
    await nc.publish(names.board_changes_subject, change.SerializeToString())


class Watcher:
    """The outbox of one WatchBoard stream, holding only the newest view.

    Each view is complete, so an older unsent one is worthless once a newer one exists:
    replacing it keeps memory bounded and lets a slow stream fall behind without ever making
    the fan-out wait for it.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.period: str | None = None
        self._latest: ranking_service_pb2.WatchBoardResponse | None = None
        self._ready = asyncio.Event()
        self._closed = False

    def offer(self, view: ranking_service_pb2.WatchBoardResponse) -> None:
        """Replace the pending view; a pending snapshot keeps its flag when overtaken."""
        if self._latest is not None and self._latest.snapshot and not view.snapshot:
            merged = ranking_service_pb2.WatchBoardResponse()
            merged.CopyFrom(view)
            merged.snapshot = True
            view = merged

        self._latest = view
        self.period = view.period
        self._ready.set()

    def close(self) -> None:
        """End the stream: next() returns None from now on."""
        self._closed = True
        self._ready.set()

    async def next(self) -> ranking_service_pb2.WatchBoardResponse | None:
        """Wait for a view newer than the last one taken; None once closed."""
        await self._ready.wait()
        if self._closed:
            return None

        view, self._latest = self._latest, None
        self._ready.clear()
        return view


@dataclass(eq=False)
class _Group:
    """The watchers of one board and the task that refreshes them."""

    board: Board
    watchers: set[Watcher] = field(default_factory=set)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    # Serialises reads-and-offers so that a newer view is never overtaken by an older one.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    seq: int = -1
    task: asyncio.Task | None = None


class BoardFeed:
    """Follows board change events and fans coalesced views out to watchers."""

    def __init__(
        self,
        store: BoardStore,
        nc: nats.aio.client.Client,
        coalesce_ms: int,
        clock: Clock = now_ms,
    ) -> None:
        self._store = store
        self._nc = nc
        self._coalesce = coalesce_ms / 1000
        self._clock = clock
        self._groups: dict[str, _Group] = {}
        self._tasks: set[asyncio.Task] = set()
        self._subscription = None
        self._closed = False

    async def start(self) -> None:
        """Subscribe to board changes and start the period and seq check."""
        subject = self._store.names.board_changes_subject
        self._subscription = await self._nc.subscribe(subject, cb=self._on_change)
        self._spawn(self._tick_forever(), "ranking-feed-tick")

    async def stop(self) -> None:
        """End every open stream, then the feed's own tasks and subscription."""
        self._closed = True
        for group in self._groups.values():
            for watcher in group.watchers:
                watcher.close()
        self._groups.clear()

        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with contextlib.suppress(nats.errors.Error):
                await subscription.unsubscribe()

    def watching(self, board: str) -> int:
        """Number of open watchers of a board."""
        group = self._groups.get(board)
        return len(group.watchers) if group else 0

    @property
    def task_count(self) -> int:
        """Tasks the feed runs: the tick, plus one per watched board."""
        return len(self._tasks)

    @contextlib.asynccontextmanager
    async def watch(self, board: Board, limit: int) -> AsyncIterator[Watcher]:
        """Register a watcher whose first view is a snapshot; it leaves on exit."""
        if self._closed:
            raise PodiumError(
                "SHUTTING_DOWN", "ranking is shutting down", grpc.StatusCode.UNAVAILABLE
            )
        group = self._groups.get(board.id) or self._open(board)
        watcher = Watcher(limit)
        group.watchers.add(watcher)
        watching = metrics.WATCHERS.labels(board.id)
        watching.inc()

        try:
            async with group.lock:
                period = board.period_at(self._clock())
                view = await self._store.top(board, period, limit)
                watcher.offer(_response(board.id, period, view.seq, True, view.entries))
                if group.seq < 0:
                    group.seq = view.seq
            yield watcher
        finally:
            watching.dec()
            self._leave(group, watcher)

    def _open(self, board: Board) -> _Group:
        group = _Group(board)
        group.task = self._spawn(self._follow(group), f"ranking-feed-{board.id}")
        self._groups[board.id] = group
        return group

    def _leave(self, group: _Group, watcher: Watcher) -> None:
        group.watchers.discard(watcher)
        if group.watchers or self._groups.get(group.board.id) is not group:
            return

        del self._groups[group.board.id]
        group.task.cancel()
        log.debug("board_unwatched", board=group.board.id)

    def _spawn(self, coro, name: str) -> asyncio.Task:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _on_change(self, msg) -> None:
        try:
            change = game_pb2.BoardChange.FromString(msg.data)
        except DecodeError:
            log.warning("board_change_undecodable", subject=msg.subject, size=len(msg.data))
            return

        group = self._groups.get(change.board)
        if group is not None:
            group.wake.set()

    async def _follow(self, group: _Group) -> None:
        """Refresh the board when woken, at most once per coalescing window.

        The window is counted from the last refresh, not from the change: the first change of
        a board that was quiet for a window goes out at once, and a busy board still goes out
        only once per window.
        """
        loop = asyncio.get_running_loop()
        refreshed = -self._coalesce
        while True:
            await group.wake.wait()
            wait = refreshed + self._coalesce - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            group.wake.clear()
            refreshed = loop.time()

            try:
                await self._refresh(group)
            except Exception:
                # The tick sees the stale seq or period and wakes this board again.
                log.exception("board_refresh_failed", board=group.board.id)

    async def _refresh(self, group: _Group) -> None:
        async with group.lock:
            if not group.watchers:
                return
            period = group.board.period_at(self._clock())
            limit = max(watcher.limit for watcher in group.watchers)
            view = await self._store.top(group.board, period, limit)
            group.seq = view.seq

            # One message per distinct (limit, snapshot), shared by the watchers that match.
            built: dict[tuple[int, bool], ranking_service_pb2.WatchBoardResponse] = {}
            for watcher in list(group.watchers):
                key = (watcher.limit, watcher.period != period)
                if key not in built:
                    entries = view.entries[: watcher.limit]
                    built[key] = _response(group.board.id, period, view.seq, key[1], entries)
                watcher.offer(built[key])

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            self._wake_rolled_periods()
            try:
                await self._wake_missed_changes()
            except (RedisError, OSError) as exc:
                log.warning("board_seq_check_failed", error=repr(exc))

    def _wake_rolled_periods(self) -> None:
        now = self._clock()
        for group in self._groups.values():
            period = group.board.period_at(now)
            if any(watcher.period != period for watcher in group.watchers):
                group.wake.set()

    async def _wake_missed_changes(self) -> None:
        if not self._groups:
            return
        seqs = await self._store.seqs(list(self._groups))

        for board, seq in seqs.items():
            group = self._groups.get(board)
            if group is not None and seq != group.seq:
                group.wake.set()


def _response(
    board: str, period: str, seq: int, snapshot: bool, entries: list[ranking_pb2.Entry]
) -> ranking_service_pb2.WatchBoardResponse:
    return ranking_service_pb2.WatchBoardResponse(
        board=board, period=period, seq=seq, snapshot=snapshot, entries=entries
    )

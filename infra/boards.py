"""Board definitions, read from a TOML file studios edit, and the period an instant falls in.

Every service reads the same file (PODIUM_BOARDS_FILE, else the one shipped beside this module,
boards.toml), so a game worker stamping an action with its period and ranking reading the
current period can never disagree. docs/boards.md describes each field.

Period keys, all in UTC: "all" for a board that never resets; "2026-12-04" daily; "2026-W49"
weekly (ISO weeks, from Monday); "2026-12" monthly; and for a cron schedule the minute the
period began, "2026-12-04T06:00Z".
"""

import functools
import os
import re
import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from croniter import croniter

ALL_TIME = "all"
# Redis keeps scores as doubles, exact only up to 2**53; no board may hold more.
MAX_SCORE = 2**53 - 1
# Subscores never reach a double (they are ordered as text in Redis), so they may use 64 bits.
MAX_SUBSCORE = 2**63 - 1

ORDERS = ("desc", "asc")
OPERATORS = ("best", "set", "incr", "decr")
RANK_STYLES = ("ordinal", "competition", "dense")
RESETS = ("never", "daily", "weekly", "monthly")

DEFAULT_FILE = Path(__file__).with_name("boards.toml")
_BOARD_ID = re.compile(r"[a-z][a-z0-9_]{0,31}")
_DAY_MS = 86_400_000
_EPOCH = date(1970, 1, 1)


class BoardsConfigError(ValueError):
    """The boards file is missing, unreadable, or defines a board wrongly; names which."""


@dataclass(frozen=True)
class Board:
    """One leaderboard: how scores combine, how they order, when the board starts again."""

    id: str
    # "desc": higher scores first; "asc": lower first (times, strokes).
    order: str = "desc"
    # How a new score meets the stored one: keep the better (best), replace it (set), or add
    # to it (incr) or take from it (decr).
    operator: str = "incr"
    # "never", "daily", "weekly", "monthly", or a five-field cron expression (UTC).
    reset: str = "never"
    min_score: int = -MAX_SCORE
    max_score: int = MAX_SCORE
    # None, or the order of a second number compared when scores are equal.
    subscore: str | None = None
    # How equal entries are numbered: 1,2,3 (ordinal), 1,1,3 (competition), 1,1,2 (dense).
    ranks: str = "ordinal"
    # An action played in a period that ended longer ago than this is refused PERIOD_CLOSED.
    late_grace_seconds: int = 300

    @property
    def resets(self) -> bool:
        return self.reset != "never"

    def period_at(self, ts_ms: int) -> str:
        """The key of the period an instant (Unix ms) falls in."""
        return _period_key(self.reset, ts_ms)

    def period_span(self, period: str) -> tuple[int, int] | None:
        """(start, end) of a period in Unix ms, end excluded; None for an all-time board.

        ValueError if `period` is not a key this board would give any instant.
        """
        if self.reset == "never":
            if period != ALL_TIME:
                raise ValueError("not a period of this board")
            return None
        span = _span(self.reset, period)
        if span is None:
            raise ValueError("not a period of this board")
        return span

    def is_period(self, period: str) -> bool:
        try:
            self.period_span(period)
        except (ValueError, OverflowError):
            return False
        return True

    def closed_at_ms(self, period: str) -> int | None:
        """When actions played in the period stop being accepted; None if never."""
        span = self.period_span(period)
        return None if span is None else span[1] + self.late_grace_seconds * 1000


def load_boards(path: Path) -> dict[str, Board]:
    """Read and check a boards file; BoardsConfigError says what is wrong, and where."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise BoardsConfigError(f"cannot read boards file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BoardsConfigError(f"boards file {path} is not valid TOML: {exc}") from None

    tables = data.get("boards")
    if not isinstance(tables, dict) or not tables:
        raise BoardsConfigError(f"boards file {path} defines no [boards.<id>] table")
    return {board_id: _board(board_id, fields) for board_id, fields in tables.items()}


@functools.cache
def boards() -> dict[str, Board]:
    """The boards of this deployment, read once per process."""
    return load_boards(Path(os.environ.get("PODIUM_BOARDS_FILE") or DEFAULT_FILE))


def _board(board_id: str, fields: object) -> Board:
    where = f"board {board_id!r}"
    if not _BOARD_ID.fullmatch(board_id):
        raise BoardsConfigError(f"{where}: ids are 1-32 of a-z, 0-9 and _, from a letter")
    if not isinstance(fields, dict):
        raise BoardsConfigError(f"{where}: must be a table")
    unknown = set(fields) - (set(Board.__dataclass_fields__) - {"id"})
    if unknown:
        raise BoardsConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")

    board = Board(board_id, **fields)
    _check(board, where)
    return board


def _check(board: Board, where: str) -> None:
    def fail(message: str) -> None:
        raise BoardsConfigError(f"{where}: {message}")

    if board.order not in ORDERS:
        fail(f"order must be one of {', '.join(ORDERS)}")
    if board.operator not in OPERATORS:
        fail(f"operator must be one of {', '.join(OPERATORS)}")
    if board.ranks not in RANK_STYLES:
        fail(f"ranks must be one of {', '.join(RANK_STYLES)}")
    if board.subscore not in (None, *ORDERS):
        fail(f"subscore, when set, must be one of {', '.join(ORDERS)}")
    if board.reset not in RESETS and not _valid_cron(board.reset):
        fail(f"reset must be one of {', '.join(RESETS)} or a five-field cron expression")
    for name in ("min_score", "max_score", "late_grace_seconds"):
        if type(getattr(board, name)) is not int:
            fail(f"{name} must be an integer")
    if not -MAX_SCORE <= board.min_score <= board.max_score <= MAX_SCORE:
        fail("need -(2^53 - 1) <= min_score <= max_score <= 2^53 - 1")
    if board.late_grace_seconds < 0:
        fail("late_grace_seconds must not be negative")


def _valid_cron(expression: object) -> bool:
    return (
        isinstance(expression, str)
        and len(expression.split()) == 5
        and croniter.is_valid(expression)
    )


@functools.lru_cache(maxsize=1024)
def _utc_day(days_since_epoch: int) -> date:
    """A UTC date; cached, since workers ask for the same few days all day."""
    return _EPOCH + timedelta(days=days_since_epoch)


@functools.lru_cache(maxsize=1024)
def _cron_period(expression: str, minute: int) -> str:
    """The minute the schedule last fired at or before `minute` (minutes since the epoch)."""
    after = datetime.fromtimestamp((minute + 1) * 60, UTC)
    fired = croniter(expression, after).get_prev(datetime)
    return fired.strftime("%Y-%m-%dT%H:%MZ")


def _period_key(reset: str, ts_ms: int) -> str:
    if reset == "never":
        return ALL_TIME
    if reset == "daily":
        return _utc_day(ts_ms // _DAY_MS).isoformat()
    if reset == "weekly":
        year, week, _ = _utc_day(ts_ms // _DAY_MS).isocalendar()
        return f"{year}-W{week:02d}"
    if reset == "monthly":
        return _utc_day(ts_ms // _DAY_MS).isoformat()[:7]
    return _cron_period(reset, ts_ms // 60_000)


@functools.lru_cache(maxsize=4096)
def _span(reset: str, period: str) -> tuple[int, int] | None:
    """A resetting board's period as (start, end) Unix ms, None if no instant has that key.

    Cached: a game worker asks it for every action it decides, about the same few periods,
    and parsing dates costs more than the rest of deciding a simple action.
    """
    start = _period_start(reset, period)
    if start is None or _period_key(reset, start) != period:
        return None
    return start, _period_end(reset, start)


def _period_start(reset: str, period: str) -> int | None:
    """The first instant (Unix ms) a key would name, parsed by the shape of the reset."""
    try:
        if reset == "daily":
            start = datetime.strptime(period, "%Y-%m-%d")
        elif reset == "weekly":
            year, week = period.split("-W")
            monday = date.fromisocalendar(int(year), int(week), 1)
            start = datetime(monday.year, monday.month, monday.day)
        elif reset == "monthly":
            start = datetime.strptime(period, "%Y-%m")
        else:
            start = datetime.strptime(period, "%Y-%m-%dT%H:%MZ")
    except ValueError:
        return None
    return int(start.replace(tzinfo=UTC).timestamp() * 1000)


def _period_end(reset: str, start_ms: int) -> int:
    start = datetime.fromtimestamp(start_ms / 1000, UTC)
    if reset == "daily":
        end = start + timedelta(days=1)
    elif reset == "weekly":
        end = start + timedelta(weeks=1)
    elif reset == "monthly":
        end = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    else:
        end = croniter(reset, start).get_next(datetime)
    return int(end.timestamp() * 1000)

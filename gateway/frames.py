"""Parse and check the frames a player sends (protocol v1, docs/protocol.md).

JSON text frames are decoded here; binary frames are decoded to the same dict shape by
gateway/codec.py and checked by the same parse_fields.

Parsing is pure: a frame becomes a typed request or a FrameError carrying a stable code and,
when the frame had one, the client's "id" so that the error can be matched to its request.
"""

from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.views import VIEWS, player_list
from infra.boards import boards
from infra.ids import is_uuid_text

MAX_ID_CHARS = 64
MAX_ACTION_NAME_CHARS = 64
MAX_HASH_CHARS = 128
MAX_LIMIT = 100
DEFAULT_LIMIT = 10
MAX_RADIUS = 50
DEFAULT_RADIUS = 5
MAX_ROWS = 2 * MAX_RADIUS + 1
# Longer than any period key a board gives ("2026-12-04T06:00Z" is 17).
MAX_PERIOD_CHARS = 32


class FrameError(Exception):
    """A frame the gateway will not act on; answered with an error frame.

    `violation` is False for a well-formed frame that cannot be served right now (too many
    pending actions, queue unavailable): those never count toward closing the socket.
    """

    def __init__(
        self,
        code: str,
        message: str,
        frame_id: Any = None,
        violation: bool = True,
        retry_after_ms: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.frame_id = frame_id
        self.violation = violation
        # When to try again, for a frame refused only for now (rate limits).
        self.retry_after_ms = retry_after_ms


@dataclass(frozen=True)
class ActionFrame:
    frame_id: Any
    action_id: str
    action: str
    params: dict
    state_hash: str
    ts: int


@dataclass(frozen=True)
class SubscribeFrame:
    """A subscription to one view of a board; fields of other views keep their defaults.

    `seq` (and `period`) name the last frame a reconnecting client saw, if it says.
    """

    frame_id: Any
    board: str
    view: str
    limit: int = DEFAULT_LIMIT
    radius: int = DEFAULT_RADIUS
    rows: int = 0
    players: tuple[str, ...] = ()
    seq: int | None = None
    period: str | None = None


@dataclass(frozen=True)
class UnsubscribeFrame:
    """Leave one view of a board, or every view of it when `view` is None."""

    frame_id: Any
    board: str
    view: str | None = None


@dataclass(frozen=True)
class PingFrame:
    frame_id: Any


@dataclass
class _Fields:
    """Typed access to a frame's fields; each getter raises FrameError with the right code."""

    data: dict
    frame_id: Any = field(default=None)

    def get(self, name: str, kind: type, required: bool = True) -> Any:
        if name not in self.data:
            if required:
                raise FrameError("MISSING_FIELD", f"field '{name}' is required", self.frame_id)
            return None
        value = self.data[name]
        # JSON true/false decode to bool, which Python counts as an int; a count is never one.
        if not isinstance(value, kind) or isinstance(value, bool):
            raise FrameError("INVALID_FIELD", f"field '{name}' has the wrong type", self.frame_id)
        return value


def parse_frame(text: str) -> ActionFrame | SubscribeFrame | UnsubscribeFrame | PingFrame:
    """Turn one text frame into a request, or raise FrameError."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise FrameError("INVALID_JSON", "frame is not valid JSON") from None
    if not isinstance(data, dict):
        raise FrameError("INVALID_JSON", "frame must be a JSON object")
    return parse_fields(data)


def parse_fields(data: dict) -> ActionFrame | SubscribeFrame | UnsubscribeFrame | PingFrame:
    """Check a frame already decoded to the JSON shape, so both encodings share one validator."""
    fields = _Fields(data)
    fields.frame_id = _frame_id(data)
    kind = fields.get("type", str)
    parser = _PARSERS.get(kind)
    if parser is None:
        raise FrameError("UNKNOWN_TYPE", "unknown frame type", fields.frame_id)
    return parser(fields)


def _frame_id(data: dict) -> Any:
    frame_id = data.get("id")
    if frame_id is None:
        return None
    valid_int = isinstance(frame_id, int) and not isinstance(frame_id, bool)
    valid_str = isinstance(frame_id, str) and len(frame_id) <= MAX_ID_CHARS
    if not (valid_int or valid_str):
        raise FrameError("INVALID_FIELD", "field 'id' must be a short string or an integer")
    return frame_id


def _parse_action(fields: _Fields) -> ActionFrame:
    action_id = fields.get("action_id", str)
    action = fields.get("action", str)
    params = fields.get("params", dict, required=False)
    state_hash = fields.get("state_hash", str)
    ts = fields.get("ts", int, required=False)

    if not is_uuid_text(action_id):
        raise FrameError("INVALID_FIELD", "'action_id' must be a UUID", fields.frame_id)
    if not 0 < len(action) <= MAX_ACTION_NAME_CHARS:
        raise FrameError("INVALID_FIELD", "'action' must be 1-64 characters", fields.frame_id)
    if len(state_hash) > MAX_HASH_CHARS:
        raise FrameError("INVALID_FIELD", "'state_hash' is too long", fields.frame_id)
    if ts is not None and not 0 <= ts < 2**63:
        raise FrameError("INVALID_FIELD", "'ts' must be Unix milliseconds", fields.frame_id)
    return ActionFrame(fields.frame_id, action_id, action, params or {}, state_hash, ts or 0)


def _parse_subscribe(fields: _Fields) -> SubscribeFrame:
    board = _board(fields)
    view = _view(fields) or "top"
    seq = fields.get("seq", int, required=False)
    period = fields.get("period", str, required=False)

    if seq is not None and not 0 <= seq < 2**63:
        raise FrameError("INVALID_FIELD", "'seq' must be a board seq", fields.frame_id)
    if period is not None and (seq is None or len(period) > MAX_PERIOD_CHARS):
        raise FrameError("INVALID_FIELD", "'period' goes with 'seq', as sent", fields.frame_id)
    if view == "around":
        shape = _around_fields(fields)
    elif view == "players":
        shape = {"players": _players_field(fields)}
    else:
        shape = {"limit": _ranged(fields, "limit", 1, MAX_LIMIT, DEFAULT_LIMIT)}
    return SubscribeFrame(fields.frame_id, board, view, seq=seq, period=period, **shape)


def _around_fields(fields: _Fields) -> dict:
    if "radius" in fields.data and "rows" in fields.data:
        raise FrameError("INVALID_FIELD", "give 'radius' or 'rows', not both", fields.frame_id)
    radius = _ranged(fields, "radius", 0, MAX_RADIUS, DEFAULT_RADIUS)
    rows = _ranged(fields, "rows", 1, MAX_ROWS, 0)
    return {"radius": radius, "rows": rows}


def _players_field(fields: _Fields) -> tuple[str, ...]:
    ids = fields.get("players", list)
    if not all(isinstance(player_id, str) for player_id in ids):
        raise FrameError("INVALID_FIELD", "'players' must be a list of strings", fields.frame_id)
    try:
        return player_list(ids)
    except ValueError as error:
        raise FrameError("INVALID_FIELD", f"'players': {error}", fields.frame_id) from None


def _ranged(fields: _Fields, name: str, low: int, high: int, default: int) -> int:
    """An optional integer field within [low, high]; `default` when absent."""
    value = fields.get(name, int, required=False)
    if value is None:
        return default
    if not low <= value <= high:
        raise FrameError("INVALID_FIELD", f"'{name}' must be {low}-{high}", fields.frame_id)
    return value


def _parse_unsubscribe(fields: _Fields) -> UnsubscribeFrame:
    return UnsubscribeFrame(fields.frame_id, _board(fields), _view(fields))


def _parse_ping(fields: _Fields) -> PingFrame:
    return PingFrame(fields.frame_id)


def _view(fields: _Fields) -> str | None:
    view = fields.get("view", str, required=False)
    if view is not None and view not in VIEWS:
        raise FrameError("UNSUPPORTED_VIEW", "views are top, around and players", fields.frame_id)
    return view


def _board(fields: _Fields) -> str:
    board = fields.get("board", str)
    if board not in boards():
        raise FrameError("UNKNOWN_BOARD", "no such board", fields.frame_id)
    return board


_PARSERS = {
    "action": _parse_action,
    "subscribe": _parse_subscribe,
    "unsubscribe": _parse_unsubscribe,
    "ping": _parse_ping,
}

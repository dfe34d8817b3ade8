"""Board views as players see them: entries in REST bodies and `board` frames, and what one
subscription watches.

REST and WebSocket share these encoders so that an entry reads the same on either path.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from infra.ids import canonical_uuid

if TYPE_CHECKING:
    # Only for the annotation: wire encodes through the codec, which imports frames, which
    # imports this module.
    from gateway.wire import Frame

VIEWS = ("top", "around", "players")
MAX_PLAYERS = 100

# Hands a subscriber a frame of (board, view); `keep` marks one it must receive as such (a
# snapshot, or the answer to its subscribe) rather than have replaced by a newer frame.
Deliver = Callable[[tuple[str, str], "Frame", bool], None]


@dataclass(frozen=True)
class ViewSpec:
    """What a subscription watches of a board. Equal specs are read and encoded once,
    however many sockets watch them."""

    view: str
    # top: entries from rank 1.
    limit: int = 0
    # around: the centre player, and either a radius or a number of rows (rows wins if set).
    player_id: str = ""
    radius: int = 0
    rows: int = 0
    # players: the listed players, ranked among themselves.
    players: tuple[str, ...] = ()


@dataclass(frozen=True)
class Resume:
    """The last board frame a reconnecting client saw: its seq and, if given, its period."""

    seq: int
    period: str | None = None

    def unchanged(self, seq: int, period: str) -> bool:
        """True when a view at (seq, period) is what the client already has."""
        return self.seq == seq and self.period in (None, period)


def player_list(ids: list[str]) -> tuple[str, ...]:
    """1-100 distinct player ids, canonical; ValueError saying what is wrong.

    Two spellings of one id (upper and lower case) count as a repeat.
    """
    if not 1 <= len(ids) <= MAX_PLAYERS:
        raise ValueError(f"list 1-{MAX_PLAYERS} player ids")
    canonical = tuple(canonical_uuid(player_id) for player_id in ids)
    if len(set(canonical)) != len(canonical):
        raise ValueError("player ids must not repeat")
    return canonical


def entry_body(entry, board_rank: bool = False) -> dict:
    """One ranked entry (a ranking Entry); `board_rank` only for lists ranked among themselves."""
    body = {
        "rank": entry.rank,
        "player_id": entry.player_id,
        "username": entry.username,
        "score": entry.score,
        "subscore": entry.subscore,
        "metadata": orjson.loads(entry.metadata_json) if entry.metadata_json else None,
    }
    if board_rank:
        body["board_rank"] = entry.board_rank
    return body


def board_frame(
    board: str,
    view: str,
    period: str,
    seq: int,
    snapshot: bool,
    entries,
    frame_id: Any = None,
) -> dict:
    """A complete view as the body of a protocol `board` frame (gateway.wire.Frame)."""
    frame = {
        "type": "board",
        "board": board,
        "view": view,
        "period": period,
        "seq": seq,
        "snapshot": snapshot,
        "entries": [entry_body(entry, view == "players") for entry in entries],
    }
    if frame_id is not None:
        frame["id"] = frame_id
    return frame

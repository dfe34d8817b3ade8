"""Board views as players see them: entries in REST bodies, and lists of players to rank."""

import orjson

from infra.ids import canonical_uuid

MAX_PLAYERS = 100


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

"""How a score a ruleset submits meets a player's stored standing, by the board's operator.

Pure functions: the batch decider (game.apply) calls them with the standings it read under the
players' locks, in the order the actions were sent.
"""

from typing import Any

import orjson

from game.rules.base import Outcome, Refusal, Submission
from infra.boards import MAX_SCORE, MAX_SUBSCORE, Board
from infra.leaderboard import Standing

# Metadata rides along with every read of a board, so it is kept small.
MAX_METADATA_BYTES = 1024


def out_of_range() -> Refusal:
    return Refusal("SCORE_OUT_OF_RANGE", "the resulting score is out of range for the board")


def submissions_of(outcome: Outcome) -> dict[str, Submission]:
    """Every board the outcome sends a score to; TypeError for anything malformed, which is a
    bug of the ruleset, not of the action."""
    if type(outcome.score) is not int:
        raise TypeError("ruleset returned a score that is not an int")
    if abs(outcome.score) > MAX_SCORE:
        raise out_of_range()

    submitted = {}
    for board_id, delta in outcome.board_deltas.items():
        if type(delta) is not int:
            raise TypeError(f"ruleset returned a bad board delta for {board_id!r}")
        submitted[board_id] = Submission(delta)
    for board_id, submission in outcome.submissions.items():
        if board_id in submitted or not isinstance(submission, Submission):
            raise TypeError(f"ruleset returned a bad submission for {board_id!r}")
        if type(submission.score) is not int or type(submission.subscore) is not int:
            raise TypeError(f"ruleset submitted a score that is not an int to {board_id!r}")
        submitted[board_id] = submission
    return submitted


def metadata_text(metadata: dict[str, Any] | None) -> str | None:
    """The metadata as stored: compact JSON, or None."""
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise TypeError("ruleset returned metadata that is not a JSON object")
    text = orjson.dumps(metadata, option=orjson.OPT_SORT_KEYS).decode()
    if len(text.encode()) > MAX_METADATA_BYTES:
        raise Refusal("METADATA_TOO_LARGE", "the run's metadata is larger than 1 KiB")
    return text


def combine(
    board: Board,
    old: Standing | None,
    submission: Submission,
    player_id: str,
    reached_ms: int,
    version: int,
) -> Standing | None:
    """The standing after the submission, or None when it changes nothing.

    The reached time moves only when the score or subscore does: equal standings rank by who
    reached them first.
    """
    if abs(submission.score) > MAX_SCORE or abs(submission.subscore) > MAX_SUBSCORE:
        raise out_of_range()
    subscore = submission.subscore if board.subscore else 0
    metadata = metadata_text(submission.metadata)

    if board.operator in ("incr", "decr"):
        sign = 1 if board.operator == "incr" else -1
        if not submission.score and not subscore and metadata is None:
            return None
        score = (old.score if old else 0) + sign * submission.score
        subscore = (old.subscore if old else 0) + sign * subscore
        if metadata is None and old is not None:
            metadata = old.metadata
    else:
        score = submission.score
        if board.operator == "best" and old is not None:
            if not better(board, (score, subscore), (old.score, old.subscore)):
                return None

    if not board.min_score <= score <= board.max_score or abs(subscore) > MAX_SUBSCORE:
        raise out_of_range()
    moved = old is None or (score, subscore) != (old.score, old.subscore)
    reached = reached_ms if moved else old.reached_ms
    return Standing(player_id, score, subscore, reached, version, metadata)


def better(board: Board, a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether (score, subscore) `a` ranks strictly above `b` on the board."""
    if a[0] != b[0]:
        return a[0] > b[0] if board.order == "desc" else a[0] < b[0]
    if board.subscore is None or a[1] == b[1]:
        return False
    return a[1] > b[1] if board.subscore == "desc" else a[1] < b[1]

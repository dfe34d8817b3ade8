"""The ruleset interface: how a game turns one player action into a new state and a score.

A ruleset is an object with four members:

- `name`: the name the worker loads it by (setting PODIUM_RULESET).
- `primary_board`: the id of the board (one of infra.boards.boards()) whose score the player
  is told in every ActionResult.
- `initial_state()`: the state of a player who has never played, a JSON object.
- `apply(state, action, params)`: decide one action. It returns an Outcome or raises Refusal.
- `score_of(state)`: the score to report alongside a state when nothing was applied (a stale
  state hash or a refusal); it must agree with Outcome.score for the same state.

`apply` must be pure: no I/O, no clock, no randomness, and no change to the `state` it was
given. The worker calls it inside a database transaction and may call it again for a
redelivered message, and an audit can replay a player's actions to check the stored state hash,
so the same inputs must always give the same outcome. Anything the rules need to know (the
time an action was played, for example) must come from the params.

`params` is the JSON object the client sent, unchecked: `apply` validates it completely before
deciding and raises Refusal("INVALID_PARAMS", ...) on anything it does not expect. Nothing is
written for a refused action, but the refusal itself is recorded, so a retry of the same action
id gets the same refusal.

States must be JSON objects built from str, int, float, bool, None, list and dict, because they
are stored and hashed as their canonical JSON encoding (see game.state).
"""

from dataclasses import dataclass, field
from typing import Any, Protocol

# Redis keeps scores as doubles, exact only up to 2**53; the worker refuses any board score or
# result score beyond this with SCORE_OUT_OF_RANGE rather than store a rounded one.
from infra.boards import MAX_SCORE

__all__ = ["MAX_SCORE", "Outcome", "Refusal", "Ruleset", "Submission"]


class Refusal(Exception):
    """The ruleset will not apply this action; `code` is a stable UPPER_SNAKE string.

    The client sees both the code and the message, so the message must be a short, fixed
    sentence that reveals nothing internal.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Submission:
    """A score sent to one board; the board's operator decides what it does there.

    On an `incr` board it is added to the stored score (and subscore), on `decr` taken from it,
    on `set` it replaces it, and on `best` it replaces it only if better by the board's order
    (score first, then subscore). `metadata`, a small JSON object (at most 1 KiB encoded), is
    kept with the standing it came with: on `best`, that of the run that won.
    """

    score: int
    subscore: int = 0
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class Outcome:
    """What an applied action does.

    `state` replaces the player's state. `board_deltas` maps board ids to integers, each a
    Submission of that score: the short form for `incr` boards, where it is the amount added;
    a 0 changes nothing and is skipped. `submissions` maps board ids to Submissions. Both count
    in the period the action was received in, and a board may appear in only one of them.
    `score` is the score the player is told.
    """

    state: dict[str, Any]
    board_deltas: dict[str, int]
    score: int
    submissions: dict[str, Submission] = field(default_factory=dict)


class Ruleset(Protocol):
    """A game's rules; see the module docstring for the contract."""

    name: str
    primary_board: str

    def initial_state(self) -> dict[str, Any]: ...

    def apply(self, state: dict[str, Any], action: str, params: dict[str, Any]) -> Outcome: ...

    def score_of(self, state: dict[str, Any]) -> int: ...

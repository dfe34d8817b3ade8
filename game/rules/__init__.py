"""Rulesets: pure functions that turn a state, an action and its params into a new state.

game.rules.base holds the interface every ruleset follows; load_ruleset picks one by name.
"""

from game.rules.base import Ruleset
from game.rules.default import DefaultRuleset
from infra.boards import BOARDS

_RULESETS: dict[str, type] = {"default": DefaultRuleset}


def load_ruleset(name: str) -> Ruleset:
    """Return the ruleset called `name`; an unknown name or board fails at start, not later."""
    factory = _RULESETS.get(name)
    if factory is None:
        known = ", ".join(sorted(_RULESETS))
        raise ValueError(f"unknown ruleset {name!r}; known rulesets: {known}")

    ruleset = factory()
    if ruleset.primary_board not in BOARDS:
        raise ValueError(f"ruleset {name!r} names an unknown board {ruleset.primary_board!r}")
    return ruleset

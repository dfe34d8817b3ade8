"""Rulesets: pure functions that turn a state, an action and its params into a new state.

game.rules.base holds the interface every ruleset follows; load_ruleset picks one by the
PODIUM_RULESET setting: the name of a ruleset shipped here, or "package.module:attribute" for a
studio's own, importable by the worker.
"""

import importlib

from game.rules.base import Ruleset
from game.rules.default import DefaultRuleset
from infra.boards import boards

_RULESETS: dict[str, type] = {"default": DefaultRuleset}
_MEMBERS = ("initial_state", "apply", "score_of")


def load_ruleset(name: str) -> Ruleset:
    """Return the ruleset `name` names; a bad name or ruleset fails at start, not later."""
    factory = _import(name) if ":" in name else _RULESETS.get(name)
    if factory is None:
        known = ", ".join(sorted(_RULESETS))
        raise ValueError(f"unknown ruleset {name!r}; known: {known} or package.module:attribute")

    try:
        ruleset = factory()
    except Exception as exc:
        raise ValueError(f"ruleset {name!r} could not be made: {exc}") from None
    if not all(callable(getattr(ruleset, member, None)) for member in _MEMBERS):
        raise ValueError(f"ruleset {name!r} lacks one of {', '.join(_MEMBERS)}")
    if getattr(ruleset, "primary_board", None) not in boards():
        raise ValueError(f"ruleset {name!r} names an unknown primary board")
    return ruleset


def _import(path: str):
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import ruleset module {module_name!r}: {exc}") from None
    return getattr(module, attribute, None)

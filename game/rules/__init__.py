"""Rulesets: pure functions that turn a state, an action and its params into a new state."""

"""A player's state as stored and sent: canonical JSON text, its hash, and what GetState reads.

The hash is part of the contract with clients (they quote it with each action) and with audits
(a replay of a player's actions must reproduce it), so it is computed over one canonical
encoding: orjson with sorted keys, sha256, the first 32 hex characters.
"""

import hashlib
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from game import store
from game.rules.base import Ruleset

HASH_HEX_CHARS = 32


@dataclass(frozen=True)
class EncodedState:
    """A state as canonical JSON text, with the hash of exactly that text."""

    json: str
    hash: str


def encode_state(state: dict[str, Any]) -> EncodedState:
    """Encode a state canonically; equal states give equal text and hash."""
    data = orjson.dumps(state, option=orjson.OPT_SORT_KEYS)
    return EncodedState(data.decode(), hashlib.sha256(data).hexdigest()[:HASH_HEX_CHARS])


def state_hash(state: dict[str, Any]) -> str:
    """Hash of a state, as clients quote it."""
    return encode_state(state).hash


@dataclass(frozen=True)
class PlayerState:
    """What GetState reports: the state, the hash to quote, and the applied-action count."""

    json: str
    hash: str
    version: int


async def current_state(pool: asyncpg.Pool, ruleset: Ruleset, player_id: str) -> PlayerState:
    """The player's stored state, or the initial one (version 0) for a player never seen.

    Nothing is written for an unknown player: the first action creates the row.
    """
    stored = await store.fetch_player_state(pool, player_id)
    if stored is None:
        initial = encode_state(ruleset.initial_state())
        return PlayerState(initial.json, initial.hash, 0)

    state = orjson.loads(stored.json)
    return PlayerState(encode_state(state).json, stored.hash, stored.version)

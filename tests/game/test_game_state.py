"""The state hash follows the contract every service and client relies on."""

import hashlib

import orjson

from game.state import encode_state, state_hash


def test_hash_is_sha256_of_sorted_orjson_truncated_to_32_hex():
    state = {"total": 5, "plays": 1}

    digest = state_hash(state)

    expected = hashlib.sha256(orjson.dumps(state, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert digest == expected[:32]


def test_key_order_does_not_change_text_or_hash():
    first = encode_state({"total": 5, "plays": 1, "nested": {"b": 1, "a": 2}})

    second = encode_state({"nested": {"a": 2, "b": 1}, "plays": 1, "total": 5})

    assert first == second
    assert first.json == '{"nested":{"a":2,"b":1},"plays":1,"total":5}'


def test_different_states_have_different_hashes():
    assert state_hash({"total": 5, "plays": 1}) != state_hash({"total": 6, "plays": 1})

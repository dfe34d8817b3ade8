"""A broadcast frame is encoded once per encoding, however many sockets send it."""

import orjson

from gateway import codec
from gateway.wire import Frame


def test_each_encoding_is_made_once_and_reused():
    frame = Frame({"type": "pong", "id": 7})

    text, binary = frame.json(), frame.binary()

    assert frame.json() is text and frame.binary() is binary
    assert orjson.loads(text) == {"type": "pong", "id": 7}
    assert codec.decode_server(binary) == {"type": "pong", "id": "7"}


def test_an_encoding_never_asked_for_is_never_made():
    frame = Frame({"type": "no such type"})

    assert orjson.loads(frame.json()) == {"type": "no such type"}

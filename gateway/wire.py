"""A frame on its way to sockets, in whichever encodings those sockets speak.

A board view goes to thousands of sockets; some speak JSON and some protobuf. The frame is
built once as a dict and encoded at most once per encoding, on first use, so a broadcast
costs one orjson call and one protobuf serialization however many sockets take it.
"""

import orjson

from gateway import codec


class Frame:
    """One server frame (a dict of the JSON protocol's shape) and its cached encodings."""

    __slots__ = ("body", "_json", "_binary")

    def __init__(self, body: dict) -> None:
        self.body = body
        self._json: bytes | None = None
        self._binary: bytes | None = None

    def json(self) -> bytes:
        """The JSON text frame's payload, UTF-8 encoded."""
        if self._json is None:
            self._json = orjson.dumps(self.body)
        return self._json

    def binary(self) -> bytes:
        if self._binary is None:
            self._binary = codec.encode(self.body)
        return self._binary

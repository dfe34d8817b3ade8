"""A frame on its way to sockets, in whichever encodings those sockets speak.

A board view goes to thousands of sockets; some speak JSON and some protobuf. The frame is
built once as a dict and encoded at most once per encoding, on first use, so a broadcast
costs one orjson call and one protobuf serialization however many sockets take it.

Going further, the whole WebSocket frame (header and payload) is built once too: frames a
server sends are never masked, and the gateway does not compress, so the bytes on the wire are
the same for every socket of one encoding, and a socket with nothing queued can be handed them
with a single transport write (gateway.ws).
"""

import orjson

from gateway import codec

_TEXT, _BINARY = 0x1, 0x2
_FIN = 0x80


def ws_frame(opcode: int, payload: bytes) -> bytes:
    """One final, unmasked WebSocket frame (RFC 6455, section 5.2)."""
    size = len(payload)
    if size < 126:
        header = bytes((_FIN | opcode, size))
    elif size < 1 << 16:
        header = bytes((_FIN | opcode, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((_FIN | opcode, 127)) + size.to_bytes(8, "big")
    return header + payload


class Frame:
    """One server frame (a dict of the JSON protocol's shape) and its cached encodings."""

    __slots__ = ("body", "_json", "_binary", "_wire")

    def __init__(self, body: dict) -> None:
        self.body = body
        self._json: bytes | None = None
        self._binary: bytes | None = None
        # (text frame, binary frame) as they go on the wire.
        self._wire: list[bytes | None] = [None, None]

    def json(self) -> bytes:
        """The JSON text frame's payload, UTF-8 encoded."""
        if self._json is None:
            self._json = orjson.dumps(self.body)
        return self._json

    def binary(self) -> bytes:
        if self._binary is None:
            self._binary = codec.encode(self.body)
        return self._binary

    def wire(self, binary: bool) -> bytes:
        """The complete WebSocket frame for a socket of that encoding."""
        cached = self._wire[binary]
        if cached is None:
            cached = ws_frame(_BINARY, self.binary()) if binary else ws_frame(_TEXT, self.json())
            self._wire[binary] = cached
        return cached

"""A broadcast frame is encoded once per encoding, however many sockets send it."""

import orjson
import pytest
from aiohttp import WSMsgType
from aiohttp.http_websocket import WebSocketWriter

from gateway import codec
from gateway.wire import Frame, ws_frame


def test_each_encoding_is_made_once_and_reused():
    frame = Frame({"type": "pong", "id": 7})

    text, binary = frame.json(), frame.binary()

    assert frame.json() is text and frame.binary() is binary
    assert orjson.loads(text) == {"type": "pong", "id": 7}
    assert codec.decode_server(binary) == {"type": "pong", "id": "7"}


def test_an_encoding_never_asked_for_is_never_made():
    frame = Frame({"type": "no such type"})

    assert orjson.loads(frame.json()) == {"type": "no such type"}


class _Transport:
    """What aiohttp's writer writes, kept."""

    def __init__(self) -> None:
        self.written = b""

    def write(self, data) -> None:
        self.written += bytes(data)

    def writelines(self, chunks) -> None:
        for chunk in chunks:
            self.write(chunk)

    def is_closing(self) -> bool:
        return False


class _Protocol:
    async def _drain_helper(self) -> None:
        """The writer awaits this past its buffer limit; nothing here ever needs draining."""


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 100_000])
@pytest.mark.parametrize("opcode", [WSMsgType.TEXT, WSMsgType.BINARY])
async def test_a_built_frame_is_byte_for_byte_what_aiohttp_sends(size, opcode):
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    transport = _Transport()
    writer = WebSocketWriter(_Protocol(), transport, use_mask=False, compress=0)

    await writer.send_frame(payload, opcode)

    assert ws_frame(int(opcode), payload) == transport.written


def test_the_wire_frame_of_each_encoding_is_built_once():
    frame = Frame({"type": "pong", "id": 7})

    text, binary = frame.wire(False), frame.wire(True)

    assert frame.wire(False) is text and frame.wire(True) is binary
    assert text == ws_frame(0x1, frame.json()) and binary == ws_frame(0x2, frame.binary())

"""Sockets whose readers stop: one that never reads while the board changes as fast as twenty
players can change it is closed with 1013, nobody else waits on it, and gateway memory stays
where it was.
"""

import asyncio
import base64
import os
import socket
import time
from urllib.parse import urlparse

import orjson

STACK_ENV = {
    "PODIUM_SEND_STALL_SECONDS": "1",
    "PODIUM_COALESCE_MS": "20",
    "PODIUM_ACTION_RATE_PER_SECOND": "1000",
    "PODIUM_ACTION_BURST": "1000",
}


def _masked_text(payload: bytes) -> bytes:
    """One client text frame (clients must mask theirs)."""
    mask = os.urandom(4)
    size = len(payload)
    head = bytes([0x81, 0x80 | size]) if size < 126 else bytes([0x81, 0xFE]) + size.to_bytes(2)
    return head + mask + bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))


def _stuck_socket(url: str, token: str, frames: list[dict]) -> socket.socket:
    """A WebSocket that sends its frames and then never reads, with a tiny receive window so
    that the gateway's writes back up at once."""
    address = urlparse(url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((address.hostname, address.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /v1/ws HTTP/1.1\r\nHost: {address.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {token}\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    for frame in frames:
        sock.sendall(_masked_text(orjson.dumps(frame)))
    return sock


def _server_side(server_port: int, client_port: int) -> str | None:
    """The TCP state (hex, as /proc/net/tcp gives it) of the server's side of one loopback
    connection, or None once the kernel holds nothing of it."""
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            local, remote, state = line.split()[1:4]
            ports = (int(local.split(":")[1], 16), int(remote.split(":")[1], 16))
            if ports == (server_port, client_port):
                return state
    return None


async def _until_closed(stack, player_id: str) -> None:
    """Wait until the gateway logged the player's socket as closed, and a moment more."""
    for _ in range(300):
        if any(
            '"socket_closed"' in line and player_id in line
            for line in stack.log_path.read_text().splitlines()
        ):
            await asyncio.sleep(0.5)
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the stuck socket was never closed")


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def _play_until(player, stop: asyncio.Event) -> tuple[int, int]:
    """Play one point at a time until told to stop; (actions played, final score)."""
    played, score = 0, 0
    while not stop.is_set():
        score = (await player.play("score", {"points": 1}))["score"]
        played += 1
    return played, score


async def test_a_reader_that_stops_is_closed_and_holds_up_nobody(players, stack):
    """Twenty players change the board as fast as they can; one socket watching three views
    of it never reads. It is closed with 1013; a socket that reads sees every change through
    to the last; the gateway's memory stays where it was."""
    runners = [await players() for _ in range(20)]
    watcher, stuck_player = runners[0], await players(connect=False)
    views = [
        {"type": "subscribe", "board": "global", "view": "top", "limit": 100},
        {"type": "subscribe", "board": "global", "view": "around", "radius": 50},
        {
            "type": "subscribe",
            "board": "global",
            "view": "players",
            "players": [runner.player_id for runner in runners],
        },
    ]
    await watcher.send(views[0])
    await watcher.board("top")
    gateway = stack.pid_of("gateway")
    rss_before = _rss_kib(gateway)
    stuck = _stuck_socket(stack.url, stuck_player.access_token, views)
    stack_port, stuck_port = urlparse(stack.url).port, stuck.getsockname()[1]
    try:
        stop = asyncio.Event()
        playing = [asyncio.create_task(_play_until(runner, stop)) for runner in runners]
        started = time.monotonic()
        await asyncio.sleep(4)
        stop.set()
        outcomes = await asyncio.gather(*playing)
        await _until_closed(stack, stuck_player.player_id)
        # Checked while the client still holds its end: the gateway must have let go.
        held = _server_side(stack_port, stuck_port)
    finally:
        stuck.close()
    rate = sum(played for played, _ in outcomes) / (time.monotonic() - started)
    print(f"board changes per second while one reader was stuck: {rate:.0f}")

    total = sum(score for _, score in outcomes)
    final = await watcher.board(
        "top", until=lambda frame: sum(e["score"] for e in frame["entries"]) == total
    )
    assert len(final["entries"]) == 20
    closing = [
        orjson.loads(line)
        for line in stack.log_path.read_text().splitlines()
        if '"socket_closing"' in line and stuck_player.player_id in line
    ]
    assert [(entry["code"], entry["reason"]) for entry in closing] == [(1013, "reader stuck")]
    # Not even half-open (FIN_WAIT1 with a send queue the client never takes): reset and gone.
    assert held is None, f"the gateway's side of the stuck connection is still in state {held}"
    assert _rss_kib(gateway) - rss_before < 64 * 1024

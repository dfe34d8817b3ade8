"""One player's WebSocket: authenticate at the upgrade, then read frames and write answers.

Reading and writing are separate tasks. The read loop acts on one frame at a time, so a
player's actions reach JetStream in the order they were sent; the writer drains the socket's
outbox, so a slow reader only ever waits on itself.

When the server closes a socket (session ended, bad client), the read loop is stopped between
frames and the handler closes the socket itself: aiohttp's close() then waits for the client's
answering close frame. Called while another task is reading, it drops the connection at once,
and the client, whose answer then fails, sees 1006 instead of our close code.
"""

import asyncio
import contextlib
import socket
import struct
from typing import Any

import structlog
from aiohttp import WSCloseCode, WSMsgType, web
from podium.game.v1 import game_pb2
from structlog.contextvars import bound_contextvars

from gateway import actions, codec, metrics
from gateway.context import CONTEXT, Context
from gateway.errors import error_response, podium_error_response
from gateway.frames import (
    ActionFrame,
    FrameError,
    PingFrame,
    SubscribeFrame,
    UnsubscribeFrame,
    parse_fields,
    parse_frame,
)
from gateway.identity import authenticate_socket
from gateway.origins import origin_allowed
from gateway.outbox import Outbox
from gateway.results import error_frame, result_frame, welcome_frame
from gateway.subscriptions import Subscriptions, spec_of
from gateway.views import Resume
from gateway.wire import Frame
from infra.errors import PodiumError

log = structlog.get_logger(__name__)

# WebSocket subprotocols a client may offer; without either it gets JSON.
JSON_PROTOCOL = "podium.v1.json"
PROTOBUF_PROTOCOL = "podium.v1.proto"
# How long a closing socket waits for the client's close frame (and for its own to be sent).
CLOSE_TIMEOUT_SECONDS = 2.0
MAX_PENDING_ACTIONS = 256
# A board frame goes straight to a socket's transport only while less than this is buffered
# there; past it, frames wait in the outbox, where only the latest of each view is kept.
WRITE_THROUGH_LIMIT = 16 * 1024
# SO_LINGER on, for 0 seconds: close() resets the connection instead of sending what is queued.
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)
# How long a draining gateway waits for a socket's pending results before closing it anyway.
DRAIN_RESULTS_SECONDS = 5.0

_FRAMES = {
    ActionFrame: metrics.FRAMES.labels("action"),
    SubscribeFrame: metrics.FRAMES.labels("subscribe"),
    UnsubscribeFrame: metrics.FRAMES.labels("unsubscribe"),
    PingFrame: metrics.FRAMES.labels("ping"),
}


async def websocket(request: web.Request) -> web.StreamResponse:
    """GET /v1/ws: refuse before the upgrade unless a ticket or bearer token names a live
    session, the page asking is one we trust, and this gateway is not draining."""
    context = request.app[CONTEXT]
    settings = context.settings
    ws = web.WebSocketResponse(
        protocols=(JSON_PROTOCOL, PROTOBUF_PROTOCOL),
        # Compressed frames would differ per socket (each has its own deflate context), and a
        # broadcast frame is written once for every socket (gateway.wire).
        compress=False,
        heartbeat=settings.heartbeat_seconds,
        # aiohttp refuses a frame of exactly max_msg_size; the limit is "over hard_frame_bytes".
        max_msg_size=settings.hard_frame_bytes + 1,
        timeout=CLOSE_TIMEOUT_SECONDS,
    )
    if not ws.can_prepare(request).ok:
        return error_response(426, "UPGRADE_REQUIRED", "this route takes a WebSocket upgrade")
    if context.draining:
        return error_response(503, "DRAINING", "this gateway is shutting down; connect again")
    origins = request.headers.getall("Origin", [])
    if not origin_allowed(origins, request.host, settings.allowed_origins):
        return error_response(403, "ORIGIN_NOT_ALLOWED", "pages from this origin may not connect")

    try:
        identity = await authenticate_socket(request)
        state = await context.clients.get_state(identity.player_id)
    except PodiumError as error:
        return podium_error_response(error)

    await ws.prepare(request)
    _limit_send_buffer(request, settings.socket_send_buffer_bytes)
    player = PlayerSocket(ws, context, identity.player_id, identity.session_key)
    player.transport = request.transport
    context.players.add(player)
    # Every line logged for this socket, by its tasks too, names its session.
    with (
        bound_contextvars(session_key=identity.session_key),
        metrics.SOCKETS_OPEN.track_inprogress(),
    ):
        try:
            await player.serve(
                welcome_frame(identity.player_id, state.state_json, state.state_hash)
            )
        finally:
            context.players.discard(player)
    return ws


async def close_stuck_sockets(context: Context) -> None:
    """Close with 1013, a few times per stall limit, every socket whose writer has been stuck
    on one batch of frames for longer than the limit: its client stopped reading."""
    stall = context.settings.send_stall_seconds
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(max(stall / 4, 0.05))
        now = loop.time()
        for player in [player for player in context.players if player.stuck(now, stall)]:
            player.close_stuck()


def _limit_send_buffer(request: web.Request, size: int) -> None:
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if size and sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


class PlayerSocket:
    """The state of one open socket: its outbox, pending actions and board subscriptions."""

    def __init__(
        self, ws: web.WebSocketResponse, context: Context, player_id: str, session_key: str
    ) -> None:
        self.ws = ws
        # Chosen by the client at connect: protobuf binary frames, or JSON text frames.
        self.binary = ws.ws_protocol == PROTOBUF_PROTOCOL
        self.transport: asyncio.Transport | None = None
        self.context = context
        self.player_id = player_id
        self.session_key = session_key
        self.outbox = Outbox()
        self.subscriptions = Subscriptions()
        # Canonical action_id -> (frame id, action_id as the client spelled it) of every
        # request waiting for that action's result.
        self.pending: dict[str, list[tuple[Any, str]]] = {}
        self.bad_frames = 0
        # When the writer began its current batch (loop time), or None while it waits for
        # frames: tells a stuck reader, and a drain when everything went out.
        self.sending_since: float | None = None
        self._tasks: set[asyncio.Task] = set()
        # Held while a frame is acted on, so the read loop is only ever stopped between frames.
        self._frame_lock = asyncio.Lock()
        self._close_request: tuple[int, str] | None = None
        self._close_requested = asyncio.Event()

    async def serve(self, welcome: Frame) -> None:
        names = self.context.names
        subscription = await self.context.clients.nc.subscribe(
            names.result_subject(self.session_key), cb=self._on_result
        )
        writer = asyncio.create_task(self._write())
        self._send(welcome)
        del welcome  # sent: not held for the socket's whole life
        await self.context.sessions.add(self.session_key, self.close)
        log.info("socket_opened", player_id=self.player_id, session_key=self.session_key)

        reader = asyncio.create_task(self._read())
        close_requested = asyncio.create_task(self._close_requested.wait())
        try:
            await asyncio.wait({reader, close_requested}, return_when=asyncio.FIRST_COMPLETED)
            if not reader.done():
                await self._close_from_here(reader)
        finally:
            reader.cancel()
            close_requested.cancel()
            self.context.sessions.remove(self.session_key, self.close)
            writer.cancel()
            for task in self._tasks:
                task.cancel()
            for board in self.subscriptions.boards():
                await self.context.fanout.unsubscribe(board, self._deliver_board)
            await subscription.unsubscribe()
            self._let_go()
            log.info("socket_closed", player_id=self.player_id, code=self.ws.close_code)

    def _let_go(self) -> None:
        """Release the connection once the socket is over.

        aiohttp ends a connection whose pong or close handshake timed out with a graceful
        transport close, which waits for the unsent buffer to drain: for a client that stopped
        reading, forever. Aborting frees our buffers, but the kernel would still hold its send
        queue and keep the connection half-open for minutes; for a socket that did not end
        with a close handshake, a zero linger makes the kernel drop it with a reset instead.
        """
        if self.transport is None:
            return
        sock = self.transport.get_extra_info("socket")
        if sock is not None and self.ws.close_code in (None, WSCloseCode.ABNORMAL_CLOSURE):
            # uvloop answers ValueError for a connection it has closed already: none to reset.
            with contextlib.suppress(OSError, ValueError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
        self.transport.abort()

    async def _read(self) -> None:
        async for message in self.ws:
            async with self._frame_lock:
                if message.type == WSMsgType.TEXT and not self.binary:
                    await self._on_frame(message.data, len(message.data), parse_frame)
                elif message.type == WSMsgType.BINARY and self.binary:
                    await self._on_frame(message.data, len(message.data), _parse_binary)
                elif message.type == WSMsgType.TEXT:
                    self._refuse(FrameError("TEXT_NOT_SUPPORTED", "send protobuf binary frames"))
                elif message.type == WSMsgType.BINARY:
                    self._refuse(FrameError("BINARY_NOT_SUPPORTED", "send JSON text frames"))
                elif message.type == WSMsgType.ERROR:
                    log.info("socket_error", player_id=self.player_id, error=str(message.data))
                    break

    async def _close_from_here(self, reader: asyncio.Task) -> None:
        """Stop reading once the frame in hand is done, then close with the requested code.

        What the client sent after the close was decided is not acted on.
        """
        async with self._frame_lock:
            reader.cancel()
        await asyncio.wait({reader})

        code, reason = self._close_request
        try:
            await asyncio.wait_for(
                self.ws.close(code=code, message=reason.encode()), CLOSE_TIMEOUT_SECONDS
            )
        except TimeoutError:
            # A client that never reads cannot take even the close frame; serve() drops the
            # connection.
            log.info("socket_close_timed_out", player_id=self.player_id)

    async def _write(self) -> None:
        """Send what the outbox holds, marking when each batch began.

        A send waits only when aiohttp's buffer for this socket is full, that is when the
        client has stopped reading; close_stuck_sockets closes a socket stuck that way for
        longer than the stall limit. (A timer around every write would cost each broadcast
        as much again as the write itself.)
        """
        loop = asyncio.get_running_loop()
        while not self.ws.closed:
            frames = await self.outbox.take()
            self.sending_since = loop.time()
            try:
                for frame in frames:
                    if self.binary:
                        await self.ws.send_frame(frame.binary(), WSMsgType.BINARY)
                    else:
                        await self.ws.send_frame(frame.json(), WSMsgType.TEXT)
            finally:
                self.sending_since = None
                # An idle socket would otherwise hold its last frames (often its own subscribe
                # answer) while it waits: kilobytes each, times every socket.
                frames = frame = None

    def stuck(self, now: float, stall: float) -> bool:
        return self.sending_since is not None and now - self.sending_since > stall

    async def _on_frame(self, data: str | bytes, size: int, parse) -> None:
        """Act on one frame; `size` is its length in characters or bytes."""
        limit = self.context.settings.max_frame_bytes
        # A text frame's bytes are at most four per character; count them only when needed.
        if size > limit // 4 and len(data.encode() if isinstance(data, str) else data) > limit:
            self._refuse(FrameError("FRAME_TOO_LARGE", f"frames are limited to {limit} bytes"))
            return

        try:
            frame = parse(data)
            _FRAMES[type(frame)].inc()
            if isinstance(frame, ActionFrame):
                await self._act(frame)
            elif isinstance(frame, SubscribeFrame):
                self._subscribe(frame)
            elif isinstance(frame, UnsubscribeFrame):
                await self._unsubscribe(frame)
            elif isinstance(frame, PingFrame):
                self._reply({"type": "pong"}, frame.frame_id)
        except FrameError as error:
            self._refuse(error)

    def _refuse(self, error: FrameError) -> None:
        """Answer a frame with an error; a client that keeps breaking the protocol is closed."""
        log.info("frame_refused", player_id=self.player_id, code=error.code)
        metrics.FRAME_ERRORS.labels(error.code).inc()
        self._send(error_frame(error.code, error.message, error.frame_id, error.retry_after_ms))
        if not error.violation:
            return

        self.bad_frames += 1
        if self.bad_frames >= self.context.settings.max_bad_frames:
            self._close(WSCloseCode.POLICY_VIOLATION, "too many bad frames")

    async def _act(self, frame: ActionFrame) -> None:
        """Queue the action; what is logged meanwhile, its refusal included, names it."""
        with bound_contextvars(action_id=frame.action_id):
            try:
                await self._queue(frame)
            except FrameError as error:
                self._refuse(error)

    async def _queue(self, frame: ActionFrame) -> None:
        action_id = frame.action_id.lower()
        if action_id not in self.pending and len(self.pending) >= MAX_PENDING_ACTIONS:
            raise FrameError(
                "TOO_MANY_PENDING", "wait for results first", frame.frame_id, violation=False
            )
        actions.check_rate(self.context, self.player_id, frame)

        waiter = (frame.frame_id, frame.action_id)
        self.pending.setdefault(action_id, []).append(waiter)
        try:
            repeat = await actions.publish(self.context, self.player_id, self.session_key, frame)
        except FrameError:
            # Only this frame's wait ends: an earlier copy that was queued still gets its answer.
            waiters = self.pending.get(action_id, [])
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters:
                self.pending.pop(action_id, None)
            raise
        if repeat:
            self._spawn(self._recover_result(action_id))

    async def _recover_result(self, action_id: str) -> None:
        """JetStream dropped a repeated id, so no worker will answer it: ask for the first."""
        result = await actions.first_result(
            self.context, self.player_id, action_id, lambda: action_id in self.pending
        )
        if result is not None:
            self._answer(result)

    async def _on_result(self, message) -> None:
        try:
            result = game_pb2.ActionResult.FromString(message.data)
        except Exception:
            log.warning("result_undecodable", session_key=self.session_key)
            return
        self._answer(result)

    def _answer(self, result: game_pb2.ActionResult) -> None:
        for frame_id, sent_as in self.pending.pop(result.action_id.lower(), ()):
            result.action_id = sent_as
            self._send(result_frame(result, frame_id))

    def _subscribe(self, frame: SubscribeFrame) -> None:
        key = self.subscriptions.add(frame)
        self.outbox.drop_board(key)
        spec = spec_of(frame, self.player_id)
        resume = None if frame.seq is None else Resume(frame.seq, frame.period)

        answer = self.context.fanout.subscribe(
            frame.board, self._deliver_board, spec, frame.frame_id, resume
        )
        if answer is not None:
            self._send(answer)

    async def _unsubscribe(self, frame: UnsubscribeFrame) -> None:
        for key in self.subscriptions.remove(frame.board, frame.view):
            self.outbox.drop_board(key)
        await self.context.fanout.unsubscribe(frame.board, self._deliver_board, frame.view)

        reply = {"type": "unsubscribed", "board": frame.board}
        if frame.view is not None:
            reply["view"] = frame.view
        self._reply(reply, frame.frame_id)

    def _deliver_board(self, key: tuple[str, str], frame: Frame, keep: bool) -> None:
        """Hand over a board frame: straight to the transport when nothing is queued or being
        written and the transport's buffer is small (the common case, one write and no task
        switch), else into the outbox for the writer."""
        if self._writes_through():
            self.transport.write(frame.wire(self.binary))
        elif not self.outbox.put_board(key, frame, keep):
            self._close(WSCloseCode.TRY_AGAIN_LATER, "reader too slow")

    def _writes_through(self) -> bool:
        transport = self.transport
        return (
            self.sending_since is None
            and not self.outbox.waiting
            and self._close_request is None
            and transport is not None
            and not transport.is_closing()
            and transport.get_write_buffer_size() < WRITE_THROUGH_LIMIT
        )

    def _reply(self, frame: dict, frame_id: Any) -> None:
        if frame_id is not None:
            frame["id"] = frame_id
        self._send(Frame(frame))

    def _send(self, frame: Frame) -> None:
        if not self.outbox.put(frame):
            self._close(WSCloseCode.TRY_AGAIN_LATER, "reader too slow")

    async def close(self, code: int, reason: str) -> None:
        """Close from outside the read loop (session ended); serve() does the closing."""
        self._close(code, reason)

    def close_stuck(self) -> None:
        self._close(WSCloseCode.TRY_AGAIN_LATER, "reader stuck")

    async def go_away(self) -> None:
        """Close with 1001 for a gateway that is draining, once the results the player is
        waiting for have arrived (or a few seconds passed) and been sent."""
        if self._close_request is not None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_RESULTS_SECONDS
        while self.pending and not self.ws.closed and loop.time() < deadline:
            await asyncio.sleep(0.05)
        while (self.outbox.waiting or self.sending_since) and loop.time() < deadline:
            await asyncio.sleep(0.01)
        self._close(WSCloseCode.GOING_AWAY, "gateway shutting down")

    def _close(self, code: int, reason: str) -> None:
        if self._close_request is not None:
            return
        log.info("socket_closing", player_id=self.player_id, code=int(code), reason=reason)
        metrics.SOCKET_CLOSES.labels(int(code)).inc()
        self._close_request = (int(code), reason)
        self._close_requested.set()

    def _spawn(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _parse_binary(data: bytes):
    return parse_fields(codec.decode(data))

"""A small client of the player protocol (v1), used by the bot and the end-to-end tests."""

import asyncio
import time
import uuid
from typing import Any

import aiohttp
import orjson


class ProtocolError(Exception):
    """The gateway answered a REST call with an error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code


class PlayerClient:
    """One player: REST calls, then one WebSocket whose frames are read into a queue."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.player_id = ""
        self.access_token = ""
        self.refresh_token = ""
        self.state: dict = {}
        self.state_hash = ""
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        # Whether the socket is still read from: false before connect() and once it closed.
        self.open = False
        # Frames not yet taken by a receive(); several receivers may wait for different kinds.
        self.frames: list[dict] = []
        self._arrived = asyncio.Condition()
        self._reader: asyncio.Task | None = None

    async def call(self, method: str, path: str, body: Any = None, **kwargs) -> dict:
        """A REST call; returns the JSON body or raises ProtocolError."""
        if body is not None:
            kwargs["data"] = orjson.dumps(body)
            kwargs["headers"] = {"Content-Type": "application/json"}
        async with self.http.request(method, self.base_url + path, **kwargs) as reply:
            payload = orjson.loads(await reply.read() or b"{}")
            if reply.status >= 400:
                error = payload.get("error", {})
                raise ProtocolError(reply.status, error.get("code", ""), error.get("message", ""))
            return payload

    async def register(self, username: str, password: str) -> str:
        reply = await self.call(
            "POST", "/v1/auth/register", {"username": username, "password": password}
        )
        return reply["player_id"]

    async def login(self, username: str, password: str) -> dict:
        reply = await self.call(
            "POST", "/v1/auth/login", {"username": username, "password": password}
        )
        self._keep_tokens(reply)
        return reply

    async def refresh(self) -> dict:
        """Trade the refresh token for new tokens; the old refresh token is spent."""
        reply = await self.call("POST", "/v1/auth/refresh", {"refresh_token": self.refresh_token})
        self._keep_tokens(reply)
        return reply

    async def logout(self) -> None:
        await self.call("POST", "/v1/auth/logout", headers=self.bearer)

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    def _keep_tokens(self, reply: dict) -> None:
        self.player_id = reply["player_id"]
        self.access_token = reply["access_token"]
        self.refresh_token = reply["refresh_token"]

    async def connect(self) -> dict:
        """Open the WebSocket and return the welcome frame."""
        self.ws = await self.http.ws_connect(self.base_url + "/v1/ws", headers=self.bearer)
        self.open = True
        self._reader = asyncio.create_task(self._read())
        welcome = await self.receive("welcome")
        self.state, self.state_hash = welcome["state"], welcome["state_hash"]
        return welcome

    async def send(self, frame: dict | str) -> None:
        text = frame if isinstance(frame, str) else orjson.dumps(frame).decode()
        await self.ws.send_str(text)

    async def act(self, action: str, params: dict, **overrides) -> str:
        """Send an action with the last state hash seen; returns its action id."""
        action_id = overrides.pop("action_id", None) or str(uuid.uuid4())
        frame = {
            "type": "action",
            # The id makes a refusal (an error frame) findable by the action it answers.
            "id": action_id,
            "action_id": action_id,
            "action": action,
            "params": params,
            "state_hash": self.state_hash,
            "ts": int(time.time() * 1000),
            **overrides,
        }
        await self.send(frame)
        return frame["action_id"]

    async def receive(self, kind: str | None = None, timeout: float = 10.0, **match) -> dict:
        """Take the oldest frame of a type (and with matching fields); others stay for others."""
        async with self._arrived:
            return await asyncio.wait_for(self._take_when_there(kind, match), timeout)

    async def _take_when_there(
        self, kind: str | None, match: dict, unless_closed: bool = False
    ) -> dict | None:
        while True:
            for index, frame in enumerate(self.frames):
                if kind is not None and frame.get("type") != kind:
                    continue
                if all(frame.get(key) == value for key, value in match.items()):
                    return self.frames.pop(index)
            if unless_closed and not self.open:
                return None
            await self._arrived.wait()

    async def result(self, action_id: str, timeout: float = 10.0) -> dict:
        """Wait for an action's result and remember the state it carries."""
        frame = await self.receive("result", timeout, action_id=action_id)
        self.state, self.state_hash = frame["state"], frame["state_hash"]
        return frame

    async def answer(self, action_id: str, timeout: float = 10.0) -> dict:
        """The action's result, or the error frame that refused it (a rate limit, say)."""
        return await self._answer(action_id, timeout, unless_closed=False)

    async def answer_unless_closed(self, action_id: str, timeout: float = 10.0) -> dict | None:
        """answer(), or None once the socket has closed without one. Whether the action was
        applied is then unknown: sending it again with the same action_id, on a new socket,
        gets its one result either way."""
        return await self._answer(action_id, timeout, unless_closed=True)

    async def _answer(self, action_id: str, timeout: float, unless_closed: bool) -> dict | None:
        async with self._arrived:
            frame = await asyncio.wait_for(
                self._take_when_there(None, {"id": action_id}, unless_closed), timeout
            )
        if frame is not None and frame["type"] == "result":
            self.state, self.state_hash = frame["state"], frame["state_hash"]
        return frame

    async def play(self, action: str, params: dict) -> dict:
        """Send an action and wait for its result."""
        return await self.result(await self.act(action, params))

    async def board(self, view: str, until=None, timeout: float = 10.0) -> dict:
        """The oldest board frame of a view for which `until(frame)` holds (any frame if no
        `until`); the view's frames before it are taken and dropped."""
        while True:
            frame = await self.receive("board", timeout, view=view)
            if until is None or until(frame):
                return frame

    async def closed_by_server(self, timeout: float = 10.0) -> int | None:
        """Wait until the server closes the socket; return its close code."""
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self.ws.close_code

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await self._reader

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    async with self._arrived:
                        self.frames.append(orjson.loads(message.data))
                        self._arrived.notify_all()
        finally:
            # Wake whoever waits for a frame that this socket will now never bring.
            async with self._arrived:
                self.open = False
                self._arrived.notify_all()

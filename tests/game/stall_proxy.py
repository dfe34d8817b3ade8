"""A TCP proxy that can stall: a connection whose bytes stop flowing both ways, as in a network
partition, while neither side sees it closed; or be cut: connections reset and new ones refused,
as when a store goes down. Tests put one between a service and a store."""

import asyncio
import contextlib
from urllib.parse import urlsplit, urlunsplit


class StallProxy:
    """Forwards 127.0.0.1:<port> to an upstream port until stalled or cut, and again once
    resumed or restored."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream_port = upstream_port
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def __aenter__(self) -> "StallProxy":
        await self._listen(0)
        return self

    async def __aexit__(self, *exc) -> None:
        self.cut()
        self._flowing.set()

    def cut(self) -> None:
        """Refuse new connections and reset the open ones."""
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()

    async def restore(self) -> None:
        """Accept connections again, on the same port."""
        await self._listen(self.port)

    async def _listen(self, port: int) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    def through(self, url: str) -> str:
        """`url` (a DSN of the upstream) with its port replaced by the proxy's."""
        parts = urlsplit(url)
        host = parts.netloc.rsplit(":", 1)[0]
        return urlunsplit(parts._replace(netloc=f"{host}:{self.port}"))

    def stall(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        self._writers -= {writer, up_writer}

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        writer.transport.abort()

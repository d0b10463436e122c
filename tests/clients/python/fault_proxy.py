"""A TCP proxy on 127.0.0.1 that can cut every connection through it at once, or stall
them (the Python twin of the C++ tests' FaultProxy): the worker under test sees its
stream break, or go silent on a live connection, while the broker stays up."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field


@dataclass(eq=False)
class _Connection:
    writers: tuple[asyncio.StreamWriter, asyncio.StreamWriter]
    stalled: bool = False
    resume: asyncio.Event = field(default_factory=asyncio.Event)


class FaultProxy:
    def __init__(self, target: str) -> None:
        host, _, port = target.rpartition(":")
        self._target = (host, int(port))
        self._connections: set[_Connection] = set()
        self._serving: set[asyncio.Task[None]] = set()
        self._server: asyncio.base_events.Server | None = None
        self.address = ""
        self.accepted = 0  # connections accepted, for tests

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.address = "127.0.0.1:%d" % self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        this = asyncio.current_task()
        assert this is not None
        self._serving.add(this)
        this.add_done_callback(self._serving.discard)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        self.accepted += 1
        connection = _Connection((writer, up_writer))
        self._connections.add(connection)
        try:
            await asyncio.gather(self._pipe(connection, reader, up_writer), self._pipe(connection, up_reader, writer))
        finally:
            self._connections.discard(connection)

    async def _pipe(self, connection: _Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                if connection.stalled:
                    await connection.resume.wait()  # bytes from now on are lost; the socket stays open
                    break
                writer.write(data)
                await writer.drain()
        writer.close()

    def cut(self) -> int:
        """Resets every open connection; returns how many there were."""
        cut = len(self._connections)
        for connection in list(self._connections):
            for writer in connection.writers:
                writer.transport.abort()
            connection.resume.set()
        self._connections.clear()
        return cut

    def stall(self) -> int:
        """Stops forwarding on every open connection, both ways, and keeps the sockets
        open (a wedged link: nothing the peers send arrives, nothing fails). New
        connections are forwarded as usual. Returns how many connections it stalled."""
        stalled = [c for c in self._connections if not c.stalled]
        for connection in stalled:
            connection.stalled = True
        return len(stalled)

    async def close(self) -> None:
        """Resets every connection and stops listening; returns once every connection's
        handler has ended."""
        if self._server is not None:
            self._server.close()
        self.cut()
        await asyncio.gather(*self._serving, return_exceptions=True)

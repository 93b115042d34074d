"""A loopback TCP proxy that makes a store slow: added latency per round trip, or paused.

:class:`SlowProxy` listens on a free 127.0.0.1 port and forwards every connection to a
target (a :class:`~llmx_redis.testing.RedisServer`), in its own thread and event loop,
so the latency it adds is real time whatever the client's loop does. ``delay``
(seconds) holds each chunk sent to the target that long before forwarding it (so each
command's round trip takes ``delay`` more); :meth:`pause` holds everything until
:meth:`resume`. Replies are forwarded as they come.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import threading
import time
from types import TracebackType


class SlowProxy:
    """A TCP proxy on 127.0.0.1 to ``target_port`` adding ``delay`` seconds per chunk
    sent to the target (see the module docstring). Use as a context manager."""

    def __init__(self, target_port: int, *, delay: float = 0.0) -> None:
        self.target_port = target_port
        self.delay = delay
        self.port = 0
        self.connections = 0
        self._paused = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._server: asyncio.base_events.Server | None = None
        self._resumed: asyncio.Event | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` through the proxy."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> SlowProxy:
        """Start listening (in a thread of its own)."""
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = int(sock.getsockname()[1])
        self._thread = threading.Thread(target=self._run, args=(sock,), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            msg = "the proxy did not start within 10 s"
            raise RuntimeError(msg)
        return self

    def _run(self, sock: socket.socket) -> None:
        loop = self._loop = asyncio.new_event_loop()
        self._resumed = asyncio.Event()
        self._resumed.set()

        async def main() -> None:
            self._server = await asyncio.start_server(self._handle, sock=sock)
            self._ready.set()
            async with self._server:
                with contextlib.suppress(asyncio.CancelledError):
                    await self._server.serve_forever()

        try:
            loop.run_until_complete(main())
        finally:
            loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self._pipe(reader, writer)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def receive() -> None:  # client -> queue, stamped with its release time
            while data := await reader.read(65536):
                queue.put_nowait((time.monotonic() + self.delay, data))
            queue.put_nowait((0.0, b""))

        async def forward() -> None:  # queue -> target, once released and not paused
            while True:
                due, data = await queue.get()
                assert self._resumed is not None
                await self._resumed.wait()
                left = due - time.monotonic()
                if left > 0:
                    await asyncio.sleep(left)
                await self._resumed.wait()
                if not data:
                    up_writer.close()
                    return
                up_writer.write(data)
                await up_writer.drain()

        async def back() -> None:  # target -> client
            while data := await up_reader.read(65536):
                writer.write(data)
                await writer.drain()
            writer.close()

        tasks = [asyncio.ensure_future(c) for c in (receive(), forward(), back())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in tasks:
                task.cancel()
            for w in (writer, up_writer):
                w.close()

    def _call(self, fn: object) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(fn)  # type: ignore[arg-type]

    def pause(self) -> None:
        """Hold everything sent to the target until :meth:`resume`."""
        assert self._resumed is not None
        self._call(self._resumed.clear)

    def resume(self) -> None:
        """Forward again what :meth:`pause` held."""
        assert self._resumed is not None
        self._call(self._resumed.set)

    def stop(self) -> None:
        """Stop listening and drop every connection."""
        loop, self._loop = self._loop, None
        if loop is not None and self._server is not None:
            server = self._server

            def close() -> None:
                server.close()
                for task in asyncio.all_tasks(loop):
                    task.cancel()

            loop.call_soon_threadsafe(close)
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> SlowProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ProxyProcess:
    """A :class:`SlowProxy` in a child process (so a busy client process cannot starve
    it of the GIL): the same ``url``, ``delay``, :meth:`pause` and :meth:`resume`."""

    def __init__(self, target_port: int, *, delay: float = 0.0) -> None:
        self.target_port = target_port
        self._delay = delay
        self.port = 0
        self._process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` through the proxy."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> ProxyProcess:
        """Start the child and wait for its port."""
        self._process = subprocess.Popen(
            [sys.executable, "-m", "llmx_redis.testing._proxy", str(self.target_port),
             repr(self._delay)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert self._process.stdout is not None
        self.port = int(self._process.stdout.readline())
        return self

    def _send(self, line: str) -> None:
        assert self._process is not None
        assert self._process.stdin is not None
        self._process.stdin.write(line + "\n")
        self._process.stdin.flush()
        assert self._process.stdout is not None
        self._process.stdout.readline()  # applied

    @property
    def delay(self) -> float:
        """Seconds added before each chunk sent to the target."""
        return self._delay

    @delay.setter
    def delay(self, seconds: float) -> None:
        self._delay = seconds
        self._send(f"delay {seconds!r}")

    def pause(self) -> None:
        """Hold everything sent to the target until :meth:`resume`."""
        self._send("pause")

    def resume(self) -> None:
        """Forward again what :meth:`pause` held."""
        self._send("resume")

    def stop(self) -> None:
        """Stop the child."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()
            for pipe in (process.stdin, process.stdout):
                if pipe is not None:
                    pipe.close()

    def __enter__(self) -> ProxyProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _main() -> None:
    proxy = SlowProxy(int(sys.argv[1]), delay=float(sys.argv[2])).start()
    print(proxy.port, flush=True)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "delay":
            proxy.delay = float(args[0])
        elif command == "pause":
            proxy.pause()
        elif command == "resume":
            proxy.resume()
        print("ok", flush=True)


if __name__ == "__main__":
    _main()

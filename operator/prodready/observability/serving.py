"""An aiohttp application served from a thread and event loop of its own.

The health endpoints and the admission webhook both answer callers that wait on them (the
kubelet's probes, the apiserver holding a user's request), so neither may queue behind
the operator's own work on its event loop: each runs on a `ThreadedSite`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Awaitable, Callable

from aiohttp import web

__all__ = ["ThreadedSite"]


class ThreadedSite:
    """Runs `listen()` (which binds and returns an AppRunner) on a thread of its own."""

    def __init__(self, name: str, listen: Callable[[], Awaitable[web.AppRunner]]) -> None:
        """Prepare; nothing runs until `start()`."""
        self._name = name
        self._listen = listen
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the thread was started and not stopped since."""
        return self._thread is not None

    async def start(self) -> int:
        """Start the thread; returns the bound port once listening, raises what binding
        raised (OSError for a port in use)."""
        if self._thread is not None:
            raise RuntimeError(f"{self._name} is already running")
        bound: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._serve, args=(bound,), name=self._name, daemon=True
        )
        self._thread.start()
        try:
            return await asyncio.wrap_future(bound)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop serving (in-flight requests finish first) and join the thread; idempotent."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        loop = self._loop
        if loop is not None:
            # The loop may have closed already (a failed bind): nothing left to stop.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join)  # join() blocks: off the caller's loop
        self._loop = None

    def _serve(self, bound: concurrent.futures.Future[int]) -> None:
        """The thread: bind, report the port (or the error), serve until stopped."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            try:
                runner = loop.run_until_complete(self._listen())
            except BaseException as error:
                bound.set_exception(error)
                return
            bound.set_result(int(runner.addresses[0][1]))
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(runner.cleanup())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

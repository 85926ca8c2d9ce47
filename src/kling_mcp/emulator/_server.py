"""Running the emulator: in the caller's event loop, in a thread, or as a blocking CLI server."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import ipaddress
import logging
import socket
import threading
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from ._app import EmulatorApp
from ._emulator import Emulator

# uvicorn's logger: the one its config points at stderr when serve() runs.
logger = logging.getLogger("uvicorn.error")

_STARTUP_TIMEOUT = 10.0


class _Server(uvicorn.Server):
    """A uvicorn server that tells the app when it is stopping, so slow faults end at once."""

    def __init__(self, config: uvicorn.Config, closing: threading.Event, *, embedded: bool) -> None:
        super().__init__(config)
        self.closing = closing
        self.embedded = embedded

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # Signals belong to the program hosting an embedded server (pytest, the MCP server).
        if self.embedded:
            yield
        else:
            with super().capture_signals():
                yield

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.closing.set()
        super().handle_exit(sig, frame)

    def stop(self) -> None:
        self.closing.set()
        self.should_exit = True


def _bind(host: str, port: int) -> socket.socket:
    # Bound here, not by uvicorn, so a busy port raises OSError in the caller
    # instead of uvicorn's sys.exit inside a task.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY on accepted sockets only then, and
    # without it every keep-alive response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _prepare(
    host: str, port: int, *, embedded: bool, log_config: dict[str, Any] | None = None, **emulator_options: Any
) -> tuple[Emulator, _Server, socket.socket]:
    emulator = Emulator(**emulator_options)
    closing = threading.Event()
    app = EmulatorApp(emulator, closing)
    config = uvicorn.Config(
        app,
        lifespan="off",
        http="h11",
        loop="asyncio",
        # Embedded: leave the host program's logging alone and keep access lines out of it.
        log_config=log_config,
        access_log=not embedded,
        log_level="warning" if embedded else "info",
        timeout_graceful_shutdown=2,
    )
    if not _is_loopback(host):
        logger.warning("The Runware emulator is listening on %s, reachable beyond this machine.", host)
    sock = _bind(host, port)
    emulator.base_url = _base_url(sock)
    return emulator, _Server(config, closing, embedded=embedded), sock


@contextlib.asynccontextmanager
async def run_emulator(
    *,
    api_key: str = "test-key",
    host: str = "127.0.0.1",
    port: int = 0,
    job_seconds: tuple[float, float] = (30.0, 90.0),
    time_scale: float = 1.0,
    seed: int | None = None,
    edit_source_seconds: int = 6,
    store_path: Path | None = None,
    media_base_url: str | None = None,
    render_spread: float | None = None,
) -> AsyncIterator[Emulator]:
    """Serve an emulator from the running event loop for the duration of the block.

    Port 0 picks a free port; ``emu.url`` / ``emu.base_url`` tell which. With ``store_path``
    its jobs and uploads persist in that file (see :class:`Emulator`).
    """
    emulator, server, sock = _prepare(
        host, port, embedded=True, api_key=api_key, job_seconds=job_seconds, time_scale=time_scale,
        seed=seed, edit_source_seconds=edit_source_seconds, store_path=store_path, media_base_url=media_base_url,
        render_spread=render_spread,
    )  # fmt: skip
    task = asyncio.create_task(server.serve(sockets=[sock]), name="kling-mcp-emulator")
    try:
        async with asyncio.timeout(_STARTUP_TIMEOUT):
            while not server.started:
                if task.done():
                    task.result()  # raises what stopped it
                    raise RuntimeError("The emulator stopped during startup.")
                await asyncio.sleep(0.002)
        yield emulator
    finally:
        server.stop()
        try:
            await task
        finally:
            await server.config.app.webhooks.aclose()
            sock.close()
            emulator.close()


@contextlib.contextmanager
def run_emulator_in_thread(
    *,
    api_key: str = "test-key",
    host: str = "127.0.0.1",
    port: int = 0,
    job_seconds: tuple[float, float] = (30.0, 90.0),
    time_scale: float = 1.0,
    seed: int | None = None,
    edit_source_seconds: int = 6,
    render_spread: float | None = None,
) -> Iterator[Emulator]:
    """Serve an emulator from a thread of its own, for callers without an event loop."""
    emulator, server, sock = _prepare(
        host, port, embedded=True, api_key=api_key, job_seconds=job_seconds, time_scale=time_scale,
        seed=seed, edit_source_seconds=edit_source_seconds, render_spread=render_spread,
    )  # fmt: skip
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # handed to the starting thread
            failure.append(exc)

    thread = threading.Thread(target=run, name="kling-mcp-emulator", daemon=True)
    thread.start()
    try:
        for _ in range(int(_STARTUP_TIMEOUT / 0.002)):
            if server.started:
                break
            if not thread.is_alive():
                raise RuntimeError("The emulator stopped during startup.") from (failure[0] if failure else None)
            threading.Event().wait(0.002)
        else:
            raise TimeoutError("The emulator did not start in time.")
        yield emulator
    finally:
        server.stop()
        thread.join(timeout=_STARTUP_TIMEOUT)
        sock.close()


def _stderr_logging() -> dict[str, Any]:
    config = copy.deepcopy(LOGGING_CONFIG)
    # stdout may be an MCP stdio channel: nothing but protocol may go there.
    for handler in config["handlers"].values():
        handler["stream"] = "ext://sys.stderr"
    return config


def serve(
    host: str = "127.0.0.1",
    port: int = 8089,
    *,
    api_key: str,
    job_seconds: tuple[float, float] = (30.0, 90.0),
    time_scale: float = 1.0,
    seed: int | None = None,
    edit_source_seconds: int = 6,
) -> None:
    """Serve an emulator until interrupted (Ctrl-C or SIGTERM). Logs go to stderr only."""
    emulator, server, sock = _prepare(
        host, port, embedded=False, log_config=_stderr_logging(), api_key=api_key, job_seconds=job_seconds,
        time_scale=time_scale, seed=seed, edit_source_seconds=edit_source_seconds, max_recorded_tasks=1000,
    )  # fmt: skip
    logger.info(
        "Runware emulator: POST tasks to %s (jobs take %s-%s s x %s).",
        emulator.url, *emulator.job_seconds, emulator.time_scale,
    )  # fmt: skip
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()

"""Shared test helpers: a job service wired to an emulator on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio

from kling_mcp.core import PreparedRequest, prepare
from kling_mcp.jobs import Caps, JobService
from kling_mcp.ledger import Ledger
from kling_mcp.payload import VideoRequest
from kling_mcp.runware import RunwareClient

KEY = "rw-test-SECRET-0123456789abcdef"


def fast_client(url: str, key: str | None = KEY, **kw: Any) -> RunwareClient:
    options: dict[str, Any] = dict(timeout=5.0, retry_wait_initial=0.05, retry_wait_max=0.3, retry_timeout=15.0)
    return RunwareClient(key, url, **(options | kw))


@asynccontextmanager
async def job_service(
    url: str, ledger_path: Path | str, *, key: str | None = KEY, caps: Caps = Caps(),
    service_options: dict[str, Any] | None = None, **client_kw: Any,
) -> AsyncIterator[JobService]:
    """A job service on its own ledger and client, polling fast; ``service_options`` override JobService's."""
    ledger = Ledger(ledger_path)
    client = fast_client(url, key, **client_kw)
    # Kling's 30-90 s compressed: the emulators here render in tenths of a second.
    options: dict[str, Any] = {"caps": caps, "poll_initial_s": 0.1, "poll_max_s": 0.3,
                               "default_render_s": (0.1, 0.3)} | (service_options or {})  # fmt: skip
    service = JobService(client, ledger, **options)
    try:
        async with anyio.create_task_group() as tg:
            await service.start(tg)
            yield service
            tg.cancel_scope.cancel()
    finally:
        await client.aclose()
        ledger.close()


def request(**kw: Any) -> PreparedRequest:
    args = {"model": "o3-standard", "prompt": "A fox runs through snow at dawn", "aspect_ratio": "16:9",
            "duration": 8, "sound": True} | kw  # fmt: skip
    prepared = prepare(VideoRequest.model_validate(args))
    assert prepared.ok, prepared.violations
    return prepared


def usd(value: float | None) -> Decimal:
    return Decimal(str(value))

"""Webhook calls, as Runware makes them: each result of a task sent with a ``webhookURL`` is POSTed
there when it finishes, off the request path, and retried until an answer is 2xx or the attempts run
out. Faults can drop a delivery, send it twice, or send it late (see ``_faults``)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import httpx

from ._emulator import Emulator
from ._jobs import Job

log = logging.getLogger("kling_mcp.emulator")

ATTEMPTS = 5
FIRST_RETRY_S = 0.2
LONGEST_RETRY_S = 5.0
POST_TIMEOUT_S = 10.0


class WebhookSender:
    """Delivers the webhooks of the jobs one emulator accepts, from the event loop that serves it."""

    def __init__(self, emulator: Emulator, closing: threading.Event) -> None:
        self.emulator = emulator
        self.closing = closing
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    def schedule_new(self) -> None:
        """Start delivering for every job accepted with a webhookURL since the last call."""
        for job, base_url in self.emulator.take_webhook_jobs():
            task = asyncio.get_running_loop().create_task(self._deliver(job, base_url), name="emulator-webhook")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    async def _deliver(self, job: Job, base_url: str) -> None:
        url = job.task["webhookURL"]
        for finish_at, body in self.emulator.webhook_deliveries(job, base_url):
            if not await self._sleep(finish_at - self.emulator.now()):
                return
            faults = self.emulator.webhook_faults()
            kinds = {f.kind for f in faults}
            if "webhook_drop" in kinds:
                continue
            if not await self._sleep(sum(f.delay for f in faults if f.kind == "webhook_delay")):
                return
            for _ in range(2 if "webhook_duplicate" in kinds else 1):
                await self._post(url, body, job.task_uuid)

    async def _post(self, url: str, body: dict[str, Any], task_uuid: str) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=POST_TIMEOUT_S)
        wait = FIRST_RETRY_S
        for attempt in range(ATTEMPTS):
            try:
                response = await self._client.post(url, json=body)
                delivered = 200 <= response.status_code < 300
            except httpx.HTTPError:
                delivered = False
            self.emulator.webhook_posted(task_uuid, delivered)
            if delivered:
                return
            if attempt < ATTEMPTS - 1 and not await self._sleep(wait):
                return
            wait = min(wait * 2, LONGEST_RETRY_S)
        log.debug("Webhook for %s not delivered after %d attempts", task_uuid, ATTEMPTS)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep, giving up (False) as soon as the emulator is told to stop."""
        deadline = time.monotonic() + max(0.0, seconds)
        while (left := deadline - time.monotonic()) > 0:
            if self.closing.is_set():
                return False
            await asyncio.sleep(min(left, 0.05))
        return not self.closing.is_set()

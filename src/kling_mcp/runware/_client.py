"""An async Runware client on one pooled ``httpx.AsyncClient``.

Free calls (polls, look-ups, uploads) are retried with backoff, jitter and Retry-After.
A paid submission is never re-sent blindly: when its fate is unknown (a dropped
connection, a timeout, a 5xx, an unreadable answer), its ``taskUUID`` is looked up
first, and it is sent again only when Runware provably does not have it.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Literal

import anyio
import httpx
import stamina

from ._errors import ProviderError, RunwareError, categorise

log = logging.getLogger("kling_mcp.runware")

# Bytes read per upload chunk: a multiple of 3, so the base64 of the chunks joins up.
_UPLOAD_CHUNK = 3 * (1 << 18)

# Codes Runware may use for "no such task"; the public docs do not list one.
NOT_FOUND_CODES = frozenset({"taskNotFound", "taskUUIDNotFound", "notFound", "responseNotFound"})


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """What became of a paid submission.

    ``accepted``: Runware has the task. ``rejected``: it provably does not, and
    nothing was charged (``errors`` say why). ``unknown``: it could not be
    established either way; the task must be looked up again, never re-sent blindly.
    """

    outcome: Literal["accepted", "rejected", "unknown"]
    errors: list[ProviderError] = field(default_factory=list)
    attempts: int = 1
    note: str = ""


@dataclass(slots=True)
class TaskUpdate:
    """Everything one poll said about one task."""

    items: list[dict[str, Any]] = field(default_factory=list)
    errors: list[ProviderError] = field(default_factory=list)

    @property
    def not_found(self) -> bool:
        return not self.items and any(e.code in NOT_FOUND_CODES for e in self.errors)


class RunwareClient:
    def __init__(
        self,
        api_key: str | None,
        base_url: str,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        retry_attempts: int = 6,
        retry_timeout: float = 60.0,
        retry_wait_initial: float = 0.5,
        retry_wait_max: float = 10.0,
        submit_attempts: int = 4,
    ) -> None:
        self._api_key = api_key or None
        self.base_url = base_url
        self._timeout, self._transport = timeout, transport
        self._client: httpx.AsyncClient | None = None
        self._retry = dict(
            attempts=retry_attempts, timeout=retry_timeout, wait_initial=retry_wait_initial, wait_max=retry_wait_max
        )
        self._submit_attempts = submit_attempts
        self.requests_sent = 0  # for benchmarks and tests: HTTP requests, retries included

    @property
    def has_key(self) -> bool:
        return self._api_key is not None

    @property
    def account(self) -> str:
        """A one-way fingerprint of the endpoint and key, to tell whose uploads are whose
        without ever storing the key."""
        material = f"kling-mcp account\0{self.base_url}\0{self._api_key or ''}".encode()
        return hashlib.sha256(material).hexdigest()[:16]

    @property
    def _http(self) -> httpx.AsyncClient:
        # Made on first request: an HTTPS client costs 30-50 ms to build, which server start-up
        # (and a session that only lists models or dry-runs) need not pay.
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self._timeout, connect=min(self._timeout, 10.0)),
                transport=self._transport,
                limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
                headers={"User-Agent": "kling-mcp"},
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def __aenter__(self) -> RunwareClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def scrub(self, text: str) -> str:
        """Text with the API key removed, should anything ever echo it."""
        return text.replace(self._api_key, "***") if self._api_key and self._api_key in text else text

    # -- one HTTP exchange ------------------------------------------------------------------

    async def _post(
        self, tasks: Sequence[Mapping[str, Any]] | None, *, stream: tuple[AsyncIterator[bytes], int] | None = None
    ) -> tuple[int, dict[str, Any], httpx.Headers]:
        if self._api_key is None:
            raise RunwareError("auth", "No Runware API key is configured: set RUNWARE_API_KEY")
        self.requests_sent += 1
        headers = {"Authorization": f"Bearer {self._api_key}"}
        try:
            if stream is None:
                response = await self._http.post(self.base_url, json=list(tasks or ()), headers=headers)
            else:
                body, length = stream
                headers |= {"Content-Type": "application/json", "Content-Length": str(length)}
                response = await self._http.post(self.base_url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise RunwareError("network", f"Runware did not answer in time ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise RunwareError("network", f"The connection to Runware failed ({type(exc).__name__})") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            if response.status_code >= 400:
                raise self._status_error(response.status_code, {}, response.headers)
            raise RunwareError("protocol", f"Runware answered HTTP {response.status_code} with a body that is not JSON")
        if response.status_code in (401, 402, 403, 429) or response.status_code >= 500:
            raise self._status_error(response.status_code, body, response.headers)
        return response.status_code, body, response.headers

    def _status_error(self, status: int, body: dict[str, Any], headers: httpx.Headers) -> RunwareError:
        errors = [ProviderError.parse(e, status=status, scrub=self.scrub) for e in body.get("errors") or []]
        category = categorise(errors[0].code if errors else None, status)
        if status == 429 or status >= 502:
            category = "capacity"
        elif status == 500:
            category = "server"
        detail = errors[0].message if errors else f"HTTP {status}"
        return RunwareError(category, f"Runware: {detail}", errors=errors, status=status,
                            retry_after=_retry_after(headers.get("Retry-After")))  # fmt: skip

    # -- free calls, retried -------------------------------------------------------------------

    async def call(self, tasks: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """A free request (no paid tasks in it), retried on capacity, server, network and protocol errors."""
        async for attempt in stamina.retry_context(on=_backoff, **self._retry):  # type: ignore[arg-type]
            with attempt:
                _status, body, _headers = await self._post(tasks)
                return body
        raise AssertionError("unreachable")  # pragma: no cover

    async def poll(self, task_uuids: Sequence[str]) -> dict[str, TaskUpdate]:
        """The state of several tasks in one HTTP request (one getResponse task each)."""
        updates = {u: TaskUpdate() for u in task_uuids}
        if not task_uuids:
            return updates
        body = await self.call([{"taskType": "getResponse", "taskUUID": u} for u in task_uuids])
        for item in body.get("data") or []:
            if isinstance(item, dict) and item.get("taskUUID") in updates:
                updates[item["taskUUID"]].items.append(item)
        for err in body.get("errors") or []:
            parsed = ProviderError.parse(err, scrub=self.scrub)
            if parsed.task_uuid in updates:
                updates[parsed.task_uuid].errors.append(parsed)
            elif len(task_uuids) == 1:
                updates[task_uuids[0]].errors.append(parsed)
        return updates

    async def upload_file(
        self,
        open_file: Callable[[], IO[bytes]],
        mime: str,
        size: int,
        progress: Callable[[int, int], Awaitable[None]] | None = None,
    ) -> tuple[str, str | None]:
        """Store a file at Runware as a data URI, streamed: the file is read and base64-encoded
        a chunk at a time, so a large video never sits in memory whole. Retried like any free call,
        reopening the file each time (``open_file`` may refuse a file that changed)."""
        task = {"taskType": "mediaStorage", "taskUUID": str(uuid.uuid4()), "operation": "upload", "media": "\0"}
        head, tail = json.dumps([task]).encode().split(b"\\u0000")
        head += f"data:{mime};base64,".encode()
        length = len(head) + 4 * ((size + 2) // 3) + len(tail)

        async def body() -> AsyncIterator[bytes]:
            with open_file() as handle:
                yield head
                sent = 0
                while chunk := await anyio.to_thread.run_sync(handle.read, _UPLOAD_CHUNK):
                    sent += len(chunk)
                    yield base64.b64encode(chunk)
                    if progress is not None:
                        await progress(sent, size)
                if sent != size:
                    raise RunwareError("protocol", "The file changed size while it was being uploaded")
                yield tail

        async for attempt in stamina.retry_context(on=_backoff, **self._retry):  # type: ignore[arg-type]
            with attempt:
                _status, answer, _headers = await self._post(None, stream=(body(), length))
                return self._stored(answer)
        raise AssertionError("unreachable")  # pragma: no cover

    def _stored(self, body: dict[str, Any]) -> tuple[str, str | None]:
        for item in body.get("data") or []:
            if isinstance(item, dict) and item.get("mediaUUID"):
                return str(item["mediaUUID"]), item.get("mediaURL")
        errors = [ProviderError.parse(e, scrub=self.scrub) for e in body.get("errors") or []]
        category = errors[0].category if errors else "protocol"
        raise RunwareError(category, "Runware did not store the media: " + (errors[0].message if errors else "no mediaUUID in the answer"), errors=errors)  # fmt: skip

    async def lookup(self, task_uuid: str) -> bool | None:
        """Whether Runware has a task: True, False (provably not), or None (could not tell)."""
        try:
            update = (await self.poll([task_uuid]))[task_uuid]
        except RunwareError as exc:
            log.warning("Looking up task %s failed: %s", task_uuid, exc)
            return None
        if update.items:
            return True
        if update.not_found or not update.errors:
            return False
        return True  # an error scoped to this task (e.g. it failed) still means Runware has it

    # -- the paid call ---------------------------------------------------------------------------

    async def submit(self, task: Mapping[str, Any]) -> SubmitResult:
        """Submit one paid ``videoInference`` task. Never sends it twice unless Runware provably lacks it."""
        task_uuid = str(task["taskUUID"])
        wait = self._retry["wait_initial"]
        last_error: RunwareError | None = None
        for attempt in range(1, self._submit_attempts + 1):
            try:
                status, body, _headers = await self._post([task])
            except RunwareError as exc:
                if exc.category in ("auth", "balance"):
                    return SubmitResult("rejected", exc.errors or [ProviderError(exc.category, exc.category, str(exc))], attempt)
                last_error = exc
                if exc.retry_after is not None:
                    await anyio.sleep(exc.retry_after)
                found = await self.lookup(task_uuid)
                if found is True:
                    return SubmitResult("accepted", [], attempt, note=f"confirmed by look-up after: {exc}")
                if found is None:
                    return SubmitResult("unknown", exc.errors, attempt, note=str(exc))
                log.info("Task %s provably not at Runware after %s; sending it again", task_uuid, exc.category)
                await anyio.sleep(wait)
                wait = min(wait * 2, self._retry["wait_max"])
                continue
            errors = [ProviderError.parse(e, status=status, scrub=self.scrub) for e in body.get("errors") or []]
            mine = [e for e in errors if e.task_uuid in (None, task_uuid)]
            if any(e.code == "duplicateTaskUUID" for e in mine):
                return SubmitResult("accepted", [], attempt, note="Runware already had this taskUUID")
            if mine:
                return SubmitResult("rejected", mine, attempt)
            if any(isinstance(i, dict) and i.get("taskUUID") == task_uuid for i in body.get("data") or []):
                return SubmitResult("accepted", [], attempt)
            found = await self.lookup(task_uuid)
            if found is not False:
                return SubmitResult("accepted" if found else "unknown", [], attempt, note="no acknowledgement in the answer")
        assert last_error is not None
        return SubmitResult(
            "rejected",
            last_error.errors or [ProviderError(last_error.category, last_error.category, str(last_error))],
            self._submit_attempts,
            note=f"Runware still did not have the task after {self._submit_attempts} attempts",
        )


def _backoff(exc: Exception) -> bool | float:
    if isinstance(exc, RunwareError) and exc.retryable:
        return exc.retry_after if exc.retry_after is not None else True
    return False


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None

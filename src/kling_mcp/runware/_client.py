"""An async Runware client on one pooled ``httpx.AsyncClient``.

Every exchange has an overall deadline, the whole answer included. Free calls (polls,
look-ups, uploads) are retried with backoff, jitter and Retry-After. A paid submission
counts as refused only on proof (an error naming its taskUUID with a refusal code); when
its fate is unknown (a dropped connection, a timeout, a 429 or 5xx, an odd or unreadable
answer), Runware's own record of it (``getTaskDetails``) is read, and it is sent again,
with the same taskUUID, only when that record shows it never arrived.
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

from ._codes import BY_STATUS, ErrorCategory
from ._errors import ProviderError, RunwareError, categorise
from ._secrets import may_hold_secret, register_secret, scrub

log = logging.getLogger("kling_mcp.runware")

# Bytes read per upload chunk: a multiple of 3, so the base64 of the chunks joins up.
_UPLOAD_CHUNK = 3 * (1 << 18)
_LONGEST_RETRY_AFTER = 30.0


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """What became of a paid submission.

    ``accepted``: Runware has the task. ``rejected``: an answer proved Runware refused it, so
    nothing was charged (``errors`` say why). ``failed``: Runware's own record shows the task
    arrived and failed, so nothing was charged. ``unknown``: it could not be established either
    way; the task must be looked up again, never re-sent blindly.
    """

    outcome: Literal["accepted", "rejected", "failed", "unknown"]
    errors: list[ProviderError] = field(default_factory=list)
    attempts: int = 1
    note: str = ""


@dataclass(slots=True)
class TaskUpdate:
    """Everything one poll said about one task: only items and errors that name it."""

    items: list[dict[str, Any]] = field(default_factory=list)
    errors: list[ProviderError] = field(default_factory=list)

    @property
    def not_found(self) -> bool:
        return not self.items and any(e.category == "not_found" for e in self.errors)


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """What Runware's own record (``getTaskDetails``) says of a task.

    ``absent``: Runware never received it. ``failed``: it arrived and failed (``errors``).
    ``present``: it arrived and was accepted (it may be running or done). ``None``: the record
    could not be read, so nothing may be concluded."""

    state: Literal["absent", "failed", "present"] | None
    errors: list[ProviderError] = field(default_factory=list)
    note: str = ""


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: Any  # the parsed JSON, or _UNREADABLE
    headers: httpx.Headers
    clean: bool = False  # nothing in it could be a secret: its values need no scrubbing


_UNREADABLE: Any = object()


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
        upload_min_bytes_per_s: float = 250_000.0,
    ) -> None:
        self._api_key = api_key or None
        register_secret(self._api_key)
        self.base_url = base_url
        # The whole of one exchange (connect, send, every byte of the answer) must fit in this many
        # seconds: per-read timeouts alone let a server that trickles a byte at a time hold a call.
        self.deadline = timeout
        self._timeout, self._transport = timeout, transport
        self._client: httpx.AsyncClient | None = None
        self._retry = dict(
            attempts=retry_attempts, timeout=retry_timeout, wait_initial=retry_wait_initial, wait_max=retry_wait_max
        )
        self._submit_attempts = submit_attempts
        self._upload_rate = upload_min_bytes_per_s
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

    # -- one HTTP exchange ------------------------------------------------------------------

    async def _exchange(
        self,
        tasks: Sequence[Mapping[str, Any]] | None,
        *,
        stream: tuple[AsyncIterator[bytes], int] | None = None,
        deadline: float | None = None,
    ) -> _Answer:
        """One request and its whole answer, within an overall deadline. Raises RunwareError
        (network) when no complete answer came; any answer that did come is returned as it is."""
        if self._api_key is None:
            raise RunwareError("auth", "No Runware API key is configured: set RUNWARE_API_KEY")
        self.requests_sent += 1
        headers = {"Authorization": f"Bearer {self._api_key}"}
        limit = self.deadline if deadline is None else deadline
        try:
            with anyio.fail_after(limit):
                if stream is None:
                    response = await self._http.post(self.base_url, json=list(tasks or ()), headers=headers)
                else:
                    body, length = stream
                    headers |= {"Content-Type": "application/json", "Content-Length": str(length)}
                    response = await self._http.post(self.base_url, content=body, headers=headers)
        except TimeoutError:
            raise RunwareError("network", f"Runware did not answer in full within {limit:g} s") from None
        except httpx.TimeoutException as exc:
            raise RunwareError("network", f"Runware did not answer in time ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise RunwareError("network", f"The connection to Runware failed ({type(exc).__name__})") from None
        try:
            text = response.content.decode()
            parsed = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            return _Answer(response.status_code, _UNREADABLE, response.headers)
        return _Answer(response.status_code, parsed, response.headers, clean=not may_hold_secret(text))

    def _checked(self, answer: _Answer) -> dict[str, Any]:
        """The body of a free call's answer, or RunwareError for a refusal, a transient failure, or
        an answer whose shape cannot be read (``data`` and ``errors`` must be lists)."""
        status, body = answer.status, answer.body
        if status in (401, 402, 403, 429) or status >= 500 or not isinstance(body, dict):
            raise self._status_error(answer)
        if not isinstance(body.get("data", []), list) or not isinstance(body.get("errors", []), list):
            raise RunwareError("protocol", f"Runware answered HTTP {status} in a shape that cannot be read")
        return body

    def _status_error(self, answer: _Answer) -> RunwareError:
        status, body = answer.status, answer.body
        raw = body.get("errors") if isinstance(body, dict) else None
        errors = [ProviderError.parse(e, status=status) for e in raw] if isinstance(raw, list) else []
        if status in (401, 402, 403, 429) or status >= 500:
            # These statuses say what happened whatever code the body names (a 5xx not in the table: 501 a server
            # error, 505 and above a gateway's).
            category: ErrorCategory = BY_STATUS.get(status, "capacity" if status >= 502 else "server")
        elif status >= 400:
            category = categorise(errors[0].code if errors else None, status)
        else:
            category = "protocol"
        if status < 400 and not isinstance(body, dict):
            detail = f"HTTP {status} with a body that is not JSON"
        elif status < 400:
            detail = f"HTTP {status} in a shape that cannot be read"
        else:
            detail = errors[0].message if errors else f"HTTP {status}"
        return RunwareError(category, f"Runware: {detail}", errors=errors, status=status,
                            retry_after=_retry_after(answer.headers.get("Retry-After")))  # fmt: skip

    # -- free calls, retried -------------------------------------------------------------------

    async def call(self, tasks: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """A free request (no paid tasks in it), retried on capacity, server, network and protocol errors."""
        return (await self._call(tasks))[0]

    async def _call(self, tasks: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], bool]:
        """``call``'s answer, and whether nothing in it could be a secret."""
        async for attempt in stamina.retry_context(on=_backoff, **self._retry):  # type: ignore[arg-type]
            with attempt:
                answer = await self._exchange(tasks)
                return self._checked(answer), answer.clean
        raise AssertionError("unreachable")  # pragma: no cover

    async def poll(self, task_uuids: Sequence[str]) -> dict[str, TaskUpdate]:
        """The state of several tasks in one HTTP request (one getResponse task each). Only what
        names a task is kept for it: an error without a taskUUID concerns no job."""
        updates = {u: TaskUpdate() for u in task_uuids}
        if not task_uuids:
            return updates
        body, clean = await self._call([{"taskType": "getResponse", "taskUUID": u} for u in task_uuids])
        for item in body.get("data") or []:
            if isinstance(item, dict) and item.get("taskUUID") in updates:
                updates[item["taskUUID"]].items.append(item if clean else scrub(item))
        for err in body.get("errors") or []:
            parsed = ProviderError.parse(err, status=None)
            if parsed.task_uuid in updates:
                updates[parsed.task_uuid].errors.append(parsed)
        return updates

    async def task_details(self, task_uuid: str) -> TaskRecord:
        """Runware's own record of a task (``getTaskDetails``: the original request and response of any
        task it executed), read as: never received, arrived and failed, arrived and accepted, or unknown."""
        try:
            body = await self.call([{"taskType": "getTaskDetails", "taskUUID": task_uuid}])
        except RunwareError as exc:
            log.warning("Looking up task %s failed: %s", task_uuid, exc)
            return TaskRecord(None, note=str(exc))
        item = next((i for i in body.get("data") or [] if isinstance(i, dict) and i.get("taskUUID") == task_uuid), None)
        if item is not None:
            response = item.get("response")
            if isinstance(response, dict):
                raw_errors, data = response.get("errors"), response.get("data")
                acknowledged = isinstance(data, list) and any(
                    isinstance(d, dict) and d.get("taskUUID") == task_uuid for d in data
                )
                if isinstance(raw_errors, list) and raw_errors and not acknowledged:
                    errors = [ProviderError.parse(e) for e in raw_errors]
                    mine = [e for e in errors if e.task_uuid in (None, task_uuid)]
                    return TaskRecord("failed", mine or errors, note="Runware's record shows the task failed")
            return TaskRecord("present", note="Runware's record shows the task arrived")
        errors = [ProviderError.parse(e) for e in body.get("errors") or []]
        if any(e.task_uuid == task_uuid and e.category == "not_found" for e in errors):
            return TaskRecord("absent", note="Runware has no record of the task")
        return TaskRecord(None, errors, note="Runware's answer about the task could not be read")

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
        # A large file takes a while to send even on a good line; the deadline grows with its size.
        deadline = self.deadline + length / self._upload_rate

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
                answer = await self._exchange(None, stream=(body(), length), deadline=deadline)
                return self._stored(self._checked(answer))
        raise AssertionError("unreachable")  # pragma: no cover

    def _stored(self, body: dict[str, Any]) -> tuple[str, str | None]:
        for item in body.get("data") or []:
            if isinstance(item, dict) and isinstance(item.get("mediaUUID"), str):
                url = item.get("mediaURL")
                return item["mediaUUID"], url if isinstance(url, str) else None
        errors = [ProviderError.parse(e) for e in body.get("errors") or []]
        category = errors[0].category if errors else "protocol"
        raise RunwareError(category, "Runware did not store the media: " + (errors[0].message if errors else "no mediaUUID in the answer"), errors=errors)  # fmt: skip

    # -- the paid call ---------------------------------------------------------------------------

    async def submit(self, task: Mapping[str, Any]) -> SubmitResult:
        """Submit one paid ``videoInference`` task. Never sends it twice unless Runware's own record
        shows it never arrived; never reports a refusal without an answer that proves one."""
        task_uuid = str(task["taskUUID"])
        wait = self._retry["wait_initial"]
        for attempt in range(1, self._submit_attempts + 1):
            retry_after: float | None = None
            # With no complete answer (a timeout, a broken connection), the request may still be on its way
            # to Runware: its record saying "never arrived" is not yet proof enough to send it again.
            in_doubt = False
            try:
                answer = await self._exchange([task])
            except RunwareError as exc:
                reason, in_doubt = str(exc), True
            else:
                verdict = _read_submission(answer, task_uuid)
                if verdict.outcome != "unknown":
                    return SubmitResult(verdict.outcome, verdict.errors, attempt, verdict.note)
                reason, retry_after = verdict.note, _retry_after(answer.headers.get("Retry-After"))
            if retry_after is not None:
                await anyio.sleep(min(retry_after, self._retry["wait_max"]))
            record = await self.task_details(task_uuid)
            if record.state == "present":
                return SubmitResult("accepted", [], attempt, note=f"confirmed by Runware's record after: {reason}")
            if record.state == "failed":
                return SubmitResult("failed", record.errors, attempt, note=f"{record.note}, after: {reason}")
            if record.state is None:
                return SubmitResult("unknown", record.errors, attempt, note=f"{reason}; {record.note}")
            if in_doubt:
                return SubmitResult("unknown", [], attempt, note=f"{reason}; Runware has no record of the task yet, "
                                    "but the request may still be on its way, so it is looked up again later, and "
                                    "sent again only if Runware still has no record of it")  # fmt: skip
            log.info("Task %s never reached Runware (%s); sending it again", task_uuid, reason)
            await anyio.sleep(wait)
            wait = min(wait * 2, self._retry["wait_max"])
        return SubmitResult(
            "unknown", [], self._submit_attempts,
            note=f"Runware had not received the task after {self._submit_attempts} attempts; it is looked up "
            "again and sent again only while Runware's record shows it never arrived",
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Verdict:
    outcome: Literal["accepted", "rejected", "unknown"]
    errors: list[ProviderError] = field(default_factory=list)
    note: str = ""


def _read_submission(answer: _Answer, task_uuid: str) -> _Verdict:
    """What one answer to a submission proves. Accepted: it acknowledges this taskUUID (whatever else
    it holds). Rejected: an error names this taskUUID with a refusal code, or a 4xx answer to this
    one task carries a refusal code and nothing else. Anything else proves nothing."""
    status, body = answer.status, answer.body
    if not isinstance(body, dict):
        return _Verdict("unknown", note=f"Runware answered HTTP {status} with a body that is not JSON")
    data, raw_errors = body.get("data"), body.get("errors")
    if isinstance(data, list) and any(isinstance(i, dict) and i.get("taskUUID") == task_uuid for i in data):
        return _Verdict("accepted")
    if not isinstance(raw_errors, list) or ("data" in body and not isinstance(data, list)):
        return _Verdict("unknown", note=f"Runware answered HTTP {status} in a shape that cannot be read")
    errors = [ProviderError.parse(e, status=status) for e in raw_errors]
    mine = [e for e in errors if e.task_uuid == task_uuid]
    if any(e.category == "duplicate" for e in mine):
        return _Verdict("accepted", note="Runware already had this taskUUID")
    if any(e.refusal for e in mine):
        return _Verdict("rejected", mine)
    whole_request = [e for e in errors if e.task_uuid in (None, task_uuid)]
    if (400 <= status < 500 and status not in (408, 429) and not data and whole_request == errors
            and any(e.refusal for e in errors)):  # fmt: skip
        return _Verdict("rejected", errors)
    codes = ", ".join(e.code for e in errors) or "no acknowledgement"
    return _Verdict("unknown", errors, note=f"Runware answered HTTP {status} ({codes}) without proof of its fate")


def _backoff(exc: Exception) -> bool | float:
    if isinstance(exc, RunwareError) and exc.retryable:
        # A server may ask for any wait; a free call never waits longer than this between tries.
        return min(exc.retry_after, _LONGEST_RETRY_AFTER) if exc.retry_after is not None else True
    return False


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # a header that cannot be read is no reason to wait
    return max(0.0, parsed.timestamp() - time.time())

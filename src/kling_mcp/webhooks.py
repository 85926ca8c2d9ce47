"""Runware's webhooks: results pushed to this server instead of polled.

Served over HTTP with ``KLING_MCP_PUBLIC_URL`` set, each submission carries a ``webhookURL`` under
that URL, naming its task and a secret made for it alone. Runware POSTs each finished result there.
The ledger keeps only the secret's SHA-256 digest, so a copy of the ledger cannot forge a call.

The receiver refuses, changing nothing, any call whose secret is not the one issued for the task it
names, and any body it cannot read or that does not name that task. What it accepts goes through
the job service's own merge (``JobService.apply_update``), the rules a poll's answer follows. It
never needs the HTTP bearer token, which Runware cannot send: the secret is its authentication.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio

from .jobs import JobService
from .ledger import Ledger, LedgerUnavailable
from .runware import WEBHOOK_SECRET_PREFIX, ProviderError, TaskUpdate, scrub

log = logging.getLogger("kling_mcp.webhooks")

WEBHOOK_PATH = "/runware/webhook/"  # followed by the task's UUID
# A result delivery is a few hundred bytes; anything far larger is not Runware's.
MAX_BODY_BYTES = 256 * 1024


class WebhookIssuer:
    """Gives each submission its webhook: a URL under the public URL, and a secret whose digest is kept."""

    def __init__(self, public_url: str, ledger: Ledger) -> None:
        self.base = public_url.rstrip("/") + WEBHOOK_PATH
        self.ledger = ledger

    async def attach(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The payload with its ``webhookURL``; the secret's digest is in the ledger before it returns."""
        task_uuid = payload["taskUUID"]
        # A prefix scrub() recognises, so a secret echoed back in a provider's message is masked there too.
        secret = WEBHOOK_SECRET_PREFIX + secrets.token_urlsafe(32)
        await anyio.to_thread.run_sync(self.ledger.webhook_secret_put, task_uuid, secret)
        return {**payload, "webhookURL": f"{self.base}{task_uuid}?token={secret}"}


def parse_delivery(task_uuid: str, body: bytes) -> TaskUpdate | None:
    """What a webhook call says of ``task_uuid``, or None when it cannot be read as Runware's word on it.

    Runware posts the task's response: ``{"data": [...]}`` and/or ``{"errors": [...]}``; a bare item, or
    a list of items, is read the same way. Anything naming another task makes the whole call unreadable:
    a delivery to this task's URL speaks of this task alone."""
    try:
        decoded = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(decoded, list):
        data, raw_errors = decoded, []
    elif isinstance(decoded, dict) and ("data" in decoded or "errors" in decoded):
        data, raw_errors = decoded.get("data") or [], decoded.get("errors") or []
    elif isinstance(decoded, dict):
        data, raw_errors = [decoded], []
    else:
        return None
    if not isinstance(data, list) or not isinstance(raw_errors, list):
        return None
    if not all(isinstance(entry, dict) for entry in [*data, *raw_errors]):
        return None
    named = {entry.get("taskUUID") for entry in [*data, *raw_errors]}
    if named != {task_uuid}:
        return None  # nothing, or not only this task, is named
    errors = [ProviderError.parse(e, status=None) for e in raw_errors]
    return TaskUpdate(items=[scrub(item) for item in data], errors=errors)


@dataclass(slots=True)
class ReceiverStats:
    accepted: int = 0
    refused: int = 0


class WebhookReceiver:
    """The ASGI endpoint at ``WEBHOOK_PATH<taskUUID>?token=<secret>``: POST only.

    ``jobs_of`` gives the running job service (None before the server has started). ``hosts`` are the
    Host headers a call may carry (the public URL's host among them); others are refused as the MCP
    endpoint refuses them, so a page a browser loads from elsewhere cannot use this server's name."""

    def __init__(self, jobs_of: Callable[[], JobService | None], hosts: Iterable[str] | None = None) -> None:
        self.jobs_of = jobs_of
        self.hosts = None if hosts is None else {h.lower() for h in hosts}
        self.stats = ReceiverStats()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        status, body = await self._handle(scope, receive)
        if status >= 400:
            self.stats.refused += 1
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})  # fmt: skip
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})

    async def _handle(self, scope: Any, receive: Any) -> tuple[int, dict[str, Any]]:
        headers = dict(scope.get("headers") or [])
        if self.hosts is not None and not _host_allowed(headers.get(b"host", b"").decode("latin-1"), self.hosts):
            return 421, {"error": "misdirected", "message": "This Host is not one this server is reached by."}
        if scope.get("method") != "POST":
            return 405, {"error": "method_not_allowed", "message": "Runware delivers results with POST."}
        task_uuid = scope["path"].removeprefix(WEBHOOK_PATH)
        token = _query_token(scope.get("query_string", b""))
        jobs = self.jobs_of()
        if jobs is None:
            return 503, {"error": "starting", "message": "The server is starting; deliver again."}
        # Wrong secret, another task's secret, or no such task: one answer, which tells an outsider nothing.
        unknown = 404, {"error": "unknown_webhook", "message": "No webhook with this address."}
        if not task_uuid or "/" in task_uuid or not token:
            return unknown
        try:
            if not await anyio.to_thread.run_sync(jobs.ledger.webhook_secret_matches, task_uuid, token):
                return unknown
        except LedgerUnavailable:
            return 503, {"error": "ledger_unavailable", "message": "The job ledger cannot be read; deliver again."}
        body = await _read_body(receive)
        update = None if body is None else parse_delivery(task_uuid, body)
        if update is None:
            log.warning("Refused a webhook call for job %s: its body does not read as Runware's word on it", task_uuid)
            return 400, {"error": "unreadable", "message": "The body names no result or error of this task."}
        try:
            record = await jobs.apply_update(task_uuid, update)
        except LedgerUnavailable:
            return 503, {"error": "ledger_unavailable", "message": "The job ledger cannot be written; deliver again."}
        if record is None:
            return unknown
        self.stats.accepted += 1
        return 200, {"ok": True}


def _query_token(query: bytes) -> str:
    values = parse_qs(query.decode("latin-1")).get("token") or [""]
    return values[0]


async def _read_body(receive: Any) -> bytes | None:
    """The request's body, or None once it passes MAX_BODY_BYTES."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _host_allowed(header: str, patterns: set[str]) -> bool:
    """The Host header against patterns as the MCP SDK writes them: ``name`` or ``name:*`` or ``name:port``."""
    header = header.strip().lower()
    if header in patterns:
        return True
    name, colon, port = header.rpartition(":")
    return bool(colon) and port.isdigit() and f"{name}:*" in patterns


def public_host(public_url: str) -> str:
    """The host name (with its port, if the URL names one) Runware reaches this server by."""
    return urlsplit(public_url).netloc.rpartition("@")[2].lower()

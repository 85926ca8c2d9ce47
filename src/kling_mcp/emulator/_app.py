"""The emulator's HTTP face: an ASGI app over an :class:`Emulator`."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ._emulator import DOCS_TASKS, Emulator, Outcome
from ._faults import HTTP_FAULTS, MODIFIERS, Fault
from ._webhooks import WebhookSender
from ._render import container_of, mime_type, plan_clip, render

_UNPARSEABLE = object()

_HTTP_FAULT_ERRORS: dict[str, tuple[int, str, str]] = {
    "http_401": (401, "invalidApiKey", ""),  # answered like a real bad key, see _unauthorized
    "http_402": (402, "insufficientCredits",
                 "Insufficient credits to run this task. Add funds to your Runware account and try again."),
    "http_429": (429, "rateLimitExceeded", "Too many requests. Wait for the time in Retry-After and try again."),
    "http_500": (500, "internalServerError", "An unexpected error occurred on the server."),
    "http_503": (503, "serviceUnavailable", "The service is temporarily unavailable. Try again shortly."),
    "http_504": (504, "gatewayTimeout", "The gateway timed out waiting for the service. Try again shortly."),
}  # fmt: skip

_UNAUTHORIZED = {
    "errors": [
        {
            "code": "invalidApiKey",
            "message": "Invalid API key. Check the key in your Runware dashboard.",
            "parameter": "apiKey",
            "taskType": "authentication",
        }
    ]
}


class DroppedConnection(Exception):
    """Raised after the response has started, so that uvicorn aborts the connection."""


class _QuietDrops(logging.Filter):
    # A dropped connection is a fault asked for, not a bug: keep its traceback out of the logs.
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DroppedConnection))


_QUIET_DROPS = _QuietDrops()


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def _echoed(body: dict[str, Any], header: str | None) -> dict[str, Any]:
    """The answer with the request's Authorization header echoed into every field of every error
    (message, parameter, documentation, allowed values, a nested object), as a careless provider might;
    as it is when there is no header to echo (no echo_key fault)."""
    if not header:
        return body

    def echo(error: Any) -> Any:
        if not isinstance(error, dict):
            return error
        return {
            **error,
            "code": error.get("code"),
            "message": f"{error.get('message', '')} (request had 'Authorization: {header}')",
            "parameter": [error.get("parameter") or "authorization", header],
            "documentation": f"{error.get('documentation') or DOCS_TASKS}?auth={header}",
            "allowedValues": [header, {"header": header}],
            "details": {"request": {"headers": {"Authorization": header}}, "echo": [[header]]},
        }

    out = dict(body)
    if isinstance(body.get("errors"), list):
        out["errors"] = [echo(e) for e in body["errors"]]
    if isinstance(body.get("data"), list):
        out["data"] = [{**i, "error": echo(i["error"])} if isinstance(i, dict) and "error" in i else i
                       for i in body["data"]]  # fmt: skip
    return out


class _Trickled:
    """A download answered one byte at a time."""

    def __init__(self, app: EmulatorApp, payload: bytes, delay: float) -> None:
        self.app, self.payload, self.delay = app, payload, delay

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app._trickle(self.payload, "video/mp4", 200, self.delay, send)


class EmulatorApp:
    """Routes /v1 to a raw ASGI handler (it must be able to break a connection), the rest to Starlette."""

    def __init__(self, emulator: Emulator, closing: threading.Event | None = None) -> None:
        self.emulator = emulator
        self.closing = closing or threading.Event()
        self.webhooks = WebhookSender(emulator, self.closing)
        logging.getLogger("uvicorn.error").addFilter(_QUIET_DROPS)
        self._routes = Starlette(
            routes=[
                Route("/videos/{name}", self._video, methods=["GET"]),
                Route("/media/{media_uuid}", self._media, methods=["GET"]),
                Route("/_emulator/stats", self._stats, methods=["GET"]),
                Route("/_emulator/faults", self._faults, methods=["GET", "POST", "DELETE"]),
                Route("/_emulator/reset", self._reset, methods=["POST"]),
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].rstrip("/") == "/v1":
            await self._tasks(scope, receive, send)
        else:
            await self._routes(scope, receive, send)

    # -- /v1 -------------------------------------------------------------------------

    async def _tasks(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        if request.method != "POST":
            await _json(405, {"errors": [{"code": "methodNotAllowed", "message": "Use POST."}]})(scope, receive, send)
            return
        raw = await request.body()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = _UNPARSEABLE
        emulator = self.emulator
        task_types = emulator.record(None if body is _UNPARSEABLE else body)
        if not emulator.authorized(request.headers.get("authorization")):
            await _json(401, _UNAUTHORIZED)(scope, receive, send)
            return
        if body is _UNPARSEABLE:
            error = {"code": "invalidParameter", "message": "The request body is not valid JSON.", "parameter": "body",
                     "taskType": None, "taskUUID": None, "documentation": DOCS_TASKS}  # fmt: skip
            await _json(400, {"errors": [error], "data": []})(scope, receive, send)
            return

        faults = emulator.request_faults(task_types)
        echo = request.headers.get("authorization") if any(f.kind == "echo_key" for f in faults) else None
        delay = sum(f.delay for f in faults if f.kind == "slow")
        if delay and not await self._sleep(delay):
            await self._http_fault(Fault("http_503"), body, echo)(scope, receive, send)
            return
        fault = next((f for f in faults if f.kind not in MODIFIERS), None)
        if fault is not None and fault.kind in HTTP_FAULTS:
            await self._http_fault(fault, body, echo)(scope, receive, send)
            return
        if fault is not None and fault.kind == "drop_before_read":
            await self._drop(Outcome(200, [], []), send, fault.kind)
            return

        outcome = emulator.handle(body, str(request.base_url).rstrip("/"))
        self.webhooks.schedule_new()
        answer = _echoed(outcome.body(), echo)
        match fault.kind if fault is not None else None:
            case "drop_after_read":
                await self._drop(outcome, send, "drop_after_read")
            case "malformed_json":
                # Looks like a cut-off JSON answer under a JSON content type, as a broken proxy might send.
                bad = b'{"data": [{"taskType": "videoInference", "taskUUID": '
                await Response(bad, status_code=200, media_type="application/json")(scope, receive, send)
            case "errors_not_list":
                await _json(400, {"errors": "boom"})(scope, receive, send)
            case "data_not_list":
                await _json(200, {"data": 5})(scope, receive, send)
            case "not_an_object":
                await _json(200, ["ok"])(scope, receive, send)
            case "stray_error":
                # Errors naming no task, one with a refusal code, beside whatever the answer was.
                stray = [
                    {"code": "invalidParameter", "message": "Invalid value for parameter.", "parameter": "unknown",
                     "taskType": None, "taskUUID": None, "documentation": DOCS_TASKS},
                    {"code": "taskFailedOrNotFound", "message": "The task failed or was not found."},
                ]  # fmt: skip
                await _json(outcome.status, {**answer, "errors": [*answer.get("errors", []), *stray]})(scope, receive, send)
            case "trickle":
                assert fault is not None
                await self._trickle(json.dumps(answer).encode(), "application/json", outcome.status, fault.delay, send)
            case _:
                await _json(outcome.status, answer)(scope, receive, send)

    async def _trickle(self, payload: bytes, media_type: str, status: int, delay: float, send: Send) -> None:
        """Send an answer one byte at a time, ``delay`` seconds apart: a server that never times out."""
        await send({
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", media_type.encode()), (b"content-length", str(len(payload)).encode())],
        })  # fmt: skip
        for index in range(len(payload)):
            if index and not await self._sleep(delay):
                raise DroppedConnection("stopped trickling: the server is stopping")
            await send({"type": "http.response.body", "body": payload[index : index + 1],
                        "more_body": index + 1 < len(payload)})  # fmt: skip

    async def _sleep(self, seconds: float) -> bool:
        """Sleep, but give up (returning False) as soon as the server is told to stop."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.closing.is_set():
                return False
            await asyncio.sleep(min(left, 0.05))
        return True

    def _http_fault(self, fault: Fault, body: Any, echo: str | None = None) -> Response:
        if fault.kind == "http_401":
            return _json(401, _echoed(_UNAUTHORIZED, echo))
        if fault.kind == "http_400_bare":
            return Response(b"Bad Request", status_code=400, media_type="text/plain")
        if fault.kind == "task_throttled":
            # A 200 whose every task is refused for now: errors naming each task, with a transient code.
            tasks = [t for t in body if isinstance(t, dict)] if isinstance(body, list) else []
            errors = [{"code": "rateLimitExceeded", "message": "Too many requests for this task; try again shortly.",
                       "taskType": t.get("taskType"), "taskUUID": t.get("taskUUID")} for t in tasks]  # fmt: skip
            answer = {"errors": errors, "data": []}
            return _json(200, _echoed(answer, echo))
        status, code, message = _HTTP_FAULT_ERRORS[fault.kind]
        tasks = [t for t in body if isinstance(t, dict)] if isinstance(body, list) else []
        errors = [
            {"code": code, "message": message, "parameter": None, "taskType": t.get("taskType"),
             "taskUUID": t.get("taskUUID"), "documentation": DOCS_TASKS}
            for t in tasks or [{}]
        ]  # fmt: skip
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.kind == "http_429" else None
        answer = {"errors": errors, "data": []}
        return _json(status, _echoed(answer, echo), headers)

    @staticmethod
    async def _drop(outcome: Outcome, send: Send, kind: str) -> None:
        payload = json.dumps(outcome.body()).encode()
        await send({
            "type": "http.response.start",
            "status": outcome.status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
        })  # fmt: skip
        await send({"type": "http.response.body", "body": payload[: len(payload) // 2], "more_body": True})
        raise DroppedConnection(f"connection dropped on purpose (fault {kind})")

    # -- downloads -------------------------------------------------------------------

    async def _video(self, request: Request) -> Response | _Trickled:
        video_uuid, _, extension = request.path_params["name"].partition(".")
        state = self.emulator.video(video_uuid)
        clip = self.emulator.clip(video_uuid)
        if state == "expired":
            return _json(404, {"error": "expired", "message": "This video URL has expired: its ttl has passed."})
        if state == "missing" or clip is None or extension != container_of(clip[0].task):
            return _json(404, {"error": "notFound", "message": "No video at this URL."})
        faults = self.emulator.download_faults()
        delay = sum(f.delay for f in faults if f.kind == "slow")
        if delay and not await self._sleep(delay):
            return _json(503, {"error": "stopping", "message": "The server is stopping."})
        job, index = clip

        def rendered() -> Path:
            return render(plan_clip(job.task, index, job.clip_seconds, self.emulator.media))

        # Rendering takes CPU seconds the first time: off the event loop, so polls stay quick.
        path = await asyncio.to_thread(rendered)
        trickle = next((f for f in faults if f.kind == "trickle"), None)
        if trickle is not None:
            return _Trickled(self, path.read_bytes(), trickle.delay)
        return FileResponse(path, media_type=mime_type(container_of(job.task)))

    async def _media(self, request: Request) -> Response:
        media = self.emulator.media(request.path_params["media_uuid"])
        if media is None:
            return _json(404, {"error": "notFound", "message": "No uploaded media with this UUID."})
        if media.url is not None:
            return RedirectResponse(media.url, status_code=307)
        return Response(media.content, media_type=media.content_type)

    # -- control ---------------------------------------------------------------------

    async def _stats(self, request: Request) -> Response:
        if not self.emulator.authorized(request.headers.get("authorization")):
            return _json(401, _UNAUTHORIZED)
        return _json(200, {**self.emulator.stats_dict(), "faults": self.emulator.faults})

    async def _faults(self, request: Request) -> Response:
        if not self.emulator.authorized(request.headers.get("authorization")):
            return _json(401, _UNAUTHORIZED)
        if request.method == "POST":
            try:
                body = await request.json()
                items = body if isinstance(body, list) else [body]
                faults = [Fault.from_dict(item) for item in items]
            except (ValueError, TypeError, AttributeError) as exc:
                return _json(400, {"error": "invalidFault", "message": str(exc)})
            for fault in faults:
                self.emulator.add_fault(fault)
        elif request.method == "DELETE":
            self.emulator.clear_faults()
        return _json(200, {"faults": self.emulator.faults})

    async def _reset(self, request: Request) -> Response:
        if not self.emulator.authorized(request.headers.get("authorization")):
            return _json(401, _UNAUTHORIZED)
        self.emulator.reset()
        return _json(200, {"reset": True})

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
from ._faults import HTTP_FAULTS, Fault
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


class EmulatorApp:
    """Routes /v1 to a raw ASGI handler (it must be able to break a connection), the rest to Starlette."""

    def __init__(self, emulator: Emulator, closing: threading.Event | None = None) -> None:
        self.emulator = emulator
        self.closing = closing or threading.Event()
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
        delay = sum(f.delay for f in faults if f.kind == "slow")
        if delay and not await self._sleep(delay):
            await self._http_fault(Fault("http_503"), body)(scope, receive, send)
            return
        fault = next((f for f in faults if f.kind != "slow"), None)
        if fault is not None and fault.kind in HTTP_FAULTS:
            await self._http_fault(fault, body)(scope, receive, send)
            return

        outcome = emulator.handle(body, str(request.base_url).rstrip("/"))
        if fault is not None and fault.kind == "drop_after_read":
            await self._drop(outcome, send)
        elif fault is not None and fault.kind == "malformed_json":
            # Looks like a cut-off JSON answer under a JSON content type, as a broken proxy might send.
            bad = b'{"data": [{"taskType": "videoInference", "taskUUID": '
            await Response(bad, status_code=200, media_type="application/json")(scope, receive, send)
        else:
            await _json(outcome.status, outcome.body())(scope, receive, send)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep, but give up (returning False) as soon as the server is told to stop."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.closing.is_set():
                return False
            await asyncio.sleep(min(left, 0.05))
        return True

    def _http_fault(self, fault: Fault, body: Any) -> JSONResponse:
        if fault.kind == "http_401":
            return _json(401, _UNAUTHORIZED)
        status, code, message = _HTTP_FAULT_ERRORS[fault.kind]
        tasks = [t for t in body if isinstance(t, dict)] if isinstance(body, list) else []
        errors = [
            {"code": code, "message": message, "parameter": None, "taskType": t.get("taskType"),
             "taskUUID": t.get("taskUUID"), "documentation": DOCS_TASKS}
            for t in tasks or [{}]
        ]  # fmt: skip
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.kind == "http_429" else None
        return _json(status, {"errors": errors, "data": []}, headers)

    @staticmethod
    async def _drop(outcome: Outcome, send: Send) -> None:
        payload = json.dumps(outcome.body()).encode()
        await send({
            "type": "http.response.start",
            "status": outcome.status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
        })  # fmt: skip
        await send({"type": "http.response.body", "body": payload[: len(payload) // 2], "more_body": True})
        raise DroppedConnection("connection dropped on purpose (fault drop_after_read)")

    # -- downloads -------------------------------------------------------------------

    async def _video(self, request: Request) -> Response:
        video_uuid, _, extension = request.path_params["name"].partition(".")
        state = self.emulator.video(video_uuid)
        clip = self.emulator.clip(video_uuid)
        if state == "expired":
            return _json(404, {"error": "expired", "message": "This video URL has expired: its ttl has passed."})
        if state == "missing" or clip is None or extension != container_of(clip[0].task):
            return _json(404, {"error": "notFound", "message": "No video at this URL."})
        job, index = clip

        def rendered() -> Path:
            return render(plan_clip(job.task, index, job.clip_seconds, self.emulator.media))

        # Rendering takes CPU seconds the first time: off the event loop, so polls stay quick.
        path = await asyncio.to_thread(rendered)
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

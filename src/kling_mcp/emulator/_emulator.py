"""The emulator's state and its handling of Runware tasks, apart from HTTP."""

from __future__ import annotations

import base64
import binascii
import hmac
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from ..constraints import check
from ._faults import Fault, FaultBook
from ._jobs import DOCS_VIDEO, Failure, Job, new_job, poll, random_uuid
from ._store import EmulatorStore, Media

DOCS_TASKS = "https://runware.ai/docs/en/getting-started/how-to-connect"
DOCS_MEDIA = "https://runware.ai/docs/en/utilities/media-storage"
DOCS_TASK_DETAILS = "https://runware.ai/docs/platform/task-details"

_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?);base64,(?P<data>.*)$", re.DOTALL)
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"ID3", "audio/mpeg"),
)


@dataclass(slots=True)
class EmulatorStats:
    """What the emulator has been sent, for tests to assert on."""

    http_requests: int = 0  # every request to /v1, whatever came of it
    requests_by_task_type: Counter[str] = field(default_factory=Counter)  # each type once per request holding it
    # Every videoInference task that reached task handling (not stopped by auth or
    # an HTTP fault), keyed by taskUUID: refused and duplicate ones count too.
    submissions: Counter[str] = field(default_factory=Counter)
    accepted: Counter[str] = field(default_factory=Counter)  # jobs started, by taskUUID
    faults_fired: Counter[str] = field(default_factory=Counter)
    tasks: list[Any] = field(default_factory=list)  # every task received on /v1, as sent
    webhook_posts: Counter[str] = field(default_factory=Counter)  # webhook POSTs tried, by taskUUID
    webhooks_delivered: Counter[str] = field(default_factory=Counter)  # of which answered 2xx

    def to_dict(self) -> dict[str, Any]:
        return {
            "http_requests": self.http_requests,
            "requests_by_task_type": dict(self.requests_by_task_type),
            "submissions": dict(self.submissions),
            "accepted": dict(self.accepted),
            "faults_fired": dict(self.faults_fired),
            "tasks": list(self.tasks),
            "webhook_posts": dict(self.webhook_posts),
            "webhooks_delivered": dict(self.webhooks_delivered),
        }


@dataclass(slots=True)
class Outcome:
    """The answer to one /v1 request, before it is put on the wire."""

    status: int
    data: list[dict[str, Any]]
    errors: list[dict[str, Any]]

    def body(self) -> dict[str, Any]:
        return {"errors": self.errors, "data": self.data} if self.errors else {"data": self.data}


class Emulator:
    """A Runware stand-in: tasks in, Runware-shaped answers out, everything recorded.

    Thread-safe, so a test may arm faults or read stats while a server thread
    serves requests.

    With a ``store_path``, jobs and uploads live in that SQLite file instead of in memory:
    emulators in several processes that open the same file see the same jobs, and a job
    outlives the process that accepted it. Its times are then wall-clock times (other
    processes must read them), and ``media_base_url``, if given, is the base of every
    result and upload URL, so that a URL stays the same whichever process issued it.
    Faults and stats stay per emulator.

    Each job takes a time drawn from ``job_seconds`` (scaled by ``time_scale``). With a
    ``render_spread``, it renders as a real service does instead: each model and clip length
    at a speed of its own, somewhere in ``job_seconds`` and fixed by the seed, and each job
    within that share of it (0.15: 15% either way).
    """

    def __init__(
        self,
        *,
        api_key: str,
        job_seconds: tuple[float, float] = (30.0, 90.0),
        time_scale: float = 1.0,
        seed: int | None = None,
        edit_source_seconds: int = 6,
        max_recorded_tasks: int | None = None,
        clock: Callable[[], float] | None = None,
        store_path: Path | None = None,
        media_base_url: str | None = None,
        render_spread: float | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("The emulator needs a non-empty api_key.")
        lo, hi = job_seconds
        if not 0 <= lo <= hi:
            raise ValueError("job_seconds must be (lo, hi) with 0 <= lo <= hi.")
        if time_scale < 0:
            raise ValueError("time_scale must be 0 or more.")
        self._api_key = api_key.encode()
        self.job_seconds = (float(lo), float(hi))
        self.time_scale = float(time_scale)
        if render_spread is not None and not 0 <= render_spread < 1:
            raise ValueError("render_spread must be from 0 to under 1.")
        self.render_spread = render_spread
        self.seed = seed
        self.edit_source_seconds = edit_source_seconds
        # A long-running server keeps only the latest tasks; tests keep them all.
        self.max_recorded_tasks = max_recorded_tasks
        # A shared store holds times that other processes read: only the wall clock means the same to all.
        self._clock = clock or (time.time if store_path is not None else time.monotonic)
        self._lock = threading.RLock()
        self._store = EmulatorStore(store_path) if store_path is not None else None
        self.media_base_url = media_base_url.rstrip("/") if media_base_url else None
        self.base_url = ""  # set by the runner once the port is known
        self._init_state()

    def _init_state(self) -> None:
        self._rng = random.Random(self.seed)
        self._faults = FaultBook(self.seed)
        self._jobs: MutableMapping[str, Job]
        self._videos: MutableMapping[str, Job]  # result video UUID -> its job
        self._media: MutableMapping[str, Media]
        if self._store is not None:
            self._jobs, self._videos, self._media = self._store.tables()
        else:
            self._jobs, self._videos, self._media = {}, {}, {}
        # Runware's record of every videoInference it executed (for getTaskDetails): the task as sent,
        # and, for a refused one, the errors it was refused with. Kept in memory: an accepted task's
        # record is its job (in the store when persistent); refusals are not remembered across processes.
        self._requests: dict[str, dict[str, Any]] = {}
        self._refusals: dict[str, list[dict[str, Any]]] = {}
        self._no_video: set[str] = set()  # jobs whose success items come without a videoUUID (fault no_video)
        self._webhook_jobs: list[tuple[Job, str]] = []  # accepted with a webhookURL, not yet handed to the sender
        self.stats = EmulatorStats()

    def close(self) -> None:
        """Release the store, if any (in-memory state needs nothing)."""
        if self._store is not None:
            with self._lock:
                self._store.close()

    def __repr__(self) -> str:  # never show the key
        return f"Emulator(base_url={self.base_url!r}, job_seconds={self.job_seconds}, time_scale={self.time_scale})"

    @property
    def url(self) -> str:
        """The task endpoint, as the client is configured with it."""
        return f"{self.base_url}/v1"

    # -- control ---------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every job, upload, fault and count, and restart the seeded RNG.

        A persistent emulator forgets its stored jobs and uploads too, for every process sharing them."""
        with self._lock:
            if self._store is not None:
                self._store.clear()
            self._init_state()

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.add(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return self._faults.armed()

    def stats_dict(self) -> dict[str, Any]:
        """A snapshot of the stats, safe to take while another thread serves requests."""
        with self._lock:
            return self.stats.to_dict()

    def authorized(self, header: str | None) -> bool:
        scheme, _, key = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(key.strip().encode(), self._api_key)

    # -- requests --------------------------------------------------------------------

    def record(self, body: Any) -> set[str]:
        """Count a /v1 request and keep its tasks; returns the task types it holds."""
        with self._lock:
            self.stats.http_requests += 1
            tasks = body if isinstance(body, list) else [body] if body is not None else []
            self.stats.tasks.extend(tasks)
            if self.max_recorded_tasks is not None and len(self.stats.tasks) > self.max_recorded_tasks:
                del self.stats.tasks[: len(self.stats.tasks) - self.max_recorded_tasks]
            types = {t["taskType"] for t in tasks if isinstance(t, dict) and isinstance(t.get("taskType"), str)}
            self.stats.requests_by_task_type.update(types)
            return types

    def request_faults(self, task_types: set[str]) -> list[Fault]:
        return self._fire(lambda: self._faults.for_request(task_types))

    def download_faults(self) -> list[Fault]:
        return self._fire(self._faults.for_download)

    def _fire(self, pick: Callable[[], list[Fault]]) -> list[Fault]:
        """The faults armed for this request, counted as fired."""
        with self._lock:
            fired = pick()
            self.stats.faults_fired.update(f.kind for f in fired)
            return fired

    def handle(self, body: Any, base_url: str) -> Outcome:
        """Process the tasks of one authorized /v1 request."""
        if not isinstance(body, list) or not body:
            error = _error(
                "invalidParameter", "The request body must be a non-empty JSON array of task objects.",
                parameter="body", task_type=None, task_uuid=None, docs=DOCS_TASKS,
            )  # fmt: skip
            return Outcome(400, [], [error])
        data: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        failed = 0
        base_url = self.media_base_url or base_url
        with self._lock:
            for task in body:
                task_errors = self._handle_task(task, base_url, data, errors)
                errors.extend(task_errors)
                failed += bool(task_errors)
        return Outcome(400 if failed == len(body) else 200, data, errors)

    def _handle_task(
        self, task: Any, base_url: str, data: list[dict[str, Any]], job_errors: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Handle one task; returns its request errors (job failures go to job_errors)."""
        if not isinstance(task, dict):
            return [_error("invalidParameter", "Each task must be a JSON object.", parameter="$",
                           task_type=None, task_uuid=None, docs=DOCS_TASKS)]  # fmt: skip
        task_type = task.get("taskType")
        task_uuid = task.get("taskUUID") if isinstance(task.get("taskUUID"), str) else None
        match task_type:
            case "videoInference":
                return self._video_inference(task, task_uuid, data, base_url)
            case "getResponse":
                return self._get_response(task_uuid, base_url, data, job_errors)
            case "getTaskDetails":
                return self._get_task_details(task_uuid, base_url, data)
            case "mediaStorage":
                return self._media_storage(task, task_uuid, base_url, data)
        return [_error(
            "unsupportedTaskType",
            f"The task type {task_type!r} is not supported here; this emulator serves "
            "videoInference, getResponse, getTaskDetails and mediaStorage.",
            parameter="taskType", task_type=task_type if isinstance(task_type, str) else None,
            task_uuid=task_uuid, docs=DOCS_TASKS,
            allowed=["videoInference", "getResponse", "getTaskDetails", "mediaStorage"],
        )]  # fmt: skip

    def _video_inference(
        self, task: dict[str, Any], task_uuid: str | None, data: list[dict[str, Any]], base_url: str
    ) -> list[dict[str, Any]]:
        if task_uuid is not None:
            self.stats.submissions[task_uuid] += 1
        errors = [
            _error("invalidParameter", f"{v.message} {v.fix}", parameter=v.field, task_type="videoInference",
                   task_uuid=task_uuid, docs=DOCS_VIDEO, allowed=v.allowed)
            for v in check(task)
        ]  # fmt: skip
        if "deliveryMethod" not in task:
            errors.append(_error(
                "invalidDeliveryMethod", "Video inference is asynchronous: set deliveryMethod to 'async' "
                "and poll the result with getResponse.",
                parameter="deliveryMethod", task_type="videoInference", task_uuid=task_uuid, docs=DOCS_VIDEO,
                allowed=["async"],
            ))  # fmt: skip
        if errors:
            if task_uuid is not None and task_uuid not in self._jobs:
                self._requests.setdefault(task_uuid, task)
                self._refusals.setdefault(task_uuid, errors)
            return errors
        assert task_uuid is not None  # check() refuses a task without a UUID v4
        if task_uuid in self._jobs:
            return [_error(
                "duplicateTaskUUID", f"A task with taskUUID {task_uuid} was already submitted. "
                "Use a new UUID v4 for a new task, or poll the existing one with getResponse.",
                parameter="taskUUID", task_type="videoInference", task_uuid=task_uuid, docs=DOCS_VIDEO,
            )]  # fmt: skip
        fault = self._faults.for_job()
        if fault is not None:
            self.stats.faults_fired[fault.kind] += 1
        failure = None if fault is None or fault.kind == "no_video" else Failure.from_fault(fault)
        job = new_job(
            task, now=self._clock(), rng=self._rng, job_seconds=self.job_seconds, time_scale=self.time_scale,
            render_spread=self.render_spread, seed=self.seed, edit_source_seconds=self.edit_source_seconds, media=self.media, failure=failure,
        )  # fmt: skip
        if fault is not None and fault.kind == "no_video":
            self._no_video.add(task_uuid)
        self._jobs[task_uuid] = job
        self._requests[task_uuid] = task
        self._refusals.pop(task_uuid, None)
        for result in job.results:
            self._videos[result.video_uuid] = job
        self.stats.accepted[task_uuid] += 1
        if isinstance(task.get("webhookURL"), str):
            self._webhook_jobs.append((job, base_url))
        data.append({"taskType": "videoInference", "taskUUID": task_uuid})
        return []

    def _get_response(
        self, task_uuid: str | None, base_url: str, data: list[dict[str, Any]], job_errors: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        job = self._jobs.get(task_uuid) if task_uuid is not None else None
        if job is None:
            # Runware's getResponse answers this for a task it does not have, or one that failed
            # (the SDKs list it as "not found"): only getTaskDetails tells which.
            return [_error("taskFailedOrNotFound", "The task failed or was not found.", parameter="taskUUID",
                           task_type="getResponse", task_uuid=task_uuid, docs=DOCS_TASKS)]  # fmt: skip
        items, errors = self._poll(job, base_url)
        data.extend(items)
        job_errors.extend(errors)
        return []

    def _poll(
        self, job: Job, base_url: str, now: float | None = None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        items, errors = poll(job, now=self._clock() if now is None else now, base_url=base_url)
        if job.task_uuid in self._no_video:
            items = [{k: v for k, v in i.items() if k not in ("videoUUID", "videoURL")} for i in items]
        return items, errors

    def _get_task_details(self, task_uuid: str | None, base_url: str, data: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Runware's record of a task it executed: the request as sent and the response it produced
        (the acknowledgement while it runs, the results or errors once it ends)."""
        job = self._jobs.get(task_uuid) if task_uuid is not None else None
        request = self._requests.get(task_uuid) if task_uuid is not None else None
        if job is not None and request is None:
            # A job kept by a store shared with another process: its record is the job itself.
            request = {"taskType": "videoInference", "taskUUID": task_uuid}
        if request is None:
            return [_error("taskNotFound", "No task with this taskUUID was executed.", parameter="taskUUID",
                           task_type="getTaskDetails", task_uuid=task_uuid, docs=DOCS_TASK_DETAILS)]  # fmt: skip
        assert task_uuid is not None
        response: dict[str, Any]
        if job is None:
            response = {"errors": self._refusals.get(task_uuid, []), "data": []}
        else:
            items, errors = self._poll(job, base_url)
            failed = [i["error"] | {"taskUUID": task_uuid, "taskType": "videoInference"}
                      for i in items if isinstance(i.get("error"), dict)]  # fmt: skip
            if errors or failed:
                response = {"errors": errors + failed, "data": []}
            elif items and all(i.get("status") == "success" for i in items):
                response = {"data": items}
            else:
                response = {"data": [{"taskType": "videoInference", "taskUUID": task_uuid}]}
        data.append({"taskType": "getTaskDetails", "taskUUID": task_uuid, "request": [request], "response": response})
        return []

    # -- webhooks ----------------------------------------------------------------------

    def now(self) -> float:
        """The emulator's clock, which result finish times are read against."""
        return self._clock()

    def take_webhook_jobs(self) -> list[tuple[Job, str]]:
        """Jobs accepted with a webhookURL since the last call, with the base of their result URLs."""
        with self._lock:
            taken, self._webhook_jobs = self._webhook_jobs, []
            return taken

    def webhook_deliveries(self, job: Job, base_url: str) -> list[tuple[float, dict[str, Any]]]:
        """What Runware POSTs to a job's webhookURL: one body per result, as it finishes, with when."""
        deliveries = []
        with self._lock:
            for result in job.results:
                items, errors = self._poll(replace(job, results=(result,)), base_url, now=result.finish_at)
                body: dict[str, Any] = {"data": items} if items else {}
                if errors:
                    body["errors"] = errors
                deliveries.append((result.finish_at, body))
        return deliveries

    def webhook_faults(self) -> list[Fault]:
        return self._fire(self._faults.for_webhook)

    def webhook_posted(self, task_uuid: str, delivered: bool) -> None:
        with self._lock:
            self.stats.webhook_posts[task_uuid] += 1
            if delivered:
                self.stats.webhooks_delivered[task_uuid] += 1

    def billed(self) -> dict[str, float]:
        """What each accepted task has been charged so far: the cost of every result that finished
        without a failure (a result without a usable video is billed all the same)."""
        with self._lock:
            now = self._clock()
            return {
                task_uuid: round(sum(r.cost or 0.0 for r in job.results if r.finish_at <= now), 6)
                for task_uuid, job in self._jobs.items()
                if job.failure is None
            }

    def _media_storage(
        self, task: dict[str, Any], task_uuid: str | None, base_url: str, data: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        def bad(parameter: str, message: str, allowed: Any = None) -> list[dict[str, Any]]:
            return [_error("invalidParameter", message, parameter=parameter, task_type="mediaStorage",
                           task_uuid=task_uuid, docs=DOCS_MEDIA, allowed=allowed)]  # fmt: skip

        if task_uuid is None:
            return bad("taskUUID", "taskUUID must be a UUID v4.")
        if task.get("operation") != "upload":
            return bad("operation", "operation must be 'upload'.", ["upload"])
        media = _parse_media(task.get("media"))
        if media is None:
            return bad("media", "media must be a data URI, base64-encoded bytes or an http(s) URL.")
        media_uuid = random_uuid(self._rng)
        self._media[media_uuid] = media
        data.append({"taskType": "mediaStorage", "taskUUID": task_uuid, "mediaUUID": media_uuid,
                     "mediaURL": f"{base_url}/media/{media_uuid}"})  # fmt: skip
        return []

    # -- downloads -------------------------------------------------------------------

    def video(self, video_uuid: str) -> Literal["ready", "expired", "missing"]:
        """Whether a result video can be downloaded now."""
        with self._lock:
            job = self._videos.get(video_uuid)
            result = job.result_for(video_uuid) if job is not None else None
            now = self._clock()
            if job is None or result is None or job.failure is not None or now < result.finish_at:
                return "missing"
            if job.url_lifetime is not None and now >= result.finish_at + job.url_lifetime:
                return "expired"
            return "ready"

    def clip(self, video_uuid: str) -> tuple[Job, int] | None:
        """The job behind a result video and the result's index, for rendering it."""
        with self._lock:
            job = self._videos.get(video_uuid)
            result = job.result_for(video_uuid) if job is not None else None
            return None if job is None or result is None else (job, result.index)

    def media(self, media_uuid: str) -> Media | None:
        with self._lock:
            return self._media.get(media_uuid)


def _error(
    code: str,
    message: str,
    *,
    parameter: str | None,
    task_type: str | None,
    task_uuid: str | None,
    docs: str,
    allowed: Any = None,
) -> dict[str, Any]:
    error: dict[str, Any] = {
        "code": code,
        "message": message,
        "parameter": parameter,
        "taskType": task_type,
        "taskUUID": task_uuid,
        "documentation": docs,
    }
    if allowed is not None:
        error["allowedValues"] = allowed
    return error


def _parse_media(value: Any) -> Media | None:
    if not isinstance(value, str) or not value:
        return None
    if value.startswith(("https://", "http://")):
        # Never fetched: the emulator must not reach the network.
        return Media(None, value, "text/uri-list")
    mime = None
    payload = value
    if value.startswith("data:"):
        match = _DATA_URI.match(value)
        if match is None:
            return None
        mime, payload = match["mime"], match["data"]
    try:
        content = base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    if not content:
        return None
    return Media(content, None, mime or _sniff(content))


def _sniff(content: bytes) -> str:
    for magic, mime in _MAGIC:
        if content.startswith(magic):
            return mime
    if content[4:8] == b"ftyp":
        return "video/mp4"
    if content[:4] == b"RIFF" and content[8:12] in (b"WEBP", b"WAVE"):
        return "image/webp" if content[8:12] == b"WEBP" else "audio/wav"
    return "application/octet-stream"

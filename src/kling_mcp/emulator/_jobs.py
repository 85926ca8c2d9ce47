"""Simulated video jobs.

A job does no work in the background: each result has a finish time fixed at
submission, and its state is read off the clock when polled. So nothing is
left running when the server stops, and a seeded emulator is reproducible.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ..pricing import estimate_cost
from ._faults import ErrorForm, Fault
from ._render import MediaLookup, container_of, source_clip_seconds

DOCS_VIDEO = "https://runware.ai/docs/en/video-inference/api-reference"

PROVIDER_FAILURE_MESSAGE = "The provider failed to generate the video."
CONTENT_POLICY_MESSAGE = (
    "The request was rejected by the provider's content policy. Change the prompt or the inputs and try again."
)


@dataclass(frozen=True, slots=True)
class Failure:
    code: str
    message: str
    form: ErrorForm

    @classmethod
    def from_fault(cls, fault: Fault) -> Failure:
        if fault.kind == "content_policy":
            return cls("contentModerated", fault.message or CONTENT_POLICY_MESSAGE, fault.error_form or "envelope")
        return cls(fault.code or "providerError", fault.message or PROVIDER_FAILURE_MESSAGE, fault.error_form or "item")


@dataclass(frozen=True, slots=True)
class Result:
    index: int
    finish_at: float
    video_uuid: str
    seed: int
    cost: float | None


@dataclass(frozen=True, slots=True)
class Job:
    task_uuid: str
    submitted_at: float
    results: tuple[Result, ...]
    failure: Failure | None
    url_lifetime: float | None  # seconds a result URL lives after the result is ready; None: for ever
    task: dict[str, Any]  # as submitted: what each result's clip shows
    clip_seconds: float  # how long each result's clip lasts (an edit: its source's real length)

    def result_for(self, video_uuid: str) -> Result | None:
        return next((r for r in self.results if r.video_uuid == video_uuid), None)


def random_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def clip_seconds(task: dict[str, Any], media: MediaLookup, edit_source_seconds: int) -> float:
    """How long each result lasts: the requested duration, or for an edit the real length of the
    uploaded source clip (``edit_source_seconds`` when the source cannot be read, e.g. a URL)."""
    inputs = task.get("inputs")
    if isinstance(inputs, dict) and inputs.get("video"):
        return source_clip_seconds(task, media) or float(edit_source_seconds)
    estimate = estimate_cost(task)  # the duration asked for, or the model's default
    # check() lets no task through without a known model, so the fallback is never used.
    return float(estimate.seconds) if estimate is not None and estimate.seconds is not None else 5.0


def cost_of_one(task: dict[str, Any], seconds: float) -> float | None:
    """What Runware charges for one result: the rate for the task's mode times the clip's seconds."""
    estimate = estimate_cost(task)
    if estimate is None:
        return None
    cost = estimate.rate_per_second * Decimal(str(seconds))
    return float(cost.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP))


def new_job(
    task: dict[str, Any],
    *,
    now: float,
    rng: random.Random,
    job_seconds: tuple[float, float],
    time_scale: float,
    edit_source_seconds: int,
    media: MediaLookup,
    failure: Failure | None,
    render_spread: float | None = None,
    seed: int | None = None,
) -> Job:
    number = task.get("numberResults", 1)
    lo, hi = job_seconds
    if render_spread is not None:
        # As a real service renders: each model and clip length at a speed of its own (somewhere in
        # job_seconds, fixed for this seed), each job within render_spread of it.
        typical = lo + (hi - lo) * _speed_of(seed, task.get("model"), task.get("duration"))
        lo, hi = typical * (1 - render_spread), typical * (1 + render_spread)
    # One stratum of [lo, hi] per result: each duration stays in range while the
    # results finish one after the other, never together.
    width = (hi - lo) / number
    durations = [rng.uniform(lo + i * width, lo + (i + 1) * width) * time_scale for i in range(number)]
    seconds = clip_seconds(task, media, edit_source_seconds)
    cost = cost_of_one(task, seconds) if task.get("includeCost") is True else None
    results = tuple(
        Result(i, now + d, random_uuid(rng), rng.randrange(1, 2**31), cost) for i, d in enumerate(durations)
    )
    ttl = task.get("ttl")
    return Job(
        task_uuid=task["taskUUID"],
        submitted_at=now,
        results=results,
        failure=failure,
        url_lifetime=None if ttl is None else ttl * time_scale,
        task=task,
        clip_seconds=seconds,
    )


def _speed_of(seed: int | None, model: Any, duration: Any) -> float:
    """Where in [0, 1) a model's typical render time for a clip length lies: the same for every job of an
    emulator with this seed."""
    digest = hashlib.sha256(f"{seed}|{model}|{duration}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def poll(job: Job, *, now: float, base_url: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The getResponse items of a job, and the envelope errors of its failed results."""
    items: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    head = {"taskType": "videoInference", "taskUUID": job.task_uuid}
    for result in job.results:
        if now < result.finish_at:
            span = result.finish_at - job.submitted_at
            progress = int(100 * (now - job.submitted_at) / span) if span > 0 else 0
            items.append({**head, "status": "processing", "progress": max(0, min(99, progress))})
        elif job.failure is not None:
            error = {"code": job.failure.code, "message": job.failure.message}
            if job.failure.form == "item":
                items.append({**head, "status": "error", "error": error})
            else:
                errors.append({**error, "parameter": None, **head, "documentation": DOCS_VIDEO})
        else:
            item: dict[str, Any] = {
                **head,
                "status": "success",
                "videoUUID": result.video_uuid,
                "videoURL": f"{base_url}/videos/{result.video_uuid}.{container_of(job.task)}",
            }
            if result.cost is not None:
                item["cost"] = result.cost
            item["seed"] = result.seed
            items.append(item)
    return items, errors

"""Faults the emulator can be told to inject, and the bookkeeping of which fire."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, get_args

FaultKind = Literal[
    "http_401",
    "http_402",
    "http_429",
    "http_500",
    "http_503",
    "http_504",
    "http_400_bare",
    "slow",
    "trickle",
    "drop_before_read",
    "drop_after_read",
    "malformed_json",
    "errors_not_list",
    "data_not_list",
    "not_an_object",
    "stray_error",
    "task_throttled",
    "echo_key",
    "job_failure",
    "content_policy",
    "no_video",
    "webhook_drop",
    "webhook_duplicate",
    "webhook_delay",
]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
ErrorForm = Literal["item", "envelope"]

# Faults that replace the whole HTTP response; the request is not processed (never received).
HTTP_FAULTS = frozenset({"http_401", "http_402", "http_429", "http_500", "http_503", "http_504", "http_400_bare",
                         "task_throttled"})  # fmt: skip
# Faults that answer a request that WAS processed (a submission was accepted and will be billed) with
# something other than the normal answer: a broken connection, or an odd shape.
AFTER_PROCESSING = frozenset({"drop_after_read", "malformed_json", "errors_not_list", "data_not_list",
                              "not_an_object", "stray_error", "trickle"})  # fmt: skip
# Faults that change an answer without deciding it; several may fire on one request.
MODIFIERS = frozenset({"slow", "echo_key"})
# Faults decided per request, around normal processing.
REQUEST_FAULTS = HTTP_FAULTS | AFTER_PROCESSING | MODIFIERS | {"drop_before_read"}
# Faults decided per accepted job: they change how the job ends, not the HTTP exchange.
JOB_FAULTS = frozenset({"job_failure", "content_policy", "no_video"})
# Faults decided per webhook delivery (one per finished result): never sent, sent twice, or sent `delay` s late.
WEBHOOK_FAULTS = frozenset({"webhook_drop", "webhook_duplicate", "webhook_delay"})
# The task_type that aims a fault at result downloads (GET /videos/...) instead of /v1.
DOWNLOAD = "download"
DOWNLOAD_FAULTS = frozenset({"slow", "trickle"})

JOB_FAILURE_CODES = ("providerError", "timeoutProvider")


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault to inject.

    ``times`` is how many matching requests (or, for job faults, accepted jobs)
    it applies to. Left unset it is 1, unless ``probability`` is set: then the
    fault stays armed and fires on each match with that chance, drawn from the
    emulator's seeded RNG. Both set: it fires with that chance, at most
    ``times`` times.

    ``task_type`` limits a request fault to requests holding a task of that
    type; it is ignored by job faults, which only ever concern videoInference.
    ``task_type="download"`` aims ``slow`` or ``trickle`` at result downloads instead.
    """

    kind: FaultKind
    times: int | None = None
    probability: float | None = None
    task_type: str | None = None
    retry_after: float = 1.0  # http_429: seconds in the Retry-After header
    delay: float = 1.0  # slow: seconds before processing; trickle: seconds between bytes of the answer
    code: str | None = None  # job_failure: "providerError" (default) or "timeoutProvider"
    message: str | None = None  # job faults: overrides the error message
    error_form: ErrorForm | None = None  # job faults: how getResponse reports the failure

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"Unknown fault kind {self.kind!r}; one of: {', '.join(FAULT_KINDS)}.")
        times = self.times
        if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
            raise ValueError("times must be a whole number of at least 1.")
        if self.probability is not None and not (0.0 <= self.probability <= 1.0):
            raise ValueError("probability must be between 0 and 1.")
        for name in ("retry_after", "delay"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a number of seconds, 0 or more.")
        if self.kind == "job_failure" and self.code is not None and self.code not in JOB_FAILURE_CODES:
            raise ValueError(f"code must be one of: {', '.join(JOB_FAILURE_CODES)}.")
        if self.error_form not in (None, "item", "envelope"):
            raise ValueError("error_form must be 'item' or 'envelope'.")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        """A fault from its JSON form, as posted to ``/_emulator/faults``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown fault field(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}.")
        if "kind" not in data:
            raise ValueError("A fault needs a 'kind'.")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


class _Armed:
    __slots__ = ("fault", "remaining")

    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        self.remaining: float = (
            fault.times if fault.times is not None else (math.inf if fault.probability is not None else 1)
        )


class FaultBook:
    """The armed faults. Not thread-safe: the emulator holds its lock around every call."""

    def __init__(self, seed: int | None) -> None:
        # Its own stream, so arming a fault does not shift the job timings of a seeded run.
        self._rng = random.Random(None if seed is None else f"faults:{seed}")
        self._armed: list[_Armed] = []

    def add(self, fault: Fault) -> None:
        self._armed.append(_Armed(fault))

    def clear(self) -> None:
        self._armed.clear()

    def armed(self) -> list[dict[str, Any]]:
        return [
            {**a.fault.to_dict(), "remaining": None if math.isinf(a.remaining) else int(a.remaining)}
            for a in self._armed
        ]

    def _fire(self, armed: _Armed) -> bool:
        probability = armed.fault.probability
        if probability is not None and self._rng.random() >= probability:
            return False
        armed.remaining -= 1
        if armed.remaining <= 0:
            self._armed.remove(armed)
        return True

    def for_request(self, task_types: set[str]) -> list[Fault]:
        """The request faults that fire for one /v1 request.

        Every ``slow`` fault that fires adds its delay; of the faults that change
        the response, only the first that fires is used (and consumed), so a
        second one stays armed for a later request.
        """
        fired: list[Fault] = []
        decided = False
        for armed in list(self._armed):
            fault = armed.fault
            if fault.kind not in REQUEST_FAULTS or fault.task_type == DOWNLOAD:
                continue
            if fault.task_type is not None and fault.task_type not in task_types:
                continue
            if fault.kind not in MODIFIERS and decided:
                continue
            if self._fire(armed):
                fired.append(fault)
                decided = decided or fault.kind not in MODIFIERS
        return fired

    def for_download(self) -> list[Fault]:
        """The faults aimed at result downloads (task_type "download") that fire for one GET."""
        return [a.fault for a in list(self._armed)
                if a.fault.task_type == DOWNLOAD and a.fault.kind in DOWNLOAD_FAULTS and self._fire(a)]  # fmt: skip

    def for_webhook(self) -> list[Fault]:
        """The webhook faults that fire for one delivery."""
        return [a.fault for a in list(self._armed) if a.fault.kind in WEBHOOK_FAULTS and self._fire(a)]

    def for_job(self) -> Fault | None:
        """The job fault that decides the fate of a newly accepted job, if any."""
        for armed in list(self._armed):
            if armed.fault.kind in JOB_FAULTS and self._fire(armed):
                return armed.fault
        return None

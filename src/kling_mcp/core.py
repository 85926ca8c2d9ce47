"""The pure core every tool goes through: build the task, check it, price it. No I/O."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .constraints import Note, Violation, check_with_notes
from .payload import VideoRequest, build_payload, tool_names
from .pricing import CostEstimate, estimate_cost


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    request: VideoRequest
    payload: dict[str, Any]
    violations: list[Violation] = field(default_factory=list)
    estimate: CostEstimate | None = None
    notes: list[Note] = field(default_factory=list)  # worth telling, never a refusal

    @property
    def ok(self) -> bool:
        return not self.violations

    def priced_for_source(self, seconds: int) -> PreparedRequest:
        """The same request, priced for an edit whose source clip is known to last ``seconds``."""
        return replace(self, estimate=estimate_cost(self.payload, source_seconds=seconds))


def prepare(request: VideoRequest, *, task_uuid: str | None = None, local_files: bool = False) -> PreparedRequest:
    """Everything needed to decide whether to submit: the exact payload, all its violations
    (named by tool argument), and the cost estimate. With ``local_files``, media values may be
    local file paths, left in the payload for the caller to check and upload."""
    payload = build_payload(request, task_uuid=task_uuid)
    checked = check_with_notes(payload, names=tool_names(payload), local_files=local_files)
    violations = list(checked.violations)
    if request.source_duration is not None:
        if request.video is None:
            violations.append(
                Violation(
                    field="source_duration",
                    rule="requires",
                    message="source_duration only prices an edit of a source video.",
                    fix="Remove 'source_duration', or pass the clip to edit in 'video'.",
                    value=request.source_duration,
                )
            )
        elif request.source_duration < 1:
            violations.append(
                Violation(
                    field="source_duration",
                    rule="out_of_range",
                    message="source_duration is the source clip's length in whole seconds.",
                    fix="Set 'source_duration' to the clip's length in seconds (at least 1), or omit it.",
                    value=request.source_duration,
                    allowed={"min": 1, "max": None},
                )
            )
    source_seconds = request.source_duration if request.source_duration and request.source_duration >= 1 else None
    estimate = estimate_cost(payload, source_seconds=source_seconds)
    return PreparedRequest(request, payload, violations, estimate, list(checked.notes))

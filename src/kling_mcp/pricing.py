"""Cost estimates from the catalog's per-second prices. Pure, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from .catalog import ModelSpec, get_model

PriceMode = Literal["base", "audio", "video_input"]


@dataclass(frozen=True, slots=True)
class CostEstimate:
    model: str
    mode: PriceMode
    rate_per_second: Decimal
    number_results: int
    seconds: int | None  # None: an edit whose source length is unknown
    total: Decimal | None
    # What the spend guard reserves: the total, or for an edit of unknown length
    # the cost of the longest clip the model renders.
    reserve: Decimal
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "mode": self.mode,
            "usd_per_second": float(self.rate_per_second),
            "seconds": self.seconds,
            "number_results": self.number_results,
            "total_usd": None if self.total is None else float(self.total),
            "reserved_usd": float(self.reserve),
            "notes": list(self.notes),
        }


def _present(value: object) -> bool:
    return value is not None and value is not False and value != []


def estimate_cost(task: Mapping[str, Any], *, source_seconds: int | None = None) -> CostEstimate | None:
    """Price a ``videoInference`` task: rate by mode x seconds x numberResults.

    Returns None when the task names no known model. ``source_seconds`` is the
    length of the source clip of an edit, when the caller knows it.
    """
    spec = get_model(task.get("model", "")) if isinstance(task.get("model"), str) else None
    if spec is None:
        return None
    inputs = task.get("inputs") if isinstance(task.get("inputs"), Mapping) else {}
    settings = task.get("providerSettings") if isinstance(task.get("providerSettings"), Mapping) else {}
    klingai = settings.get("klingai") if isinstance(settings.get("klingai"), Mapping) else {}
    number = task.get("numberResults", 1)
    number = number if isinstance(number, int) and not isinstance(number, bool) and number > 0 else 1
    has_video = _present(inputs.get("video")) or _present(inputs.get("referenceVideos"))
    mode, rate, notes = _rate(spec, has_video=has_video, sound=klingai.get("sound") is True)

    if _present(inputs.get("video")):
        seconds = source_seconds
        if seconds is None:
            longest = spec.duration.max or spec.default_duration
            notes.append(
                f"An edit is billed for the length of the source clip, which is not known here: "
                f"${rate}/s x the clip's seconds. Up to ${rate * longest * number} is reserved "
                f"against the spend caps (a {longest} s clip)."
            )
            return CostEstimate(spec.id, mode, rate, number, None, None, rate * longest * number, tuple(notes))
    else:
        duration = task.get("duration", spec.default_duration)
        seconds = duration if isinstance(duration, int) and not isinstance(duration, bool) else spec.default_duration
    total = rate * seconds * number
    return CostEstimate(spec.id, mode, rate, number, seconds, total, total, tuple(notes))


def _rate(spec: ModelSpec, *, has_video: bool, sound: bool) -> tuple[PriceMode, Decimal, list[str]]:
    pricing = spec.pricing
    if has_video:
        if pricing.video_input is not None:
            return "video_input", pricing.video_input, []
        highest = max(r for r in (pricing.base, pricing.audio) if r is not None)
        return "video_input", highest, [
            f"{spec.name} publishes no rate for a video input; the highest published rate "
            f"(${highest}/s) is used so the estimate does not under-count."
        ]
    if sound and pricing.audio is not None:
        return "audio", pricing.audio, []
    return "base", pricing.base, []

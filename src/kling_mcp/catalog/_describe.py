"""A model spec as plain JSON, for agents planning within its limits."""

from __future__ import annotations

from typing import Any

from ._spec import DurationWhen, ExactlyOne, IntRange, MaxItemsWhen, ModelSpec


def _range(r: IntRange) -> dict[str, int | None]:
    return {"min": r.min, "max": r.max}


def describe(spec: ModelSpec, *, with_readings: bool = True) -> dict[str, Any]:
    duration: dict[str, Any] = {**_range(spec.duration), "default": spec.default_duration}
    for rule in spec.rules:
        if isinstance(rule, DurationWhen):
            key = "with_" + "_or_".join(f.value.split(".")[-1] for f in rule.when)
            duration[key] = list(rule.allowed) if isinstance(rule.allowed, tuple) else _range(rule.allowed)
    reduced = [
        {"when": [f.value for f in r.when], "field": r.field.value, "max_items": r.max_items}
        for r in spec.rules
        if isinstance(r, MaxItemsWhen)
    ]
    out: dict[str, Any] = {
        "id": spec.id,
        "name": spec.name,
        "aliases": list(spec.aliases),
        "summary": spec.summary,
        "capabilities": list(spec.capabilities),
        "resolution": spec.resolution,
        "aspect_ratios": {d.aspect_ratio: f"{d.width}x{d.height}" for d in spec.dimensions},
        "duration_seconds": duration,
        "number_results": _range(spec.number_results),
        "prompt_length": _range(spec.prompt_length),
        "limits": {
            "frame_images": spec.frame_images.max_items if spec.frame_images else 0,
            "reference_images": spec.reference_images_max or 0,
            "reference_images_reduced": reduced,
            "reference_videos": spec.reference_videos_max or 0,
            "elements": spec.elements.max_items if spec.elements else 0,
            "shots": (spec.multi_prompt.max_segments if spec.multi_prompt else 0),
        },
        "settings": {
            "negative_prompt": spec.negative_prompt,
            "sound": spec.sound,
            "keep_original_sound": spec.keep_original_sound,
            "character_orientation": list(spec.character_orientation),
            "shot_type": list(spec.shot_types),
            "shots": spec.multi_prompt is not None,
            "elements": spec.elements is not None,
            "edit_video": spec.video_edit,
        },
        "output": {
            "formats": list(spec.output.formats),
            "quality": _range(spec.output.quality),
            "safety_modes": list(spec.output.safety_modes),
            "ttl_seconds_min": spec.output.ttl.min,
        },
        "pricing_usd_per_second": {
            "resolution": spec.pricing.resolution,
            "base": float(spec.pricing.base),
            "with_audio": float(spec.pricing.audio) if spec.pricing.audio is not None else None,
            "with_video_input": float(spec.pricing.video_input) if spec.pricing.video_input is not None else None,
        },
    }
    if with_readings:
        out["rules"] = [
            {"rule": type(r).__name__, "published": r.published, **({"reading": r.reading} if r.reading else {})}
            for r in spec.rules
            if not isinstance(r, ExactlyOne) or r.published
        ]
        out["readings"] = list(spec.readings) + list(spec.pricing.notes)
    return out

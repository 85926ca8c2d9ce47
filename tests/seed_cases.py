"""Tool-level arguments for every request example on the Runware model pages.

Each entry is what an agent would pass to a kling-mcp tool to make the request
the page shows. Long texts and media URLs are taken from the example itself
(``$prompt``, ``$frame0``...), everything that is a choice is written out.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

EXAMPLES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "data" / "seed_examples.json").read_text(encoding="utf-8")
)

P, N = "$prompt", "$negative"
F0, F1, R, RV, V = "$frame0", "$frame1", "$references", "$reference_videos", "$video"


def shots(*durations: int) -> list[dict[str, Any]]:
    return [{"prompt": f"$shot{i}", "duration": d} for i, d in enumerate(durations)]


O1, O3S, O3P, K3S, K3P = "o1-standard", "o3-standard", "o3-pro", "3-standard", "3-pro"

CASES: dict[str, tuple[str, dict[str, Any]]] = {
    # Kling VIDEO O3 Standard
    "93c0c444": ("image_to_video", dict(model=O3S, prompt=P, duration=8, sound=True, first_frame=F0, last_frame=F1)),
    "44fe4289": ("edit_video", dict(model=O3S, prompt=P, video=V)),
    "e25c9720": ("text_to_video", dict(model=O3S, prompt=P, aspect_ratio="16:9", duration=8, sound=True)),
    "b3bd5742": ("text_to_video", dict(model=O3S, aspect_ratio="16:9", duration=9, sound=True, shots=shots(3, 3, 3))),
    "fbbc6bf0": ("image_to_video", dict(model=O3S, prompt=P, duration=5, sound=True, first_frame=F0)),
    "74293221": ("text_to_video", dict(model=O3S, prompt=P, aspect_ratio="16:9", duration=8, sound=True, reference_images=R)),
    # Kling VIDEO O1 Standard
    "a0ef9c47": ("text_to_video", dict(model=O1, prompt=P, aspect_ratio="16:9", duration=5, keep_original_sound=True, reference_videos=RV)),
    "00bee739": ("image_to_video", dict(model=O1, prompt=P, duration=5, first_frame=F0)),
    "05695f4b": ("text_to_video", dict(model=O1, prompt=P, aspect_ratio="16:9", duration=5, reference_images=R)),
    "5762e0a4": ("image_to_video", dict(model=O1, prompt=P, duration=5, first_frame=F0, last_frame=F1)),
    "79c5196e": ("text_to_video", dict(model=O1, prompt=P, aspect_ratio="16:9", duration=5, reference_images=R)),
    "81f701b5": ("image_to_video", dict(model=O1, prompt=P, duration=5, first_frame=F0)),
    "366d2e00": ("edit_video", dict(model=O1, prompt=P, video=V, keep_original_sound=True)),
    "2413a352": ("image_to_video", dict(model=O1, prompt=P, duration=5, first_frame=F0, last_frame=F1)),
    "762dd057": ("text_to_video", dict(model=O1, prompt=P, aspect_ratio="16:9", duration=5)),
    "44fd6137": ("text_to_video", dict(model=O1, prompt=P, aspect_ratio="16:9", duration=5)),
    # Kling VIDEO O3 Pro
    "f92fd87a": ("text_to_video", dict(model=O3P, prompt=P, aspect_ratio="16:9", duration=8, sound=True)),
    "7068c964": ("image_to_video", dict(model=O3P, prompt=P, duration=8, sound=True, first_frame=F0, last_frame=F1)),
    "bff47908": ("edit_video", dict(model=O3P, prompt=P, video=V)),
    "c59a73fe": ("image_to_video", dict(model=O3P, prompt=P, duration=8, sound=True, first_frame=F0)),
    "0b06a81c": ("text_to_video", dict(model=O3P, aspect_ratio="16:9", duration=9, sound=True, shots=shots(3, 3, 3))),
    # Kling VIDEO 3.0 Standard
    "236ba4b9": ("image_to_video", dict(model=K3S, prompt=P, negative_prompt=N, duration=5, first_frame=F0, last_frame=F1)),
    "c118b804": ("image_to_video", dict(model=K3S, prompt=P, negative_prompt=N, duration=6, first_frame=F0)),
    "4042c650": ("text_to_video", dict(model=K3S, prompt=P, negative_prompt=N, aspect_ratio="16:9", duration=8)),
    "469312a4": ("image_to_video", dict(model=K3S, prompt=P, negative_prompt=N, duration=8, first_frame=F0)),
    # Kling VIDEO 3.0 Pro
    "08885c1c": ("text_to_video", dict(model=K3P, prompt=P, negative_prompt=N, aspect_ratio="16:9", duration=10)),
    "70b56006": ("text_to_video", dict(model=K3P, prompt=P, negative_prompt=N, aspect_ratio="16:9", duration=10)),
    "b47e5dd4": ("image_to_video", dict(model=K3P, prompt=P, negative_prompt=N, duration=8, first_frame=F0)),
    "b8f22ea1": ("image_to_video", dict(model=K3P, prompt=P, negative_prompt=N, duration=8, first_frame=F0, last_frame=F1)),
}


def _frame_image(item: Any) -> str:
    return item if isinstance(item, str) else item["image"]


def resolve(args: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """Replace the ``$`` placeholders in tool arguments with the texts and URLs of the example."""
    inputs = request.get("inputs", {})
    multi = request.get("providerSettings", {}).get("klingai", {}).get("multiPrompt", [])
    values = {
        P: request.get("positivePrompt"),
        N: request.get("negativePrompt"),
        F0: _frame_image(inputs["frameImages"][0]) if inputs.get("frameImages") else None,
        F1: _frame_image(inputs["frameImages"][1]) if len(inputs.get("frameImages", [])) > 1 else None,
        R: inputs.get("referenceImages"),
        RV: inputs.get("referenceVideos"),
        V: inputs.get("video"),
        **{f"$shot{i}": s["prompt"] for i, s in enumerate(multi)},
    }

    def sub(value: Any) -> Any:
        if isinstance(value, str) and value in values:
            return values[value]
        if isinstance(value, list):
            return [sub(v) for v in value]
        if isinstance(value, dict):
            return {k: sub(v) for k, v in value.items()}
        return value

    return sub(args)


SERVER_ADDED = ("taskUUID", "deliveryMethod", "includeCost")


def normalise(task: dict[str, Any]) -> dict[str, Any]:
    """A task with what the pages' own rules make equivalent written one way: frame images as
    positioned objects (one image is the first frame; two are first and last), an empty
    providerSettings omitted, and the server-added fields dropped."""
    task = copy.deepcopy(task)
    for key in SERVER_ADDED:
        task.pop(key, None)
    frames = task.get("inputs", {}).get("frameImages")
    if frames:
        positioned = []
        for i, item in enumerate(frames):
            item = {"image": item} if isinstance(item, str) else dict(item)
            item.setdefault("frame", "first" if i == 0 else "last")
            positioned.append(item)
        task["inputs"]["frameImages"] = positioned
    if task.get("providerSettings") == {"klingai": {}}:
        del task["providerSettings"]
    return task


def example_id(example: dict[str, Any]) -> str:
    return example["request"]["taskUUID"][:8]

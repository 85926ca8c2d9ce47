"""Tool-level video requests, and their mapping to Runware ``videoInference`` tasks. Pure.

A :class:`VideoRequest` is what an agent writes: snake_case names, an aspect
ratio instead of pixels, ``shots`` instead of ``multiPrompt``, ``first_frame`` /
``last_frame`` instead of positioned frame images. :func:`build_payload` maps it
to the exact task JSON, and :func:`tool_name` maps a task path back to the
argument an agent wrote, so that violations speak the agent's vocabulary.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from .catalog import get_model

AspectRatioArg = Literal["16:9", "9:16", "1:1"]
OutputFormat = Literal["MP4", "WEBM", "MOV"]
SafetyMode = Literal["none", "fast", "full"]

# Longest accepted media value that is not a data URI: a URL, a UUID or a file path (PATH_MAX).
MAX_MEDIA_REF = 4096
# A data URI carries the file itself: up to the largest image Runware takes inline, base64-encoded.
MAX_DATA_URI = 14_000_000
MAX_ELEMENT_ID = 64
MAX_DESCRIPTION = 2500
MAX_TAGS, MAX_TAG = 10, 64


def _bounded_media(value: str) -> str:
    limit = MAX_DATA_URI if value.startswith("data:") else MAX_MEDIA_REF
    if len(value) > limit:
        kind = "A data URI" if value.startswith("data:") else "A URL, media UUID or file path"
        raise ValueError(f"{kind} may be at most {limit} characters; this one has {len(value)}. Use a shorter "
                         "value (for a large file, its local path or a media UUID from upload_media).")
    return value


# Described once, on Element, rather than on each of its media values.
MediaRef = Annotated[str, Field(min_length=1), AfterValidator(_bounded_media)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Element(Strict):
    """A character or object, <<<element_N>>> in prompts (N from 1)."""

    id: str = Field(min_length=1, max_length=MAX_ELEMENT_ID,
                    description="New, or one created before.")
    description: str | None = Field(None, max_length=MAX_DESCRIPTION,
                                    )
    frontal_image: MediaRef | None = Field(None, description="Front image; needed with `images`.")
    images: list[MediaRef] | None = Field(None, min_length=1, max_length=3, description="Up to 3 more angles.")
    videos: list[MediaRef] | None = Field(
        None, min_length=1, max_length=1, description="Not with images or voices."
    )
    voices: list[MediaRef] | None = Field(
        None, min_length=1, max_length=1, description="A voice clip; only with images."
    )
    tags: list[Annotated[str, Field(min_length=1, max_length=MAX_TAG)]] | None = Field(
        None, min_length=1, max_length=MAX_TAGS, description="e.g. Character"
    )


class Shot(Strict):
    """One segment of a multi-shot video."""

    prompt: str = Field(min_length=2, max_length=2500, description="What happens in this shot.")
    duration: int = Field(ge=1, le=15, description="Seconds; shots add up to `duration`.")


class VideoRequest(Strict):
    """Every setting any of the tools can pass, in the agents' vocabulary."""

    model: str
    prompt: str | None = None
    negative_prompt: str | None = None
    duration: int | None = None
    aspect_ratio: AspectRatioArg | None = None
    first_frame: str | None = None
    last_frame: str | None = None
    video: str | None = None
    reference_images: list[str] | None = None
    reference_videos: list[str] | None = None
    elements: list[Element] | None = None
    shots: list[Shot] | None = None
    sound: bool | None = None
    keep_original_sound: bool | None = None
    character_orientation: Literal["image", "video"] | None = None
    shot_type: Literal["intelligence"] | None = None
    number_results: int | None = None
    output_format: OutputFormat | None = None
    output_quality: int | None = None
    safety_mode: SafetyMode | None = None
    ttl: int | None = None
    # Not sent: the length of an edit's source clip, to price the edit exactly.
    source_duration: int | None = None


def new_task_uuid() -> str:
    return str(uuid.uuid4())


def build_payload(request: VideoRequest, *, task_uuid: str | None = None) -> dict[str, Any]:
    """The Runware ``videoInference`` task for a request. Adds nothing the caller did not ask for,
    except the platform fields (task type and id, async delivery, cost reporting) and, outside an
    edit, an explicit duration (the model default, or the sum of the shots)."""
    spec = get_model(request.model)
    task: dict[str, Any] = {
        "taskType": "videoInference",
        "taskUUID": task_uuid or new_task_uuid(),
        "model": spec.id if spec else request.model,
    }
    if request.prompt is not None:
        task["positivePrompt"] = request.prompt
    if request.negative_prompt is not None:
        task["negativePrompt"] = request.negative_prompt
    if request.aspect_ratio is not None and spec is not None:
        dims = spec.dimensions_for(request.aspect_ratio)
        if dims is not None:
            task["width"], task["height"] = dims.width, dims.height
    if request.duration is not None:
        task["duration"] = request.duration
    elif request.shots:
        task["duration"] = sum(s.duration for s in request.shots)
    elif request.video is None and spec is not None:
        task["duration"] = spec.default_duration
    for key, value in (
        ("numberResults", request.number_results),
        ("outputFormat", request.output_format),
        ("outputQuality", request.output_quality),
        ("ttl", request.ttl),
    ):
        if value is not None:
            task[key] = value
    if request.safety_mode is not None:
        task["safety"] = {"checkContent": request.safety_mode != "none", "mode": request.safety_mode}

    inputs: dict[str, Any] = {}
    frames = [
        {"image": image, "frame": position}
        for image, position in ((request.first_frame, "first"), (request.last_frame, "last"))
        if image is not None
    ]
    if frames:
        inputs["frameImages"] = frames
    if request.reference_images is not None:
        inputs["referenceImages"] = list(request.reference_images)
    if request.reference_videos is not None:
        inputs["referenceVideos"] = list(request.reference_videos)
    if request.video is not None:
        inputs["video"] = request.video
    if request.elements is not None:
        inputs["elements"] = [_element(e) for e in request.elements]
    if inputs:
        task["inputs"] = inputs

    klingai: dict[str, Any] = {}
    for key, value in (
        ("sound", request.sound),
        ("keepOriginalSound", request.keep_original_sound),
        ("characterOrientation", request.character_orientation),
        ("shotType", request.shot_type),
    ):
        if value is not None:
            klingai[key] = value
    if request.shots is not None:
        klingai["multiPrompt"] = [{"prompt": s.prompt, "duration": s.duration} for s in request.shots]
    if klingai:
        task["providerSettings"] = {"klingai": klingai}

    task["deliveryMethod"] = "async"
    task["includeCost"] = True
    return task


def _element(element: Element) -> dict[str, Any]:
    out: dict[str, Any] = {"id": element.id}
    for key, value in (
        ("description", element.description),
        ("frontalImage", element.frontal_image),
        ("images", element.images),
        ("videos", element.videos),
        ("voices", element.voices),
        ("tags", element.tags),
    ):
        if value is not None:
            out[key] = value
    return out


# -- task paths back to tool arguments ----------------------------------------------

_TOP = {
    "positivePrompt": "prompt",
    "negativePrompt": "negative_prompt",
    "width/height": "aspect_ratio",
    "width": "aspect_ratio",
    "height": "aspect_ratio",
    "numberResults": "number_results",
    "outputFormat": "output_format",
    "outputQuality": "output_quality",
    "safety": "safety_mode",
    "safety.mode": "safety_mode",
    "safety.checkContent": "safety_mode",
    "inputs.frameImages": "first_frame/last_frame",
    "inputs.referenceImages": "reference_images",
    "inputs.referenceVideos": "reference_videos",
    "inputs.video": "video",
    "inputs.elements": "elements",
    "providerSettings.klingai.sound": "sound",
    "providerSettings.klingai.keepOriginalSound": "keep_original_sound",
    "providerSettings.klingai.characterOrientation": "character_orientation",
    "providerSettings.klingai.shotType": "shot_type",
    "providerSettings.klingai.multiPrompt": "shots",
}
_ELEMENT_KEYS = {"frontalImage": "frontal_image"}
_INDEXED = re.compile(r"^(?P<base>[A-Za-z.]+?)(?P<index>\[\d+\])(?:\.(?P<rest>.+))?$")


def tool_name(path: str) -> str:
    """The tool argument behind a task path, e.g. ``providerSettings.klingai.multiPrompt[1].duration``
    is ``shots[1].duration``. Paths with no argument behind them are returned as they are."""
    if path in _TOP:
        return _TOP[path]
    match = _INDEXED.match(path)
    if match is None:
        return path
    base, index, rest = match["base"], match["index"], match["rest"]
    if base == "inputs.frameImages":
        # Frame positions are chosen by argument name, so the index says which one.
        return "first_frame/last_frame" + (f" ({rest})" if rest and rest != "image" else "")
    name = _TOP.get(base, base) + index
    if rest:
        head, _, tail = rest.partition("[")
        name += "." + _ELEMENT_KEYS.get(head, head) + (f"[{tail}" if tail else "")
    return name


_FRAME = re.compile(r"^inputs\.frameImages\[(\d+)\](?:\.image)?$")


def tool_names(task: Mapping[str, Any]) -> Callable[[str], str]:
    """:func:`tool_name` for one task: knowing the task, a frame image is named by the argument
    it came from (``first_frame`` or ``last_frame``), not by both."""
    inputs = task.get("inputs")
    frames = _list(inputs.get("frameImages")) if isinstance(inputs, Mapping) else []

    def names(path: str) -> str:
        match = _FRAME.match(path)
        if match and int(match[1]) < len(frames) and isinstance(frames[int(match[1])], Mapping):
            position = frames[int(match[1])].get("frame")
            if position in ("first", "last"):
                return f"{position}_frame"
        return tool_name(path)

    return names


# -- media inputs ---------------------------------------------------------------------

MediaKindName = Literal["image", "video", "audio"]


@dataclass(frozen=True, slots=True)
class MediaInput:
    """One media value in a task: where it sits, the argument an agent wrote it in, and its kind."""

    path: tuple[str | int, ...]  # keys and indexes from the task's root
    argument: str
    value: str
    kind: MediaKindName


def media_inputs(task: Mapping[str, Any]) -> list[MediaInput]:
    """Every media value of a task built by :func:`build_payload`, in argument order."""
    inputs = task.get("inputs")
    if not isinstance(inputs, Mapping):
        return []
    names = tool_names(task)
    found: list[MediaInput] = []

    def add(path: tuple[str | int, ...], value: object, kind: MediaKindName) -> None:
        if isinstance(value, str):
            dotted = "inputs" + "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path)
            found.append(MediaInput(("inputs", *path), names(dotted), value, kind))

    for i, frame in enumerate(_list(inputs.get("frameImages"))):
        if isinstance(frame, Mapping):
            add(("frameImages", i, "image"), frame.get("image"), "image")
    for key, kind in (("referenceImages", "image"), ("referenceVideos", "video")):
        for i, value in enumerate(_list(inputs.get(key))):
            add((key, i), value, kind)  # type: ignore[arg-type]
    add(("video",), inputs.get("video"), "video")
    for i, element in enumerate(_list(inputs.get("elements"))):
        if not isinstance(element, Mapping):
            continue
        add(("elements", i, "frontalImage"), element.get("frontalImage"), "image")
        for key, kind in (("images", "image"), ("videos", "video"), ("voices", "audio")):
            for j, value in enumerate(_list(element.get(key))):
                add(("elements", i, key, j), value, kind)  # type: ignore[arg-type]
    return found


def with_media(task: Mapping[str, Any], replacements: Mapping[tuple[str | int, ...], str]) -> dict[str, Any]:
    """A copy of the task with the media values at these paths replaced (local paths by UUIDs)."""
    out = copy.deepcopy(dict(task))
    for path, value in replacements.items():
        node: Any = out
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value
    return out


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []

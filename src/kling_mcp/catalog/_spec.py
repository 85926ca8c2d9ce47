"""The vocabulary a model spec is written in.

A spec is data: ranges, limits, prices and conditional rules, each rule carrying
the sentence it came from on the Runware page and, where that sentence
contradicts an accepted example, the reading this project took instead. The
checker in :mod:`kling_mcp.constraints` interprets these; it has no per-model code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Literal

AspectRatio = Literal["16:9", "1:1", "9:16"]


class Field(StrEnum):
    """Request fields, named by their path in the Runware ``videoInference`` task."""

    PROMPT = "positivePrompt"
    NEGATIVE_PROMPT = "negativePrompt"
    DIMENSIONS = "width/height"
    DURATION = "duration"
    NUMBER_RESULTS = "numberResults"
    FRAME_IMAGES = "inputs.frameImages"
    REFERENCE_IMAGES = "inputs.referenceImages"
    REFERENCE_VIDEOS = "inputs.referenceVideos"
    VIDEO = "inputs.video"
    ELEMENTS = "inputs.elements"
    SOUND = "providerSettings.klingai.sound"
    KEEP_ORIGINAL_SOUND = "providerSettings.klingai.keepOriginalSound"
    CHARACTER_ORIENTATION = "providerSettings.klingai.characterOrientation"
    SHOT_TYPE = "providerSettings.klingai.shotType"
    MULTI_PROMPT = "providerSettings.klingai.multiPrompt"
    PROVIDER_SETTINGS = "providerSettings"  # the object itself, whatever it holds


@dataclass(frozen=True, slots=True)
class Dimensions:
    width: int
    height: int
    aspect_ratio: AspectRatio
    label: str  # as the page's table names it, e.g. "720p (16:9)"


@dataclass(frozen=True, slots=True)
class IntRange:
    min: int
    max: int | None = None  # None: no published maximum

    def __contains__(self, value: object) -> bool:
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and value >= self.min
            and (self.max is None or value <= self.max)
        )

    def describe(self) -> str:
        return f"{self.min} to {self.max}" if self.max is not None else f"at least {self.min}"


@dataclass(frozen=True, slots=True)
class FrameImagesSpec:
    max_items: int = 2
    # Some pages type frameImages as "array of objects" only; others also take
    # a plain image string per item.
    accepts_plain_strings: bool = True


@dataclass(frozen=True, slots=True)
class ElementsSpec:
    max_items: int = 3
    max_extra_images: int = 3  # `images`, besides the frontal image
    max_videos: int = 1
    max_voices: int = 1


@dataclass(frozen=True, slots=True)
class MultiPromptSpec:
    max_segments: int | None
    segment_duration: IntRange = IntRange(1)


@dataclass(frozen=True, slots=True)
class Pricing:
    """USD per second of output video, by what the request contains."""

    resolution: str
    base: Decimal
    audio: Decimal | None = None
    video_input: Decimal | None = None
    notes: tuple[str, ...] = ()


# -- Conditional rules ---------------------------------------------------------
# Each names the sentence on the page it enforces (`published`) and, where the
# page's examples forced a different reading, the reading taken (`reading`).


@dataclass(frozen=True, slots=True)
class ExactlyOne:
    """Exactly one of ``options`` must be present (or at most one, if ``allow_none``)."""

    options: tuple[Field, ...]
    published: str
    reading: str = ""
    # Present fields that may accompany any option without counting as one.
    allow_none: bool = False


@dataclass(frozen=True, slots=True)
class AtLeastOne:
    """At least one of ``options`` must be present."""

    options: tuple[Field, ...]
    published: str
    reading: str = ""


@dataclass(frozen=True, slots=True)
class Requires:
    """When ``when`` is present, at least one of ``needs`` must be too."""

    when: Field
    needs: tuple[Field, ...]
    published: str
    reading: str = ""


@dataclass(frozen=True, slots=True)
class Excludes:
    """When any of ``when`` is present, ``forbidden`` must be absent."""

    when: tuple[Field, ...]
    forbidden: Field
    published: str
    reading: str = ""


@dataclass(frozen=True, slots=True)
class MaxItemsWhen:
    """When any of ``when`` is present, the list ``field`` is capped at ``max_items``."""

    when: tuple[Field, ...]
    field: Field
    max_items: int
    published: str
    reading: str = ""


@dataclass(frozen=True, slots=True)
class DurationWhen:
    """When any of ``when`` is present, ``duration`` must be in ``allowed`` (a set or a range)."""

    when: tuple[Field, ...]
    allowed: tuple[int, ...] | IntRange
    published: str
    reading: str = ""


@dataclass(frozen=True, slots=True)
class ElementReferences:
    """How prompts refer to elements (``<<<element_N>>>``, in the order of ``inputs.elements``).

    A reference to an element that is not given is refused; an element no prompt refers to is
    accepted, with a note."""

    published: str
    reading: str = ""


Rule = ExactlyOne | AtLeastOne | Requires | Excludes | MaxItemsWhen | DurationWhen | ElementReferences


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """Platform options every Kling page lists identically."""

    formats: tuple[str, ...] = ("MP4", "WEBM", "MOV")
    quality: IntRange = IntRange(20, 99)
    safety_modes: tuple[str, ...] = ("none", "fast", "full")
    ttl: IntRange = IntRange(60)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    id: str
    name: str
    aliases: tuple[str, ...]
    summary: str
    seed_file: str
    dimensions: tuple[Dimensions, ...]
    duration: IntRange
    default_duration: int
    number_results: IntRange
    pricing: Pricing
    prompt_length: IntRange = IntRange(2, 2500)
    negative_prompt: bool = False
    frame_images: FrameImagesSpec | None = FrameImagesSpec()
    reference_images_max: int | None = None  # None: the model takes no reference images
    reference_videos_max: int | None = None
    video_edit: bool = False
    elements: ElementsSpec | None = None
    multi_prompt: MultiPromptSpec | None = None
    sound: bool = False
    keep_original_sound: bool = False
    character_orientation: tuple[str, ...] = ()
    shot_types: tuple[str, ...] = ()
    output: OutputSpec = OutputSpec()
    rules: tuple[Rule, ...] = ()
    readings: tuple[str, ...] = field(default=())  # model-wide readings, not tied to one rule

    @property
    def resolution(self) -> str:
        return self.pricing.resolution

    def dimensions_for(self, aspect_ratio: str) -> Dimensions | None:
        return next((d for d in self.dimensions if d.aspect_ratio == aspect_ratio), None)

    def supports(self, f: Field) -> bool:
        """Whether the page lists this field for the model at all."""
        match f:
            case Field.NEGATIVE_PROMPT:
                return self.negative_prompt
            case Field.FRAME_IMAGES:
                return self.frame_images is not None
            case Field.REFERENCE_IMAGES:
                return self.reference_images_max is not None
            case Field.REFERENCE_VIDEOS:
                return self.reference_videos_max is not None
            case Field.VIDEO:
                return self.video_edit
            case Field.ELEMENTS:
                return self.elements is not None
            case Field.MULTI_PROMPT:
                return self.multi_prompt is not None
            case Field.SOUND:
                return self.sound
            case Field.KEEP_ORIGINAL_SOUND:
                return self.keep_original_sound
            case Field.CHARACTER_ORIENTATION:
                return bool(self.character_orientation)
            case Field.SHOT_TYPE:
                return bool(self.shot_types)
            case _:
                return True

    @property
    def capabilities(self) -> tuple[str, ...]:
        caps = ["text_to_video"]
        if self.frame_images is not None:
            caps.append("image_to_video")
        if self.video_edit:
            caps.append("edit_video")
        return tuple(caps)

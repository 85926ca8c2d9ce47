"""The model catalog: one declarative spec per Kling model on Runware."""

from __future__ import annotations

from ._spec import (
    AspectRatio,
    AtLeastOne,
    Dimensions,
    DurationWhen,
    ElementReferences,
    ElementsSpec,
    Excludes,
    ExactlyOne,
    Field,
    FrameImagesSpec,
    IntRange,
    MaxItemsWhen,
    ModelSpec,
    MultiPromptSpec,
    OutputSpec,
    Pricing,
    Requires,
    Rule,
)
from ._describe import describe
from .models import MODELS

_BY_NAME: dict[str, ModelSpec] = {}
for _spec in MODELS:
    for _name in (_spec.id, *_spec.aliases):
        _BY_NAME[_name.lower()] = _spec

MODEL_IDS: tuple[str, ...] = tuple(m.id for m in MODELS)
MODEL_NAMES: tuple[str, ...] = tuple(_BY_NAME)


def get_model(name: str) -> ModelSpec | None:
    """The spec for a Runware model id or one of its aliases (case-insensitive)."""
    return _BY_NAME.get(name.strip().lower()) if isinstance(name, str) else None


__all__ = [
    "MODELS",
    "MODEL_IDS",
    "MODEL_NAMES",
    "AspectRatio",
    "AtLeastOne",
    "Dimensions",
    "DurationWhen",
    "ElementReferences",
    "ElementsSpec",
    "Excludes",
    "ExactlyOne",
    "Field",
    "FrameImagesSpec",
    "IntRange",
    "MaxItemsWhen",
    "ModelSpec",
    "MultiPromptSpec",
    "OutputSpec",
    "Pricing",
    "Requires",
    "Rule",
    "describe",
    "get_model",
]

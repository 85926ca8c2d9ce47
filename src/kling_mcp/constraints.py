"""The pre-submission constraint checker: pure, no I/O.

``check(task)`` takes a Runware ``videoInference`` task (any JSON-like value)
and returns every violation of the model's spec at once, never only the first,
and never raises on malformed input. It clamps, coerces and drops nothing: a
request either passes as it is or comes back with what to change.

Violations name fields by their Runware path. A caller that presents other
names (the MCP tools speak snake_case arguments) passes ``names`` to have the
paths and fixes rewritten in its own vocabulary.

``check_with_notes(task)`` returns the same violations and, beside them, notes:
things worth telling about a request that is accepted as it is (an element no
prompt refers to, say). A note never refuses anything.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .catalog import (
    MODEL_IDS,
    MODELS,
    AtLeastOne,
    DurationWhen,
    ElementReferences,
    Excludes,
    ExactlyOne,
    Field,
    IntRange,
    MaxItemsWhen,
    ModelSpec,
    Requires,
    get_model,
)
from .files._refs import local_path

Names = Callable[[str], str]

ELEMENT_TOKEN = re.compile(r"<<<element_(\d+)>>>")
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_BASE64_RE = re.compile(r"^[A-Za-z0-9+/\r\n]+={0,2}$")
_FRAME_POSITIONS: tuple[object, ...] = ("first", "last", 0, -1)

TOP_LEVEL_KEYS = (
    "taskType", "taskUUID", "model", "positivePrompt", "negativePrompt", "width", "height",
    "duration", "numberResults", "outputType", "outputFormat", "outputQuality", "webhookURL",
    "deliveryMethod", "uploadEndpoint", "safety", "ttl", "includeCost", "inputs",
    "providerSettings",
)  # fmt: skip
INPUT_KEYS = ("frameImages", "referenceImages", "referenceVideos", "video", "elements")
KLINGAI_KEYS = ("sound", "keepOriginalSound", "characterOrientation", "shotType", "multiPrompt")
ELEMENT_KEYS = ("id", "description", "frontalImage", "images", "videos", "voices", "tags")


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule, with enough to act on it without reading the docs."""

    field: str
    rule: str
    message: str
    fix: str
    value: Any = None
    allowed: Any = None
    published: str = ""
    reading: str = ""

    def to_dict(self) -> dict[str, Any]:
        return _set_fields(self)

    def __str__(self) -> str:
        return f"{self.field}: {self.message} Fix: {self.fix}"


def _set_fields(finding: Violation | Note) -> dict[str, Any]:
    """A finding's fields, without those left empty."""
    return {k: v for k, v in asdict(finding).items() if v not in (None, "")}


@dataclass(frozen=True, slots=True)
class Note:
    """Something worth telling about a request that is accepted as it is. Never a refusal."""

    field: str
    rule: str
    message: str
    suggestion: str
    published: str = ""
    reading: str = ""

    def to_dict(self) -> dict[str, Any]:
        return _set_fields(self)

    def __str__(self) -> str:
        return f"{self.field}: {self.message} {self.suggestion}"


@dataclass(frozen=True, slots=True)
class RuleCheck:
    """What :func:`check_with_notes` found: refusals, and notes on an acceptable request."""

    violations: list[Violation] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


def _identity(path: str) -> str:
    return path


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shown(value: object) -> object:
    """The offending value as it is safe and useful to echo back (long strings cut)."""
    if isinstance(value, str) and len(value) > 120:
        return value[:60] + f"...({len(value)} characters)"
    if isinstance(value, list) and len(value) > 10:
        return f"a list of {len(value)} items"
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    if isinstance(value, list):
        return [_shown(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _shown(v) for k, v in list(value.items())[:10]}
    return repr(value)[:120]


def looks_like_media(value: str, *, images: bool) -> bool:
    """Whether a string is a form Runware accepts for a media input.

    Images take a UUID, a URL, a data URI or raw base64; videos and audio a UUID or a URL.
    """
    if _UUID_RE.match(value) or value.startswith(("https://", "http://")):
        return True
    if images:
        if value.startswith("data:image/"):
            return True
        return len(value) >= 64 and bool(_BASE64_RE.match(value))
    return False


class _Run:
    """The state of one check: the task, its spec, and the violations found so far."""

    def __init__(
        self, task: Mapping[str, Any], spec: ModelSpec, names: Names, local_files: bool = False, *, plan: bool = True
    ) -> None:
        self.task = task
        self.spec = spec
        self.names = names
        self.local_files = local_files
        # Whether to work out, for an unmet requirement, the changes that would meet it (see _plans).
        # The trial checks that work it out do not plan in turn.
        self.plan = plan
        self.found: list[Violation] = []
        self.notes: list[Note] = []
        self.unmet: dict[tuple[str, str, str], Requires] = {}  # each unmet requirement, by its violation's key
        inputs = task.get("inputs")
        self.inputs: Mapping[str, Any] = inputs if isinstance(inputs, Mapping) else {}
        settings = task.get("providerSettings")
        klingai = settings.get("klingai") if isinstance(settings, Mapping) else None
        self.klingai: Mapping[str, Any] = klingai if isinstance(klingai, Mapping) else {}

    # -- reporting ---------------------------------------------------------------

    def add(
        self,
        path: str,
        rule: str,
        message: str,
        fix: str,
        *,
        value: object = None,
        allowed: object = None,
        published: str = "",
        reading: str = "",
    ) -> None:
        self.found.append(
            Violation(
                field=self.names(path),
                rule=rule,
                message=message,
                fix=fix,
                value=_shown(value),
                allowed=allowed,
                published=published,
                reading=reading,
            )
        )

    def n(self, path: str) -> str:
        return self.names(path)

    # -- presence ----------------------------------------------------------------

    def value_of(self, f: Field) -> object:
        match f:
            case Field.PROVIDER_SETTINGS:
                return self.task.get("providerSettings")
            case Field.PROMPT | Field.NEGATIVE_PROMPT | Field.DURATION | Field.NUMBER_RESULTS:
                return self.task.get(f.value)
            case Field.DIMENSIONS:
                w, h = self.task.get("width"), self.task.get("height")
                return None if w is None and h is None else (w, h)
        prefix, _, key = f.value.rpartition(".")
        source = self.inputs if prefix == "inputs" else self.klingai
        return source.get(key)

    def present(self, f: Field) -> bool:
        # A boolean setting left at false asks for nothing, so it does not trigger
        # the conditional rules (it is still refused by models that lack it).
        value = self.value_of(f)
        return value is not None and value is not False

    # -- generic checks ------------------------------------------------------------

    def unknown_keys(self, obj: Mapping[str, Any], known: Sequence[str], path: str) -> None:
        for key in obj:
            if key not in known:
                where = f"{path}.{key}" if path else str(key)
                self.add(
                    where,
                    "unknown_field",
                    f"'{self.n(where)}' is not a parameter of {self.spec.name}.",
                    f"Remove '{self.n(where)}'.",
                    value=obj[key],
                    allowed=[self.n(f"{path}.{k}" if path else k) for k in known],
                )

    def int_in(self, path: str, value: object, allowed: IntRange, what: str) -> bool:
        if value in allowed:
            return True
        if not _is_int(value):
            self.add(
                path, "type", f"{what} must be a whole number.",
                f"Set '{self.n(path)}' to a whole number, {allowed.describe()}.",
                value=value, allowed={"min": allowed.min, "max": allowed.max},
            )  # fmt: skip
        else:
            self.add(
                path, "out_of_range", f"{what} must be {allowed.describe()} for {self.spec.name}.",
                f"Set '{self.n(path)}' to a value {allowed.describe()}.",
                value=value, allowed={"min": allowed.min, "max": allowed.max},
            )  # fmt: skip
        return False

    def one_of(self, path: str, value: object, allowed: Sequence[object], what: str) -> bool:
        if any(value == a and type(value) is type(a) for a in allowed):
            return True
        self.add(
            path, "allowed_values", f"{what} must be one of {', '.join(map(repr, allowed))}.",
            f"Set '{self.n(path)}' to one of {', '.join(map(repr, allowed))}.",
            value=value, allowed=list(allowed),
        )  # fmt: skip
        return False

    def text(self, path: str, value: object, length: IntRange, what: str) -> None:
        if not isinstance(value, str):
            self.add(path, "type", f"{what} must be text.", f"Set '{self.n(path)}' to a string.", value=value)
            return
        if len(value) not in length or not value.strip():
            self.add(
                path, "length",
                f"{what} must be {length.describe()} characters and not blank; it has {len(value)}.",
                f"{'Shorten' if length.max and len(value) > length.max else 'Write'} '{self.n(path)}' "
                f"to {length.describe()} characters.",
                value=value, allowed={"min": length.min, "max": length.max},
            )  # fmt: skip

    def boolean(self, path: str, value: object) -> None:
        if not isinstance(value, bool):
            self.add(path, "type", "Must be true or false.", f"Set '{self.n(path)}' to true or false.", value=value)

    def media(self, path: str, value: object, *, images: bool) -> None:
        kinds = "a UUID, an https URL, a data URI or base64" if images else "a UUID or an https URL"
        if self.local_files:  # the tools' own wording: they offer no raw base64
            kinds = "an absolute local file path, a Runware media UUID, an https URL" + (" or a data URI" if images else "")
        if not isinstance(value, str) or not value:
            self.add(path, "type", f"Must be {kinds}.", f"Set '{self.n(path)}' to {kinds}.", value=value)
        elif not (looks_like_media(value, images=images) or (self.local_files and local_path(value) is not None)):
            self.add(
                path, "media_reference", f"'{_shown(value)}' is not {kinds}.",
                f"Pass {kinds} in '{self.n(path)}'" + ("." if self.local_files else " (upload local files first)."),
                value=value,
            )  # fmt: skip

    def items(
        self, path: str, value: object, max_items: int | None, what: str, min_items: int = 1
    ) -> list[Any] | None:
        if not isinstance(value, list):
            self.add(path, "type", f"{what} must be a list.", f"Pass '{self.n(path)}' as a list.", value=value)
            return None
        if len(value) < min_items or (max_items is not None and len(value) > max_items):
            bounds = IntRange(min_items, max_items)
            self.add(
                path, "item_count",
                f"{what} takes {bounds.describe()} items for {self.spec.name}; {len(value)} given.",
                f"Give '{self.n(path)}' {bounds.describe()} items.",
                value=len(value), allowed={"min": min_items, "max": max_items},
            )  # fmt: skip
        return value

    def not_supported(self, path: str, value: object, what: str, alternatives: str = "") -> None:
        capable = alternatives or _models_with(path)
        self.add(
            path, "not_supported", f"{self.spec.name} does not support {what}.",
            f"Remove '{self.n(path)}'" + (f", or use a model that supports it: {capable}." if capable else "."),
            value=value,
        )  # fmt: skip


def _models_with(path: str) -> str:
    try:
        f = Field(path)
    except ValueError:
        return ""
    return ", ".join(m.id for m in MODELS if m.supports(f))


# -- the check --------------------------------------------------------------------


def check(task: object, *, names: Names = _identity, local_files: bool = False) -> list[Violation]:
    """All violations of its model's published constraints in a ``videoInference`` task.

    With ``local_files``, a local file path is taken as a media value (its file is checked and
    uploaded later, before submission); Runware itself never takes one, so by default it is refused."""
    return check_with_notes(task, names=names, local_files=local_files).violations


def check_with_notes(task: object, *, names: Names = _identity, local_files: bool = False) -> RuleCheck:
    """:func:`check`'s violations, and notes worth showing with a request that passes."""
    if not isinstance(task, Mapping):
        not_object = Violation(
            field=names("$"), rule="type", message="The request must be a JSON object.",
            fix="Send one videoInference task as an object.", value=_shown(task),
        )  # fmt: skip
        return RuleCheck([not_object])
    model = task.get("model")
    spec = get_model(model) if isinstance(model, str) else None
    if spec is None:
        unknown = Violation(
            field=names("model"), rule="unknown_model",
            message=f"'{_shown(model)}' is not one of the Kling models served here.",
            fix=f"Set '{names('model')}' to one of: {', '.join(MODEL_IDS)}.",
            value=_shown(model), allowed=list(MODEL_IDS),
        )  # fmt: skip
        return RuleCheck([unknown])
    run = _evaluate(task, spec, names, local_files)
    return RuleCheck(_dedupe(run.found), run.notes)


def _evaluate(task: Mapping[str, Any], spec: ModelSpec, names: Names, local_files: bool, *, plan: bool = True) -> _Run:
    run = _Run(task, spec, names, local_files, plan=plan)
    model = task.get("model")
    if model != spec.id:
        run.add("model", "allowed_values", f"Runware knows this model only as '{spec.id}'.",
                f"Set '{names('model')}' to '{spec.id}'.", value=model, allowed=[spec.id])  # fmt: skip
    _check_platform(run)
    _check_prompts(run)
    _check_dimensions(run)
    _check_duration(run)
    _check_inputs(run)
    _check_provider_settings(run)
    _check_rules(run)
    _check_element_references(run)
    return run


def _key(v: Violation) -> tuple[str, str, str]:
    return (v.field, v.rule, v.message)


def _dedupe(found: list[Violation]) -> list[Violation]:
    seen: set[tuple[str, str, str]] = set()
    out = []
    for v in found:
        if _key(v) not in seen:
            seen.add(_key(v))
            out.append(v)
    return out


def _check_platform(run: _Run) -> None:
    task, out = run.task, run.spec.output
    run.unknown_keys(task, TOP_LEVEL_KEYS, "")
    if task.get("taskType") != "videoInference":
        run.add("taskType", "allowed_values", "taskType must be 'videoInference'.",
                "Set 'taskType' to 'videoInference'.", value=task.get("taskType"), allowed=["videoInference"])  # fmt: skip
    task_uuid = task.get("taskUUID")
    if not isinstance(task_uuid, str) or not _is_uuid4(task_uuid):
        run.add("taskUUID", "format", "taskUUID must be a UUID v4, unique per task.",
                "Generate a fresh UUID v4 for 'taskUUID'.", value=task_uuid)  # fmt: skip
    if "numberResults" in task:
        run.int_in("numberResults", task["numberResults"], run.spec.number_results, "The number of results")
    if "outputType" in task:
        run.one_of("outputType", task["outputType"], ("URL",), "outputType")
    if "outputFormat" in task:
        run.one_of("outputFormat", task["outputFormat"], out.formats, "The output format")
    if "outputQuality" in task:
        run.int_in("outputQuality", task["outputQuality"], out.quality, "The output quality")
    if "ttl" in task:
        run.int_in("ttl", task["ttl"], out.ttl, "The result URL lifetime (ttl, seconds)")
    if "deliveryMethod" in task:
        run.one_of("deliveryMethod", task["deliveryMethod"], ("async",), "deliveryMethod (video is asynchronous)")
    if "includeCost" in task:
        run.boolean("includeCost", task["includeCost"])
    for key in ("webhookURL", "uploadEndpoint"):
        if key in task and not (isinstance(task[key], str) and task[key].startswith(("https://", "http://"))):
            run.add(key, "format", f"{key} must be an http(s) URL.", f"Set '{key}' to an https URL.", value=task[key])
    if "safety" in task:
        safety = task["safety"]
        if not isinstance(safety, Mapping):
            run.add("safety", "type", "safety must be an object.", "Pass 'safety' as {checkContent, mode}.", value=safety)
        else:
            run.unknown_keys(safety, ("checkContent", "mode"), "safety")
            if "checkContent" in safety:
                run.boolean("safety.checkContent", safety["checkContent"])
            if "mode" in safety:
                run.one_of("safety.mode", safety["mode"], out.safety_modes, "The safety mode")


def _is_uuid4(value: str) -> bool:
    try:
        return uuid.UUID(value).version == 4
    except ValueError:
        return False


def _check_prompts(run: _Run) -> None:
    task, spec = run.task, run.spec
    if "positivePrompt" in task:
        run.text("positivePrompt", task["positivePrompt"], spec.prompt_length, "The prompt")
    elif spec.multi_prompt is None:
        run.add("positivePrompt", "required", "A prompt is required.",
                f"Set '{run.n('positivePrompt')}' to a description of the video "
                f"({spec.prompt_length.describe()} characters).")  # fmt: skip
    if "negativePrompt" in task:
        if not spec.negative_prompt:
            run.not_supported("negativePrompt", task["negativePrompt"], "a negative prompt")
        else:
            run.text("negativePrompt", task["negativePrompt"], spec.prompt_length, "The negative prompt")


def _check_dimensions(run: _Run) -> None:
    task, spec = run.task, run.spec
    has_w, has_h = "width" in task, "height" in task
    if not (has_w or has_h):
        return
    allowed = [f"{d.width}x{d.height} ({d.aspect_ratio})" for d in spec.dimensions]
    if has_w != has_h:
        missing = "height" if has_w else "width"
        run.add(missing, "paired", "width and height must be used together.",
                f"Send '{run.n('width')}' and '{run.n('height')}' together, one of: {', '.join(allowed)}.",
                value=task.get("width" if has_w else "height"), allowed=allowed)  # fmt: skip
        return
    pair = (task["width"], task["height"])
    if not any(_is_int(pair[0]) and _is_int(pair[1]) and pair == (d.width, d.height) for d in spec.dimensions):
        run.add("width/height", "allowed_values",
                f"{_shown(pair[0])}x{_shown(pair[1])} is not a size {spec.name} renders.",
                f"Set '{run.n('width/height')}' to one of: {', '.join(allowed)}.",
                value=f"{_shown(pair[0])}x{_shown(pair[1])}",
                allowed=allowed)  # fmt: skip


def _check_duration(run: _Run) -> None:
    if "duration" not in run.task:
        return
    if not run.int_in("duration", run.task["duration"], run.spec.duration, "The duration (seconds)"):
        return
    duration = run.task["duration"]
    for rule in run.spec.rules:
        if isinstance(rule, DurationWhen) and any(run.present(f) for f in rule.when):
            ok = duration in rule.allowed
            if not ok:
                trigger = next(f for f in rule.when if run.present(f))
                if isinstance(rule.allowed, IntRange):
                    allowed, describe = {"min": rule.allowed.min, "max": rule.allowed.max}, rule.allowed.describe()
                else:
                    allowed, describe = list(rule.allowed), " or ".join(map(str, rule.allowed))
                run.add("duration", "conditional_range",
                        f"With '{run.n(trigger.value)}', the duration must be {describe} seconds.",
                        f"Set '{run.n('duration')}' to {describe}.", value=duration, allowed=allowed,
                        published=rule.published, reading=rule.reading)  # fmt: skip


def _check_inputs(run: _Run) -> None:
    task, spec = run.task, run.spec
    if "inputs" not in task:
        return
    inputs = task["inputs"]
    if not isinstance(inputs, Mapping):
        run.add("inputs", "type", "inputs must be an object.", "Pass 'inputs' as an object.", value=inputs)
        return
    run.unknown_keys(inputs, INPUT_KEYS, "inputs")
    fields = {
        "frameImages": (Field.FRAME_IMAGES, "frame images (image-to-video)", _check_frame_images),
        "referenceImages": (Field.REFERENCE_IMAGES, "reference images", _check_reference_images),
        "referenceVideos": (Field.REFERENCE_VIDEOS, "reference videos", _check_reference_videos),
        "video": (Field.VIDEO, "editing a source video", _check_source_video),
        "elements": (Field.ELEMENTS, "elements", _check_elements),
    }
    for key, (f, what, check_one) in fields.items():
        if key not in inputs:
            continue
        if not spec.supports(f):
            run.not_supported(f.value, inputs[key], what)
        else:
            check_one(run, inputs[key])


def _check_frame_images(run: _Run, value: object) -> None:
    frame_spec = run.spec.frame_images
    assert frame_spec is not None
    items = run.items("inputs.frameImages", value, frame_spec.max_items, "Frame images")
    if items is None:
        return
    positions: list[object] = []
    for i, item in enumerate(items):
        path = f"inputs.frameImages[{i}]"
        implicit = "first" if i == 0 else "last"
        if isinstance(item, str):
            if not frame_spec.accepts_plain_strings:
                run.add(path, "type", f"{run.spec.name} takes frame images only as objects {{image, frame}}.",
                        f"Pass '{run.n(path)}' as {{\"image\": ..., \"frame\": \"{implicit}\"}}.",
                        value=item)  # fmt: skip
            run.media(path, item, images=True)
            positions.append(implicit)
        elif isinstance(item, Mapping):
            run.unknown_keys(item, ("image", "frame"), path)
            if "image" not in item:
                run.add(f"{path}.image", "required", "Each frame image needs an image.",
                        f"Set '{run.n(path + '.image')}'.")  # fmt: skip
            else:
                run.media(f"{path}.image", item["image"], images=True)
            if "frame" in item:
                if run.one_of(f"{path}.frame", item["frame"], _FRAME_POSITIONS, "The frame position"):
                    positions.append("first" if item["frame"] in ("first", 0) else "last")
            else:
                positions.append(implicit)
        else:
            run.add(path, "type", "Each frame image must be an image string or {image, frame}.",
                    f"Fix '{run.n(path)}'.", value=item)  # fmt: skip
    for position in ("first", "last"):
        if positions.count(position) > 1:
            run.add("inputs.frameImages", "duplicate_frame",
                    f"Two frame images both target the {position} frame.",
                    f"Give '{run.n('inputs.frameImages')}' at most one first frame and one last frame.",
                    value=positions)  # fmt: skip


def _check_reference_images(run: _Run, value: object) -> None:
    items = run.items("inputs.referenceImages", value, run.spec.reference_images_max, "Reference images")
    for i, item in enumerate(items or ()):
        run.media(f"inputs.referenceImages[{i}]", item, images=True)


def _check_reference_videos(run: _Run, value: object) -> None:
    items = run.items("inputs.referenceVideos", value, run.spec.reference_videos_max, "Reference videos")
    for i, item in enumerate(items or ()):
        run.media(f"inputs.referenceVideos[{i}]", item, images=False)


def _check_source_video(run: _Run, value: object) -> None:
    run.media("inputs.video", value, images=False)


def _check_elements(run: _Run, value: object) -> None:
    element_spec = run.spec.elements
    assert element_spec is not None
    items = run.items("inputs.elements", value, element_spec.max_items, "Elements")
    for i, element in enumerate(items or ()):
        path = f"inputs.elements[{i}]"
        if not isinstance(element, Mapping):
            run.add(path, "type", "Each element must be an object with an id.", f"Fix '{run.n(path)}'.", value=element)
            continue
        run.unknown_keys(element, ELEMENT_KEYS, path)
        element_id = element.get("id")
        if not isinstance(element_id, str) or not element_id.strip():
            run.add(f"{path}.id", "required", "Each element needs an id (new, or one created before).",
                    f"Set '{run.n(path + '.id')}' to a non-empty string.", value=element_id)  # fmt: skip
        if "description" in element and not isinstance(element["description"], str):
            run.add(f"{path}.description", "type", "An element description must be text.",
                    f"Set '{run.n(path + '.description')}' to a string.", value=element["description"])  # fmt: skip
        if "frontalImage" in element:
            run.media(f"{path}.frontalImage", element["frontalImage"], images=True)
        limits = {
            "images": (element_spec.max_extra_images, True),
            "videos": (element_spec.max_videos, False),
            "voices": (element_spec.max_voices, False),
        }
        for key, (max_items, images) in limits.items():
            if key in element:
                for j, media in enumerate(run.items(f"{path}.{key}", element[key], max_items, f"Element {key}") or ()):
                    run.media(f"{path}.{key}[{j}]", media, images=images)
        if "tags" in element:
            for j, tag in enumerate(run.items(f"{path}.tags", element["tags"], None, "Element tags") or ()):
                if not isinstance(tag, str) or not tag:
                    run.add(f"{path}.tags[{j}]", "type", "Tags must be non-empty text.",
                            f"Fix '{run.n(f'{path}.tags[{j}]')}'.", value=tag)  # fmt: skip
        has_images = "frontalImage" in element or "images" in element
        if "images" in element and "frontalImage" not in element:
            run.add(f"{path}.frontalImage", "required", "An element's extra images need a frontal image.",
                    f"Add '{run.n(path + '.frontalImage')}' (the main, front-facing view).")  # fmt: skip
        if "videos" in element and (has_images or "voices" in element):
            run.add(f"{path}.videos", "combination",
                    "An element's video cannot be combined with images or voices.",
                    f"Keep '{run.n(path + '.videos')}' alone, or drop it for a frontal image "
                    "(with optional extra images and a voice).",
                    value=sorted(k for k in ("frontalImage", "images", "voices") if k in element))  # fmt: skip


def _check_provider_settings(run: _Run) -> None:
    task, spec = run.task, run.spec
    if "providerSettings" not in task:
        return
    settings = task["providerSettings"]
    if not isinstance(settings, Mapping):
        run.add("providerSettings", "type", "providerSettings must be an object.",
                "Pass 'providerSettings' as {\"klingai\": {...}}.", value=settings)  # fmt: skip
        return
    run.unknown_keys(settings, ("klingai",), "providerSettings")
    klingai = settings.get("klingai", {})
    if not isinstance(klingai, Mapping):
        run.add("providerSettings.klingai", "type", "providerSettings.klingai must be an object.",
                "Pass 'providerSettings.klingai' as an object.", value=klingai)  # fmt: skip
        return
    run.unknown_keys(klingai, KLINGAI_KEYS, "providerSettings.klingai")
    base = "providerSettings.klingai."
    for key, f, what in (
        ("sound", Field.SOUND, "native audio (sound)"),
        ("keepOriginalSound", Field.KEEP_ORIGINAL_SOUND, "keeping the original sound"),
        ("characterOrientation", Field.CHARACTER_ORIENTATION, "character orientation"),
        ("shotType", Field.SHOT_TYPE, "a shot type"),
        ("multiPrompt", Field.MULTI_PROMPT, "multi-shot prompts"),
    ):
        if key not in klingai:
            continue
        value = klingai[key]
        if not spec.supports(f):
            run.not_supported(base + key, value, what)
        elif key in ("sound", "keepOriginalSound"):
            run.boolean(base + key, value)
        elif key == "characterOrientation":
            run.one_of(base + key, value, spec.character_orientation, "The character orientation")
        elif key == "shotType":
            run.one_of(base + key, value, spec.shot_types, "The shot type")
        else:
            _check_multi_prompt(run, value)


def _check_multi_prompt(run: _Run, value: object) -> None:
    spec = run.spec
    assert spec.multi_prompt is not None
    path = Field.MULTI_PROMPT.value
    segments = run.items(path, value, spec.multi_prompt.max_segments, "Multi-shot segments")
    if segments is None:
        return
    total, complete = 0, True
    for i, segment in enumerate(segments):
        seg = f"{path}[{i}]"
        if not isinstance(segment, Mapping):
            run.add(seg, "type", "Each shot must be an object {prompt, duration}.", f"Fix '{run.n(seg)}'.", value=segment)
            complete = False
            continue
        run.unknown_keys(segment, ("prompt", "duration"), seg)
        if "prompt" not in segment:
            run.add(f"{seg}.prompt", "required", "Each shot needs a prompt.", f"Set '{run.n(seg + '.prompt')}'.")
        else:
            run.text(f"{seg}.prompt", segment["prompt"], spec.prompt_length, "A shot prompt")
        if "duration" not in segment:
            run.add(f"{seg}.duration", "required", "Each shot needs a duration in seconds.",
                    f"Set '{run.n(seg + '.duration')}'.")  # fmt: skip
            complete = False
        elif run.int_in(f"{seg}.duration", segment["duration"], spec.multi_prompt.segment_duration, "A shot duration"):
            total += segment["duration"]
        else:
            complete = False
    duration = run.task.get("duration", spec.default_duration)
    if complete and segments and _is_int(duration) and total != duration:
        stated = "" if "duration" in run.task else f" (the default, {spec.default_duration} s, as none is set)"
        run.add(path, "sum_mismatch",
                f"The shots add up to {total} s but the video's duration is {duration} s{stated}.",
                f"Make the durations in '{run.n(path)}' add up to {duration}, or set "
                f"'{run.n('duration')}' to {total}.",
                value=total, allowed=duration)  # fmt: skip


def _check_rules(run: _Run) -> None:
    for rule in run.spec.rules:
        match rule:
            case ExactlyOne(options=options, allow_none=allow_none):
                given = [f for f in options if run.present(f)]
                if len(given) > 1:
                    names = [run.n(f.value) for f in given]
                    run.add(given[-1].value, "exactly_one",
                            f"{' and '.join(repr(x) for x in names)} cannot be combined for {run.spec.name}.",
                            f"Keep only one of: {', '.join(repr(run.n(f.value)) for f in options)}.",
                            allowed=[run.n(f.value) for f in options], published=rule.published,
                            reading=rule.reading)  # fmt: skip
                elif not given and not allow_none:
                    run.add(options[0].value, "exactly_one",
                            f"{run.spec.name} needs one of: {', '.join(repr(run.n(f.value)) for f in options)}.",
                            f"Add one of: {', '.join(repr(run.n(f.value)) for f in options)}.",
                            allowed=[run.n(f.value) for f in options], published=rule.published,
                            reading=rule.reading)  # fmt: skip
            case AtLeastOne(options=options):
                if not any(run.present(f) for f in options):
                    run.add(options[0].value, "at_least_one",
                            f"{run.spec.name} needs at least one of: "
                            f"{', '.join(repr(run.n(f.value)) for f in options)}.",
                            f"Add one of: {', '.join(repr(run.n(f.value)) for f in options)}.",
                            published=rule.published, reading=rule.reading)  # fmt: skip
            case Requires(when=when, needs=needs):
                if run.present(when) and not any(run.present(f) for f in needs):
                    _report_unmet(run, rule)
            case Excludes(when=when, forbidden=forbidden):
                trigger = next((f for f in when if run.present(f)), None)
                if trigger is not None and run.present(forbidden):
                    run.add(forbidden.value, "excludes",
                            f"'{run.n(forbidden.value)}' cannot be used with '{run.n(trigger.value)}' "
                            f"on {run.spec.name}.",
                            f"Remove '{run.n(forbidden.value)}', or drop '{run.n(trigger.value)}'.",
                            value=run.value_of(forbidden), published=rule.published,
                            reading=rule.reading)  # fmt: skip
            case MaxItemsWhen(when=when, field=f, max_items=max_items):
                value = run.value_of(f)
                trigger = next((t for t in when if run.present(t)), None)
                if trigger is not None and isinstance(value, list) and len(value) > max_items:
                    run.add(f.value, "item_count",
                            f"With '{run.n(trigger.value)}', '{run.n(f.value)}' takes at most {max_items} items; "
                            f"{len(value)} given.",
                            f"Keep at most {max_items} items in '{run.n(f.value)}'.", value=len(value),
                            allowed={"min": 1, "max": max_items}, published=rule.published,
                            reading=rule.reading)  # fmt: skip
            case DurationWhen():
                pass  # checked with the duration itself
            case ElementReferences():
                pass  # checked with the prompts, by _check_element_references


# -- unmet requirements, and the changes that would meet them ------------------------------
# A requirement met one way can bring requirements of its own (on 3.0 Standard, a reference
# video needs keepOriginalSound or characterOrientation, and characterOrientation needs a
# reference image). So that every problem comes back in one round, the fix is worked out by
# trying each way on a copy of the task and keeping the ways after which nothing new is wrong.

_PLACEHOLDER_MEDIA = "00000000-0000-4000-8000-000000000000"  # a well-formed UUID, only ever tried, never sent


@dataclass(frozen=True, slots=True)
class _Step:
    field: Field
    value: Any
    says: str  # e.g. "set 'keep_original_sound' to true"
    shown: Any  # the value as the fix's `allowed` shows it


def _steps(run: _Run, f: Field) -> list[_Step]:
    """The ways to give ``f`` a value that counts as present."""
    if not run.spec.supports(f):
        return []
    name = run.n(f.value)
    match f:
        case Field.SOUND | Field.KEEP_ORIGINAL_SOUND:
            return [_Step(f, True, f"set '{name}' to true", True)]
        case Field.CHARACTER_ORIENTATION | Field.SHOT_TYPE:
            options = run.spec.character_orientation if f is Field.CHARACTER_ORIENTATION else run.spec.shot_types
            return [_Step(f, option, f"set '{name}' to '{option}'", option) for option in options]
        case Field.REFERENCE_IMAGES:
            return [_Step(f, [_PLACEHOLDER_MEDIA], f"add an image to '{name}'", ["an image"])]
        case Field.REFERENCE_VIDEOS:
            return [_Step(f, [_PLACEHOLDER_MEDIA], f"add a video to '{name}'", ["a video"])]
        case Field.VIDEO:
            return [_Step(f, _PLACEHOLDER_MEDIA, f"pass the clip in '{name}'", "a video")]
        case Field.FRAME_IMAGES:
            return [_Step(f, [{"image": _PLACEHOLDER_MEDIA, "frame": "first"}], f"add '{name}'", "an image")]
    return []


def _with(task: Mapping[str, Any], step: _Step) -> dict[str, Any] | None:
    """A copy of the task with the step applied, or None if the task's shape leaves no room for it."""
    out = copy.deepcopy(dict(task))
    parent_path, _, key = step.field.value.rpartition(".")
    node: Any = out
    for part in parent_path.split(".") if parent_path else ():
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            return None
    node[key] = step.value
    return out


def _plans(run: _Run, task: Mapping[str, Any], rule: Requires, depth: int = 2) -> list[list[_Step]]:
    """Each way to meet ``rule`` in ``task`` that leaves nothing new to fix: one step, or a step and
    what it needs in turn (up to ``depth`` steps)."""
    before = {_key(v) for v in _evaluate(task, run.spec, run.names, run.local_files, plan=False).found}
    plans: list[list[_Step]] = []
    for need in rule.needs:
        for step in _steps(run, need):
            tried = _with(task, step)
            if tried is None:
                continue
            after = _evaluate(tried, run.spec, run.names, run.local_files, plan=False)
            new = [v for v in _dedupe(after.found) if _key(v) not in before]
            if not new:
                plans.append([step])
            elif depth > 1 and all(_key(v) in after.unmet for v in new):
                # The step brings requirements of its own: meet the first, then make sure nothing is left.
                for rest in _plans(run, tried, after.unmet[_key(new[0])], depth - 1):
                    if _clean(run, tried, rest, before):
                        plans.append([step, *rest])
    return plans


def _clean(run: _Run, task: Mapping[str, Any], steps: list[_Step], before: set[tuple[str, str, str]]) -> bool:
    for step in steps:
        applied = _with(task, step)
        if applied is None:
            return False
        task = applied
    return all(_key(v) in before for v in _evaluate(task, run.spec, run.names, run.local_files, plan=False).found)


def _report_unmet(run: _Run, rule: Requires) -> None:
    wanted = " or ".join(repr(run.n(f.value)) for f in rule.needs)
    path, value = rule.when.value, run.value_of(rule.when)
    if rule.when is Field.PROVIDER_SETTINGS:
        # Name the settings the agent wrote, not the object the tools build around them.
        given = list(run.klingai)
        if given:
            path, value = f"providerSettings.klingai.{given[0]}", run.klingai[given[0]]
        what = " and ".join(repr(run.n(f"providerSettings.klingai.{key}")) for key in given) or f"'{run.n(path)}'"
        message = f"On {run.spec.name}, any provider setting ({what} here) needs {wanted}."
    else:
        message = f"'{run.n(path)}' needs {wanted} on {run.spec.name}."
    off = [f for f in rule.needs if run.value_of(f) is False]
    if off:
        message += " " + ", ".join(repr(run.n(f.value)) for f in off) + " is false, which asks for nothing."
    plans = _plans(run, run.task, rule) if run.plan else []
    if plans:
        ways = "; or ".join(_grouped(plans))
        fix = f"{ways[0].upper()}{ways[1:]}; or remove '{run.n(path)}'."
        allowed: Any = [{run.n(step.field.value): step.shown for step in plan} for plan in plans]
    else:
        fix, allowed = f"Add {wanted}, or remove '{run.n(path)}'.", None
    run.add(path, "requires", message, fix, value=value, allowed=allowed, published=rule.published,
            reading=rule.reading)  # fmt: skip
    run.unmet[_key(run.found[-1])] = rule


def _grouped(plans: list[list[_Step]]) -> list[str]:
    """The plans in words, those that differ only in one setting's value said once:
    "set 'character_orientation' to 'image' or 'video' and add an image to 'reference_images'"."""
    groups: dict[tuple[Field, tuple[str, ...]], list[_Step]] = {}
    for plan in plans:
        head, rest = plan[0], tuple(step.says for step in plan[1:])
        groups.setdefault((head.field, rest), []).append(head)
    out = []
    for (_, rest), heads in groups.items():
        says = heads[0].says
        if len(heads) > 1:
            says = says.rpartition(" to ")[0] + " to " + " or ".join(repr(h.value) for h in heads)
        out.append(" and ".join((says, *rest)))
    return out


def _check_element_references(run: _Run) -> None:
    elements = run.inputs.get("elements") if run.spec.elements is not None else None
    count = len(elements) if isinstance(elements, list) else 0
    prompts: list[tuple[str, str]] = []
    if isinstance(run.task.get("positivePrompt"), str):
        prompts.append(("positivePrompt", run.task["positivePrompt"]))
    segments = run.klingai.get("multiPrompt")
    if isinstance(segments, list):
        for i, segment in enumerate(segments):
            if isinstance(segment, Mapping) and isinstance(segment.get("prompt"), str):
                prompts.append((f"{Field.MULTI_PROMPT.value}[{i}].prompt", segment["prompt"]))
    referenced: set[int] = set()
    for path, text in prompts:
        for match in ELEMENT_TOKEN.finditer(text):
            number = int(match.group(1))
            referenced.add(number)
            if not 1 <= number <= count:
                run.add(path, "element_reference",
                        f"The prompt refers to {match.group(0)} but "
                        + (f"only {count} element(s) are given." if count else "no elements are given."),
                        f"In '{run.n(path)}', refer only to <<<element_1>>> to <<<element_{count}>>>, "
                        f"in the order of '{run.n('inputs.elements')}'." if count else
                        f"Add the element to '{run.n('inputs.elements')}', or remove {match.group(0)} "
                        f"from '{run.n(path)}'.",
                        value=match.group(0))  # fmt: skip
    rule = next((r for r in run.spec.rules if isinstance(r, ElementReferences)), None)
    for number in range(1, count + 1):
        if number not in referenced:
            path = f"inputs.elements[{number - 1}]"
            run.notes.append(Note(
                field=run.n(path), rule="element_unreferenced",
                message=f"Element {number} is given but no prompt refers to <<<element_{number}>>>; the model "
                "decides whether and where it appears.",
                suggestion=f"To place it, write <<<element_{number}>>> in the prompt where it should appear.",
                published=rule.published if rule else "", reading=rule.reading if rule else "",
            ))  # fmt: skip

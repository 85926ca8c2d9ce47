"""Property-based tests of the constraint engine (hypothesis)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kling_mcp.catalog import MODELS, Field, get_model
from kling_mcp.constraints import Violation, check
from kling_mcp.core import prepare
from kling_mcp.payload import VideoRequest

from .seed_cases import EXAMPLES

URLS = st.sampled_from(["https://example.com/a.jpg", "https://example.com/b.png", "c64351d5-4c59-42f7-95e1-eace013eddab"])
VIDEOS = st.sampled_from(["https://example.com/v.mp4", "aac49721-1964-481a-ae78-8a4e29b91402"])
PROMPTS = st.one_of(
    st.text(min_size=0, max_size=40),
    st.sampled_from(["A fox in snow", "<<<element_1>>> walks in", "<<<element_1>>> meets <<<element_2>>>"]),
)
maybe = lambda s: st.one_of(st.none(), s)  # noqa: E731


@st.composite
def video_requests(draw: st.DrawFn) -> VideoRequest:
    shots = draw(maybe(st.lists(st.fixed_dictionaries({"prompt": st.sampled_from(["a shot here", "<<<element_1>>> runs"]),
                                                      "duration": st.integers(1, 6)}), min_size=1, max_size=7)))  # fmt: skip
    elements = draw(maybe(st.lists(st.fixed_dictionaries(
        {"id": st.sampled_from(["hero", "cat"])},
        optional={"frontal_image": URLS, "images": st.lists(URLS, min_size=1, max_size=3),
                  "videos": st.lists(VIDEOS, min_size=1, max_size=1), "voices": st.lists(VIDEOS, min_size=1, max_size=1)},
    ), min_size=1, max_size=4)))  # fmt: skip
    args: dict[str, Any] = {
        "model": draw(st.sampled_from([m.id for m in MODELS] + [a for m in MODELS for a in m.aliases])),
        "prompt": draw(maybe(PROMPTS)),
        "negative_prompt": draw(maybe(st.sampled_from(["blurry", "x"]))),
        "duration": draw(maybe(st.integers(0, 20))),
        "aspect_ratio": draw(maybe(st.sampled_from(["16:9", "9:16", "1:1"]))),
        "first_frame": draw(maybe(URLS)),
        "last_frame": draw(maybe(URLS)),
        "video": draw(maybe(VIDEOS)),
        "reference_images": draw(maybe(st.lists(URLS, max_size=9))),
        "reference_videos": draw(maybe(st.lists(VIDEOS, max_size=2))),
        "elements": elements,
        "shots": shots,
        "sound": draw(maybe(st.booleans())),
        "keep_original_sound": draw(maybe(st.booleans())),
        "character_orientation": draw(maybe(st.sampled_from(["image", "video"]))),
        "shot_type": draw(maybe(st.just("intelligence"))),
        "number_results": draw(maybe(st.integers(0, 22))),
        "output_format": draw(maybe(st.sampled_from(["MP4", "WEBM", "MOV"]))),
        "output_quality": draw(maybe(st.integers(0, 120))),
        "safety_mode": draw(maybe(st.sampled_from(["none", "fast", "full"]))),
        "ttl": draw(maybe(st.integers(0, 4000))),
    }
    return VideoRequest.model_validate({k: v for k, v in args.items() if v is not None})


def assert_within_published_ranges(task: dict[str, Any]) -> None:
    """Independent of the checker: what every page publishes, asserted on the built payload."""
    spec = get_model(task["model"])
    assert spec is not None and task["model"] == spec.id
    inputs, klingai = task.get("inputs", {}), task.get("providerSettings", {}).get("klingai", {})
    assert spec.prompt_length.min <= len(task.get("positivePrompt", "xx")) <= (spec.prompt_length.max or 10**9)
    if "video" in inputs:
        assert spec.video_edit and "duration" not in task and "width" not in task and "frameImages" not in inputs
    else:
        assert task["duration"] in spec.duration
        has_dims, has_frames = "width" in task, "frameImages" in inputs
        assert has_dims != has_frames or (spec.id.endswith("o1-standard") and "referenceImages" in inputs)
    if "width" in task:
        assert (task["width"], task["height"]) in [(d.width, d.height) for d in spec.dimensions]
    assert task.get("numberResults", 1) in spec.number_results
    assert 20 <= task.get("outputQuality", 95) <= 99 and task.get("ttl", 60) >= 60
    assert len(inputs.get("frameImages", [])) <= 2
    refs = inputs.get("referenceImages", [])
    assert 1 <= len(refs) <= (spec.reference_images_max or 0) if refs or "referenceImages" in inputs else True
    if "video" in inputs or "referenceVideos" in inputs:
        assert len(refs) <= 7 and (len(refs) <= 4 or spec.id.endswith("o1-standard") and "video" not in inputs)
    assert len(inputs.get("referenceVideos", [])) <= 1
    for f in Field:
        if not spec.supports(f) and f is not Field.DIMENSIONS:
            prefix, _, key = f.value.rpartition(".")
            where = inputs if prefix == "inputs" else klingai if prefix else task
            assert key not in where, f"{spec.name} got unsupported {f.value}"
    if "multiPrompt" in klingai:
        assert spec.multi_prompt is not None and "positivePrompt" not in task
        assert sum(s["duration"] for s in klingai["multiPrompt"]) == task["duration"]
        assert len(klingai["multiPrompt"]) <= (spec.multi_prompt.max_segments or 99)
    else:
        assert "positivePrompt" in task
    for element in inputs.get("elements", []):
        assert not ("videos" in element and ("frontalImage" in element or "voices" in element))
        assert "images" not in element or "frontalImage" in element
    if spec.id.endswith("o1-standard") and "frameImages" in inputs:
        assert task["duration"] in (5, 10)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(video_requests())
def test_every_accepted_request_builds_a_payload_inside_every_published_range(request: VideoRequest) -> None:
    prepared = prepare(request)
    if prepared.ok:
        assert_within_published_ranges(prepared.payload)
        assert check(prepared.payload) == []
        assert prepared.estimate is not None and prepared.estimate.reserve > 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)
task_keys = st.sampled_from(
    ["taskType", "taskUUID", "model", "positivePrompt", "negativePrompt", "width", "height", "duration",
     "numberResults", "outputFormat", "outputQuality", "safety", "ttl", "inputs", "providerSettings", "seed"]
)  # fmt: skip
inputs_like = st.fixed_dictionaries(
    {}, optional={k: json_values for k in ["frameImages", "referenceImages", "referenceVideos", "video", "elements"]}
)
klingai_like = st.fixed_dictionaries(
    {}, optional={k: json_values for k in ["sound", "keepOriginalSound", "characterOrientation", "shotType", "multiPrompt"]}
)
tasks_like = st.builds(
    lambda base, model, inputs, klingai: base | {"model": model, "inputs": inputs, "providerSettings": {"klingai": klingai}},
    st.dictionaries(task_keys, json_values, max_size=8),
    st.sampled_from([m.id for m in MODELS] + ["nope", ""]),
    st.one_of(inputs_like, json_values),
    st.one_of(klingai_like, json_values),
)


@settings(max_examples=800, deadline=None)
@given(st.one_of(json_values, tasks_like))
def test_the_checker_never_raises_on_json_like_input(value: object) -> None:
    violations = check(value)
    assert isinstance(violations, list)
    assert all(isinstance(v, Violation) and v.field and v.fix for v in violations)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(EXAMPLES), st.sampled_from(["duration", "numberResults", "width", "inputs", "providerSettings"]),
       json_values)  # fmt: skip
def test_mutating_an_accepted_example_never_crashes_the_checker(example: dict, key: str, value: object) -> None:
    task = dict(example["request"]) | {key: value}
    assert isinstance(check(task), list)

"""Requests each model's page rules out: every one is refused, at the right field, with a fix.

Tool-level cases go through the same path as the MCP tools (build, then check, with
violations named by tool argument). Raw cases are Runware tasks, as the emulator sees them,
for what the tool schemas cannot even express.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from kling_mcp.catalog import MODELS
from kling_mcp.constraints import check
from kling_mcp.core import prepare
from kling_mcp.payload import VideoRequest

IMG = "https://example.com/a.jpg"
IMG2 = "https://example.com/b.jpg"
VID = "https://example.com/clip.mp4"
VID2 = "https://example.com/clip2.mp4"
PROMPT = "A red fox runs through fresh snow at dawn"
O1, O3S, O3P, K3S, K3P = (m.id for m in MODELS)
ALL = [m.id for m in MODELS]
SHOTS_MODELS = [O3S, O3P, K3S]
NO_SHOTS = [O1, K3P]


def t2v(model: str, **kw: Any) -> dict[str, Any]:
    return {"model": model, "prompt": PROMPT, "aspect_ratio": "16:9", "duration": 5} | kw


def i2v(model: str, **kw: Any) -> dict[str, Any]:
    return {"model": model, "prompt": PROMPT, "first_frame": IMG, "duration": 5} | kw


def edit(model: str, **kw: Any) -> dict[str, Any]:
    return {"model": model, "prompt": PROMPT, "video": VID} | kw


def element(**kw: Any) -> dict[str, Any]:
    return {"id": "hero", "frontal_image": IMG} | kw


def shots(*durations: int) -> list[dict[str, Any]]:
    return [{"prompt": f"Shot {i + 1}: the fox keeps running", "duration": d} for i, d in enumerate(durations)]


def raw(model_id: str, /, **kw: Any) -> dict[str, Any]:
    task = {
        "taskType": "videoInference",
        "taskUUID": str(uuid.uuid4()),
        "model": model_id,
        "positivePrompt": PROMPT,
        "width": 1280 if model_id in (O1, O3S, K3S) else 1920,
        "height": 720 if model_id in (O1, O3S, K3S) else 1080,
        "duration": 5,
    }
    for key, value in kw.items():
        if value is None:
            task.pop(key, None)
        else:
            task[key] = value
    return task


def frames_raw(model_id: str, frames: list[Any], **kw: Any) -> dict[str, Any]:
    return raw(model_id, width=None, height=None, inputs={"frameImages": frames}, **kw)


TOOL_CASES: list[tuple[str, dict[str, Any], str, str]] = []
RAW_CASES: list[tuple[str, dict[str, Any], str, str]] = []


def tool(case_id: str, args: dict[str, Any], field: str, rule: str) -> None:
    TOOL_CASES.append((case_id, args, field, rule))


def task(case_id: str, payload: dict[str, Any], field: str, rule: str) -> None:
    RAW_CASES.append((case_id, payload, field, rule))


# -- rules every page states, for every model -------------------------------------------
for m in MODELS:
    short = m.id.split("@")[1]
    top = m.number_results.max or 0
    tool(f"{short}-duration-too-long", t2v(m.id, duration=(m.duration.max or 0) + 1), "duration", "out_of_range")
    tool(f"{short}-duration-too-short", t2v(m.id, duration=m.duration.min - 1), "duration", "out_of_range")
    tool(f"{short}-zero-results", t2v(m.id, number_results=0), "number_results", "out_of_range")
    tool(f"{short}-too-many-results", t2v(m.id, number_results=top + 1), "number_results", "out_of_range")
    tool(f"{short}-quality-low", t2v(m.id, output_quality=19), "output_quality", "out_of_range")
    tool(f"{short}-quality-high", t2v(m.id, output_quality=100), "output_quality", "out_of_range")
    tool(f"{short}-ttl-short", t2v(m.id, ttl=59), "ttl", "out_of_range")
    tool(f"{short}-prompt-long", t2v(m.id, prompt="x" * 2501), "prompt", "length")
    tool(f"{short}-prompt-short", t2v(m.id, prompt="x"), "prompt", "length")
    tool(f"{short}-prompt-blank", t2v(m.id, prompt="   "), "prompt", "length")
    tool(f"{short}-frame-and-aspect", i2v(m.id, aspect_ratio="16:9", duration=5), "aspect_ratio", "exactly_one")
    tool(f"{short}-source-duration-without-video", t2v(m.id, source_duration=6), "source_duration", "requires")
    tool(f"{short}-two-reference-videos", t2v(m.id, reference_videos=[VID, VID2], keep_original_sound=True),
         "reference_videos", "item_count")  # fmt: skip
    tool(f"{short}-local-path-frame", i2v(m.id, first_frame="~/Pictures/cat.png"), "first_frame",
         "media_reference")  # fmt: skip
    task(f"{short}-width-without-height", raw(m.id, height=None), "height", "paired")
    task(f"{short}-unlisted-size", raw(m.id, width=1000, height=1000), "width/height", "allowed_values")
    task(f"{short}-unknown-parameter", raw(m.id, seed=42), "seed", "unknown_field")
    task(f"{short}-unknown-input", raw(m.id, inputs={"audio": VID}), "inputs.audio", "unknown_field")
    task(f"{short}-format-gif", raw(m.id, outputFormat="GIF"), "outputFormat", "allowed_values")
    task(f"{short}-safety-mode", raw(m.id, safety={"checkContent": True, "mode": "strict"}), "safety.mode",
         "allowed_values")  # fmt: skip
    task(f"{short}-frame-position", frames_raw(m.id, [{"image": IMG, "frame": "middle"}]),
         "inputs.frameImages[0].frame", "allowed_values")  # fmt: skip
    task(f"{short}-two-first-frames", frames_raw(m.id, [{"image": IMG, "frame": "first"}, {"image": IMG2, "frame": 0}]),
         "inputs.frameImages", "duplicate_frame")  # fmt: skip
    task(f"{short}-three-frames", frames_raw(m.id, [{"image": IMG}, {"image": IMG2}, {"image": IMG}]),
         "inputs.frameImages", "item_count")  # fmt: skip
    task(f"{short}-not-uuid4", raw(m.id, taskUUID="task-1"), "taskUUID", "format")
    task(f"{short}-sync-delivery", raw(m.id, deliveryMethod="sync"), "deliveryMethod", "allowed_values")
    task(f"{short}-alias-as-model", raw(m.id, model=m.aliases[0]), "model", "allowed_values")
    task(f"{short}-duration-float", raw(m.id, duration=5.0), "duration", "type")
    task(f"{short}-bool-results", raw(m.id, numberResults=True), "numberResults", "type")

task("unknown-model", raw(O1, model="klingai:kling@2.1-master"), "model", "unknown_model")

# -- settings a model does not have at all --------------------------------------------------
for m_id in NO_SHOTS:
    tool(f"{m_id}-shots", t2v(m_id, prompt=None, duration=6, shots=shots(3, 3)), "shots", "not_supported")
    tool(f"{m_id}-no-prompt", t2v(m_id, prompt=None), "prompt", "required")
for m_id in SHOTS_MODELS:
    tool(f"{m_id}-no-prompt-no-shots", t2v(m_id, prompt=None), "prompt", "exactly_one")
    tool(f"{m_id}-prompt-and-shots", t2v(m_id, duration=6, shots=shots(3, 3)), "shots", "exactly_one")
    tool(f"{m_id}-shots-sum", t2v(m_id, prompt=None, duration=10, shots=shots(3, 3)), "shots", "sum_mismatch")
    tool(f"{m_id}-seven-shots", t2v(m_id, prompt=None, duration=14, shots=shots(2, 2, 2, 2, 2, 2, 2)), "shots",
         "item_count")  # fmt: skip
    task(f"{m_id}-shot-zero-seconds",
         raw(m_id, positivePrompt=None, providerSettings={"klingai": {"multiPrompt": [
             {"prompt": "first shot", "duration": 0}, {"prompt": "second shot", "duration": 5}]}}),
         "providerSettings.klingai.multiPrompt[0].duration", "out_of_range")  # fmt: skip
    task(f"{m_id}-shot-without-prompt",
         raw(m_id, positivePrompt=None, providerSettings={"klingai": {"multiPrompt": [{"duration": 5}]}}),
         "providerSettings.klingai.multiPrompt[0].prompt", "required")  # fmt: skip
tool("o1-sound", t2v(O1, sound=True), "sound", "not_supported")
tool("o1-negative", t2v(O1, negative_prompt="blurry"), "negative_prompt", "not_supported")
tool("o1-elements", i2v(O1, prompt="<<<element_1>>> waves", elements=[element()]), "elements", "not_supported")
tool("o1-orientation", t2v(O1, character_orientation="image"), "character_orientation", "not_supported")
tool("o1-shot-type", t2v(O1, shot_type="intelligence"), "shot_type", "not_supported")
tool("o3s-negative", t2v(O3S, negative_prompt="blurry"), "negative_prompt", "not_supported")
tool("o3s-shot-type", t2v(O3S, shot_type="intelligence"), "shot_type", "not_supported")
tool("o3p-negative", t2v(O3P, negative_prompt="blurry"), "negative_prompt", "not_supported")
tool("o3p-shot-type", t2v(O3P, shot_type="intelligence"), "shot_type", "not_supported")
tool("k3s-edit", edit(K3S), "video", "not_supported")
tool("k3p-edit", edit(K3P), "video", "not_supported")
tool("k3p-shot-type", t2v(K3P, shot_type="intelligence"), "shot_type", "not_supported")
task("o1-empty-sound-false", raw(O1, providerSettings={"klingai": {"sound": False}}),
     "providerSettings.klingai.sound", "not_supported")  # fmt: skip

# -- O1 Standard ------------------------------------------------------------------------------
tool("o1-frames-duration-7", i2v(O1, duration=7), "duration", "conditional_range")
tool("o1-frames-duration-3", i2v(O1, duration=3), "duration", "conditional_range")
tool("o1-eight-references", t2v(O1, reference_images=[IMG] * 8), "reference_images", "item_count")
tool("o1-frames-and-references", i2v(O1, reference_images=[IMG2]), "reference_images", "excludes")
tool("o1-edit-duration", edit(O1, duration=5), "duration", "excludes")
tool("o1-edit-five-references", edit(O1, reference_images=[IMG] * 5), "reference_images", "item_count")
tool("o1-keep-sound-no-video", t2v(O1, keep_original_sound=True), "keep_original_sound", "requires")
tool("o1-edit-and-aspect", edit(O1, aspect_ratio="16:9"), "video", "exactly_one")
tool("o1-edit-and-frame", edit(O1, first_frame=IMG), "video", "exactly_one")
task("o1-nothing-to-size", raw(O1, width=None, height=None), "inputs.frameImages", "at_least_one")

# -- O3 Standard --------------------------------------------------------------------------------
tool("o3s-edit-sound", edit(O3S, sound=True), "sound", "excludes")
tool("o3s-edit-shots", edit(O3S, prompt=None, shots=shots(3, 3)), "shots", "excludes")
tool("o3s-edit-elements", edit(O3S, prompt="<<<element_1>>> dances", elements=[element()]), "elements", "excludes")
tool("o3s-edit-five-references", edit(O3S, reference_images=[IMG] * 5), "reference_images", "item_count")
tool("o3s-refvideo-five-references", t2v(O3S, reference_videos=[VID], keep_original_sound=True,
     reference_images=[IMG] * 5), "reference_images", "item_count")  # fmt: skip
tool("o3s-eight-references", t2v(O3S, reference_images=[IMG] * 8), "reference_images", "item_count")
tool("o3s-refvideo-without-setting", t2v(O3S, reference_videos=[VID]), "reference_videos", "requires")
tool("o3s-refvideo-sound", t2v(O3S, reference_videos=[VID], keep_original_sound=True, sound=True), "sound", "excludes")
tool("o3s-orientation-no-images", t2v(O3S, reference_videos=[VID], character_orientation="video"),
     "character_orientation", "requires")  # fmt: skip
tool("o3s-orientation-no-video", t2v(O3S, reference_images=[IMG], character_orientation="image"),
     "character_orientation", "requires")  # fmt: skip
tool("o3s-keep-sound-no-video", t2v(O3S, keep_original_sound=True), "keep_original_sound", "requires")
tool("o3s-edit-duration", edit(O3S, duration=5), "duration", "excludes")
tool("o3s-element-missing", t2v(O3S, prompt="<<<element_2>>> dances", elements=[element()]), "prompt",
     "element_reference")  # fmt: skip
tool("o3s-element-without-elements", t2v(O3S, prompt="<<<element_1>>> dances"), "prompt", "element_reference")
tool("o3s-element-images-no-frontal", t2v(O3S, prompt="<<<element_1>>> dances",
     elements=[{"id": "hero", "images": [IMG]}]), "elements[0].frontal_image", "required")  # fmt: skip
tool("o3s-element-video-and-image", t2v(O3S, prompt="<<<element_1>>> dances",
     elements=[element(videos=[VID])]), "elements[0].videos", "combination")  # fmt: skip
tool("o3s-element-video-and-voice", t2v(O3S, prompt="<<<element_1>>> dances",
     elements=[{"id": "hero", "videos": [VID], "voices": [VID2]}]), "elements[0].videos", "combination")  # fmt: skip
tool("o3s-four-elements", t2v(O3S, prompt=" ".join(f"<<<element_{i}>>>" for i in range(1, 5)) + " dance",
     elements=[element(id=f"e{i}") for i in range(4)]), "elements", "item_count")  # fmt: skip
tool("o3s-shot-element-missing", t2v(O3S, prompt=None, duration=6, shots=[
     {"prompt": "<<<element_1>>> enters", "duration": 3}, {"prompt": "<<<element_3>>> leaves", "duration": 3}],
     elements=[element()]), "shots[1].prompt", "element_reference")  # fmt: skip
task("o3s-element-four-images", raw(O3S, positivePrompt="<<<element_1>>> dances", inputs={"elements": [
     {"id": "hero", "frontalImage": IMG, "images": [IMG] * 4}]}), "inputs.elements[0].images", "item_count")  # fmt: skip
task("o3s-element-no-id", raw(O3S, positivePrompt="<<<element_1>>> dances", inputs={"elements": [
     {"frontalImage": IMG}]}), "inputs.elements[0].id", "required")  # fmt: skip
task("o3s-element-empty-tags", raw(O3S, positivePrompt="<<<element_1>>> dances", inputs={"elements": [
     {"id": "hero", "frontalImage": IMG, "tags": []}]}), "inputs.elements[0].tags", "item_count")  # fmt: skip
task("o3s-video-not-url", raw(O3S, width=None, height=None, duration=None, inputs={"video": "data:video/mp4;base64,AAAA"}),
     "inputs.video", "media_reference")  # fmt: skip

# -- O3 Pro -------------------------------------------------------------------------------------
tool("o3p-edit-refvideo", edit(O3P, reference_videos=[VID2]), "reference_videos", "excludes")
tool("o3p-edit-duration", edit(O3P, duration=5), "duration", "excludes")
tool("o3p-edit-sound", edit(O3P, sound=True), "sound", "excludes")
tool("o3p-edit-elements", edit(O3P, prompt="<<<element_1>>> sings", elements=[element()]), "elements", "excludes")
tool("o3p-edit-five-references", edit(O3P, reference_images=[IMG] * 5), "reference_images", "item_count")
tool("o3p-refvideo-shots", t2v(O3P, prompt=None, duration=6, reference_videos=[VID], keep_original_sound=True,
     shots=shots(3, 3)), "shots", "excludes")  # fmt: skip
tool("o3p-orientation-no-video", t2v(O3P, reference_images=[IMG], character_orientation="image"),
     "character_orientation", "requires")  # fmt: skip
tool("o3p-edit-and-frame", edit(O3P, first_frame=IMG), "video", "exactly_one")
task("o3p-plain-string-frame", frames_raw(O3P, [IMG]), "inputs.frameImages[0]", "type")

# -- 3.0 Standard -------------------------------------------------------------------------------
tool("k3s-elements-without-frames", t2v(K3S, prompt="<<<element_1>>> waves", elements=[element()]), "elements",
     "requires")  # fmt: skip
tool("k3s-two-references", t2v(K3S, reference_images=[IMG, IMG2]), "reference_images", "item_count")
tool("k3s-refvideo-sound", t2v(K3S, reference_videos=[VID], keep_original_sound=True, sound=True), "sound", "excludes")
tool("k3s-refvideo-shot-type", t2v(K3S, reference_videos=[VID], keep_original_sound=True, shot_type="intelligence"),
     "shot_type", "excludes")  # fmt: skip
tool("k3s-refvideo-without-setting", t2v(K3S, reference_videos=[VID]), "reference_videos", "requires")
tool("k3s-orientation-no-video", t2v(K3S, reference_images=[IMG], character_orientation="image"),
     "character_orientation", "requires")  # fmt: skip
tool("k3s-keep-sound-no-video", t2v(K3S, keep_original_sound=True), "keep_original_sound", "requires")
task("k3s-shot-type-auto", raw(K3S, providerSettings={"klingai": {"shotType": "auto"}}),
     "providerSettings.klingai.shotType", "allowed_values")  # fmt: skip

# -- 3.0 Pro ------------------------------------------------------------------------------------
tool("k3p-elements-without-frames", t2v(K3P, prompt="<<<element_1>>> waves", elements=[element()]), "elements",
     "requires")  # fmt: skip
tool("k3p-refvideo-without-setting", t2v(K3P, reference_videos=[VID]), "reference_videos", "requires")
tool("k3p-keep-sound-no-video", t2v(K3P, keep_original_sound=True), "keep_original_sound", "requires")
tool("k3p-orientation-no-images", t2v(K3P, reference_videos=[VID], character_orientation="video"),
     "character_orientation", "requires")  # fmt: skip
tool("k3p-two-references", t2v(K3P, reference_images=[IMG, IMG2]), "reference_images", "item_count")
task("k3p-plain-string-frame", frames_raw(K3P, [IMG]), "inputs.frameImages[0]", "type")
task("k3p-multiprompt", raw(K3P, positivePrompt=None, providerSettings={"klingai": {"multiPrompt": [
     {"prompt": "one shot here", "duration": 5}]}}), "providerSettings.klingai.multiPrompt", "not_supported")  # fmt: skip


def _assert_refused(violations: list, field: str, rule: str) -> None:
    matching = [v for v in violations if v.field == field and v.rule == rule]
    assert matching, f"expected {rule} at {field}; got {[(v.field, v.rule) for v in violations]}"
    for v in matching:
        assert f"'{field}'" in v.fix, f"the fix does not name {field}: {v.fix}"
        assert v.message and v.fix.rstrip().endswith(".")


def test_the_table_is_large_and_covers_every_model() -> None:
    assert len(TOOL_CASES) + len(RAW_CASES) >= 80
    for m in MODELS:
        assert sum(args["model"] == m.id for _, args, _, _ in TOOL_CASES) >= 15


@pytest.mark.parametrize(("args", "field", "rule"), [c[1:] for c in TOOL_CASES], ids=[c[0] for c in TOOL_CASES])
def test_tool_request_is_refused(args: dict[str, Any], field: str, rule: str) -> None:
    args = {k: v for k, v in args.items() if v is not None}
    prepared = prepare(VideoRequest.model_validate(args))
    assert not prepared.ok
    _assert_refused(prepared.violations, field, rule)


@pytest.mark.parametrize(("payload", "field", "rule"), [c[1:] for c in RAW_CASES], ids=[c[0] for c in RAW_CASES])
def test_raw_task_is_refused(payload: dict[str, Any], field: str, rule: str) -> None:
    _assert_refused(check(payload), field, rule)


def test_every_problem_is_reported_at_once() -> None:
    args = t2v(O1, duration=42, number_results=9, sound=True, negative_prompt="x", output_quality=5)
    fields = {v.field for v in prepare(VideoRequest.model_validate(args)).violations}
    assert {"duration", "number_results", "sound", "negative_prompt", "output_quality"} <= fields


def test_nothing_is_clamped_or_dropped() -> None:
    args = t2v(O3S, duration=20, number_results=7)
    prepared = prepare(VideoRequest.model_validate(args))
    assert prepared.payload["duration"] == 20 and prepared.payload["numberResults"] == 7
    assert not prepared.ok


def test_each_rule_kind_quotes_the_page_it_came_from() -> None:
    prepared = prepare(VideoRequest.model_validate(edit(O3P, duration=5)))
    [v] = [v for v in prepared.violations if v.field == "duration"]
    assert "cannot be combined" in v.published


def test_sound_false_is_not_a_request_for_audio() -> None:
    prepared = prepare(VideoRequest.model_validate(edit(O3S, sound=False)))
    assert prepared.ok, prepared.violations

"""Readings of the model pages: where a published sentence is applied as written, read
another way, or turned from a refusal into a note, and fixes that lead to a passing request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kling_mcp.catalog import MODELS, ElementReferences, Field, Requires, describe, get_model
from kling_mcp.constraints import check_with_notes
from kling_mcp.core import prepare
from kling_mcp.payload import VideoRequest, build_payload, tool_names

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
PROMPT = "A red fox runs through fresh snow at dawn"
IMG = "https://example.com/a.jpg"
VID = "https://example.com/clip.mp4"
O3S, K3S, K3P = "klingai:kling-video@o3-standard", "klingai:kling-video@3-standard", "klingai:kling-video@3-pro"
# A real value for each kind of thing a fix asks to add (the fix's `allowed` says "an image", "a video").
MEDIA = {"an image": IMG, "a video": VID}


def _args(model: str, **kw: Any) -> dict[str, Any]:
    return {"model": model, "prompt": PROMPT, "aspect_ratio": "16:9", "duration": 5} | kw


def _checked(args: dict[str, Any]) -> Any:
    payload = build_payload(VideoRequest.model_validate(args))
    return check_with_notes(payload, names=tool_names(payload))


# -- elements: a reference is optional --------------------------------------------------------


@pytest.mark.parametrize("model", [O3S, "klingai:kling-video@o3-pro"])
def test_an_element_no_prompt_names_is_accepted_with_a_note(model: str) -> None:
    element = {"id": "hero", "frontal_image": IMG}
    checked = _checked(_args(model, elements=[element]))
    assert checked.ok, checked.violations
    [note] = checked.notes
    assert note.field == "elements[0]" and "<<<element_1>>>" in note.suggestion
    assert "can be referenced" in note.published and "optional" in note.reading
    # Named in the prompt, there is nothing to say.
    named = _checked(_args(model, prompt="<<<element_1>>> walks through a quiet market", elements=[element]))
    assert named.ok and not named.notes


def test_a_prompt_naming_an_element_that_is_not_given_is_still_refused() -> None:
    checked = _checked(_args(O3S, prompt="<<<element_2>>> waves at <<<element_1>>>", elements=[{"id": "hero"}]))
    assert [(v.field, v.rule) for v in checked.violations] == [("prompt", "element_reference")]


def test_the_element_reading_is_beside_its_rule_in_every_catalog_entry_with_elements() -> None:
    for spec in MODELS:
        rules = [r for r in spec.rules if isinstance(r, ElementReferences)]
        assert len(rules) == (1 if spec.elements is not None else 0), spec.id
        if rules:
            listed = describe(spec)["rules"]
            assert {"rule": "ElementReferences", "published": rules[0].published, "reading": rules[0].reading} in listed


# -- 3.0 Pro: providerSettings need reference images, as its page says ------------------------


def test_3_pro_refuses_a_reference_video_kept_with_its_sound_but_no_reference_image() -> None:
    prepared = prepare(VideoRequest.model_validate(_args(K3P, reference_videos=[VID], keep_original_sound=True)))
    [v] = prepared.violations
    assert (v.field, v.rule) == ("keep_original_sound", "requires")
    assert "'reference_images'" in v.fix and v.published == (
        "When `providerSettings` is provided, `inputs.referenceImages` is required."
    )
    fixed = prepare(VideoRequest.model_validate(
        _args(K3P, reference_videos=[VID], keep_original_sound=True, reference_images=[IMG])
    ))  # fmt: skip
    assert fixed.ok, fixed.violations


@pytest.mark.parametrize(("name", "setting"), [
    ("sound", {"sound": True}),
    ("sound", {"sound": False}),  # false is still a providerSettings object sent
    ("character_orientation", {"character_orientation": "video", "reference_videos": [VID]}),
])  # fmt: skip
def test_3_pro_any_provider_setting_needs_a_reference_image(name: str, setting: dict[str, Any]) -> None:
    prepared = prepare(VideoRequest.model_validate(_args(K3P, **setting)))
    assert any(v.field == name and "'reference_images'" in v.fix for v in prepared.violations), prepared.violations
    assert prepare(VideoRequest.model_validate(_args(K3P, reference_images=[IMG], **setting))).ok


def test_3_pro_page_has_the_sentence_and_no_example_with_provider_settings() -> None:
    if not SEEDS.is_dir():
        pytest.skip("shared/seeds is not beside this checkout")
    spec = get_model(K3P)
    assert spec is not None
    page = (SEEDS / spec.seed_file).read_text()
    [rule] = [r for r in spec.rules if isinstance(r, Requires) and r.when is Field.PROVIDER_SETTINGS]
    assert rule.published in page and rule.reading
    examples = page.split("## Examples", 1)[1]
    assert '"providerSettings"' not in examples  # nothing on the page contradicts the sentence


# -- reference videos: every requirement in one round, each fix a value that passes ------------


def _apply(args: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
    out = dict(args)
    for name, value in plan.items():
        out[name] = [MEDIA[v] for v in value] if isinstance(value, list) else MEDIA.get(value, value)
    return out


REFERENCE_VIDEO_REQUESTS = [
    pytest.param(_args(model, reference_videos=[VID], **extra), id=f"{model.split('@')[1]}-{label}")
    for model in (O3S, K3S, K3P)
    for label, extra in (("nothing", {}), ("keep-sound-false", {"keep_original_sound": False}))
]


@pytest.mark.parametrize("args", REFERENCE_VIDEO_REQUESTS)
def test_each_way_a_reference_video_fix_offers_passes_in_one_round(args: dict[str, Any]) -> None:
    refused = prepare(VideoRequest.model_validate(args))
    assert not refused.ok
    plans = [v.allowed for v in refused.violations if v.field == "reference_videos" and v.rule == "requires"]
    assert plans and plans[0], refused.violations
    for plan in plans[0]:
        # Everything the other violations ask is asked together with it, in this one answer.
        combined = dict(args)
        for v in refused.violations:
            if v.rule == "requires" and v.allowed and v.field != "reference_videos":
                combined = _apply(combined, v.allowed[0])
        retried = prepare(VideoRequest.model_validate(_apply(combined, plan)))
        assert retried.ok, (plan, retried.violations)


def test_keep_original_sound_false_is_answered_with_the_value_that_passes() -> None:
    refused = prepare(VideoRequest.model_validate(_args(K3S, reference_videos=[VID], keep_original_sound=False)))
    [v] = [v for v in refused.violations if v.field == "reference_videos"]
    assert "Add 'keep_original_sound'" not in v.fix
    assert v.fix.startswith("Set 'keep_original_sound' to true;")
    assert "'keep_original_sound' is false" in v.message
    # characterOrientation needs a reference image too on 3.0 Standard: the fix says so now, not next round.
    assert "set 'character_orientation' to 'image' or 'video' and add an image to 'reference_images'" in v.fix
    assert {"keep_original_sound": True} in v.allowed

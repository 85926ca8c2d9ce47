"""The contract with an agent: every mistake in one structured answer, spend in view, costly calls
confirmed under both protocol eras, and waits that fit a client's timeout. Through mcp.Client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, types

from kling_mcp.emulator import run_emulator
from kling_mcp.ledger import Ledger
from kling_mcp.server import create_server
from kling_mcp.settings import Settings

from .helpers import KEY

O3S = "klingai:kling-video@o3-standard"
O1 = "klingai:kling@o1-standard"
IMG = "https://example.com/frame.jpg"
FOX = "A red fox runs through fresh snow at dawn"
LONG = "x" * 2600

# (tool, arguments, fields that must be named). Each is a mistake an LLM makes.
CARELESS: list[tuple[str, dict[str, Any], set[str]]] = [
    ("text_to_video", {"model": O3S, "prompt": FOX, "duration": "5s"}, {"duration"}),
    ("text_to_video", {"model": O3S, "prompt": FOX, "duration": "5"}, {"duration"}),
    ("text_to_video", {"model": O3S, "prompt": FOX, "duration": 5.5}, {"duration"}),
    ("text_to_video", {"model": O3S, "prompt": FOX, "aspect_ratio": "16x9"}, {"aspect_ratio"}),
    ("text_to_video", {"model": O3S, "prompt": FOX, "aspect_ratio": "landscape"}, {"aspect_ratio"}),
    ("text_to_video", {"model": "o3pro", "prompt": FOX}, {"model"}),
    ("text_to_video", {"model": "kling-3", "prompt": FOX}, {"model"}),
    ("text_to_video", {"model": O3S, "prompt": FOX, "negativePrompt": "blur"}, {"negativePrompt"}),
    ("text_to_video", {"model": O3S, "prompt": FOX, "seconds": 5}, {"seconds"}),
    ("text_to_video", {"model": O3S, "prompt": LONG}, {"prompt"}),
    ("text_to_video", {"model": O3S, "prompt": "x"}, {"prompt"}),
    ("text_to_video", {"model": O3S, "prompt": FOX, "sound": "true"}, {"sound"}),
    ("text_to_video", {"model": O3S, "prompt": FOX, "reference_images": IMG}, {"reference_images"}),
    ("text_to_video", {"model": O3S, "prompt": FOX, "output_format": "mp4"}, {"output_format"}),
    ("text_to_video", {"model": O3S, "prompt": FOX, "safety_mode": "strict"}, {"safety_mode"}),
    ("text_to_video", {"model": O3S, "prompt": FOX, "number_results": 0}, {"number_results"}),
    ("text_to_video", {"model": O3S, "prompt": FOX, "output_quality": 100}, {"output_quality"}),
    ("text_to_video", {"model": O3S, "prompt": FOX, "ttl": 30}, {"ttl"}),
    ("text_to_video", {"model": O3S, "prompt": FOX, "max_cost_usd": "$2"}, {"max_cost_usd"}),
    ("text_to_video", {"model": O3S, "shots": [{"prompt": "A fox runs", "duration": "3s"}], "duration": 3},
     {"shots[0].duration"}),
    ("text_to_video", {"model": O3S, "shots": [{"text": "A fox runs", "duration": 3}], "duration": 3},
     {"shots[0].text", "shots[0].prompt"}),
    ("text_to_video", {"model": O3S, "prompt": FOX, "elements": [{"id": "e" * 2000, "frontal_image": IMG}]},
     {"elements[0].id"}),
    ("text_to_video", {"model": O3S, "prompt": FOX, "elements": [{"id": "hero", "frontal_image": IMG,
                                                                  "tags": ["t"] * 50}]}, {"elements[0].tags"}),
    ("text_to_video", {"model": O3S, "prompt": FOX, "reference_images": ["https://e.com/" + "a" * 5000]},
     {"reference_images[0]"}),
    # Combined with model-rule violations: all in one answer.
    ("text_to_video", {"model": O1, "prompt": FOX, "duration": "5s", "sound": True, "negative_prompt": "blur"},
     {"duration", "sound", "negative_prompt"}),
    ("text_to_video", {"model": O1, "prompt": FOX, "duration": 12, "aspect_ratio": "16x9"}, {"duration", "aspect_ratio"}),
    ("text_to_video", {"model": "o3-standard", "prompt": FOX, "duration": 20, "colour": "red"}, {"duration", "colour"}),
    ("image_to_video", {"model": O1, "prompt": FOX}, {"first_frame"}),
    ("image_to_video", {"model": O1, "prompt": FOX, "first_frame": IMG, "duration": 7, "sound": "yes"},
     {"duration", "sound"}),
    ("image_to_video", {"model": O1, "prompt": FOX, "first_frame": ["a.png"]}, {"first_frame"}),
    ("edit_video", {"model": "3-pro", "prompt": "Make it snow", "video": "https://example.com/v.mp4"}, {"model"}),
    ("edit_video", {"model": "o3-pro", "prompt": "Make it snow"}, {"video"}),
    ("edit_video", {"model": "o3-pro", "prompt": "Make it snow", "video": "https://example.com/v.mp4",
                    "source_duration": "6 seconds", "reference_images": [IMG] * 5},
     {"source_duration", "reference_images"}),
    ("wait_for_video", {"task_id": "abc", "timeout_seconds": 120}, {"timeout_seconds"}),
    ("wait_for_video", {"task": "abc"}, {"task", "task_id"}),
    ("get_video_status", {"task_ids": "abc"}, {"task_ids"}),
    ("download_video", {"task_id": "abc", "overwrite": "yes"}, {"overwrite"}),
    ("list_models", {"include_rules": 1}, {"include_rules"}),
]


@pytest.fixture
async def emu():
    async with run_emulator(api_key=KEY, job_seconds=(0.2, 0.4), seed=11) as emulator:
        yield emulator


def settings_for(url: str, tmp_path: Path, **kw: Any) -> Settings:
    return Settings(api_key=KEY, base_url=url, data_dir=tmp_path, output_dir=tmp_path / "out", poll_initial_s=0.1,
                    poll_max_s=0.3, **kw)  # fmt: skip


@asynccontextmanager
async def connect(settings: Settings, **client_kw: Any) -> AsyncIterator[Client]:
    async with Client(create_server(settings), **client_kw) as client:
        yield client


def video_submissions(emu: Any) -> int:
    return sum(emu.stats_dict()["submissions"].values())


@pytest.mark.parametrize(("tool", "arguments", "fields"), CARELESS,
                         ids=[f"{i}-{c[0]}" for i, c in enumerate(CARELESS)])  # fmt: skip
async def test_careless_calls_come_back_structured_all_at_once(
    emu, tmp_path: Path, tool: str, arguments: dict[str, Any], fields: set[str]
) -> None:
    before = video_submissions(emu)
    async with connect(settings_for(emu.url, tmp_path)) as client:
        result = await client.call_tool(tool, arguments)
    assert result.is_error
    body = result.structured_content
    assert body is not None, result.content
    assert "errors.pydantic.dev" not in json.dumps(body)
    named = {v["field"] for v in body["violations"]}
    assert fields <= named, body["violations"]
    for violation in body["violations"]:
        assert violation["fix"] and violation["message"] and violation["rule"]
    assert video_submissions(emu) == before


async def test_fixes_name_the_value_that_would_pass(emu, tmp_path: Path) -> None:
    async with connect(settings_for(emu.url, tmp_path)) as client:
        body = (await client.call_tool("text_to_video", {"model": "o3pro", "prompt": FOX, "duration": "5s",
                                                         "aspect_ratio": "16x9", "negativePrompt": "x"})).structured_content  # fmt: skip
    by_field = {v["field"]: v for v in body["violations"]}
    assert "integer 5" in by_field["duration"]["fix"]
    assert "'16:9'" in by_field["aspect_ratio"]["fix"]
    assert "'o3-pro'" in by_field["model"]["fix"] and "o3-pro" in by_field["model"]["allowed"]
    assert "negative_prompt" in by_field["negativePrompt"]["fix"] and by_field["negativePrompt"]["rule"] == "unknown_argument"


async def test_aliases_are_accepted_and_the_result_names_the_id(emu, tmp_path: Path) -> None:
    async with connect(settings_for(emu.url, tmp_path)) as client:
        job = (await client.call_tool("text_to_video", {"model": "o3-standard", "prompt": FOX, "duration": 5,
                                                        "dry_run": True})).structured_content  # fmt: skip
        other = (await client.call_tool("image_to_video", {"model": "O1", "prompt": FOX, "first_frame": IMG,
                                                           "dry_run": True})).structured_content  # fmt: skip
    assert job["status"] == "dry_run" and job["model"] == O3S and job["payload"]["model"] == O3S
    assert other["model"] == O1


async def test_json_text_for_a_list_is_the_list_it_spells(emu, tmp_path: Path) -> None:
    async with connect(settings_for(emu.url, tmp_path)) as client:
        job = (await client.call_tool("text_to_video", {"model": O3S, "prompt": FOX, "reference_images": f'["{IMG}"]',
                                                        "dry_run": True})).structured_content  # fmt: skip
    assert job["payload"]["inputs"]["referenceImages"] == [IMG]


# -- spend in view ------------------------------------------------------------------------------


async def test_dry_run_says_whether_it_fits_and_refuses_what_would_break_a_cap(emu, tmp_path: Path) -> None:
    settings = settings_for(emu.url, tmp_path, daily_cap_usd=Decimal("0.50"))
    args = {"model": O3S, "prompt": FOX, "duration": 5}  # $0.42
    async with connect(settings) as client:
        fits = (await client.call_tool("text_to_video", args | {"dry_run": True})).structured_content
        over = await client.call_tool("text_to_video", args | {"duration": 10, "dry_run": True})
        submit_over = await client.call_tool("text_to_video", args | {"duration": 10})
    assert fits["estimate"]["fits_caps"] is True and fits["estimate"]["caps_left_usd"] == 0.5
    assert over.is_error and submit_over.is_error
    dry, wet = over.structured_content, submit_over.structured_content
    assert dry["error"] == wet["error"] == "spend_cap"
    assert dry["violations"] == wet["violations"] and dry["violations"][0]["rule"] == "spend_cap"
    assert dry["violations"][0]["allowed"] == {"max": 0.5}
    assert video_submissions(emu) == 0 or emu.stats_dict()["submissions"] == {}


async def test_get_spending_agrees_with_the_ledger(emu, tmp_path: Path) -> None:
    from kling_mcp.emulator import Fault

    settings = settings_for(emu.url, tmp_path, daily_cap_usd=Decimal("20"), total_cap_usd=Decimal("100"))
    async with connect(settings) as client:
        done = (await client.call_tool("text_to_video", {"model": O3S, "prompt": FOX, "duration": 5})).structured_content
        await client.call_tool("wait_for_video", {"task_id": done["task_id"], "timeout_seconds": 10})
        emu.add_fault(Fault("job_failure"))
        failed = (await client.call_tool("text_to_video", {"model": O1, "prompt": FOX, "duration": 4})).structured_content
        await client.call_tool("wait_for_video", {"task_id": failed["task_id"], "timeout_seconds": 10})
        emu.clear_faults()
        slow = emu.job_seconds
        emu.job_seconds = (30.0, 30.0)
        running = (await client.call_tool("text_to_video", {"model": "3-pro", "prompt": FOX, "duration": 3})).structured_content
        emu.job_seconds = slow
        spending = (await client.call_tool("get_spending", {})).structured_content
    ledger = Ledger(tmp_path / "jobs.sqlite3")
    try:
        committed = float(ledger.committed_usd(0))
        statuses = {j.task_uuid: j.status for j in ledger.recent(10)}
    finally:
        ledger.close()
    assert statuses == {done["task_id"]: "success", failed["task_id"]: "failed", running["task_id"]: "submitted"}
    daily, total = spending["caps"]
    assert daily["committed_usd"] == pytest.approx(committed) == pytest.approx(0.42 + 0.336)
    assert daily["left_usd"] == pytest.approx(20 - committed) and spending["left_usd"] == pytest.approx(20 - committed)
    assert total["committed_usd"] == pytest.approx(committed) and total["resets_at"] is None
    assert daily["resets_at"].endswith("T00:00:00+00:00")
    by_model = {row["model"]: row for row in spending["today_by_model"]}
    assert by_model[O3S]["finished"] == 1 and by_model[O3S]["charged_usd"] == pytest.approx(0.42)
    assert by_model[O1]["failed"] == 1 and by_model[O1]["charged_usd"] == 0
    assert by_model["klingai:kling-video@3-pro"]["running"] == 1
    assert by_model["klingai:kling-video@3-pro"]["reserved_usd"] == pytest.approx(0.336)


# -- confirmation under both protocol eras ----------------------------------------------------------

COSTLY = {"model": O3S, "prompt": FOX, "duration": 5, "sound": True}  # $0.56, above a $0.10 threshold


def _asker(answer: str, seen: list[str]):
    async def on_elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        seen.append(params.message)
        return types.ElicitResult(action=answer, content={"confirm": True} if answer == "accept" else None)

    return on_elicit


@pytest.mark.parametrize("mode", ["legacy", "auto"])
@pytest.mark.parametrize(("answer", "sent"), [("accept", True), ("decline", False), ("cancel", False)])
async def test_a_client_that_can_be_asked_is_asked(emu, tmp_path: Path, mode: str, answer: str, sent: bool) -> None:
    seen: list[str] = []
    settings = settings_for(emu.url, tmp_path, confirm_above_usd=Decimal("0.10"))
    async with connect(settings, mode=mode, elicitation_callback=_asker(answer, seen)) as client:
        result = await client.call_tool("text_to_video", COSTLY)
    assert len(seen) == 1 and "$0.560" in seen[0]
    assert result.is_error is not sent
    task = result.structured_content.get("task_id")
    assert (task is not None and emu.stats_dict()["accepted"].get(task) == 1) is sent
    if not sent:
        assert result.structured_content["error"] == "not_confirmed"


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_client_that_cannot_be_asked_needs_max_cost(emu, tmp_path: Path, mode: str) -> None:
    settings = settings_for(emu.url, tmp_path, confirm_above_usd=Decimal("0.10"))
    before = video_submissions(emu)
    async with connect(settings, mode=mode) as client:
        first = await client.call_tool("text_to_video", COSTLY)
        low = await client.call_tool("text_to_video", COSTLY | {"max_cost_usd": 0.5})
        assert video_submissions(emu) == before  # neither left the machine
        agreed = await client.call_tool("text_to_video", COSTLY | {"max_cost_usd": first.structured_content["max_cost_usd_needed"]})
    assert first.is_error and first.structured_content["error"] == "needs_confirmation"
    assert first.structured_content["max_cost_usd_needed"] == 0.56
    assert low.is_error and low.structured_content["error"] == "over_max_cost"
    assert low.structured_content["violations"][0]["allowed"] == {"min": 0.56}
    assert not agreed.is_error and agreed.structured_content["status"] == "submitted"
    assert video_submissions(emu) == before + 1


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_max_cost_is_a_ceiling_even_below_the_threshold(emu, tmp_path: Path, mode: str) -> None:
    before = video_submissions(emu)
    async with connect(settings_for(emu.url, tmp_path), mode=mode, elicitation_callback=_asker("accept", [])) as client:
        result = await client.call_tool("text_to_video", {"model": O3S, "prompt": FOX, "duration": 5, "max_cost_usd": 0.1})
    assert result.is_error and result.structured_content["error"] == "over_max_cost"
    assert video_submissions(emu) == before


# -- waits --------------------------------------------------------------------------------------------


async def test_waits_stay_under_a_client_timeout(emu, tmp_path: Path) -> None:
    async with connect(settings_for(emu.url, tmp_path)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        listing = (await client.list_tools()).model_dump_json(by_alias=True, exclude_none=True)
    assert tools["text_to_video"].input_schema["required"] == ["model"]
    assert tools["wait_for_video"].input_schema["required"] == ["task_id"]
    timeout = tools["wait_for_video"].input_schema["properties"]["timeout_seconds"]
    assert timeout["default"] < 60 and timeout["maximum"] < 60
    assert Settings(data_dir=tmp_path).max_wait_s < 60
    assert len(listing) <= 24 * 1024, len(listing)


async def test_an_element_no_prompt_names_is_accepted_with_a_note(emu, tmp_path: Path) -> None:
    element = {"id": "hero", "frontal_image": IMG}
    async with connect(settings_for(emu.url, tmp_path)) as client:
        result = await client.call_tool("text_to_video", {"model": O3S, "prompt": FOX, "elements": [element],
                                                          "dry_run": True})  # fmt: skip
    assert not result.is_error
    notes = result.structured_content["notes"]
    assert notes and notes[0]["rule"] == "element_unreferenced" and "<<<element_1>>>" in json.dumps(notes)


@pytest.mark.parametrize("mistake", [{"duration": 5.5}, {"output_quality": 200}, {"promt": "typo"}, {"sound": "yes"}])
async def test_one_mistake_brings_no_false_ones_with_it(emu, tmp_path: Path, mistake: dict[str, Any]) -> None:
    async with connect(settings_for(emu.url, tmp_path)) as client:
        body = (await client.call_tool("text_to_video", {"model": "o3-standard", "prompt": FOX} | mistake)).structured_content
    assert [v["field"] for v in body["violations"]] == list(mistake), body["violations"]

"""The MCP surface, in process through mcp.Client: tools, resources, prompts, completions."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, types
from mcp.types import PromptReference, ResourceTemplateReference

from kling_mcp.emulator import run_emulator
from kling_mcp.server import create_server
from kling_mcp.settings import Settings

from .helpers import KEY
from .seed_cases import CASES, EXAMPLES, example_id, normalise, resolve

IMG = "https://example.com/frame.jpg"
VALID = {
    "text_to_video": {"model": "klingai:kling-video@o3-standard", "prompt": "A fox runs through snow", "duration": 5},
    "image_to_video": {"model": "klingai:kling@o1-standard", "prompt": "The fox turns its head", "first_frame": IMG},
    "edit_video": {"model": "klingai:kling-video@o3-pro", "prompt": "Make it snow", "video": "https://example.com/v.mp4",
                   "source_duration": 6, "max_cost_usd": 1.01},
}  # fmt: skip
INVALID = {
    "text_to_video": ({"model": "klingai:kling@o1-standard", "prompt": "A fox", "duration": 12, "sound": True,
                       "negative_prompt": "blurry"}, {"duration", "sound", "negative_prompt"}),
    "image_to_video": ({"model": "klingai:kling@o1-standard", "prompt": "A fox", "first_frame": IMG, "duration": 7,
                        "shots": [{"prompt": "one shot", "duration": 7}]}, {"duration", "shots"}),
    "edit_video": ({"model": "klingai:kling-video@o3-standard", "prompt": "Make it snow", "video": "clip.mp4",
                    "reference_images": [IMG] * 4, "number_results": 9}, {"video", "number_results"}),
}  # fmt: skip


@pytest.fixture
async def emu():
    async with run_emulator(api_key=KEY, job_seconds=(0.2, 0.4), seed=3) as emulator:
        yield emulator


def settings_for(url: str, tmp_path: Path, **kw: Any) -> Settings:
    return Settings(api_key=KEY, base_url=url, data_dir=tmp_path, poll_initial_s=0.1, poll_max_s=0.3, **kw)


@asynccontextmanager
async def connect(settings: Settings, **client_kw: Any) -> AsyncIterator[Client]:
    async with Client(create_server(settings), **client_kw) as client:
        yield client


async def test_tools_have_strict_schemas_annotations_and_output_schemas(emu, tmp_path: Path) -> None:
    async with connect(settings_for(emu.url, tmp_path)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {"list_models", "text_to_video", "image_to_video", "edit_video", "get_video_status",
                          "wait_for_video", "upload_media", "download_video", "get_spending", "create_storyboard",
                          "get_storyboard", "update_storyboard", "extract_frame", "assemble_videos"}

    def closed(schema: Any) -> None:
        if isinstance(schema, dict):
            if schema.get("type") == "object" and "properties" in schema:
                assert schema.get("additionalProperties") is False, schema.get("title")
            for value in schema.values():
                closed(value)
        elif isinstance(schema, list):
            for value in schema:
                closed(value)

    for tool in tools.values():
        closed(tool.input_schema)
        assert tool.output_schema and tool.description
    t2v = tools["text_to_video"].input_schema["properties"]
    assert len(t2v["model"]["enum"]) == 5 and "o3-pro" in t2v["model"]["enum"] and t2v["aspect_ratio"]["enum"] == ["16:9", "9:16", "1:1"]
    # Left out, a hint means its spec default: open world true, idempotent false, destructive true.
    t2v_hints = tools["text_to_video"].annotations
    assert t2v_hints.open_world_hint is not False and not t2v_hints.idempotent_hint and t2v_hints.destructive_hint is False
    assert tools["get_video_status"].annotations.read_only_hint and tools["list_models"].annotations.read_only_hint


@pytest.mark.parametrize("tool", list(VALID))
async def test_a_valid_call_submits_and_finishes(emu, tmp_path: Path, tool: str) -> None:
    async with connect(settings_for(emu.url, tmp_path)) as client:
        job = (await client.call_tool(tool, VALID[tool])).structured_content
        assert job["status"] == "submitted" and job["estimate"]["total_usd"] > 0
        done = (await client.call_tool("wait_for_video", {"task_id": job["task_id"], "timeout_seconds": 10})).structured_content
        status = (await client.call_tool("get_video_status", {"task_ids": [job["task_id"], "nope"]})).structured_content
    assert done["status"] == "success" and done["done"] and not done["timed_out"]
    assert done["results"][0]["video_url"].endswith(".mp4") and done["cost_usd"] == job["estimate"]["total_usd"]
    assert status["jobs"][0]["status"] == "success" and status["unknown_task_ids"] == ["nope"]
    assert emu.stats.accepted[job["task_id"]] == 1


@pytest.mark.parametrize("tool", list(INVALID))
async def test_an_invalid_call_lists_every_violation_and_sends_nothing(emu, tmp_path: Path, tool: str) -> None:
    args, fields = INVALID[tool]
    async with connect(settings_for(emu.url, tmp_path)) as client:
        result = await client.call_tool(tool, args)
    assert result.is_error
    body = result.structured_content
    assert body["error"] == "constraint_violations"
    assert fields <= {v["field"] for v in body["violations"]}
    assert all(v["fix"] for v in body["violations"]) and "submitted, and nothing was spent" in body["message"]
    assert emu.stats.http_requests == 0


@pytest.mark.parametrize("tool", list(VALID))
async def test_dry_run_returns_the_exact_payload_and_spends_nothing(emu, tmp_path: Path, tool: str) -> None:
    async with connect(settings_for(emu.url, tmp_path)) as client:
        job = (await client.call_tool(tool, VALID[tool] | {"dry_run": True})).structured_content
    assert job["status"] == "dry_run" and job["payload"]["taskType"] == "videoInference"
    assert job["payload"]["deliveryMethod"] == "async" and job["payload"]["includeCost"] is True
    assert job["estimate"]["total_usd"] > 0
    assert emu.stats.http_requests == 0


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: f"{e['seed_file'][:3]}-{example_id(e)}")
async def test_every_seed_example_through_its_tool(emu, tmp_path: Path, example: dict) -> None:
    tool, args = CASES[example_id(example)]
    args = resolve(args, example["request"])
    args["model"] = example["request"]["model"]
    async with connect(settings_for(emu.url, tmp_path)) as client:
        result = await client.call_tool(tool, args | {"dry_run": True})
    assert not result.is_error, result.structured_content
    assert normalise(result.structured_content["payload"]) == normalise(example["request"])


async def test_unknown_arguments_are_refused(emu, tmp_path: Path) -> None:
    async with connect(settings_for(emu.url, tmp_path)) as client:
        result = await client.call_tool("text_to_video", VALID["text_to_video"] | {"fps": 60})
    assert result.is_error and "fps" in result.content[0].text


async def test_without_a_key_checking_works_and_paid_calls_say_how_to_set_it(emu, tmp_path: Path) -> None:
    settings = settings_for(emu.url, tmp_path).model_copy(update={"api_key": None})
    async with connect(settings) as client:
        assert not (await client.call_tool("list_models", {})).is_error
        assert not (await client.call_tool("text_to_video", VALID["text_to_video"] | {"dry_run": True})).is_error
        paid = await client.call_tool("text_to_video", VALID["text_to_video"])
    assert paid.is_error and paid.structured_content["error"] == "missing_api_key"
    assert "RUNWARE_API_KEY" in paid.structured_content["message"]
    assert emu.stats.http_requests == 0


async def test_spend_cap_refusal_names_cap_spent_and_cost(emu, tmp_path: Path) -> None:
    async with connect(settings_for(emu.url, tmp_path, daily_cap_usd=Decimal("0.5"))) as client:
        result = await client.call_tool("text_to_video", VALID["text_to_video"] | {"sound": True})
    body = result.structured_content
    assert result.is_error and body["error"] == "spend_cap"
    assert body["cap_usd"] == 0.5 and body["request_usd"] == pytest.approx(0.56) and body["committed_usd"] == 0
    assert emu.stats.http_requests == 0


@pytest.mark.parametrize(("answer", "submitted"), [("accept", True), ("decline", False)])
async def test_costly_calls_ask_the_user_when_the_client_can_be_asked(
    emu, tmp_path: Path, answer: str, submitted: bool
) -> None:
    asked: list[str] = []

    async def on_elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action=answer, content={"confirm": True} if answer == "accept" else None)

    settings = settings_for(emu.url, tmp_path, confirm_above_usd=Decimal("0.10"))
    async with connect(settings, mode="legacy", elicitation_callback=on_elicit) as client:
        result = await client.call_tool("text_to_video", VALID["text_to_video"])
    assert asked and "$0.420" in asked[0]
    assert result.is_error is not submitted
    assert (emu.stats.http_requests > 0) is submitted


async def test_wait_reports_progress_and_returns_the_id_on_timeout(emu, tmp_path: Path) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        seen.append((done, total, message))

    async with connect(settings_for(emu.url, tmp_path), mode="legacy") as client:
        job = (await client.call_tool("text_to_video", VALID["text_to_video"] | {"number_results": 2})).structured_content
        early = (await client.call_tool("wait_for_video", {"task_id": job["task_id"], "timeout_seconds": 0.05})).structured_content
        done = (await client.call_tool("wait_for_video", {"task_id": job["task_id"], "timeout_seconds": 10},
                                       progress_callback=progress)).structured_content  # fmt: skip
    assert early["task_id"] == job["task_id"] and early["timed_out"] and not early["done"]
    assert done["status"] == "success" and len(done["results"]) == 2
    assert seen and seen[-1][0] == 100.0


async def test_resources_prompts_and_completions(emu, tmp_path: Path) -> None:
    async with connect(settings_for(emu.url, tmp_path)) as client:
        catalog = json.loads((await client.read_resource("kling://models")).contents[0].text)
        one = json.loads((await client.read_resource("kling://models/o3-pro")).contents[0].text)
        job = (await client.call_tool("text_to_video", VALID["text_to_video"])).structured_content
        job_res = json.loads((await client.read_resource(f"kling://jobs/{job['task_id']}")).contents[0].text)
        recent = json.loads((await client.read_resource("kling://jobs")).contents[0].text)
        prompts = {p.name for p in (await client.list_prompts()).prompts}
        plan = await client.get_prompt("plan_multishot_video", {"idea": "a heron parade", "total_seconds": "30"})
        models = await client.complete(ResourceTemplateReference(uri="kling://models/{model_id}"), {"name": "model_id", "value": "o3"})
        ratios = await client.complete(PromptReference(name="plan_multishot_video"), {"name": "model", "value": "klingai:kling-video@3"})
    assert len(catalog) == 5 and one["id"] == "klingai:kling-video@o3-pro" and one["rules"]
    assert job_res["task_id"] == job["task_id"] and recent[0]["task_id"] == job["task_id"]
    assert prompts == {"plan_multishot_video", "image_to_video_brief", "video_edit_brief"}
    assert "30-second" in plan.messages[0].content.text and "dry_run" in plan.messages[0].content.text
    assert "o3-pro" in models.completion.values and "o3-standard" in models.completion.values
    assert set(ratios.completion.values) == {"klingai:kling-video@3-standard", "klingai:kling-video@3-pro"}


async def test_list_models_gives_what_an_agent_needs_to_plan(emu, tmp_path: Path) -> None:
    async with connect(settings_for(emu.url, tmp_path)) as client:
        models = (await client.call_tool("list_models", {})).structured_content["models"]
        one = (await client.call_tool("list_models", {"model": "o1", "include_rules": True})).structured_content["models"]
        bad = await client.call_tool("list_models", {"model": "kling-9"})
    o3 = next(m for m in models if m["id"].endswith("o3-pro"))
    assert o3["aspect_ratios"]["16:9"] == "1920x1080" and o3["pricing_usd_per_second"]["with_audio"] == 0.14
    assert o3["limits"]["shots"] == 6 and o3["number_results"]["max"] == 20
    assert one[0]["duration_seconds"]["with_frameImages"] == [5, 10] and one[0]["rules"]
    assert bad.is_error


async def test_status_and_wait_refuse_bad_calls_clearly(emu, tmp_path: Path) -> None:
    async with connect(settings_for(emu.url, tmp_path)) as client:
        empty = await client.call_tool("get_video_status", {"task_ids": []})
        unknown = await client.call_tool("wait_for_video", {"task_id": "no-such-task", "timeout_seconds": 1})
        too_long = await client.call_tool("wait_for_video", {"task_id": "x", "timeout_seconds": 3600})
    assert empty.is_error and "task_ids" in empty.content[0].text
    assert unknown.is_error and unknown.structured_content["error"] == "unknown_task_id"
    assert "get_video_status" in unknown.structured_content["fix"]
    assert too_long.is_error and "timeout_seconds" in too_long.content[0].text
    assert emu.stats.http_requests == 0

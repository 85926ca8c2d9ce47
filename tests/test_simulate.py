"""``kling-mcp --simulate``: the installed script, driven by real MCP client sessions over stdio.

Simulated jobs live in the simulate data folder, so they outlive the process that made them
and are shared by every simulating process that uses the same folder.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client, StdioServerParameters

from kling_mcp.emulator import EmulatorStore, placeholder_png, run_emulator
from kling_mcp.emulator._store import RETENTION_S
from kling_mcp.state import SIMULATED_MEDIA_BASE

from .test_transports import SCRIPT

PROMPT = "A lighthouse keeper climbs the spiral stairs at dusk"


def _simulating(tmp_path: Path) -> StdioServerParameters:
    env = {
        "KLING_MCP_DATA_DIR": str(tmp_path / "data"), "KLING_MCP_OUTPUT_DIR": str(tmp_path / "videos"),
        "KLING_MCP_MEDIA_ROOTS": str(tmp_path / "media"), "PATH": os.environ.get("PATH", ""),
        "KLING_MCP_POLL_INITIAL": "0.2", "KLING_MCP_POLL_MAX": "0.5",
    }  # fmt: skip
    return StdioServerParameters(command=str(SCRIPT), args=["--simulate"], env=env)


async def _call(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def _submit(client: Client, prompt: str) -> str:
    job = await _call(client, "text_to_video", {"model": "klingai:kling-video@o3-standard", "prompt": prompt, "duration": 3})
    assert job["status"] == "submitted"
    return str(job["task_id"])


async def test_jobs_are_shared_by_simulating_processes_and_outlive_them(tmp_path: Path) -> None:
    params = _simulating(tmp_path)
    # Two servers at once on one data folder: each finishes the other's job instead of failing it.
    async with Client(params) as first, Client(params) as second:
        mine = await _submit(first, PROMPT)
        theirs = await _submit(second, "A ferry crosses a foggy harbour at dawn")
        seen_by_second = await _call(second, "wait_for_video", {"task_id": mine, "timeout_seconds": 30})
        seen_by_first = await _call(first, "wait_for_video", {"task_id": theirs, "timeout_seconds": 30})
        assert seen_by_second["status"] == "success" and seen_by_first["status"] == "success"
        status = await _call(first, "get_video_status", {"task_ids": [mine, theirs]})
        assert [j["status"] for j in status["jobs"]] == ["success", "success"]
        url = seen_by_second["results"][0]["video_url"]
        # The URL names no process's port, so it stays valid after its issuer exits.
        assert url.startswith(SIMULATED_MEDIA_BASE)
        late = await _submit(first, "A kite rises over a windy beach")

    # A third server, started after both have exited: the job submitted just before the exit
    # finishes here, and videos made by the others download through this one's emulator.
    async with Client(params) as third:
        finished = await _call(third, "wait_for_video", {"task_id": late, "timeout_seconds": 30})
        assert finished["status"] == "success"
        saved = await _call(third, "download_video", {"task_id": mine})
    path = Path(saved["files"][0]["path"])
    assert path.parent == tmp_path / "videos" / "simulate"
    content = path.read_bytes()
    assert content[4:8] == b"ftyp" and len(content) == saved["files"][0]["size_bytes"]  # an MP4, not an error page


async def test_simulate_instructions_name_folders_the_agent_can_read(tmp_path: Path) -> None:
    async with Client(_simulating(tmp_path)) as client:
        instructions = client.instructions or ""
        # A clip saved by download_video can be passed back: its folder is readable.
        out = tmp_path / "videos" / "simulate"
        out.mkdir(parents=True, exist_ok=True)
        clip = out / "saved.png"
        clip.write_bytes(placeholder_png())
        uploaded = await _call(client, "upload_media", {"path": str(clip)})
    assert str(out) in instructions
    # Every folder named under the output folder is the simulate one the sandbox reads.
    assert instructions.count(str(tmp_path / "videos")) == instructions.count(str(out)) == 2
    assert uploaded["media_uuid"]


async def test_a_persistent_emulator_serves_another_emulators_jobs_and_uploads(tmp_path: Path) -> None:
    store = tmp_path / "emulator.sqlite3"
    task_uuid = str(uuid.uuid4())
    task = {"taskType": "videoInference", "taskUUID": task_uuid, "model": "klingai:kling-video@3-pro",
            "positivePrompt": PROMPT, "width": 1920, "height": 1080, "duration": 5, "deliveryMethod": "async",
            "includeCost": True}  # fmt: skip
    upload = {"taskType": "mediaStorage", "taskUUID": str(uuid.uuid4()), "operation": "upload",
              "media": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg=="}  # fmt: skip
    options: dict[str, Any] = {"job_seconds": (0.0, 0.0), "store_path": store, "media_base_url": SIMULATED_MEDIA_BASE}
    async with run_emulator(api_key="first", **options) as first, httpx.AsyncClient() as http:
        accepted = await http.post(first.url, json=[task, upload], headers={"Authorization": "Bearer first"})
        media = accepted.json()["data"][1]
    assert media["mediaURL"] == f"{SIMULATED_MEDIA_BASE}/media/{media['mediaUUID']}"

    async with run_emulator(api_key="second", **options) as second, httpx.AsyncClient() as http:
        auth = {"Authorization": "Bearer second"}
        polled = (await http.post(second.url, json=[{"taskType": "getResponse", "taskUUID": task_uuid}],
                                  headers=auth)).json()["data"][0]  # fmt: skip
        again = (await http.post(second.url, json=[task], headers=auth)).json()["errors"][0]
        video = await http.get(f"{second.base_url}/videos/{polled['videoUUID']}.mp4")
        image = await http.get(f"{second.base_url}/media/{media['mediaUUID']}")
    assert polled["status"] == "success" and polled["cost"] == pytest.approx(0.56)
    assert again["code"] == "duplicateTaskUUID"  # the second knows the task was already taken
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")


async def test_the_in_memory_emulator_forgets_with_its_process() -> None:
    task_uuid = str(uuid.uuid4())
    task = {"taskType": "videoInference", "taskUUID": task_uuid, "model": "klingai:kling-video@3-pro",
            "positivePrompt": PROMPT, "width": 1920, "height": 1080, "deliveryMethod": "async"}  # fmt: skip
    async with run_emulator(api_key="k") as first, httpx.AsyncClient() as http:
        await http.post(first.url, json=[task], headers={"Authorization": "Bearer k"})
    async with run_emulator(api_key="k") as second, httpx.AsyncClient() as http:
        polled = await http.post(second.url, json=[{"taskType": "getResponse", "taskUUID": task_uuid}],
                                 headers={"Authorization": "Bearer k"})  # fmt: skip
    assert polled.json()["errors"][0]["code"] == "taskFailedOrNotFound"


async def test_the_store_forgets_old_and_unreadable_jobs(tmp_path: Path) -> None:
    store_path = tmp_path / "emulator.sqlite3"
    old, odd = str(uuid.uuid4()), str(uuid.uuid4())
    store = EmulatorStore(store_path)
    store.execute("INSERT INTO jobs (task_uuid, record, created_at) VALUES (?, ?, ?)",
                  (old, '{"task_uuid": "x"}', time.time() - RETENTION_S - 60))  # fmt: skip
    store.execute("INSERT INTO jobs (task_uuid, record, created_at) VALUES (?, ?, ?)",
                  (odd, '{"from_a_newer_version": 1}', time.time()))  # fmt: skip
    store.close()
    async with run_emulator(api_key="k", store_path=store_path) as emu, httpx.AsyncClient() as http:
        polled = await http.post(emu.url, json=[{"taskType": "getResponse", "taskUUID": u} for u in (old, odd)],
                                 headers={"Authorization": "Bearer k"})  # fmt: skip
    # Past Runware's retention, or written in a shape this version cannot read: gone, not a crash.
    assert [e["code"] for e in polled.json()["errors"]] == ["taskFailedOrNotFound", "taskFailedOrNotFound"]

"""Storyboards end to end on the emulator: checked and priced as a whole, made with continuity,
assembled into one playable file, resumed after kill -9, refused before anything is sent."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from kling_mcp.emulator import Fault, run_emulator
from kling_mcp.server import create_server
from kling_mcp.settings import Settings

from .helpers import KEY

O3S, O3P, O1 = "o3-standard", "o3-pro", "o1-standard"
STORY = [
    "A lighthouse keeper climbs the spiral stairs at dusk, lantern in hand",
    "At the top he lights the great lamp; the beam sweeps over a stormy sea",
    "Far out, a small boat turns toward the light and heads for the harbour",
]
# Frames pass through two lossy encodes (the end of clip 1, the start of clip 2): a match is a mean
# absolute difference of a few levels out of 255; two unrelated frames differ by tens.
SAME_FRAME_MAD = 6.0


@pytest.fixture
async def emu():
    async with run_emulator(api_key=KEY, job_seconds=(0.3, 0.6), seed=5) as emulator:
        yield emulator


def settings_for(url: str, tmp_path: Path, **kw: Any) -> Settings:
    options: dict[str, Any] = {"api_key": KEY, "base_url": url, "data_dir": tmp_path / "data",
                               "output_dir": tmp_path / "out", "media_roots": [tmp_path / "media"],
                               "poll_initial_s": 0.1, "poll_max_s": 0.3}  # fmt: skip
    return Settings(**(options | kw))


@asynccontextmanager
async def connect(settings: Settings, **client_kw: Any) -> AsyncIterator[Client]:
    async with Client(create_server(settings), **client_kw) as client:
        yield client


def three_clips(**kw: Any) -> dict[str, Any]:
    return {"title": "The keeper", "model": O3S, "clips": [{"prompt": p, "duration": 10} for p in STORY]} | kw


async def finish(client: Client, storyboard_id: str, *, rounds: int = 20) -> dict[str, Any]:
    for _ in range(rounds):
        view = (await client.call_tool("get_storyboard", {"storyboard_id": storyboard_id, "wait_seconds": 10})).structured_content
        if view["done"] or view["status"] == "blocked":
            return view
    raise AssertionError(f"storyboard not done: {view}")


def video_submissions(emu: Any) -> int:
    return sum(emu.stats_dict()["submissions"].values())


def rgb(path: Path, at: str) -> tuple[int, int, bytes]:
    import av

    with av.open(str(path)) as container:
        frames = [f for f in container.decode(video=0)]
    frame = frames[0] if at == "first" else frames[-1]
    rgb_frame = frame.to_rgb()
    plane = rgb_frame.planes[0]
    row = rgb_frame.width * 3
    data = bytes(plane)
    packed = b"".join(data[y * plane.line_size: y * plane.line_size + row] for y in range(rgb_frame.height))
    return rgb_frame.width, rgb_frame.height, packed


def mean_abs_difference(a: bytes, b: bytes) -> float:
    assert len(a) == len(b)
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


# -- the whole path -------------------------------------------------------------------------------


async def test_three_ten_second_clips_with_continuity_make_one_thirty_second_file(emu, tmp_path: Path) -> None:
    import av

    settings = settings_for(emu.url, tmp_path, daily_cap_usd=Decimal("20"))
    async with connect(settings) as client:
        dry = (await client.call_tool("create_storyboard", three_clips())).structured_content
        assert video_submissions(emu) == 0 and dry["status"] == "dry_run"
        total = dry["plan"]["total_usd"]
        assert total == pytest.approx(3 * 10 * 0.084) and dry["plan"]["fits_caps"] is True
        assert [c["continues_from_previous"] for c in dry["plan"]["clips"]] == [False, True, True]
        made = (await client.call_tool("create_storyboard", three_clips(dry_run=False, max_cost_usd=total))).structured_content
        view = await finish(client, made["storyboard_id"])
    assert view["status"] == "done", view
    output = Path(view["output"]["path"])
    with av.open(str(output)) as container:
        stream = container.streams.video[0]
        duration = float(container.duration / av.time_base)
        assert (stream.codec_context.width, stream.codec_context.height) == (1280, 720)
    assert duration == pytest.approx(30.0, abs=0.2)
    clips = view["clips"]
    _, _, last_of_1 = rgb(Path(clips[0]["video"]), "last")
    _, _, first_of_2 = rgb(Path(clips[1]["video"]), "first")
    _, _, first_of_1 = rgb(Path(clips[0]["video"]), "first")
    assert mean_abs_difference(last_of_1, first_of_2) < SAME_FRAME_MAD
    assert mean_abs_difference(first_of_1, first_of_2) > SAME_FRAME_MAD  # the match is not a constant picture
    assert sum(c["cost_usd"] for c in clips) == pytest.approx(view["cost_usd"]) == pytest.approx(total)
    assert Path(view["contact_sheet"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert video_submissions(emu) == 3


async def test_mixed_resolutions_are_reencoded_and_say_so(emu, tmp_path: Path) -> None:
    plan = {"title": "Two sizes", "model": O3S, "dry_run": False, "max_cost_usd": 5,
            "clips": [{"prompt": STORY[0], "duration": 3}, {"prompt": STORY[1], "duration": 3, "model": O3P,
                                                             "continue_from_previous": False}]}  # fmt: skip
    async with connect(settings_for(emu.url, tmp_path)) as client:
        made = (await client.call_tool("create_storyboard", plan)).structured_content
        view = await finish(client, made["storyboard_id"])
    assert view["status"] == "done", view
    assert view["output"]["reencoded"] is True and view["output"]["reason"]
    assert (view["output"]["width"], view["output"]["height"]) == (1920, 1080)


# -- refused before anything is sent -------------------------------------------------------------


async def test_a_total_over_the_caps_is_refused_at_dry_run_and_at_submit(emu, tmp_path: Path) -> None:
    settings = settings_for(emu.url, tmp_path, daily_cap_usd=Decimal("2.00"))  # each clip fits, the total does not
    async with connect(settings) as client:
        dry = await client.call_tool("create_storyboard", three_clips())
        wet = await client.call_tool("create_storyboard", three_clips(dry_run=False, max_cost_usd=3))
    for result in (dry, wet):
        assert result.is_error and result.structured_content["error"] == "spend_cap"
        violation = result.structured_content["violations"][0]
        assert violation["field"] == "total_cost" and violation["allowed"] == {"max": 2.0}
    assert video_submissions(emu) == 0


async def test_violations_in_two_clips_come_back_in_one_answer(emu, tmp_path: Path) -> None:
    plan = {"title": "Broken", "model": O1, "sound": True,
            "clips": [{"prompt": STORY[0], "duration": 12}, {"prompt": STORY[1], "duration": "5s"},
                      {"prompt": STORY[2], "duration": 5}]}  # fmt: skip
    async with connect(settings_for(emu.url, tmp_path)) as client:
        result = await client.call_tool("create_storyboard", plan)
    assert result.is_error
    fields = {v["field"] for v in result.structured_content["violations"]}
    assert {"clips[0].duration", "clips[1].duration"} <= fields, fields
    assert any(f.startswith("clips[0].sound") for f in fields) and all(v["fix"] for v in result.structured_content["violations"])
    assert video_submissions(emu) == 0


# -- a failed clip stops only its chain; one call retries it -------------------------------------


async def test_a_failed_clip_is_retried_and_the_chain_goes_on(emu, tmp_path: Path) -> None:
    async with connect(settings_for(emu.url, tmp_path)) as client:
        emu.add_fault(Fault("job_failure"))  # the first accepted job (clip 0) fails
        plan = three_clips(dry_run=False, max_cost_usd=5, clips=[{"prompt": p, "duration": 3} for p in STORY])
        made = (await client.call_tool("create_storyboard", plan)).structured_content
        blocked = await finish(client, made["storyboard_id"])
        assert blocked["status"] == "blocked" and "problem" in blocked["clips"][0]
        assert [c["status"] for c in blocked["clips"]] == ["failed", "planned", "planned"]
        retried = await client.call_tool("update_storyboard", {"storyboard_id": made["storyboard_id"],
                                                               "action": "retry_clip", "clip": 0,
                                                               "changes": {"prompt": STORY[0] + ", calmly"}})  # fmt: skip
        assert not retried.is_error, retried.structured_content
        again = await client.call_tool("update_storyboard", {"storyboard_id": made["storyboard_id"],
                                                             "action": "retry_clip", "clip": 0})  # fmt: skip
        view = await finish(client, made["storyboard_id"])
    assert again.is_error and again.structured_content["error"] == "clip_not_failed"
    assert view["status"] == "done" and view["clips"][0]["earlier_task_ids"]
    assert video_submissions(emu) == 4  # three clips, one of them twice: never a finished one again


# -- crash and resume ---------------------------------------------------------------------------------


def _server(tmp_path: Path, emu: Any) -> StdioServerParameters:
    env = {k: os.environ[k] for k in ("PATH", "HOME", "PYTHONPATH", "TMPDIR") if k in os.environ}
    env |= {"RUNWARE_API_KEY": KEY, "RUNWARE_BASE_URL": emu.url, "KLING_MCP_DATA_DIR": str(tmp_path / "data"),
            "KLING_MCP_OUTPUT_DIR": str(tmp_path / "out"), "KLING_MCP_MEDIA_ROOTS": str(tmp_path / "media"),
            "KLING_MCP_POLL_INITIAL": "0.1", "KLING_MCP_POLL_MAX": "0.3"}  # fmt: skip
    return StdioServerParameters(command=sys.executable, args=["-m", "kling_mcp"], env=env)


def _clip_statuses(ledger: Path, storyboard_id: str) -> list[str]:
    with sqlite3.connect(ledger) as db:
        row = db.execute("SELECT data FROM storyboards WHERE id = ?", (storyboard_id,)).fetchone()
        if row is None:
            return []
        clips = json.loads(row[0])["clips"]
        return [db.execute("SELECT status FROM jobs WHERE task_uuid = ?", (c["task_uuid"],)).fetchone()[0] for c in clips]


def _server_pids() -> set[int]:
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"-m" in cmd and b"kling_mcp" in cmd:
                out.add(int(entry.name))
    return out


@pytest.mark.skipif(sys.platform != "linux", reason="finds the server process through /proc")
async def test_kill_9_between_clips_then_restart_completes_with_three_submissions(emu, tmp_path: Path) -> None:
    # The continuity frame's upload hangs, so the server is caught after clip 0 finished and before clip 1 left.
    emu.add_fault(Fault("slow", task_type="mediaStorage", delay=60.0, times=1))
    plan = three_clips(dry_run=False, max_cost_usd=5, clips=[{"prompt": p, "duration": 3} for p in STORY])
    before = _server_pids()
    ledger = tmp_path / "data" / "jobs.sqlite3"
    async with Client(_server(tmp_path, emu), mode="legacy") as client:
        made = (await client.call_tool("create_storyboard", plan)).structured_content
        board = made["storyboard_id"]
        with anyio.fail_after(30):
            while not (_clip_statuses(ledger, board)[:1] == ["success"] and emu.stats_dict()["faults_fired"].get("slow")):
                await anyio.sleep(0.1)
        assert _clip_statuses(ledger, board)[1:] == ["planned", "planned"]
        for pid in _server_pids() - before:
            os.kill(pid, signal.SIGKILL)
        await anyio.sleep(0.5)
    emu.clear_faults()
    assert video_submissions(emu) == 1
    async with Client(_server(tmp_path, emu), mode="legacy") as client:
        view = await finish(client, board)
    assert view["status"] == "done", view
    assert video_submissions(emu) == 3 and all(n == 1 for n in emu.stats_dict()["submissions"].values())
    assert Path(view["output"]["path"]).stat().st_size > 0



async def test_two_instances_on_one_ledger_make_a_storyboard_once(
    emu, tmp_path: Path, ledger_at: Path | str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kling_mcp import video

    taken: list[Any] = []
    joined: list[Any] = []
    extract, join = video.extract_frame, video.join
    monkeypatch.setattr(video, "extract_frame", lambda *a, **k: taken.append(a[2]) or extract(*a, **k))
    monkeypatch.setattr(video, "join", lambda *a, **k: joined.append(a[1]) or join(*a, **k))
    shared = {"database_url": ledger_at} if isinstance(ledger_at, str) else {}

    def instance(name: str) -> Settings:
        # One ledger, each instance its own output folder: what one makes is not found in the other's.
        return settings_for(emu.url, tmp_path, output_dir=tmp_path / name, **shared)

    async with connect(instance("a")) as a, connect(instance("b")) as b:
        made = (await a.call_tool("create_storyboard", three_clips(dry_run=False, max_cost_usd=5))).structured_content
        view = await finish(b, made["storyboard_id"])
    assert view["status"] == "done", view
    # Both runners tick over the same storyboard; its lease lets one of them take its frames and join its clips.
    assert len(taken) == 2 and len(joined) == 1, (taken, joined)
    maker = Path(view["output"]["path"]).parent
    assert maker in (tmp_path / "a", tmp_path / "b")
    assert all(Path(p).is_relative_to(maker) for p in [*taken, *joined])
    assert video_submissions(emu) == 3 and all(n == 1 for n in emu.stats_dict()["submissions"].values())


# -- frames and joins by hand ----------------------------------------------------------------------


async def test_extract_frame_and_assemble_videos_chain_and_join_clips(emu, tmp_path: Path) -> None:
    import av

    async with connect(settings_for(emu.url, tmp_path)) as client:
        first = (await client.call_tool("text_to_video", {"model": O3S, "prompt": STORY[0], "duration": 3})).structured_content
        await client.call_tool("wait_for_video", {"task_id": first["task_id"], "timeout_seconds": 20})
        frame = await client.call_tool("extract_frame", {"task_id": first["task_id"]})
        assert not frame.is_error, frame.structured_content
        png = frame.structured_content["path"]
        kinds = [c.type for c in frame.content]
        second = (await client.call_tool("image_to_video", {"model": O3S, "prompt": STORY[1], "duration": 3,
                                                            "first_frame": png})).structured_content  # fmt: skip
        await client.call_tool("wait_for_video", {"task_id": second["task_id"], "timeout_seconds": 20})
        joined = await client.call_tool("assemble_videos", {"items": [first["task_id"], second["task_id"]],
                                                            "filename": "two-clips"})  # fmt: skip
        again = await client.call_tool("assemble_videos", {"items": [first["task_id"]], "filename": "two-clips"})
        neither = await client.call_tool("extract_frame", {"at": "last"})
    assert "image" in kinds and Path(png).read_bytes()[:4] == b"\x89PNG"
    assert frame.structured_content["width"] == 1280 and second["local_files"][0]["argument"] == "first_frame"
    body = joined.structured_content
    assert not joined.is_error and body["reencoded"] is False and body["duration_s"] == pytest.approx(6.0, abs=0.1)
    with av.open(body["path"]) as container:
        assert float(container.duration / av.time_base) == pytest.approx(6.0, abs=0.1)
    assert again.is_error and again.structured_content["error"] == "file_exists"
    assert neither.is_error and neither.structured_content["violations"][0]["field"] == "task_id/video"


async def test_a_cancelled_storyboard_releases_what_it_reserved(emu, tmp_path: Path) -> None:
    emu.job_seconds = (30.0, 30.0)  # clip 0 keeps rendering; the rest wait for it
    async with connect(settings_for(emu.url, tmp_path, daily_cap_usd=Decimal("5"))) as client:
        made = (await client.call_tool("create_storyboard", three_clips(dry_run=False, max_cost_usd=5, clips=[
            {"prompt": p, "duration": 5} for p in STORY]))).structured_content  # fmt: skip
        with anyio.fail_after(10):
            while (await client.call_tool("get_storyboard", {"storyboard_id": made["storyboard_id"],
                                                             "wait_seconds": 0})).structured_content["clips"][0]["status"] == "planned":  # fmt: skip
                await anyio.sleep(0.1)
        reserved = (await client.call_tool("get_spending", {})).structured_content["caps"][0]["committed_usd"]
        cancelled = (await client.call_tool("update_storyboard", {"storyboard_id": made["storyboard_id"],
                                                                  "action": "cancel"})).structured_content  # fmt: skip
        after = (await client.call_tool("get_spending", {})).structured_content["caps"][0]["committed_usd"]
        status = (await client.call_tool("get_video_status", {"task_ids": [cancelled["clips"][1]["task_id"]]})).structured_content
    assert reserved == pytest.approx(3 * 5 * 0.084)
    assert cancelled["status"] == "cancelled" and [c["status"] for c in cancelled["clips"]][1:] == ["cancelled", "cancelled"]
    assert after == pytest.approx(5 * 0.084)  # the clip already sent still counts; the others are released
    assert status["jobs"][0]["status"] == "cancelled" and status["jobs"][0]["done"]
    assert video_submissions(emu) == 1


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_retry_above_the_threshold_is_confirmed_again(emu, tmp_path: Path, mode: str) -> None:
    settings = settings_for(emu.url, tmp_path, confirm_above_usd=Decimal("0.10"))
    async with connect(settings, mode=mode) as client:
        emu.add_fault(Fault("job_failure"))
        plan = three_clips(dry_run=False, max_cost_usd=5, clips=[{"prompt": p, "duration": 3} for p in STORY[:2]])
        made = (await client.call_tool("create_storyboard", plan)).structured_content
        await finish(client, made["storyboard_id"])
        retry = {"storyboard_id": made["storyboard_id"], "action": "retry_clip", "clip": 0}
        asked = await client.call_tool("update_storyboard", retry)
        agreed = await client.call_tool("update_storyboard", retry | {"max_cost_usd": 0.26})
        view = await finish(client, made["storyboard_id"])
    assert asked.is_error and asked.structured_content["error"] == "needs_confirmation"
    assert asked.structured_content["max_cost_usd_needed"] == pytest.approx(0.252)
    assert not agreed.is_error and view["status"] == "done"


async def test_refusals_in_a_storyboard_say_what_to_change(emu, tmp_path: Path) -> None:
    plan = {"title": "Hints", "model": O1, "clips": [{"prompt": STORY[0], "duration": 5},
                                                    {"prompt": STORY[1], "duration": 7, "sound": True}]}  # fmt: skip
    async with connect(settings_for(emu.url, tmp_path)) as client:
        body = (await client.call_tool("create_storyboard", plan)).structured_content
    by_field = {v["field"]: v for v in body["violations"]}
    assert "continue_from_previous" in by_field["clips[1].duration"]["fix"]
    assert "top level" in by_field["clips[1].sound"]["fix"]

"""``kling-mcp demo``: the server driven through a real MCP session, against the built-in emulator.

It starts ``kling-mcp --simulate`` as a subprocess and speaks MCP to it over stdio, exactly
as Claude Desktop would: list the models, dry-run a request, submit a multi-shot
text-to-video and an image-to-video of a local picture, wait with a progress display, and
save the videos to files.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters, types

from .emulator import placeholder_png

MULTI_SHOT = {
    "model": "klingai:kling-video@o3-standard",
    "aspect_ratio": "16:9",
    "sound": True,
    "shots": [
        {"prompt": "Dawn over a glass-roofed tidal station, commuters crossing shallow channels, slow dolly in", "duration": 3},
        {"prompt": "A maintenance drone skims the water, ripples of light over steel ribs, camera follows it", "duration": 3},
        {"prompt": "A tide surge through the energy gates, the crowd streams on, wide cinematic finish", "duration": 3},
    ],
}  # fmt: skip
STORYBOARD = {
    "title": "The lighthouse keeper",
    "model": "o3-standard",
    "aspect_ratio": "16:9",
    "clips": [
        {"prompt": "A lighthouse keeper climbs the spiral stairs at dusk, lantern in hand", "duration": 5},
        {"prompt": "At the top he lights the great lamp; the beam sweeps over a stormy sea", "duration": 5},
        {"prompt": "Far out, a small boat turns toward the light and heads for the harbour", "duration": 5},
    ],
}
IMAGE_TO_VIDEO = {
    "model": "klingai:kling@o1-standard",
    "prompt": "The camera glides forward through the old planetarium as paper charts lift and circle in the dust",
    "duration": 5,
}


def say(text: str = "") -> None:
    print(text, flush=True)


def _structured(result: Any) -> dict[str, Any]:
    if result.is_error:
        raise SystemExit(f"tool error: {json.dumps(result.structured_content, indent=1)}")
    return result.structured_content


async def run_demo() -> int:
    base = Path(tempfile.mkdtemp(prefix="kling-mcp-demo-"))
    pictures, videos = base / "pictures", base / "videos"
    pictures.mkdir()
    first_frame = pictures / "planetarium.png"
    first_frame.write_bytes(placeholder_png(96, 54))
    image_to_video = IMAGE_TO_VIDEO | {"first_frame": str(first_frame)}
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "kling_mcp", "--quiet", "--simulate", "--media-root", str(pictures), "--output-dir", str(videos)],
        env={"KLING_MCP_DATA_DIR": str(base / "data"), "PYTHONUNBUFFERED": "1", **_passthrough()},
    )
    say("kling-mcp demo: a real MCP session over stdio with `kling-mcp --simulate`")
    say("(the built-in Runware emulator: no account, no cost, simulated videos)\n")
    started = time.monotonic()

    async def confirm(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        # What a desktop client shows the person; the demo answers yes for them.
        say(f"   the server asks the user: {params.message} -> yes (the demo answers for you)")
        return types.ElicitResult(action="accept", content={"confirm": True})

    async with Client(params, mode="legacy", elicitation_callback=confirm) as client:
        say(f"connected to {client.server_info.name} {client.server_info.version} "
            f"in {time.monotonic() - started:.1f} s\n")  # fmt: skip
        tools = (await client.list_tools()).tools
        say("tools: " + ", ".join(t.name for t in tools))

        say("\n1. list_models")
        for m in _structured(await client.call_tool("list_models", {}))["models"]:
            price = m["pricing_usd_per_second"]
            say(f"   {m['id']:<34} {m['resolution']:>5}  {m['duration_seconds']['min']}-{m['duration_seconds']['max']} s"
                f"  ${price['base']}/s  {', '.join(m['capabilities'])}")  # fmt: skip

        say("\n2. a request that breaks the rules (O1 has no audio, frames need 5 or 10 s): every problem at once")
        bad = await client.call_tool("image_to_video", image_to_video | {"duration": 7, "sound": True})
        for v in bad.structured_content["violations"]:
            say(f"   - {v['field']}: {v['message']} Fix: {v['fix']}")

        say("\n3. dry run of a multi-shot text-to-video: the exact request and its cost, nothing spent")
        dry = _structured(await client.call_tool("text_to_video", MULTI_SHOT | {"dry_run": True}))
        say(f"   estimate: ${dry['estimate']['total_usd']} ({dry['estimate']['seconds']} s at "
            f"${dry['estimate']['usd_per_second']}/s, {dry['estimate']['mode']})")  # fmt: skip
        say("   payload: " + json.dumps({k: v for k, v in dry["payload"].items() if k != "providerSettings"})[:200] + "...")

        say(f"\n4. submit it (above $1.00, so the user is asked first), and an image-to-video of a local picture "
            f"({first_frame})")
        jobs = [
            _structured(await client.call_tool("text_to_video", MULTI_SHOT)),
            _structured(await client.call_tool("image_to_video", image_to_video)),
        ]
        for job in jobs:
            say(f"   {job['tool']}: task_id {job['task_id']} ({job['status']}, estimate ${job['estimate']['total_usd']})")
            for use in job["local_files"]:
                say(f"      {use['argument']}: {use['path']} ({use['format']}, {use['size_bytes']} bytes) "
                    f"-> {'uploaded as' if use['uploaded'] else 'already uploaded as'} {use['media_uuid']}")  # fmt: skip
        say("   a file outside the allowed folders is refused, and nothing is sent:")
        refused = await client.call_tool("upload_media", {"path": "/etc/passwd"})
        say("      " + refused.structured_content["violations"][0]["message"])

        say("\n5. wait_for_video, with progress notifications")
        total = 0.0
        for job in jobs:
            shown: list[int] = []

            async def progress(done: float, of: float | None, message: str | None, tool: str = job["tool"]) -> None:
                width, pct = 30, int(100 * done / (of or 100))
                bar = f"   {tool:<15} [{'#' * (width * pct // 100):.<{width}}] {pct:3d}% {message or ''}"
                if sys.stdout.isatty():
                    sys.stdout.write("\r" + bar.ljust(110))
                elif not shown or pct != shown[-1]:
                    sys.stdout.write(bar + "\n")
                shown.append(pct)
                sys.stdout.flush()

            done = _structured(await client.call_tool(
                "wait_for_video", {"task_id": job["task_id"], "timeout_seconds": 50}, progress_callback=progress))  # fmt: skip
            if sys.stdout.isatty():
                say()
            for result in done["results"]:
                say(f"   {job['tool']:<15} -> {done['status']}: {result['video_url']} (${result['cost_usd']})")
            total += done["cost_usd"] or 0

        say("\n6. get_video_status of both")
        status = _structured(await client.call_tool("get_video_status", {"task_ids": [j["task_id"] for j in jobs]}))
        for job in status["jobs"]:
            say(f"   {job['task_id']}: {job['status']}, cost ${job['cost_usd']}")
        say("\n7. download_video: each job's videos saved as files (atomically, never over an existing file)")
        for job in jobs:
            saved = _structured(await client.call_tool("download_video", {"task_id": job["task_id"]}))
            for file in saved["files"]:
                say(f"   {file['path']} ({file['size_bytes']} bytes, {file['mime_type']})")
        say("\n8. a storyboard: three clips, each continuing from the last frame of the one before, made into one file")
        dry = _structured(await client.call_tool("create_storyboard", STORYBOARD))
        for clip in dry["plan"]["clips"]:
            say(f"   clip {clip['clip']}: {clip['tool']}, {clip['seconds']} s, ${clip['estimate_usd']:.3f}"
                + (" (starts on the last frame of the clip before)" if clip["continues_from_previous"] else ""))
        say(f"   dry run total: ${dry['plan']['total_usd']:.3f} for {dry['plan']['total_seconds']} s; nothing sent yet")
        made = _structured(await client.call_tool("create_storyboard", STORYBOARD | {"dry_run": False}))
        board = made["storyboard_id"]
        while True:
            view = _structured(await client.call_tool("get_storyboard", {"storyboard_id": board, "wait_seconds": 20}))
            say(f"   {view['status']}: {view['progress']['clips_done']} of {view['progress']['clips']} clips made")
            if view["done"] or view["status"] == "blocked":
                break
        for clip in view["clips"]:
            say(f"   clip {clip['clip']}: {clip['status']}, ${clip['cost_usd']}, {clip.get('video', '')}")
        if view.get("output"):
            out = view["output"]
            say(f"   the video: {out['path']} ({out['duration_s']} s, {out['width']}x{out['height']}, "
                + ("re-encoded" if out["reencoded"] else "joined without re-encoding") + ")")
            say(f"   contact sheet: {view['contact_sheet']}")
        total += view["cost_usd"]

        say(f"\nsimulated spend: ${total:.3f}. Done in {time.monotonic() - started:.1f} s.")
        say(f"(The videos are the emulator's rendered stand-ins. The demo's files stay in {base}; delete it when done.)")
        say("Next: add kling-mcp to your MCP client (see the README) with RUNWARE_API_KEY set.")
    return 0


def _passthrough() -> dict[str, str]:
    keep = ("PATH", "HOME", "PYTHONPATH", "VIRTUAL_ENV", "LANG", "LC_ALL", "TMPDIR")
    return {k: os.environ[k] for k in keep if k in os.environ}

"""The emulator's videos: real clips that follow the request, downloaded over loopback HTTP and
decoded with PyAV."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from mcp import Client

from kling_mcp.catalog import get_model
from kling_mcp.emulator import Emulator, placeholder_png, run_emulator, run_emulator_in_thread
from kling_mcp.emulator._render import CACHE_ENV
from kling_mcp.payload import VideoRequest, build_payload
from kling_mcp.server import create_server
from kling_mcp.settings import Settings
from kling_mcp.video import extract_frame, probe
from kling_mcp.video._encode import ClipWriter

KEY = "render-test-key"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with run_emulator_in_thread(api_key=KEY, job_seconds=(0, 0), seed=3) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as client:
        yield client


def task(**args: Any) -> dict[str, Any]:
    """A task as kling-mcp builds it from tool arguments."""
    request = {"model": "o3-standard", "prompt": "A paper boat drifts down a gutter in the rain", "duration": 3} | args
    if not {"first_frame", "video", "aspect_ratio"} & args.keys():
        request["aspect_ratio"] = "16:9"
    return build_payload(VideoRequest.model_validate(request))


def finished(emu: Emulator, http: httpx.Client, payload: dict[str, Any]) -> dict[str, Any]:
    answer = http.post(emu.url, json=[payload])
    assert answer.status_code == 200, answer.json()
    [item] = http.post(emu.url, json=[{"taskType": "getResponse", "taskUUID": payload["taskUUID"]}]).json()["data"]
    assert item["status"] == "success", item
    return item


def download(http: httpx.Client, item: dict[str, Any], folder: Path) -> tuple[Path, str]:
    response = http.get(item["videoURL"])
    assert response.status_code == 200
    path = folder / item["videoURL"].rsplit("/", 1)[1]
    path.write_bytes(response.content)
    return path, response.headers["content-type"]


def upload(emu: Emulator, http: httpx.Client, data: bytes, mime: str) -> str:
    media = f"data:{mime};base64,{base64.b64encode(data).decode()}"
    body = http.post(emu.url, json=[{"taskType": "mediaStorage", "taskUUID": "6a2c4bd5-1f7e-4b53-9d0e-3b7b8f0d9a11",
                                     "operation": "upload", "media": media}]).json()  # fmt: skip
    return str(body["data"][0]["mediaUUID"])


def pixels(image: Path | bytes, size: tuple[int, int] | None = None) -> bytes:
    """Packed RGB of an image or of a clip's first frame, scaled to ``size`` when given."""
    with av.open(io.BytesIO(image) if isinstance(image, bytes) else str(image)) as container:
        frame = next(container.decode(video=0))
    width, height = size or (frame.width, frame.height)
    frame = frame.reformat(width=width, height=height, format="rgb24")
    line, data = frame.planes[0].line_size, bytes(frame.planes[0])
    return b"".join(data[r * line : r * line + width * 3] for r in range(height))


def mean_difference(a: bytes, b: bytes) -> float:
    assert len(a) == len(b)
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


@pytest.mark.parametrize(
    ("args", "container", "mime", "size", "audio"),
    [
        ({"model": "o3-pro", "aspect_ratio": "16:9", "sound": True}, "mp4", "video/mp4", (1920, 1080), "aac"),
        ({"aspect_ratio": "9:16", "output_format": "WEBM", "duration": 4}, "webm", "video/webm", (720, 1280), None),
        ({"aspect_ratio": "1:1", "output_format": "MOV", "sound": True}, "mov", "video/quicktime", (960, 960), "aac"),
        ({"aspect_ratio": "16:9", "output_format": "WEBM", "sound": True}, "webm", "video/webm", (1280, 720), "opus"),
    ],
)
def test_a_clip_has_the_requested_size_length_rate_format_and_sound(
    emu: Emulator, http: httpx.Client, tmp_path: Path, args: dict[str, Any], container: str, mime: str,
    size: tuple[int, int], audio: str | None,
) -> None:  # fmt: skip
    payload = task(**args)
    item = finished(emu, http, payload)
    assert item["videoURL"].endswith(f".{container}")
    path, content_type = download(http, item, tmp_path)
    assert content_type == mime
    info = probe(path)
    assert (info.container, (info.width, info.height), info.fps, info.audio_codec) == (container, size, 24.0, audio)
    assert info.duration_s == pytest.approx(payload["duration"], abs=0.1)


def test_given_frames_open_and_close_the_clip(emu: Emulator, http: httpx.Client, tmp_path: Path) -> None:
    portrait = placeholder_png(360, 640)  # a smooth gradient, like a photo's sky
    closing, _ = download(http, finished(emu, http, task(duration=3)), tmp_path)
    last_png = extract_frame(closing, "last", tmp_path / "last.png").path
    first = upload(emu, http, portrait, "image/png")
    last = f"data:image/png;base64,{base64.b64encode(last_png.read_bytes()).decode()}"  # a data URI works too
    clip, _ = download(http, finished(emu, http, task(first_frame=first, last_frame=last, duration=5)), tmp_path)
    info = probe(clip)
    assert (info.width, info.height) == (720, 1280)  # the model's size nearest the image's shape
    assert info.duration_s == pytest.approx(5, abs=0.1)
    opening = extract_frame(clip, "first", tmp_path / "opening.png").path
    ending = extract_frame(clip, "last", tmp_path / "ending.png").path
    assert mean_difference(pixels(opening, (360, 640)), pixels(portrait)) < 3
    assert mean_difference(pixels(ending, (1280, 720)), pixels(last_png, (1280, 720))) < 3
    # Continuity as a storyboard uses it: the next clip starts where this one ended.
    continuing = upload(emu, http, ending.read_bytes(), "image/png")
    following, _ = download(http, finished(emu, http, task(first_frame=continuing)), tmp_path)
    start = extract_frame(following, "first", tmp_path / "start.png").path
    assert mean_difference(pixels(start), pixels(ending, (720, 1280))) < 3


def test_clips_of_different_tasks_differ_and_a_clip_is_rendered_once(
    emu: Emulator, http: httpx.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(cache))
    one, two = (finished(emu, http, task()) for _ in range(2))
    first, _ = download(http, one, tmp_path)
    again = http.get(one["videoURL"]).content
    second, _ = download(http, two, tmp_path)
    assert again == first.read_bytes() and len(list(cache.iterdir())) == 2
    assert mean_difference(pixels(first), pixels(second)) > 10


def test_an_edit_lasts_and_is_billed_for_its_source_clip(emu: Emulator, http: httpx.Client, tmp_path: Path) -> None:
    source = tmp_path / "source.mp4"
    with ClipWriter(source, "mp4", width=640, height=360, fps=24, audio=False) as writer:
        for i in range(100):  # 4.17 s: a length no whole-second default would give
            frame = av.VideoFrame(640, 360, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([60 + i]) * plane.buffer_size)
            writer.add_frame(frame)
    seconds = probe(source).duration_s
    assert seconds == pytest.approx(100 / 24, abs=1e-3)
    payload = task(model="o3-standard", video=upload(emu, http, source.read_bytes(), "video/mp4"), duration=None)
    item = finished(emu, http, payload)
    spec = get_model("o3-standard")
    assert spec is not None and spec.pricing.video_input is not None
    assert Decimal(str(item["cost"])) == (spec.pricing.video_input * Decimal(f"{seconds:.3f}")).quantize(
        Decimal("1e-6")
    )
    edited, _ = download(http, item, tmp_path)
    info = probe(edited)
    assert (info.width, info.height) == (640, 360) and info.duration_s == pytest.approx(seconds, abs=0.05)
    assert mean_difference(pixels(edited), pixels(source)) < 3  # it starts from the source's first frame


def test_a_video_url_with_another_format_is_not_found(emu: Emulator, http: httpx.Client) -> None:
    item = finished(emu, http, task(output_format="WEBM"))
    assert http.get(item["videoURL"].replace(".webm", ".mp4")).status_code == 404
    assert http.get(item["videoURL"]).status_code == 200


async def test_a_simulated_edit_of_a_local_clip_is_billed_for_its_real_length(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    clip = media / "rain.mp4"
    with ClipWriter(clip, "mp4", width=1280, height=720, fps=24, audio=True) as writer:
        for i in range(100):  # 4.17 s
            frame = av.VideoFrame(1280, 720, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([40 + i]) * plane.buffer_size)
            writer.add_frame(frame)
        writer.add_pcm(bytes(round(100 / 24 * 48_000) * 8))  # silence
    async with run_emulator(api_key=KEY, job_seconds=(0.1, 0.2)) as emulator:
        settings = Settings(
            api_key=KEY, base_url=emulator.url, data_dir=tmp_path / "data", output_dir=tmp_path / "out",
            media_roots=[media], poll_initial_s=0.1, poll_max_s=0.3,
        )  # fmt: skip
        async with Client(create_server(settings)) as client:
            arguments = {"model": "klingai:kling-video@o3-standard", "prompt": "Make it rain", "video": str(clip)}
            submitted = await client.call_tool("edit_video", arguments)
            assert not submitted.is_error, submitted.content
            job = submitted.structured_content
            assert job is not None
            done = await client.call_tool("wait_for_video", {"task_id": job["task_id"], "timeout_seconds": 20})
            saved = await client.call_tool("download_video", {"task_id": job["task_id"]})
    assert done.structured_content is not None and saved.structured_content is not None
    rate = Decimal("0.126")  # O3 Standard with a video input, per second
    assert job["estimate"]["seconds"] == 5  # priced ahead for the clip's length, rounded up to whole seconds
    assert Decimal(str(done.structured_content["cost_usd"])) == (rate * Decimal("4.167")).quantize(Decimal("1e-6"))
    [file] = saved.structured_content["files"]
    assert probe(file["path"]).duration_s == pytest.approx(100 / 24, abs=0.05)

"""Local media through the MCP tools, against the emulator: what is refused leaves nothing on
the wire, what is allowed is uploaded once, and finished videos land on disk byte for byte."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, types

from kling_mcp.emulator import Fault, run_emulator
from kling_mcp.files._sandbox import MB
from kling_mcp.ledger import Ledger
from kling_mcp.server import create_server
from kling_mcp.settings import Settings

from . import media_samples as m
from .helpers import KEY

O1 = "klingai:kling@o1-standard"
O3 = "klingai:kling-video@o3-standard"


@pytest.fixture
async def emu():
    async with run_emulator(api_key=KEY, job_seconds=(0.2, 0.4), seed=5) as emulator:
        yield emulator


@pytest.fixture
def media(tmp_path: Path) -> Path:
    folder = tmp_path / "media"
    folder.mkdir()
    (folder / "cat.png").write_bytes(m.png(16, 16))
    return folder


def settings_for(url: str, tmp_path: Path, **kw: Any) -> Settings:
    options: dict[str, Any] = dict(
        api_key=KEY, base_url=url, data_dir=tmp_path / "data", output_dir=tmp_path / "out",
        media_roots=[tmp_path / "media"], poll_initial_s=0.1, poll_max_s=0.3,
    )  # fmt: skip
    return Settings(**(options | kw))


@asynccontextmanager
async def connect(settings: Settings, **client_kw: Any) -> AsyncIterator[Client]:
    async with Client(create_server(settings), **client_kw) as client:
        yield client


def i2v(frame: str, **kw: Any) -> dict[str, Any]:
    return {"model": O1, "prompt": "The cat blinks slowly", "first_frame": frame} | kw


def error(result: types.CallToolResult) -> dict[str, Any]:
    assert result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


# -- refused: nothing leaves the machine ----------------------------------------------------------


def _dotdot(tmp: Path) -> str:
    (tmp / "secret.png").write_bytes(m.png())
    return str(tmp / "media" / ".." / "secret.png")


def _symlink(tmp: Path) -> str:
    (tmp / "outside.png").write_bytes(m.png())
    (tmp / "media" / "link.png").symlink_to(tmp / "outside.png")
    return str(tmp / "media" / "link.png")


def _dotenv(tmp: Path) -> str:
    (tmp / "media" / "beach.png").write_bytes(m.DOTENV)
    return str(tmp / "media" / "beach.png")


def _too_big(tmp: Path) -> str:
    with (tmp / "media" / "huge.png").open("wb") as handle:
        handle.write(m.png())
        handle.truncate(10 * MB + 1)
    return str(tmp / "media" / "huge.png")


def _fifo(tmp: Path) -> str:
    os.mkfifo(tmp / "media" / "pipe.png")
    return str(tmp / "media" / "pipe.png")


REFUSALS = {
    "dot-dot traversal": (_dotdot, "outside_roots"),
    "relative traversal": (lambda tmp: "../../../../etc/passwd", "relative_path"),
    "symlink out of the root": (_symlink, "outside_roots"),
    "/etc/passwd": (lambda tmp: "/etc/passwd", "outside_roots"),
    "file:// URI outside": (lambda tmp: "file:///etc/passwd", "outside_roots"),
    "~/.ssh key": (lambda tmp: "~/.ssh/id_ed25519", "outside_roots"),
    ".env renamed .png": (_dotenv, "not_media"),
    "over the size limit": (_too_big, "too_large"),
    "FIFO": (_fifo, "not_regular_file"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
@pytest.mark.parametrize("tool", ["image_to_video", "upload_media"])
async def test_refused_files_send_nothing(emu, tmp_path: Path, media: Path, case: str, tool: str) -> None:
    make, reason = REFUSALS[case]
    source = make(tmp_path)
    arguments = i2v(source) if tool == "image_to_video" else {"path": source}
    async with connect(settings_for(emu.url, tmp_path)) as client:
        with anyio.fail_after(10):  # a FIFO must not hang the call
            body = error(await client.call_tool(tool, arguments))
    assert body["error"] == "local_files_refused"
    field = "first_frame" if tool == "image_to_video" else "path"
    assert [(v["field"], v["rule"]) for v in body["violations"]] == [(field, reason)]
    assert body["allowed_roots"] == [str(media.resolve()), str((tmp_path / "out").resolve())]
    assert "nothing was uploaded" in body["message"]
    assert emu.stats.http_requests == 0 and emu.stats.tasks == []


async def test_every_refused_file_is_reported_at_once(emu, tmp_path: Path, media: Path) -> None:
    (media / "clip.mp4").write_bytes(m.MP4)
    arguments = {"model": O3, "prompt": "<<<element_1>>> walks in", "first_frame": "/etc/shadow", "last_frame": str(media / "clip.mp4"),
                 "elements": [{"id": "cat", "frontal_image": str(media / "missing.png")}]}  # fmt: skip
    async with connect(settings_for(emu.url, tmp_path)) as client:
        body = error(await client.call_tool("image_to_video", arguments))
    assert {(v["field"], v["rule"]) for v in body["violations"]} == {
        ("first_frame", "outside_roots"), ("last_frame", "wrong_kind"), ("elements[0].frontal_image", "not_found")
    }
    assert emu.stats.http_requests == 0


async def test_model_rules_and_refused_files_come_back_together(emu, tmp_path: Path, media: Path) -> None:
    async with connect(settings_for(emu.url, tmp_path)) as client:
        body = error(await client.call_tool("image_to_video", i2v("/etc/passwd", duration=7)))
        bare = error(await client.call_tool("image_to_video", i2v("cat.png")))
    assert body["error"] == "constraint_violations"
    assert [(v["field"], v["rule"]) for v in body["violations"]] == [("duration", "conditional_range"),
                                                                     ("first_frame", "outside_roots")]  # fmt: skip
    assert body["allowed_roots"] and "nothing was uploaded or submitted" in body["message"]
    # A bare file name is taken as meant: the answer says to give its absolute path, and where.
    [problem] = bare["violations"]
    assert (problem["field"], problem["rule"]) == ("first_frame", "relative_path")
    assert str(media.resolve()) in problem["fix"]
    assert emu.stats.http_requests == 0


# -- allowed: uploaded once, then reused --------------------------------------------------------


async def test_local_first_frame_to_video_file_on_disk(emu, tmp_path: Path, media: Path) -> None:
    image = media / "cat.png"
    async with connect(settings_for(emu.url, tmp_path)) as client:
        job = await client.call_tool("image_to_video", i2v(str(image)))
        assert not job.is_error, job.content
        job_body = job.structured_content
        assert job_body is not None
        [use] = job_body["local_files"]
        assert use["argument"] == "first_frame" and use["uploaded"] is True and use["format"] == "PNG"
        done = await client.call_tool("wait_for_video", {"task_id": job_body["task_id"], "timeout_seconds": 20})
        assert done.structured_content and done.structured_content["status"] == "success"
        saved = await client.call_tool("download_video", {"task_id": job_body["task_id"]})
    assert not saved.is_error, saved.content
    body = saved.structured_content
    assert body is not None
    [file] = body["files"]
    path = Path(file["path"])
    assert path.read_bytes()[4:8] == b"ftyp" and file["size_bytes"] == path.stat().st_size
    assert path.parent == (tmp_path / "out").resolve() and path.name.endswith(f"_the-cat-blinks-slowly_{job_body['task_id'][:8]}.mp4")
    links = [c for c in saved.content if c.type == "resource_link"]
    assert [(str(link.uri), link.mime_type) for link in links] == [(path.as_uri(), "video/mp4")]
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # readable as any file the user saves
    # What reached Runware: the file's own bytes, then a task that uses the returned UUID.
    [upload] = [t for t in emu.stats.tasks if t.get("taskType") == "mediaStorage"]
    assert base64.b64decode(upload["media"].split(",", 1)[1]) == image.read_bytes()
    assert upload["media"].startswith("data:image/png;base64,")
    [task] = [t for t in emu.stats.tasks if t.get("taskType") == "videoInference"]
    assert task["inputs"]["frameImages"] == [{"image": use["media_uuid"], "frame": "first"}]
    ledger = Ledger(tmp_path / "data" / "jobs.sqlite3")
    try:
        assert [(d["path"], d["size"]) for d in ledger.downloads(job_body["task_id"])] == [(str(path), path.stat().st_size)]
    finally:
        ledger.close()


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_the_same_content_is_uploaded_once(emu, tmp_path: Path, media: Path, mode: str) -> None:
    (media / "copy-of-cat.png").write_bytes((media / "cat.png").read_bytes())
    async with connect(settings_for(emu.url, tmp_path), mode=mode) as client:
        first = await client.call_tool("image_to_video", i2v(str(media / "cat.png")))
        second = await client.call_tool("image_to_video", i2v(str(media / "copy-of-cat.png"), last_frame=str(media / "cat.png")))
        upfront = await client.call_tool("upload_media", {"path": f"file://{media / 'cat.png'}"})
    assert not first.is_error and not second.is_error and not upfront.is_error
    uuid = first.structured_content["local_files"][0]["media_uuid"]  # type: ignore[index]
    assert [(u["media_uuid"], u["uploaded"]) for u in second.structured_content["local_files"]] == [(uuid, False)] * 2  # type: ignore[index]
    assert upfront.structured_content and upfront.structured_content["media_uuid"] == uuid
    assert upfront.structured_content["uploaded"] is False
    assert emu.stats.requests_by_task_type["mediaStorage"] == 1


async def test_uploads_survive_a_restart_and_a_new_key_uploads_again(emu, tmp_path: Path, media: Path) -> None:
    async with connect(settings_for(emu.url, tmp_path)) as client:
        assert not (await client.call_tool("upload_media", {"path": str(media / "cat.png")})).is_error
    async with connect(settings_for(emu.url, tmp_path)) as client:
        again = await client.call_tool("upload_media", {"path": str(media / "cat.png")})
    assert again.structured_content and again.structured_content["uploaded"] is False
    assert emu.stats.requests_by_task_type["mediaStorage"] == 1
    async with run_emulator(api_key="another-account-key", job_seconds=(0.2, 0.4)) as other:
        async with connect(settings_for(other.url, tmp_path, api_key="another-account-key")) as client:
            fresh = await client.call_tool("upload_media", {"path": str(media / "cat.png")})
        assert fresh.structured_content and fresh.structured_content["uploaded"] is True
        assert other.stats.requests_by_task_type["mediaStorage"] == 1
    stored = b"".join(p.read_bytes() for p in (tmp_path / "data").iterdir())  # the database and its WAL
    assert KEY.encode() not in stored and b"another-account-key" not in stored


async def test_a_large_video_is_streamed_intact(emu, tmp_path: Path, media: Path) -> None:
    clip = media / "source.mp4"
    clip.write_bytes(m.MP4 + os.urandom(3 * MB + 1))  # several upload chunks, and a length not divisible by 3
    seen: list[tuple[float, float | None, str | None]] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        seen.append((done, total, message))

    async with connect(settings_for(emu.url, tmp_path)) as client:
        result = await client.call_tool(
            "edit_video", {"model": O3, "prompt": "Make it snow", "video": str(clip)}, progress_callback=progress
        )
    assert not result.is_error, result.content
    size = clip.stat().st_size
    assert len(seen) >= 4 and [d for d, _, _ in seen] == sorted(d for d, _, _ in seen) and seen[-1][:2] == (size, size)
    assert all(message and message.startswith("Uploading video:") for _, _, message in seen)
    [upload] = [t for t in emu.stats.tasks if t.get("taskType") == "mediaStorage"]
    assert upload["media"].startswith("data:video/mp4;base64,")
    assert base64.b64decode(upload["media"].split(",", 1)[1]) == clip.read_bytes()


async def test_a_dry_run_checks_files_but_uploads_nothing(emu, tmp_path: Path, media: Path) -> None:
    async with connect(settings_for(emu.url, tmp_path)) as client:
        result = await client.call_tool("image_to_video", i2v(str(media / "cat.png"), dry_run=True))
    body = result.structured_content
    assert not result.is_error and body is not None and body["status"] == "dry_run"
    assert body["local_files"] == [{"argument": "first_frame", "path": str((media / "cat.png").resolve()),
                                    "format": "PNG", "size_bytes": (media / "cat.png").stat().st_size}]  # fmt: skip
    assert "no file uploaded" in body["next_step"]
    assert emu.stats.http_requests == 0


async def test_urls_uuids_and_data_uris_pass_through_untouched(emu, tmp_path: Path, media: Path) -> None:
    data_uri = "data:image/png;base64," + base64.b64encode(m.png()).decode()
    uuid = "c64351d5-4c59-42f7-95e1-eace013eddab"
    async with connect(settings_for(emu.url, tmp_path)) as client:
        frames = await client.call_tool("image_to_video", i2v("https://example.com/cat.jpg", last_frame=data_uri))
        refs = await client.call_tool("text_to_video", {"model": O1, "prompt": "A cat naps", "reference_images": [uuid]})
    assert not frames.is_error and not refs.is_error, (frames.content, refs.content)
    assert emu.stats.requests_by_task_type["mediaStorage"] == 0
    first, second = (t for t in emu.stats.tasks if t.get("taskType") == "videoInference")
    assert [f["image"] for f in first["inputs"]["frameImages"]] == ["https://example.com/cat.jpg", data_uri]
    assert second["inputs"]["referenceImages"] == [uuid]


async def test_an_upload_runware_refuses_submits_nothing(emu, tmp_path: Path, media: Path) -> None:
    emu.add_fault(Fault("http_402", task_type="mediaStorage"))
    async with connect(settings_for(emu.url, tmp_path)) as client:
        body = error(await client.call_tool("image_to_video", i2v(str(media / "cat.png"))))
    assert "nothing was submitted" in body["message"]
    assert emu.stats.requests_by_task_type["videoInference"] == 0


async def test_a_transient_upload_failure_is_retried(emu, tmp_path: Path, media: Path) -> None:
    emu.add_fault(Fault("http_503", task_type="mediaStorage"))
    async with connect(settings_for(emu.url, tmp_path)) as client:
        result = await client.call_tool("image_to_video", i2v(str(media / "cat.png")))
    assert not result.is_error, result.content
    assert emu.stats.requests_by_task_type["mediaStorage"] == 2 and emu.stats.requests_by_task_type["videoInference"] == 1


# -- the client's roots -------------------------------------------------------------------------


def roots_callback(*folders: Path):
    async def list_roots(context: Any) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri=f.as_uri(), name=f.name) for f in folders])

    return list_roots


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_client_roots_narrow_what_may_be_read(emu, tmp_path: Path, media: Path, mode: str) -> None:
    (media / "project").mkdir()
    (media / "project" / "dog.png").write_bytes(m.png(8, 8))
    callback = roots_callback(media / "project")
    async with connect(settings_for(emu.url, tmp_path), mode=mode, list_roots_callback=callback) as client:
        outside = await client.call_tool("image_to_video", i2v(str(media / "cat.png")))
        inside = await client.call_tool("image_to_video", i2v(str(media / "project" / "dog.png")))
    body = error(outside)
    assert body["violations"][0]["rule"] == "outside_roots"
    assert "outside the MCP client's roots" in body["violations"][0]["message"]
    assert body["allowed_roots"] == [str((media / "project").resolve()), str((tmp_path / "out").resolve())]
    assert not inside.is_error, inside.content
    assert emu.stats.requests_by_task_type["mediaStorage"] == 1


async def test_client_roots_cannot_widen_what_may_be_read(emu, tmp_path: Path, media: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "x.png").write_bytes(m.png())
    callback = roots_callback(tmp_path / "elsewhere")
    async with connect(settings_for(emu.url, tmp_path), list_roots_callback=callback) as client:
        body = error(await client.call_tool("upload_media", {"path": str(tmp_path / "elsewhere" / "x.png")}))
    assert body["allowed_roots"] == [str((tmp_path / "out").resolve())]  # the client's root added nothing
    assert "KLING_MCP_MEDIA_ROOTS" in body["violations"][0]["fix"] and "client's roots" in body["violations"][0]["fix"]
    assert emu.stats.http_requests == 0


# -- downloads ----------------------------------------------------------------------------------


async def finished_job(client: Client, **kw: Any) -> str:
    job = await client.call_tool("text_to_video", {"model": O3, "prompt": "A red kite over dunes", "duration": 5} | kw)
    assert not job.is_error, job.content
    task_id = job.structured_content["task_id"]  # type: ignore[index]
    done = await client.call_tool("wait_for_video", {"task_id": task_id, "timeout_seconds": 20})
    assert done.structured_content and done.structured_content["done"], done.content
    return task_id


async def test_downloads_never_overwrite_silently(emu, tmp_path: Path, media: Path) -> None:
    out = tmp_path / "out" / "kites"
    out.mkdir(parents=True)
    (out / "kite.mp4").write_bytes(b"the user's own clip")
    async with connect(settings_for(emu.url, tmp_path)) as client:
        task_id = await finished_job(client)
        default = await client.call_tool("download_video", {"task_id": task_id, "subfolder": "kites"})
        again = await client.call_tool("download_video", {"task_id": task_id, "subfolder": "kites"})
        taken = error(await client.call_tool("download_video", {"task_id": task_id, "filename": "kite", "subfolder": "kites"}))
        assert taken["error"] == "file_exists" and "overwrite" in taken["next_step"]
        assert (out / "kite.mp4").read_bytes() == b"the user's own clip"
        replaced = await client.call_tool(
            "download_video", {"task_id": task_id, "filename": "kite.mp4", "subfolder": "kites", "overwrite": True}
        )
        assert not replaced.is_error and (out / "kite.mp4").read_bytes()[4:8] == b"ftyp"
        elsewhere = await client.call_tool("download_video", {"task_id": task_id, "subfolder": "other"})
    first, second, third = (r.structured_content["files"][0] for r in (default, again, elsewhere))  # type: ignore[index]
    assert first["already_downloaded"] is False and second == first | {"already_downloaded": True}
    assert third["already_downloaded"] is False and Path(third["path"]).parent.name == "other"
    assert sorted(p.name for p in out.iterdir()) == sorted(["kite.mp4", Path(first["path"]).name])


async def test_a_default_name_that_is_taken_gets_a_suffix(emu, tmp_path: Path, media: Path) -> None:
    async with connect(settings_for(emu.url, tmp_path)) as client:
        task_id = await finished_job(client, number_results=2)
        out = (tmp_path / "out").resolve()
        saved = await client.call_tool("download_video", {"task_id": task_id})
        names = [Path(f["path"]).name for f in saved.structured_content["files"]]  # type: ignore[index]
        assert [n.rsplit("_", 1)[1] for n in names] == [f"{task_id[:8]}-1.mp4", f"{task_id[:8]}-2.mp4"]
        for name in names:  # someone else's files now hold those names
            (out / name).unlink()
            (out / name).write_bytes(b"not ours")
        resaved = await client.call_tool("download_video", {"task_id": task_id})
    renamed = [Path(f["path"]).name for f in resaved.structured_content["files"]]  # type: ignore[index]
    assert renamed == [n.replace(".mp4", "-2.mp4") for n in names]
    assert all((out / n).read_bytes() == b"not ours" for n in names)


@pytest.mark.parametrize(("arguments", "kind"), [({"subfolder": "../escape"}, "bad_subfolder"),
                                                 ({"subfolder": "/tmp"}, "bad_subfolder"),
                                                 ({"filename": "../../.bashrc"}, "bad_filename"),
                                                 ({"filename": "clip.mov"}, "bad_filename")])  # fmt: skip
async def test_downloads_stay_in_the_output_folder(emu, tmp_path: Path, media: Path, arguments: dict, kind: str) -> None:
    async with connect(settings_for(emu.url, tmp_path)) as client:
        task_id = await finished_job(client)
        body = error(await client.call_tool("download_video", {"task_id": task_id} | arguments))
    assert body["error"] == kind
    assert not (tmp_path / "escape").exists() and not list((tmp_path / "out").rglob("*.mp4"))


async def test_an_expired_url_says_so_and_what_can_still_be_done(tmp_path: Path, media: Path) -> None:
    # Time runs 100x fast: a 30 s job takes 0.3 s and a ttl of 60 s lasts 0.6 s.
    async with run_emulator(api_key=KEY, job_seconds=(30, 30), time_scale=0.01) as emu:
        async with connect(settings_for(emu.url, tmp_path)) as client:
            task_id = await finished_job(client, ttl=60)
            await anyio.sleep(0.8)
            body = error(await client.call_tool("download_video", {"task_id": task_id}))
    assert body["error"] == "url_expired" and body["expired"] is True
    assert "ttl=60" in body["message"] and "submit the same request again" in body["next_step"]
    assert not list((tmp_path / "out").iterdir())  # no partial file


async def test_downloading_a_running_or_unknown_job_says_what_to_do(emu, tmp_path: Path, media: Path) -> None:
    async with connect(settings_for(emu.url, tmp_path)) as client:
        job = await client.call_tool("text_to_video", {"model": O3, "prompt": "A red kite over dunes", "duration": 5})
        task_id = job.structured_content["task_id"]  # type: ignore[index]
        running = error(await client.call_tool("download_video", {"task_id": task_id}))
        unknown = error(await client.call_tool("download_video", {"task_id": "no-such-task"}))
    assert running["error"] == "not_finished" and "wait_for_video" in running["next_step"]
    assert unknown["error"] == "unknown_task_id"


@pytest.mark.parametrize(
    ("argv", "roots"),
    [
        (["--http", "--host", "0.0.0.0", "--token", "t"], []),  # remote clients get no default media folders
        (["--http", "--host", "0.0.0.0", "--token", "t", "--media-root", "/srv/media"], [Path("/srv/media")]),
        (["--http"], None),  # loopback: the defaults, as for stdio
        ([], None),
        (["--media-root", "/a", "--media-root", "/b"], [Path("/a"), Path("/b")]),
    ],
)
def test_which_media_roots_the_command_line_gives(argv: list[str], roots: list[Path] | None, monkeypatch) -> None:
    from kling_mcp.cli import _parser, _settings

    monkeypatch.delenv("KLING_MCP_MEDIA_ROOTS", raising=False)
    settings = _settings(_parser().parse_args(argv))
    assert settings.media_roots == roots
    assert settings.read_roots[-1] == settings.output_dir  # the output folder is always readable


async def test_a_local_clip_prices_its_edit_exactly(emu, tmp_path: Path, media: Path) -> None:
    (media / "one-second.mp4").write_bytes(m.MP4)  # the emulator's placeholder lasts 1 s
    async with connect(settings_for(emu.url, tmp_path)) as client:
        local = await client.call_tool("edit_video", {"model": O3, "prompt": "Make it snow", "video": str(media / "one-second.mp4"),
                                                      "dry_run": True})  # fmt: skip
        remote = await client.call_tool("edit_video", {"model": O3, "prompt": "Make it snow",
                                                       "video": "https://example.com/clip.mp4", "dry_run": True})  # fmt: skip
    exact, unknown = local.structured_content["estimate"], remote.structured_content["estimate"]  # type: ignore[index]
    assert (exact["seconds"], exact["total_usd"]) == (1, 0.126)
    assert unknown["seconds"] is None and unknown["reserved_usd"] > exact["reserved_usd"]
    assert local.structured_content["local_files"][0]["seconds"] == 1.0  # type: ignore[index]


async def test_element_images_and_voices_are_uploaded_where_they_belong(emu, tmp_path: Path, media: Path) -> None:
    (media / "voice.wav").write_bytes(m.WAV + b"\0" * 400)
    element = {"id": "narrator", "frontal_image": str(media / "cat.png"), "voices": [str(media / "voice.wav")]}
    arguments = {"model": O3, "prompt": "<<<element_1>>> tells a story", "duration": 5, "elements": [element]}
    async with connect(settings_for(emu.url, tmp_path)) as client:
        result = await client.call_tool("text_to_video", arguments)
    assert not result.is_error, result.content
    uses = {u["argument"]: u for u in result.structured_content["local_files"]}  # type: ignore[index]
    assert set(uses) == {"elements[0].frontal_image", "elements[0].voices[0]"}
    [task] = [t for t in emu.stats.tasks if t.get("taskType") == "videoInference"]
    sent = task["inputs"]["elements"][0]
    assert sent["frontalImage"] == uses["elements[0].frontal_image"]["media_uuid"]
    assert sent["voices"] == [uses["elements[0].voices[0]"]["media_uuid"]]
    kinds = sorted(t["media"].split(";", 1)[0] for t in emu.stats.tasks if t.get("taskType") == "mediaStorage")
    assert kinds == ["data:audio/wav", "data:image/png"]


async def test_concurrent_uses_of_one_file_upload_it_once(emu, tmp_path: Path, media: Path) -> None:
    results: list[types.CallToolResult] = []
    async with connect(settings_for(emu.url, tmp_path)) as client:

        async def upload() -> None:
            results.append(await client.call_tool("upload_media", {"path": str(media / "cat.png")}))

        async with anyio.create_task_group() as group:
            for _ in range(4):
                group.start_soon(upload)
    assert len({r.structured_content["media_uuid"] for r in results}) == 1  # type: ignore[index]
    assert sorted(r.structured_content["uploaded"] for r in results) == [False, False, False, True]  # type: ignore[index]
    assert emu.stats.requests_by_task_type["mediaStorage"] == 1


async def test_the_instructions_say_where_files_are_read_and_saved(emu, tmp_path: Path, media: Path) -> None:
    async with connect(settings_for(emu.url, tmp_path)) as client:
        instructions = client.instructions
    assert instructions is not None
    assert f"{media}, {tmp_path / 'out'}." in instructions and f"download_video saves to\n{tmp_path / 'out'}." in instructions

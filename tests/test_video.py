"""The video layer on real files: clips are encoded here with PyAV, then probed, cut into frames,
joined and laid out in contact sheets, and the results decoded again.

Each test clip shows its own identity in every frame: the left half's grey level is the frame
index mod 16, the right half's the index // 16, and the colour tint is the clip's number. So a
frame read back from any output says which clip and which frame it came from.
"""

from __future__ import annotations

import math
import os
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import av
import pytest

from kling_mcp.video import VideoError, contact_sheet, extract_frame, join, probe, thumbnail_png
from kling_mcp.video._encode import AudioTrack, ClipWriter, open_output

# Frame-index digits as luma levels _BASE + digit * _STEP: far enough apart to survive encoding,
# and inside the range where the tints below stay clear of RGB clipping.
_BASE, _STEP = 40, 10
_TINTS = [(128, 128), (112, 144), (144, 112), (112, 112)]  # (U, V) per clip number


def _frame(width: int, height: int, index: int, tint: int) -> av.VideoFrame:
    frame = av.VideoFrame(width, height, "yuv420p")
    left, right = _BASE + (index % 16) * _STEP, _BASE + (index // 16) * _STEP
    half = width // 2
    row = bytes([left]) * half + bytes([right]) * (width - half)
    planes = [(row, width, height)]
    u, v = _TINTS[tint]
    planes += [
        (bytes([u]) * (width // 2), width // 2, height // 2),
        (bytes([v]) * (width // 2), width // 2, height // 2),
    ]
    for plane, (line, row_bytes, rows) in enumerate(planes):
        pad = bytes(frame.planes[plane].line_size - row_bytes)
        frame.planes[plane].update((line + pad) * rows)
    return frame


def _tone(seconds: float) -> bytes:
    samples = round(seconds * 48_000)
    cycle = b"".join(struct.pack("<ff", s, s) for s in (0.3 * math.sin(2 * math.pi * k / 100) for k in range(100)))
    return (cycle * (samples // 100 + 1))[: samples * 8]


def make_clip(
    path: Path, *, width: int = 320, height: int = 180, fps: int = 24, frames: int = 48, audio: bool = False,
    tint: int = 0,
) -> Path:  # fmt: skip
    container = {".mp4": "mp4", ".mov": "mov", ".webm": "webm"}[path.suffix]
    with ClipWriter(path, container, width=width, height=height, fps=fps, audio=audio) as writer:  # type: ignore[arg-type]
        for i in range(frames):
            writer.add_frame(_frame(width, height, i, tint))
        if audio:
            writer.add_pcm(_tone(frames / fps))
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Clips made once per module, by their parameters."""
    folder = tmp_path_factory.mktemp("clips")
    made: dict[tuple[object, ...], Path] = {}

    def get(suffix: str = ".mp4", **kw: object) -> Path:
        key = (suffix, *sorted(kw.items()))
        if key not in made:
            made[key] = make_clip(folder / f"clip{len(made)}{suffix}", **kw)  # type: ignore[arg-type]
        return made[key]

    return get


def rgb(png: Path | bytes) -> tuple[int, int, bytes]:
    """Width, height and packed RGB rows of an image file or its bytes."""
    import io

    with av.open(io.BytesIO(png) if isinstance(png, bytes) else str(png)) as container:
        frame = next(container.decode(video=0)).reformat(format="rgb24")
    line, w, h = frame.planes[0].line_size, frame.width, frame.height
    data = bytes(frame.planes[0])
    return w, h, b"".join(data[r * line : r * line + w * 3] for r in range(h))


def pixel(image: tuple[int, int, bytes], x: int, y: int) -> tuple[int, int, int]:
    w, _, data = image
    at = (y * w + x) * 3
    return data[at], data[at + 1], data[at + 2]


def identify(image: tuple[int, int, bytes], box: tuple[int, int, int, int] | None = None) -> tuple[int, int]:
    """(clip tint, frame index) shown in an image, or in a box (x, y, w, h) of it."""
    w, h, _ = image
    x0, y0, bw, bh = box or (0, 0, w, h)
    left = pixel(image, x0 + bw // 4, y0 + bh // 2)
    right = pixel(image, x0 + 3 * bw // 4, y0 + bh // 2)

    def digit(colour: tuple[int, int, int]) -> int:
        return round((_luma(colour) - _BASE) / _STEP)

    tint = min(range(len(_TINTS)), key=lambda t: _tint_distance(left, t))
    return tint, digit(left) + 16 * digit(right)


def _luma(colour: tuple[int, int, int]) -> float:
    r, g, b = colour
    return 16 + (0.299 * r + 0.587 * g + 0.114 * b) * 219 / 255


def _tint_distance(colour: tuple[int, int, int], tint: int) -> float:
    r, g, b = colour
    u = 128 + (-0.169 * r - 0.331 * g + 0.5 * b) * 224 / 255
    v = 128 + (0.5 * r - 0.419 * g - 0.081 * b) * 224 / 255
    tu, tv = _TINTS[tint]
    return abs(u - tu) + abs(v - tv)


# -- start-up -----------------------------------------------------------------------------


def test_importing_the_video_layer_or_the_server_does_not_load_pyav() -> None:
    code = "import sys, kling_mcp.video, kling_mcp.server, kling_mcp.emulator; print('av' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# -- probe --------------------------------------------------------------------------------


def test_probe_reads_size_length_rate_codecs_and_sound(clips: Callable[..., Path]) -> None:
    info = probe(clips(".mp4", frames=60, audio=True))
    assert (info.container, info.width, info.height, info.fps) == ("mp4", 320, 180, 24.0)
    assert info.duration_s == pytest.approx(2.5, abs=0.01)
    assert (info.video_codec, info.audio_codec, info.audio_sample_rate, info.audio_channels) == (
        "h264",
        "aac",
        48000,
        2,
    )
    assert info.has_audio and info.size_bytes == info.path.stat().st_size
    assert info.to_dict()["has_audio"] is True

    webm = probe(clips(".webm", width=256, height=144, fps=30, frames=45))
    assert (webm.container, webm.video_codec, webm.audio_codec, webm.fps) == ("webm", "vp8", None, 30.0)
    assert webm.duration_s == pytest.approx(1.5, abs=0.01) and not webm.has_audio
    assert probe(clips(".mov")).container == "mov"


def test_probe_refuses_what_is_not_a_video(tmp_path: Path) -> None:
    png = tmp_path / "still.png"
    png.write_bytes(thumbnail_png(make_clip(tmp_path / "c.mp4", frames=2)))
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all")
    sound = tmp_path / "song.m4a"
    out = open_output(sound, "mp4")
    track = AudioTrack(out, "mp4")
    track.add_pcm(_tone(0.5))
    track.flush()
    out.close()
    cases = {
        png: "not_a_video", text: "not_a_video", sound: "not_a_video",
        tmp_path / "missing.mp4": "not_found", tmp_path: "not_a_file",
    }  # fmt: skip
    for path, reason in cases.items():
        with pytest.raises(VideoError) as caught:
            probe(path)
        assert caught.value.reason == reason and str(path) in caught.value.message


# -- frames -------------------------------------------------------------------------------


def test_extract_first_last_and_timed_frames(clips: Callable[..., Path], tmp_path: Path) -> None:
    # 100 frames with a keyframe every 48: the last frame is neither a keyframe nor on a GOP boundary.
    clip = clips(".mp4", frames=100, tint=1)
    first = extract_frame(clip, "first", tmp_path / "first.png")
    last = extract_frame(clip, "last", tmp_path / "last.png")
    middle = extract_frame(clip, 3.3, tmp_path / "middle.png")
    assert (first.width, first.height, first.time_s) == (320, 180, 0.0)
    assert identify(rgb(first.path)) == (1, 0)
    assert identify(rgb(last.path)) == (1, 99) and last.time_s == pytest.approx(99 / 24, abs=1e-3)
    assert identify(rgb(middle.path)) == (1, 79) and middle.time_s == pytest.approx(79 / 24, abs=1e-3)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary files left


def test_last_frame_of_webm_and_of_a_clip_shorter_than_the_lookback(clips: Callable[..., Path], tmp_path: Path) -> None:
    assert identify(rgb(extract_frame(clips(".webm", frames=77), "last", tmp_path / "a.png").path)) == (0, 76)
    assert identify(rgb(extract_frame(clips(".mp4", frames=5), "last", tmp_path / "b.png").path)) == (0, 4)


def test_extract_frame_refuses_times_outside_the_clip(clips: Callable[..., Path], tmp_path: Path) -> None:
    clip = clips(".mp4")
    for at in (-1.0, 2.5):
        with pytest.raises(VideoError) as caught:
            extract_frame(clip, at, tmp_path / "x.png")
        assert caught.value.reason == "bad_argument" and "0 to 2.000" in caught.value.message
    with pytest.raises(VideoError) as bad_name:
        extract_frame(clip, "middle", tmp_path / "x.png")  # type: ignore[arg-type]
    assert bad_name.value.reason == "bad_argument"
    with pytest.raises(VideoError) as no_folder:
        extract_frame(clip, "first", tmp_path / "missing" / "x.png")
    assert no_folder.value.reason == "write_failed"
    assert not (tmp_path / "x.png").exists()


def test_thumbnails_are_small_pngs_that_keep_the_shape(clips: Callable[..., Path], tmp_path: Path) -> None:
    frame = extract_frame(clips(".mp4", width=640, height=360), "first", tmp_path / "big.png")
    small = thumbnail_png(frame.path)
    assert small.startswith(b"\x89PNG\r\n\x1a\n")
    assert rgb(small)[:2] == (256, 144)
    assert rgb(thumbnail_png(frame.path, max_side=1000))[:2] == (640, 360)  # never enlarged


# -- join ---------------------------------------------------------------------------------


def test_matching_clips_are_joined_by_stream_copy(clips: Callable[..., Path], tmp_path: Path) -> None:
    parts = [clips(".mp4", frames=48, tint=t) for t in (1, 2, 3)]
    result = join(parts, tmp_path / "joined.mp4")
    assert not result.reencoded and result.reason is None
    assert result.duration_s == pytest.approx(6.0, abs=0.05) and (result.width, result.height) == (320, 180)
    assert probe(result.path).duration_s == result.duration_s
    # The seams: each clip's last frame, then the next clip's first.
    for at, expected in ((1.99, (1, 47)), (2.01, (2, 0)), (4.01, (3, 0)), (5.99, (3, 47))):
        assert identify(rgb(extract_frame(result.path, at, tmp_path / "f.png").path)) == expected, at
    assert identify(rgb(extract_frame(result.path, "last", tmp_path / "f.png").path)) == (3, 47)


def test_sound_stays_in_sync_and_silent_clips_get_silence(clips: Callable[..., Path], tmp_path: Path) -> None:
    parts = [
        clips(".mp4", frames=48, audio=True),
        clips(".mp4", frames=48, tint=1),
        clips(".mp4", frames=48, audio=True),
    ]
    result = join(parts, tmp_path / "mixed.mp4")
    assert not result.reencoded and result.has_audio
    assert result.notes == (
        "The sound was re-encoded (AAC) into one track, cut to each clip's picture.",
        "Clip 2 had no sound: silence was added.",
    )
    with av.open(str(result.path)) as container:
        audio = container.streams.audio[0]
        levels = []
        for frame in container.decode(audio):
            start = float(frame.pts * frame.time_base)
            loud = max(abs(v) for v in struct.unpack(f"<{frame.samples}f", bytes(frame.planes[0])[: frame.samples * 4]))
            levels.append((start, loud))
    assert levels[-1][0] == pytest.approx(6.0, abs=0.05)
    assert all(loud > 0.2 for at, loud in levels if 0.1 < at < 1.9 or 4.1 < at < 5.9)
    assert all(loud < 0.01 for at, loud in levels if 2.1 < at < 3.9)


def test_different_sizes_and_rates_are_reencoded_letterboxed(clips: Callable[..., Path], tmp_path: Path) -> None:
    wide = clips(".mp4", width=640, height=360, frames=48, tint=1)
    square = clips(".mp4", width=240, height=240, fps=30, frames=60, tint=2)
    result = join([wide, square], tmp_path / "mixed.mp4")
    assert result.reencoded and result.reason is not None and "size (640x360, 240x240)" in result.reason
    assert (result.width, result.height, result.fps) == (640, 360, 30.0)
    assert result.duration_s == pytest.approx(4.0, abs=0.05)
    assert any("Clip 2 scaled to fit 640x360" in note for note in result.notes)
    assert any("30 fps" in note for note in result.notes)
    seam = rgb(extract_frame(result.path, 2.5, tmp_path / "f.png").path)
    assert identify(seam, (140, 0, 360, 360)) == (2, 15)  # 0.5 s into the 30 fps clip
    assert max(pixel(seam, 20, 180)) < 20 and max(pixel(seam, 620, 180)) < 20  # black bars either side
    assert identify(rgb(extract_frame(result.path, 1.0, tmp_path / "f.png").path)) == (1, 24)


def test_joining_into_webm_reencodes_h264_and_says_why(clips: Callable[..., Path], tmp_path: Path) -> None:
    result = join([clips(".mp4", audio=True), clips(".mp4", tint=3)], tmp_path / "out.webm")
    assert result.reencoded and result.reason == "Re-encoded: h264 video cannot be copied into WEBM."
    info = probe(result.path)
    assert (info.container, info.video_codec, info.audio_codec) == ("webm", "vp8", "opus")
    assert info.duration_s == pytest.approx(4.0, abs=0.05)


def test_join_reports_progress_and_stops_when_asked(clips: Callable[..., Path], tmp_path: Path) -> None:
    parts = [clips(".mp4", frames=48), clips(".mp4", width=640, height=360, frames=48, tint=2)]
    seen: list[float] = []
    join(parts, tmp_path / "ok.mp4", on_progress=seen.append)
    assert seen == sorted(seen) and len(seen) >= 4 and seen[-1] == 1.0

    class Stop(Exception):
        pass

    def stop_halfway(share: float) -> None:
        if share >= 0.5:
            raise Stop

    with pytest.raises(Stop):
        join(parts, tmp_path / "stopped.mp4", on_progress=stop_halfway)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.mp4"]


def test_a_failed_join_leaves_no_file(clips: Callable[..., Path], tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.mp4"
    bogus.write_bytes(b"\x00" * 100)
    for paths, out, reason in (
        ([clips(".mp4"), bogus], tmp_path / "out.mp4", "not_a_video"),
        ([clips(".mp4")], tmp_path / "out.avi", "unsupported_output"),
        ([], tmp_path / "out.mp4", "bad_argument"),
    ):
        with pytest.raises(VideoError) as caught:
            join(paths, out)
        assert caught.value.reason == reason
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bogus.mp4"]


# -- contact sheets -----------------------------------------------------------------------


def test_contact_sheet_has_a_row_per_clip_from_first_to_last_frame(clips: Callable[..., Path], tmp_path: Path) -> None:
    parts = [clips(".mp4", frames=73, tint=1), clips(".webm", width=640, height=360, frames=25, tint=2)]
    sheet = contact_sheet(parts, tmp_path / "sheet.png", frames_per_clip=4)
    image = rgb(sheet)
    assert image[:2] == (8 + 4 * 328, 8 + 2 * 188)

    def cell(row: int, column: int) -> tuple[int, int]:
        return identify(image, (8 + column * 328, 8 + row * 188, 320, 180))

    assert [cell(0, c) for c in range(4)] == [(1, 0), (1, 24), (1, 48), (1, 72)]
    assert [cell(1, c) for c in range(4)] == [(2, 0), (2, 8), (2, 16), (2, 24)]
    with pytest.raises(VideoError):
        contact_sheet(parts, tmp_path / "bad.png", frames_per_clip=0)
    assert os.listdir(tmp_path) == ["sheet.png"]


def test_written_files_follow_the_umask(tmp_path: Path) -> None:
    import os
    import stat

    from kling_mcp.video._av import atomic_output

    old = os.umask(0o022)
    try:
        with atomic_output(tmp_path / "out.bin") as temp:
            temp.write_bytes(b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.bin").stat().st_mode) == 0o644

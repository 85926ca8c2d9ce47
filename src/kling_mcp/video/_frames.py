"""Single frames out of clips, as PNG files or decoded frames."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from ._av import Source, decode_image, frame_seconds, load_av, open_video, png_bytes, write_png
from ._errors import VideoError
from ._probe import video_seconds
from ._types import FrameInfo

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream

FramePosition = Literal["first", "last"] | float

# How far before the end the last-frame search seeks first, then further back if that
# finds nothing (a keyframe is needed before the last frame); None: from the start.
_LAST_FRAME_LOOKBACK_S: tuple[float | None, ...] = (2.0, 10.0, None)


def extract_frame(path: str | os.PathLike[str], at: FramePosition, out_png: str | os.PathLike[str]) -> FrameInfo:
    """Save one frame of a clip as an RGB PNG at ``out_png`` (written atomically).

    ``at`` is ``"first"``, ``"last"`` (the true last decoded frame, not the last keyframe),
    or a time in seconds from the start: the frame on screen at that time.
    """
    if isinstance(at, str) and at not in ("first", "last"):
        raise VideoError(f"at must be 'first', 'last' or a time in seconds, not {at!r}.", reason="bad_argument")
    with open_video(path) as (container, stream):
        if at == "first":
            frame, seconds = first_frame(container, stream), 0.0
        elif at == "last":
            frame = last_frame(container, stream)
            seconds = frame_seconds(frame, stream)
        else:
            frame = frame_at(container, stream, float(at))
            seconds = frame_seconds(frame, stream)
    saved = write_png(frame, out_png)
    return FrameInfo(saved, frame.width, frame.height, round(max(0.0, seconds), 6))


def thumbnail_png(png_path: str | os.PathLike[str], max_side: int = 256) -> bytes:
    """A small PNG of an image (or of a video's first frame), at most ``max_side`` pixels on its
    longer side and never enlarged: for an MCP image content block."""
    if max_side < 1:
        raise VideoError("max_side must be at least 1.", reason="bad_argument")
    try:
        frame = decode_image(png_path)
    except VideoError:
        with open_video(png_path) as (container, stream):
            frame = first_frame(container, stream)
    scale = min(1.0, max_side / max(frame.width, frame.height))
    width, height = max(1, round(frame.width * scale)), max(1, round(frame.height * scale))
    return png_bytes(frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA"))


# -- decoded frames, for this package and the emulator -----------------------------------


def first_frame(container: InputContainer, stream: VideoStream) -> VideoFrame:
    for frame in container.decode(stream):
        return frame
    raise VideoError("The video has no frames.", reason="unreadable")


def last_frame(container: InputContainer, stream: VideoStream) -> VideoFrame:
    """The last frame a decoder shows: decoded from a keyframe shortly before the end."""
    av = load_av()
    end = video_seconds(container, stream)
    start = stream.start_time or 0
    time_base = stream.time_base
    for lookback in _LAST_FRAME_LOOKBACK_S:
        if lookback is None:
            target = 0
        elif time_base is None or end <= lookback:
            continue
        else:
            target = int((end - lookback) / time_base)
        try:
            container.seek(start + target, stream=stream, backward=True, any_frame=False)
        except av.error.FFmpegError:
            continue  # an unseekable stream: look further back, down to the start
        last = None
        for frame in container.decode(stream):
            last = frame
        if last is not None:
            return last
    raise VideoError("The video has no frames.", reason="unreadable")


def frame_at(container: InputContainer, stream: VideoStream, seconds: float) -> VideoFrame:
    """The frame on screen ``seconds`` after the start."""
    end = video_seconds(container, stream)
    if not 0 <= seconds <= end:
        raise VideoError(
            f"The time {seconds:g} s is outside the clip, which lasts {end:.3f} s: give 0 to {end:.3f}, "
            "or 'first' or 'last'.",
            reason="bad_argument",
        )
    frames = frames_at(container, stream, [seconds])
    return frames[0]


def frames_at(container: InputContainer, stream: VideoStream, times: Sequence[float]) -> list[VideoFrame]:
    """The frames on screen at each of ``times`` (seconds from the start, ascending), in one pass.

    A time at or past the last frame gets the last frame.
    """
    av = load_av()
    if not times:
        return []
    if times[0] > 0 and stream.time_base:
        try:
            container.seek((stream.start_time or 0) + int(times[0] / stream.time_base), stream=stream, backward=True)
        except av.error.FFmpegError:
            container.seek(0)
    # A millisecond of slack: timestamps in coarse time bases (WebM's 1 ms) round frame times.
    slack = 0.001
    picked: list[VideoFrame] = []
    shown: VideoFrame | None = None
    for frame in container.decode(stream):
        at = frame_seconds(frame, stream)
        while len(picked) < len(times) and at > times[len(picked)] + slack:
            picked.append(shown if shown is not None else frame)
        if len(picked) == len(times):
            break
        shown = frame
    if shown is None:
        raise VideoError("The video has no frames.", reason="unreadable")
    picked.extend(shown for _ in range(len(times) - len(picked)))
    return picked


def decode_first_and_last(source: Source) -> tuple[VideoFrame, VideoFrame]:
    """A clip's first and last frames, for the emulator's edits."""
    with open_video(source) as (container, stream):
        first = first_frame(container, stream)
        return first, last_frame(container, stream)

"""PyAV at arm's length: the lazy import, opening inputs, and byte-level frame helpers.

Every module of this package imports ``av`` through :func:`load_av`, inside functions, so
importing the package (and starting the server) never loads FFmpeg.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .._tempfiles import temporary_beside
from ._errors import VideoError

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream

# Demuxers that read still images: such a file opens like a one-frame video, but is not one.
_IMAGE_FORMATS = ("image2", "_pipe", "gif", "apng")
_ATTACHED_PICTURE = 1024  # AV_DISPOSITION_ATTACHED_PIC


def load_av() -> Any:
    """The ``av`` module, imported on first use."""
    import av

    return av


Source = str | os.PathLike[str] | IO[bytes]


def check_file(path: str | os.PathLike[str]) -> Path:
    """The path as a Path, once it is known to be a regular file."""
    file = Path(path)
    try:
        mode = file.stat().st_mode
    except FileNotFoundError:
        raise VideoError(f"There is no file at '{file}'.", reason="not_found") from None
    except OSError as exc:
        raise VideoError(f"'{file}' cannot be read: {exc.strerror or exc}.", reason="unreadable") from None
    if not stat.S_ISREG(mode):
        raise VideoError(f"'{file}' is not a regular file.", reason="not_a_file")
    return file


def describe(source: Source) -> str:
    return str(source) if isinstance(source, (str, os.PathLike)) else "the video"


def _target(source: Source) -> str | IO[bytes]:
    """What av.open takes: a path as a string (after checking it is a file), or the stream."""
    if isinstance(source, (str, os.PathLike)):
        return str(check_file(source))
    return source


@contextlib.contextmanager
def open_video(source: Source) -> Iterator[tuple[InputContainer, VideoStream]]:
    """Open a video for reading: its container and first video stream, or a VideoError."""
    av = load_av()
    name = describe(source)
    target = _target(source)
    try:
        container = av.open(target, "r")
    except av.error.InvalidDataError:
        raise VideoError(f"'{name}' is not a video FFmpeg can read.", reason="not_a_video") from None
    except (av.error.FFmpegError, OSError) as exc:
        raise VideoError(f"'{name}' cannot be read: {exc}.", reason="unreadable") from None
    try:
        # Cover art in an audio file is a one-picture "video" stream: not a video.
        moving = [s for s in container.streams.video if not s.disposition & _ATTACHED_PICTURE]
        if not moving or any(f in container.format.name for f in _IMAGE_FORMATS):
            what = "audio only" if container.streams.audio else "an image" if container.streams.video else "no video"
            raise VideoError(f"'{name}' is not a video: it holds {what}.", reason="not_a_video")
        stream = moving[0]
        stream.thread_type = "AUTO"
        yield container, stream
    except av.error.FFmpegError as exc:
        raise VideoError(f"'{name}' could not be decoded: {exc}.", reason="unreadable") from None
    finally:
        container.close()


def decode_image(source: Source) -> VideoFrame:
    """The picture in an image file (PNG, JPEG, WEBP, BMP...) or in the bytes of one."""
    av = load_av()
    name = describe(source)
    target = _target(source)
    try:
        with av.open(target, "r") as container:
            if not container.streams.video:
                raise VideoError(f"'{name}' is not an image.", reason="not_a_video")
            for frame in container.decode(video=0):
                picture: VideoFrame = frame
                return picture
    except av.error.InvalidDataError:
        raise VideoError(f"'{name}' is not an image FFmpeg can read.", reason="not_a_video") from None
    except (av.error.FFmpegError, OSError) as exc:
        raise VideoError(f"'{name}' cannot be read: {exc}.", reason="unreadable") from None
    raise VideoError(f"'{name}' holds no picture.", reason="unreadable")


# -- raw pixels -------------------------------------------------------------------------
# FFmpeg pads each row of a plane to an aligned line size; these move rows between
# padded planes and packed bytes without numpy.


def packed_rows(frame: VideoFrame, plane: int, row_bytes: int, rows: int) -> bytes:
    """A plane's pixels without the row padding."""
    data = bytes(frame.planes[plane])
    line = frame.planes[plane].line_size
    if line == row_bytes:
        return data[: row_bytes * rows]
    return b"".join(data[r * line : r * line + row_bytes] for r in range(rows))


def fill_plane(frame: VideoFrame, plane: int, packed: bytes, row_bytes: int, rows: int) -> None:
    """Set a plane from packed rows, padding each to the plane's line size."""
    line = frame.planes[plane].line_size
    if line != row_bytes:
        pad = bytes(line - row_bytes)
        packed = b"".join(packed[r * row_bytes : (r + 1) * row_bytes] + pad for r in range(rows))
    frame.planes[plane].update(packed)


def rgb_frame(rgb: bytes, width: int, height: int) -> VideoFrame:
    """An rgb24 frame from packed RGB bytes."""
    av = load_av()
    frame: VideoFrame = av.VideoFrame(width, height, "rgb24")
    fill_plane(frame, 0, rgb, width * 3, height)
    return frame


def to_yuv420p(frame: VideoFrame, width: int | None = None, height: int | None = None) -> VideoFrame:
    """A frame as encoders take it: 4:2:0 at limited ("TV") range, which an untagged H.264 or
    VP8 stream is read as. Pictures from PNG or JPEG are full range and would otherwise be
    converted to full-range YUV, and come back with their contrast stretched."""
    return frame.reformat(width=width, height=height, format="yuv420p", dst_color_range="MPEG", interpolation="AREA")


def png_bytes(frame: VideoFrame) -> bytes:
    """A frame encoded as an RGB PNG."""
    av = load_av()
    rgb = frame.reformat(format="rgb24")
    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = rgb.width, rgb.height, "rgb24"
    return b"".join(bytes(p) for p in [*codec.encode(rgb), *codec.encode(None)])


# -- writing ----------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed onto it when the block succeeds.

    A reader never sees a half-written file, and a failure leaves nothing behind.
    """
    final = Path(path)
    if not final.parent.is_dir():
        raise VideoError(f"The folder '{final.parent}' does not exist.", reason="write_failed")
    try:
        temp, handle = temporary_beside(final.parent, final.name)
    except OSError as exc:
        raise VideoError(f"Cannot write in '{final.parent}': {exc.strerror or exc}.", reason="write_failed") from None
    os.close(handle)
    try:
        yield temp
        os.replace(temp, final)
    except OSError as exc:
        raise VideoError(f"Cannot write '{final}': {exc.strerror or exc}.", reason="write_failed") from None
    finally:
        temp.unlink(missing_ok=True)


def write_png(frame: VideoFrame, out_png: str | os.PathLike[str]) -> Path:
    data = png_bytes(frame)
    with atomic_output(out_png) as temp:
        temp.write_bytes(data)
    return Path(out_png)


def frame_seconds(frame: VideoFrame, stream: VideoStream) -> float:
    """When a decoded frame is shown, from the start of its stream."""
    if frame.pts is None or frame.time_base is None:
        return 0.0
    start = stream.start_time or 0
    return float((frame.pts - start) * frame.time_base)

"""Reading a clip's properties from its headers (and, when they are silent, its packets)."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from ._av import Source, describe, open_video
from ._errors import VideoError
from ._types import ClipInfo

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.stream import VideoStream


def probe(path: str | os.PathLike[str]) -> ClipInfo:
    """What a clip holds: container, length, size, frame rate, codecs, audio.

    Raises :class:`VideoError` when the file is missing, not a video, or unreadable.
    """
    return probe_source(path)


def probe_source(source: Source) -> ClipInfo:
    """:func:`probe` for a path or an open binary stream (such as uploaded bytes)."""
    with open_video(source) as (container, stream):
        width, height = stream.codec_context.width, stream.codec_context.height
        if not width or not height:
            raise VideoError(f"'{describe(source)}' has a video track with no picture size.", reason="unreadable")
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        audio = container.streams.audio[0] if container.streams.audio else None
        path = Path(source) if isinstance(source, (str, os.PathLike)) else None
        return ClipInfo(
            path=path or Path(),
            container=_container_name(container, source),
            duration_s=round(video_seconds(container, stream), 6),
            width=width,
            height=height,
            fps=round(float(rate), 3) if rate else 0.0,
            video_codec=stream.codec_context.name,
            pixel_format=stream.codec_context.pix_fmt,
            audio_codec=audio.codec_context.name if audio is not None else None,
            audio_sample_rate=audio.codec_context.sample_rate if audio is not None else None,
            audio_channels=audio.codec_context.channels if audio is not None else None,
            size_bytes=path.stat().st_size if path is not None else 0,
        )


def video_seconds(container: InputContainer, stream: VideoStream) -> float:
    """The video track's length: from its header, else the container's, else its last packet."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tagged = _tagged_seconds(stream.metadata.get("DURATION", ""))  # Matroska/WebM keep it per track
    if tagged:
        return tagged
    if container.duration:
        return container.duration / 1_000_000
    end = Fraction(0)
    start = stream.start_time or 0
    for packet in container.demux(stream):
        if packet.pts is not None and packet.time_base is not None:
            end = max(end, (packet.pts - start + (packet.duration or 0)) * packet.time_base)
    container.seek(0)
    return float(end)


def _tagged_seconds(tag: str) -> float | None:
    """Seconds from a Matroska ``DURATION`` tag such as ``00:00:10.000000000``."""
    hours, _, rest = tag.partition(":")
    minutes, _, seconds = rest.partition(":")
    try:
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None


def _container_name(container: InputContainer, source: Source) -> str:
    names = container.format.name
    if "mp4" in names.split(","):
        # One demuxer reads both; the brand in the ftyp box says which the file is.
        return "mov" if container.metadata.get("major_brand", "").strip() == "qt" else "mp4"
    if "webm" in names.split(","):
        return "webm" if _doctype_is_webm(source) else "matroska"
    return names.split(",")[0]


def _doctype_is_webm(source: Source) -> bool:
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as handle:
            head = handle.read(64)
    else:
        at = source.tell()
        source.seek(0)
        head = source.read(64)
        source.seek(at)
    return b"webm" in head

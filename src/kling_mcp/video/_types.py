"""What the video operations return: plain, frozen, JSON-friendly records."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class ClipInfo:
    """What :func:`probe` reads from a clip."""

    path: Path  # the file probed (``Path()`` and size 0 when the emulator probes bytes in memory)
    container: str  # "mp4", "mov", "webm", "matroska", or FFmpeg's name for another format
    duration_s: float  # the video track's length
    width: int
    height: int
    fps: float
    video_codec: str  # FFmpeg's codec name: "h264", "hevc", "vp8", "vp9", "av1"...
    pixel_format: str | None
    audio_codec: str | None  # None: no audio track
    audio_sample_rate: int | None
    audio_channels: int | None
    size_bytes: int

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path), "has_audio": self.has_audio}


@dataclass(frozen=True, slots=True)
class FrameInfo:
    """A frame saved as a PNG by :func:`extract_frame`."""

    path: Path
    width: int
    height: int
    time_s: float  # when the frame is shown, from the start of the clip

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}


@dataclass(frozen=True, slots=True)
class JoinResult:
    """The file :func:`join` wrote, as probed after writing, and how it was made."""

    path: Path
    duration_s: float
    width: int
    height: int
    fps: float
    has_audio: bool
    reencoded: bool  # False: the clips' video was copied as it was, without loss
    reason: str | None  # why the video was re-encoded; None when it was copied
    notes: tuple[str, ...] = ()  # anything else done on the way (letterboxing, silence added...)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path), "notes": list(self.notes)}

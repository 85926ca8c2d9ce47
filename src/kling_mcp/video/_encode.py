"""Writing clips: H.264 in MP4/MOV, VP8 in WebM, with AAC/Opus audio, one frame and one chunk
of sound at a time. Used by :func:`join` and by the emulator's renderer."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal, cast

from ._av import load_av, to_yuv420p
from ._errors import VideoError

if TYPE_CHECKING:
    from av.audio.stream import AudioStream
    from av.container import OutputContainer
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream

Container = Literal["mp4", "mov", "webm"]
# "draft": fastest settings that still keep a still picture within a few levels of the source
# (the emulator); "final": what a person keeps (joins).
Speed = Literal["draft", "final"]

CONTAINER_BY_EXTENSION: dict[str, Container] = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".webm": "webm"}
MIME_TYPES: dict[Container, str] = {"mp4": "video/mp4", "mov": "video/quicktime", "webm": "video/webm"}
# The video codecs each container takes, so a stream copy never writes what a player would refuse.
COPYABLE_CODECS: dict[Container, frozenset[str]] = {
    "mp4": frozenset({"h264", "hevc", "av1"}),
    "mov": frozenset({"h264", "hevc"}),
    "webm": frozenset({"vp8", "vp9", "av1"}),
}

SAMPLE_RATE = 48_000
CHANNELS = 2
# Sound moves between functions as interleaved 32-bit float stereo at SAMPLE_RATE.
PCM_FORMAT = "flt"
BYTES_PER_SAMPLE = 4 * CHANNELS

_VIDEO_CODECS: dict[Container, str] = {"mp4": "libx264", "mov": "libx264", "webm": "libvpx"}
_AUDIO_CODECS: dict[Container, tuple[str, str, int]] = {  # codec, sample format it takes, bits per second
    "mp4": ("aac", "fltp", 192_000),
    "mov": ("aac", "fltp", 192_000),
    "webm": ("libopus", "flt", 128_000),
}
# VP8 rather than VP9 for WebM: about twice as fast at these settings, and played everywhere WebM is.
_VIDEO_OPTIONS: dict[tuple[str, Speed], dict[str, str]] = {
    ("libx264", "draft"): {"preset": "ultrafast", "crf": "17"},
    ("libx264", "final"): {"preset": "veryfast", "crf": "18"},
    # Bitrate with a quantizer ceiling, not crf: libvpx's constant-quality mode is several times slower.
    ("libvpx", "draft"): {"deadline": "realtime", "cpu-used": "16", "b": "8M", "qmin": "2", "qmax": "20"},
    ("libvpx", "final"): {"deadline": "realtime", "cpu-used": "8", "b": "12M", "qmin": "2", "qmax": "20"},
}
_SAMPLE_TIME = Fraction(1, SAMPLE_RATE)
_PCM_CHUNK = 4096  # samples per frame handed to the resampler


def container_for(path: str | os.PathLike[str]) -> Container:
    """The container a file name asks for, by its extension."""
    suffix = Path(path).suffix.lower()
    if suffix not in CONTAINER_BY_EXTENSION:
        allowed = ", ".join(sorted(CONTAINER_BY_EXTENSION))
        raise VideoError(f"'{Path(path).name}' must end in one of {allowed}.", reason="unsupported_output")
    return CONTAINER_BY_EXTENSION[suffix]


class AudioTrack:
    """An encoded sound track in an output container, fed interleaved float stereo PCM."""

    def __init__(self, out: OutputContainer, container: Container) -> None:
        av = load_av()
        codec, sample_format, bit_rate = _AUDIO_CODECS[container]
        self._out = out
        self._stream = cast("AudioStream", out.add_stream(codec, rate=SAMPLE_RATE, layout="stereo"))
        self._stream.format = sample_format
        self._stream.bit_rate = bit_rate
        frame_size = self._stream.codec_context.frame_size or 1024
        self._resampler = av.AudioResampler(format=sample_format, layout="stereo", rate=SAMPLE_RATE,
                                            frame_size=frame_size)  # fmt: skip
        self.samples = 0

    def add_pcm(self, pcm: bytes) -> None:
        av = load_av()
        step = _PCM_CHUNK * BYTES_PER_SAMPLE
        for at in range(0, len(pcm) - len(pcm) % BYTES_PER_SAMPLE, step):
            chunk = pcm[at : at + step]
            samples = len(chunk) // BYTES_PER_SAMPLE
            frame = av.AudioFrame(format=PCM_FORMAT, layout="stereo", samples=samples)
            frame.sample_rate = SAMPLE_RATE
            plane = frame.planes[0]
            plane.update(chunk + bytes(plane.buffer_size - len(chunk)))
            frame.pts = self.samples
            frame.time_base = _SAMPLE_TIME
            self.samples += samples
            for resampled in self._resampler.resample(frame):
                self._out.mux(self._stream.encode(resampled))

    def add_silence(self, samples: int) -> None:
        if samples > 0:
            self.add_pcm(bytes(samples * BYTES_PER_SAMPLE))

    def flush(self) -> None:
        for resampled in self._resampler.resample(None):
            self._out.mux(self._stream.encode(resampled))
        self._out.mux(self._stream.encode(None))


def open_output(path: str | os.PathLike[str], container: Container) -> OutputContainer:
    """An output container, with the index at the front of MP4/MOV so players start at once."""
    av = load_av()
    options = {"movflags": "+faststart"} if container in ("mp4", "mov") else {}
    try:
        out: OutputContainer = av.open(os.fspath(path), "w", format=container, options=options)
    except (av.error.FFmpegError, OSError) as exc:
        raise VideoError(f"Cannot write '{path}': {exc}.", reason="write_failed") from None
    return out


class ClipWriter:
    """An output clip being encoded. Frames get consecutive timestamps at ``fps``; sound is
    appended as interleaved float stereo PCM. Use as a context manager: the file is complete
    once the block exits without an error."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        container: Container,
        *,
        width: int,
        height: int,
        fps: Fraction | int,
        audio: bool,
        speed: Speed = "final",
    ) -> None:
        if width % 2 or height % 2 or width < 2 or height < 2:
            raise VideoError(f"A clip's width and height must be even, not {width}x{height}.", reason="bad_argument")
        self.width, self.height, self.fps = width, height, Fraction(fps)
        self._out = open_output(path, container)
        codec = _VIDEO_CODECS[container]
        self._video = cast("VideoStream", self._out.add_stream(codec, rate=self.fps))
        self._video.width, self._video.height, self._video.pix_fmt = width, height, "yuv420p"
        # A keyframe every 2 s: players and frame extraction can seek without decoding the whole clip.
        self._video.options = {**_VIDEO_OPTIONS[codec, speed], "g": str(round(2 * self.fps))}
        self._frame_time = 1 / self.fps
        self.frames = 0
        self.audio = AudioTrack(self._out, container) if audio else None

    def add_frame(self, frame: VideoFrame) -> None:
        """Append a frame (converted to the clip's size and pixel format when it differs)."""
        if (frame.width, frame.height, frame.format.name) != (self.width, self.height, "yuv420p"):
            frame = to_yuv420p(frame, self.width, self.height)
        frame.pts = self.frames
        frame.time_base = self._frame_time
        self.frames += 1
        self._out.mux(self._video.encode(frame))

    def add_pcm(self, pcm: bytes) -> None:
        """Append sound: interleaved 32-bit float stereo at 48 kHz."""
        if self.audio is None:
            raise VideoError("This clip was opened without audio.", reason="bad_argument")
        self.audio.add_pcm(pcm)

    def close(self) -> None:
        """Flush the encoders and finish the file."""
        try:
            self._out.mux(self._video.encode(None))
            if self.audio is not None:
                self.audio.flush()
        finally:
            self._out.close()

    def abort(self) -> None:
        self._out.close()

    def __enter__(self) -> ClipWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

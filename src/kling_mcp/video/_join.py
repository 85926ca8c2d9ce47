"""Joining clips end to end into one file: a lossless stream copy when the clips allow it,
otherwise one re-encode to a common size and frame rate, letterboxed."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ._av import atomic_output, frame_seconds, load_av, open_video, to_yuv420p
from ._encode import (
    BYTES_PER_SAMPLE,
    COPYABLE_CODECS,
    PCM_FORMAT,
    SAMPLE_RATE,
    AudioTrack,
    ClipWriter,
    Container,
    container_for,
    open_output,
)
from ._errors import VideoError
from ._probe import probe
from ._types import ClipInfo, JoinResult

if TYPE_CHECKING:
    from av.container import InputContainer, OutputContainer
    from av.filter import Graph
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream


Progress = Callable[[float], None]


def join(
    paths: Sequence[str | os.PathLike[str]], out_path: str | os.PathLike[str], *, on_progress: Progress | None = None
) -> JoinResult:
    """Join clips, in order, into ``out_path`` (``.mp4``, ``.mov`` or ``.webm``; written atomically).

    The video is copied without re-encoding when every clip has the same codec, size, frame
    rate, pixel format and encoder parameters, and the codec fits the output container.
    Otherwise every clip is scaled to fit the largest clip's size, padded with black
    (letterbox), and re-encoded at a common frame rate; ``reason`` says why.

    Sound is always re-encoded into one continuous track (AAC, or Opus in WebM), cut to each
    clip's picture so it stays in sync; a clip without sound gets silence when another has
    sound.

    ``on_progress``, if given, is called from time to time with the share of the output written
    (0 to 1); an exception raised from it stops the join and leaves no file. Raises
    :class:`VideoError`.
    """
    if not paths:
        raise VideoError("Give at least one clip to join.", reason="bad_argument")
    container = container_for(out_path)
    clips = [probe(path) for path in paths]
    reason = _why_reencode(clips, container)
    with_sound = any(clip.has_audio for clip in clips)
    notes: list[str] = []
    if with_sound:
        codec = "Opus" if container == "webm" else "AAC"
        notes.append(f"The sound was re-encoded ({codec}) into one track, cut to each clip's picture.")
    silent = [str(i + 1) for i, clip in enumerate(clips) if not clip.has_audio]
    if with_sound and silent:
        notes.append(f"Clip{'s' if len(silent) > 1 else ''} {', '.join(silent)} had no sound: silence was added.")
    total = sum(clip.duration_s for clip in clips) or 1.0

    def report(seconds: Fraction) -> None:
        if on_progress is not None:
            on_progress(min(1.0, float(seconds) / total))

    with atomic_output(out_path) as temp:
        if reason is None:
            _copy(clips, temp, container, with_sound, report)
        else:
            notes.extend(_reencode(clips, temp, container, with_sound, report))
    made = probe(out_path)
    if on_progress is not None:
        on_progress(1.0)
    return JoinResult(
        path=Path(out_path), duration_s=made.duration_s, width=made.width, height=made.height, fps=made.fps,
        has_audio=made.has_audio, reencoded=reason is not None, reason=reason, notes=tuple(notes),
    )  # fmt: skip


def _why_reencode(clips: Sequence[ClipInfo], container: Container) -> str | None:
    def differ(what: str, values: Sequence[Any]) -> str | None:
        if len(set(values)) > 1:
            return f"the clips differ in {what} ({', '.join(dict.fromkeys(str(v) for v in values))})"
        return None

    codecs = [clip.video_codec for clip in clips]
    reason = (
        differ("codec", codecs)
        or differ("size", [f"{c.width}x{c.height}" for c in clips])
        or differ("frame rate", [f"{c.fps:g} fps" for c in clips])
        or differ("pixel format", [c.pixel_format for c in clips])
    )
    if reason is None and codecs[0] not in COPYABLE_CODECS[container]:
        reason = f"{codecs[0]} video cannot be copied into {container.upper()}"
    if reason is None and len({_codec_parameters(c.path) for c in clips}) > 1:
        reason = "the clips were encoded with different settings, so their streams cannot be spliced"
    return None if reason is None else f"Re-encoded: {reason}."


def _codec_parameters(path: Path) -> bytes:
    with open_video(path) as (_, stream):
        return bytes(stream.codec_context.extradata or b"")


# -- stream copy ------------------------------------------------------------------------


def _copy(
    clips: Sequence[ClipInfo], temp: Path, container: Container, with_sound: bool, report: Callable[[Fraction], None]
) -> None:
    out = open_output(temp, container)
    try:
        with open_video(clips[0].path) as (_, first):
            video = out.add_stream_from_template(first)
        sound = AudioTrack(out, container) if with_sound else None
        start = Fraction(0)  # where the current clip starts in the output, in seconds
        last_dts: Fraction | None = None
        for clip in clips:
            with open_video(clip.path) as (source, stream):
                end, last_dts = _copy_packets(source, stream, out, video, start, last_dts)
            if sound is not None:
                _add_clip_sound(sound, clip, end)
            start = end
            report(end)
        if sound is not None:
            sound.flush()
    finally:
        out.close()


def _copy_packets(
    source: InputContainer,
    stream: VideoStream,
    out: OutputContainer,
    video: VideoStream,
    start: Fraction,
    last_dts: Fraction | None,
) -> tuple[Fraction, Fraction | None]:
    """Mux one clip's packets, shifted to begin at ``start``; returns where it ends and its last dts."""
    time_base = stream.time_base
    if time_base is None:
        raise VideoError("A clip's video track has no time base.", reason="unreadable")
    shift = start - (stream.start_time or 0) * time_base
    end = start
    first = True
    for packet in source.demux(stream):
        if packet.dts is None and packet.pts is None:
            continue  # the demuxer's end-of-stream marker
        if first and last_dts is not None and packet.dts is not None and packet.dts * time_base + shift <= last_dts:
            # A clip that opens with more reordering delay than the last one closed with: push it
            # back just enough for decode times to keep increasing.
            shift += last_dts - (packet.dts * time_base + shift) + time_base
        first = False
        pts = round(((packet.pts if packet.pts is not None else packet.dts or 0) * time_base + shift) / time_base)
        packet.pts = pts
        if packet.dts is not None:
            dts = round((packet.dts * time_base + shift) / time_base)
            packet.dts = dts
            last_dts = dts * time_base
        end = max(end, (pts + (packet.duration or 0)) * time_base)
        packet.stream = video
        out.mux(packet)
    return end, last_dts


# -- re-encode --------------------------------------------------------------------------


def _reencode(
    clips: Sequence[ClipInfo], temp: Path, container: Container, with_sound: bool, report: Callable[[Fraction], None]
) -> list[str]:
    width, height = max(((c.width, c.height) for c in clips), key=lambda size: size[0] * size[1])
    width, height = width - width % 2, height - height % 2
    rates = {_exact_rate(c.fps) for c in clips}
    fps = max(rates)
    notes = []
    if len(rates) > 1:
        notes.append(f"Frame rates were unified at {float(fps):g} fps (frames repeated or dropped as needed).")
    fitted = [str(i + 1) for i, c in enumerate(clips) if (c.width, c.height) != (width, height)]
    if fitted:
        notes.append(f"Clip{'s' if len(fitted) > 1 else ''} {', '.join(fitted)} scaled to fit {width}x{height}, "
                     "padded with black where the shape differs.")  # fmt: skip
    with ClipWriter(temp, container, width=width, height=height, fps=fps, audio=with_sound) as writer:
        start = Fraction(0)
        for clip in clips:
            # Frame counts follow the running total, so rounding never accumulates into drift.
            frames = round((start + Fraction(clip.duration_s)) * fps) - writer.frames
            _write_clip_frames(writer, clip, frames, _Letterbox(width, height), report)
            end = Fraction(writer.frames) / fps
            if writer.audio is not None:
                _add_clip_sound(writer.audio, clip, end)
            start = end
    return notes


def _exact_rate(fps: float) -> Fraction:
    return Fraction(fps).limit_denominator(1001)


def _write_clip_frames(
    writer: ClipWriter,
    clip: ClipInfo,
    count: int,
    fit: Callable[[VideoFrame], VideoFrame],
    report: Callable[[Fraction], None],
) -> None:
    """Write ``count`` frames at the writer's rate: each the source frame on screen at that time."""
    every = max(1, round(writer.fps))  # report about once a second of output

    def add(frame: VideoFrame) -> None:
        writer.add_frame(frame)
        if writer.frames % every == 0:
            report(writer.frames / writer.fps)

    slack = 0.25 / float(writer.fps)
    written = 0
    shown: VideoFrame | None = None
    fitted: VideoFrame | None = None
    with open_video(clip.path) as (source, stream):
        for frame in source.decode(stream):
            at = frame_seconds(frame, stream)
            while written < count and at > written / writer.fps + slack:
                if fitted is None:
                    fitted = fit(shown if shown is not None else frame)
                add(fitted)
                written += 1
            if written == count:
                return
            shown, fitted = frame, None
    if shown is None:
        raise VideoError(f"'{clip.path}' has no frames.", reason="unreadable")
    fitted = fitted or fit(shown)
    for _ in range(count - written):
        add(fitted)


class _Letterbox:
    """Scales frames to fit a size, keeping their shape, and pads the rest with black."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self._graph: Graph | None = None
        self._input: tuple[int, int, str] | None = None

    def __call__(self, frame: VideoFrame) -> VideoFrame:
        shape = (frame.width, frame.height, frame.format.name)
        if shape[:2] == (self.width, self.height):
            return to_yuv420p(frame)
        if self._graph is None or self._input != shape:
            self._graph, self._input = self._build(frame), shape
        self._graph.push(frame)
        return cast("VideoFrame", self._graph.pull())  # a video graph gives video frames

    def _build(self, frame: VideoFrame) -> Graph:
        av = load_av()
        graph: Graph = av.filter.Graph()
        chain = [
            graph.add_buffer(width=frame.width, height=frame.height, format=frame.format,
                             time_base=frame.time_base or Fraction(1, 24)),
            graph.add("scale", f"{self.width}:{self.height}:force_original_aspect_ratio=decrease:"
                               "force_divisible_by=2:out_range=tv"),
            graph.add("pad", f"{self.width}:{self.height}:(ow-iw)/2:(oh-ih)/2:color=black"),
            graph.add("setsar", "1"),
            graph.add("format", "yuv420p"),
            graph.add("buffersink"),
        ]  # fmt: skip
        for a, b in itertools.pairwise(chain):
            a.link_to(b)
        graph.configure()
        return graph


# -- sound ------------------------------------------------------------------------------


def _add_clip_sound(track: AudioTrack, clip: ClipInfo, end: Fraction) -> None:
    """Append a clip's sound, cut or padded to end where its picture ends in the output."""
    wanted = round(end * SAMPLE_RATE) - track.samples
    pcm = _clip_pcm(clip.path) if clip.has_audio else b""
    pcm = pcm[: wanted * BYTES_PER_SAMPLE]
    track.add_pcm(pcm)
    track.add_silence(wanted - len(pcm) // BYTES_PER_SAMPLE)


def _clip_pcm(path: Path) -> bytes:
    """A clip's sound as interleaved float stereo at 48 kHz, from its start (late-starting sound
    is preceded by silence)."""
    av = load_av()
    resampler = av.AudioResampler(format=PCM_FORMAT, layout="stereo", rate=SAMPLE_RATE)
    chunks: list[bytes] = []
    samples = 0
    with open_video(path) as (source, _):
        stream = source.streams.audio[0]
        for frame in source.decode(stream):
            if not chunks and frame.pts is not None and frame.time_base is not None:
                lead = round(float((frame.pts - (stream.start_time or 0)) * frame.time_base) * SAMPLE_RATE)
                if lead > 0:
                    chunks.append(bytes(lead * BYTES_PER_SAMPLE))
                    samples += lead
            for out in resampler.resample(frame):
                chunks.append(bytes(out.planes[0])[: out.samples * BYTES_PER_SAMPLE])
        for out in resampler.resample(None):
            chunks.append(bytes(out.planes[0])[: out.samples * BYTES_PER_SAMPLE])
    return b"".join(chunks)

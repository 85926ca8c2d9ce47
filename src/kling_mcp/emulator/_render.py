"""The emulator's videos: real, playable clips that follow the request.

A clip has the requested pixel size, length and container, 24 frames a second, and a tone
for a sound track when sound was asked for. A given first frame is the clip's first frame
and a given last frame its last, joined by a wipe; without them, moving stripes seeded by
the task, so clips of different tasks differ. An edit runs from its source clip's first
frame to its last, for the source's length.

Rendering is fast (x264 ultrafast, VP8 realtime, frames made by slicing bytes) and cached
on disk by everything that decides a clip's content, so repeated downloads and test runs
cost nothing. PyAV is imported only when a clip is rendered or probed.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import getpass
import hashlib
import io
import math
import os
import re
import struct
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..catalog import get_model
from ..video import VideoError
from ..video._av import atomic_output, decode_image, fill_plane, load_av, packed_rows, to_yuv420p
from ..video._encode import BYTES_PER_SAMPLE, MIME_TYPES, SAMPLE_RATE, ClipWriter, Container
from ..video._frames import decode_first_and_last
from ..video._probe import probe_source

if TYPE_CHECKING:
    from av.video.frame import VideoFrame

FPS = 24
CACHE_ENV = "KLING_MCP_EMULATOR_CACHE"
# Bumped whenever rendering changes, so a cache never serves clips made the old way.
RENDER_VERSION = 3
_CACHE_LIMIT_BYTES = 1 << 30
_CONTAINERS: dict[str, Container] = {"MP4": "mp4", "MOV": "mov", "WEBM": "webm"}
_BAR_ROWS = 16
_TONE_AMPLITUDE = 0.2
_TONE_PERIODS = (200, 150, 100, 80)  # samples per cycle at 48 kHz: 240, 320, 480 and 600 Hz
_DATA_URI = re.compile(r"^data:[^,]*;base64,(?P<data>.*)$", re.DOTALL)
_MEDIA_URL = re.compile(r"/media/(?P<uuid>[0-9a-fA-F-]{36})$")


class StoredMedia(Protocol):
    """An upload as the emulator keeps it: its bytes, unless it was registered by URL."""

    @property
    def content(self) -> bytes | None: ...


MediaLookup = Callable[[str], StoredMedia | None]


@dataclass(frozen=True, slots=True)
class ClipPlan:
    """Everything that decides a rendered clip's bytes, and nothing else: the cache key."""

    width: int
    height: int
    seconds: float
    container: Container
    sound: bool
    seed: int  # the stripes' look and the tone; only shows where no frame is given
    first: bytes | None  # an image file that must be the first frame
    last: bytes | None  # an image file that must be the last frame
    source: bytes | None  # an edit's source clip, whose first and last frames bound the result

    @property
    def frames(self) -> int:
        return max(1, round(self.seconds * FPS))

    def key(self) -> str:
        digest = hashlib.sha256()
        for part in (RENDER_VERSION, self.width, self.height, self.frames, self.container, self.sound, self.seed):
            digest.update(f"{part}|".encode())
        for blob in (self.first, self.last, self.source):
            digest.update(hashlib.sha256(blob).digest() if blob is not None else b"-")
        return digest.hexdigest()[:32]


# -- what a task asks for ------------------------------------------------------------------


def container_of(task: Mapping[str, Any]) -> Container:
    """The container a task's ``outputFormat`` asks for (MP4 by default)."""
    return _CONTAINERS.get(str(task.get("outputFormat", "MP4")).upper(), "mp4")


def mime_type(container: Container) -> str:
    return MIME_TYPES[container]


def media_bytes(ref: Any, media: MediaLookup) -> bytes | None:
    """The bytes behind a media value: an uploaded media UUID or its emulator URL, or a data URI.
    None for anything the emulator cannot read without the network."""
    if not isinstance(ref, str):
        return None
    if ref.startswith("data:"):
        match = _DATA_URI.match(ref)
        try:
            return base64.b64decode("".join(match["data"].split()), validate=True) if match else None
        except (binascii.Error, ValueError):
            return None
    url = _MEDIA_URL.search(ref)
    stored = media(url["uuid"] if url else ref)
    return stored.content if stored is not None else None


def source_clip_seconds(task: Mapping[str, Any], media: MediaLookup) -> float | None:
    """The real length of an edit's uploaded source clip, or None when it cannot be read."""
    inputs = task.get("inputs")
    source = media_bytes(inputs.get("video"), media) if isinstance(inputs, Mapping) else None
    if source is None:
        return None
    try:
        return round(probe_source(io.BytesIO(source)).duration_s, 3)
    except VideoError:
        return None


def plan_clip(task: Mapping[str, Any], index: int, seconds: float, media: MediaLookup) -> ClipPlan:
    """What result ``index`` of a task looks like, lasting ``seconds``."""
    given = task.get("inputs")
    inputs: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    settings = task.get("providerSettings")
    klingai = settings.get("klingai") if isinstance(settings, Mapping) else None
    sound = isinstance(klingai, Mapping) and klingai.get("sound") is True
    first, last = _frame_images(inputs.get("frameImages"), media)
    source = media_bytes(inputs.get("video"), media)
    if source is not None and isinstance(klingai, Mapping) and klingai.get("keepOriginalSound") is True:
        sound = sound or _has_audio(source)
    width, height = _size(task, first or last, source)
    seed = int.from_bytes(hashlib.sha256(f"{task.get('taskUUID')}/{index}".encode()).digest()[:8], "big")
    return ClipPlan(width, height, seconds, container_of(task), sound, seed, first, last, source)


def _frame_images(value: Any, media: MediaLookup) -> tuple[bytes | None, bytes | None]:
    """The first- and last-frame images, by position name or, without one, by order."""
    found: dict[str, bytes | None] = {}
    for i, item in enumerate(value if isinstance(value, list) else []):
        image, position = (item.get("image"), item.get("frame")) if isinstance(item, Mapping) else (item, None)
        if position is None:
            position = "first" if i == 0 else "last"
        found["first" if position in ("first", 0) else "last"] = media_bytes(image, media)
    return found.get("first"), found.get("last")


def _size(task: Mapping[str, Any], image: bytes | None, source: bytes | None) -> tuple[int, int]:
    width, height = task.get("width"), task.get("height")
    if isinstance(width, int) and isinstance(height, int) and width > 1 and height > 1:
        return _even(width), _even(height)
    if source is not None:
        try:
            info = probe_source(io.BytesIO(source))
            return _even(info.width), _even(info.height)
        except VideoError:
            pass
    spec = get_model(task["model"]) if isinstance(task.get("model"), str) else None
    sizes = [(d.width, d.height) for d in spec.dimensions] if spec is not None else [(1280, 720)]
    if image is not None:
        try:
            picture = decode_image(io.BytesIO(image))
            # The model's size whose shape is nearest the image's, as Kling picks it.
            aspect = picture.width / picture.height
            return min(sizes, key=lambda size: abs(math.log(size[0] / size[1] / aspect)))
        except VideoError:
            pass
    return sizes[0]


def _even(n: int) -> int:
    return max(2, n - n % 2)


def _has_audio(clip: bytes) -> bool:
    try:
        return probe_source(io.BytesIO(clip)).has_audio
    except VideoError:
        return False


# -- rendering -----------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where rendered clips are kept: ``$KLING_MCP_EMULATOR_CACHE``, else a per-user folder in
    the system's temporary folder."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    user = os.getuid() if hasattr(os, "getuid") else getpass.getuser()
    return Path(tempfile.gettempdir()) / f"kling-mcp-emulator-videos-{user}"


# One render at a time: two downloads of a new clip render it once, and the emulator never
# takes more than a core or so from the program it stands in for.
_RENDERING = threading.Lock()


def render(plan: ClipPlan, folder: Path | None = None) -> Path:
    """The rendered clip's path, rendering it first unless it is cached."""
    folder = folder or cache_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"{plan.key()}.{plan.container}"
    if path.exists():
        os.utime(path)  # recently used: kept longest when the cache is trimmed
        return path
    with _RENDERING:
        if not path.exists():  # unless another download rendered it meanwhile
            with atomic_output(path) as temp:
                _encode(plan, temp)
    _trim(folder, keep=path)
    return path


def _encode(plan: ClipPlan, out: Path) -> None:
    av = load_av()
    w, h = plan.width, plan.height
    start, end = _bounds(plan)
    pattern = _Stripes(plan.seed, w, h)
    count = plan.frames
    with ClipWriter(out, plan.container, width=w, height=h, fps=FPS, audio=plan.sound, speed="draft") as writer:
        for i in range(count):
            progress = i / (count - 1) if count > 1 else 0.0
            a = start if start is not None else pattern.planes(i, progress)
            b = end if end is not None else pattern.planes(i, progress)
            frame = av.VideoFrame(w, h, "yuv420p")
            # A wipe from the top: the end picture's rows replace the start picture's.
            luma_rows = 2 * round(progress * h / 2)
            for plane, (row_bytes, rows) in enumerate(((w, h), (w // 2, h // 2), (w // 2, h // 2))):
                cut = (luma_rows if plane == 0 else luma_rows // 2) * row_bytes
                fill_plane(frame, plane, b[plane][:cut] + a[plane][cut:], row_bytes, rows)
            writer.add_frame(frame)
        if plan.sound:
            writer.add_pcm(_tone(plan.seed, plan.seconds))


def _bounds(plan: ClipPlan) -> tuple[tuple[bytes, ...] | None, tuple[bytes, ...] | None]:
    """The packed YUV planes of the pictures the clip must start and end on, where given."""
    first: VideoFrame | None = None
    last: VideoFrame | None = None
    if plan.source is not None:
        with contextlib.suppress(VideoError):  # an unreadable source: the stripes instead
            first, last = decode_first_and_last(io.BytesIO(plan.source))
    first = _picture(plan.first) or first
    last = _picture(plan.last) or last
    return _planes(first, plan), _planes(last, plan)


def _picture(image: bytes | None) -> VideoFrame | None:
    if image is None:
        return None
    try:
        return decode_image(io.BytesIO(image))
    except VideoError:
        return None


def _planes(frame: VideoFrame | None, plan: ClipPlan) -> tuple[bytes, ...] | None:
    if frame is None:
        return None
    w, h = plan.width, plan.height
    frame = to_yuv420p(frame, w, h)
    return (packed_rows(frame, 0, w, h), packed_rows(frame, 1, w // 2, h // 2), packed_rows(frame, 2, w // 2, h // 2))


class _Stripes:
    """Stripes in staggered bands, sliding sideways as one picture, tinted per seed. Cheap to
    make (slices of one precomputed row) and to encode (the whole picture moves by whole pixels,
    in bands aligned to 16-pixel macroblocks), and unlike any other seed's."""

    def __init__(self, seed: int, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.period = 48 + seed % 97
        self.band = 16 * (1 + (seed >> 8) % 4)
        self.stagger = self.period // (2 + (seed >> 12) % 4)
        self.speed = 2 + (seed >> 16) % 7
        low, high = 40 + (seed >> 24) % 40, 170 + (seed >> 32) % 60
        wave = [low + (high - low) * abs(2 * (x % self.period) / self.period - 1) for x in range(self.period)]
        self._row = bytes(round(wave[x % self.period]) for x in range(width + 2 * self.period))
        self._u = bytes([64 + (seed >> 40) % 128])
        self._v = bytes([64 + (seed >> 48) % 128])

    def planes(self, index: int, progress: float) -> tuple[bytes, bytes, bytes]:
        """Frame ``index``'s packed Y, U and V planes, ``progress`` (0 to 1) through the clip: the
        bar along the bottom fills up, so frames of one clip tell apart."""
        w, h = self.width, self.height
        shift = index * self.speed % self.period
        bands = []
        for k in range(h // self.band + 1):
            at = (shift + k * self.stagger) % self.period
            bands.append(self._row[at : at + w] * self.band)
        bar_rows = min(_BAR_ROWS, h // 4)
        filled = round(progress * w)
        bar = (b"\xeb" * filled + b"\x10" * (w - filled)) * bar_rows
        luma = b"".join(bands)[: w * (h - bar_rows)] + bar
        chroma = (w // 2) * (h // 2)
        return luma, self._u * chroma, self._v * chroma


def _tone(seed: int, seconds: float) -> bytes:
    """A steady tone, interleaved float stereo at 48 kHz, ``seconds`` long."""
    period = _TONE_PERIODS[seed % len(_TONE_PERIODS)]
    cycle = b"".join(
        struct.pack("<ff", s, s) for s in (_TONE_AMPLITUDE * math.sin(2 * math.pi * k / period) for k in range(period))
    )
    samples = round(seconds * SAMPLE_RATE)
    return (cycle * (samples // period + 1))[: samples * BYTES_PER_SAMPLE]


def _trim(folder: Path, keep: Path) -> None:
    """Delete the least recently used clips while the cache holds more than its limit."""
    try:
        files = [(f.stat().st_mtime, f.stat().st_size, f) for f in folder.iterdir() if f.is_file() and f != keep]
    except OSError:
        return
    total = sum(size for _, size, _ in files) + (keep.stat().st_size if keep.exists() else 0)
    for _, size, file in sorted(files):
        if total <= _CACHE_LIMIT_BYTES:
            break
        file.unlink(missing_ok=True)
        total -= size

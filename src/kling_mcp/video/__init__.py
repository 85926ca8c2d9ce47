"""Video files with PyAV: probe clips, extract frames, join clips, and draw contact sheets.

Synchronous and CPU-bound: call these from a worker thread (``anyio.to_thread.run_sync``)
in async code. PyAV (``av``, whose wheels bundle FFmpeg) is imported on first use, so
importing this package costs nothing at start-up.

Every failure is a :class:`VideoError` with a message fit to show a user and a ``reason``
code (``not_found``, ``not_a_video``, ``unreadable``, ``bad_argument``...).

- :func:`probe` (path) -> :class:`ClipInfo`: container, duration, size, frame rate, codecs, audio.
- :func:`extract_frame` (path, ``"first"`` | ``"last"`` | seconds, out_png) -> :class:`FrameInfo`.
- :func:`thumbnail_png` (png_path, max_side=256) -> PNG bytes, for MCP image content.
- :func:`join` (paths, out_path, on_progress=None) -> :class:`JoinResult`: stream copy when possible,
  else re-encode.
- :func:`contact_sheet` (paths, out_png, frames_per_clip=4) -> the PNG's path.

Outputs are written to a temporary file beside the target and renamed into place, so a
reader never sees a partial file; the target's folder must exist.
"""

from ._errors import VideoError, VideoErrorReason
from ._frames import FramePosition, extract_frame, thumbnail_png
from ._join import join
from ._probe import probe
from ._sheet import contact_sheet
from ._types import ClipInfo, FrameInfo, JoinResult

__all__ = [
    "ClipInfo",
    "FrameInfo",
    "FramePosition",
    "JoinResult",
    "VideoError",
    "VideoErrorReason",
    "contact_sheet",
    "extract_frame",
    "join",
    "probe",
    "thumbnail_png",
]

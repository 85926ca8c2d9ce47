"""Contact sheets: one PNG with a row of frames per clip."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ._av import open_video, packed_rows, rgb_frame, write_png
from ._errors import VideoError
from ._frames import first_frame, frames_at, last_frame
from ._probe import probe, video_seconds

if TYPE_CHECKING:
    from av.video.frame import VideoFrame

CELL_WIDTH = 320
_GAP = 8
_BACKGROUND = bytes((24, 24, 24))


def contact_sheet(
    paths: Sequence[str | os.PathLike[str]], out_png: str | os.PathLike[str], frames_per_clip: int = 4
) -> Path:
    """Save one PNG grid at ``out_png``: a row per clip, ``frames_per_clip`` frames across, from
    the first frame to the true last frame at even intervals. Cells are 320 pixels wide, shaped
    like the first clip; other shapes are letterboxed. Raises :class:`VideoError`."""
    if not paths:
        raise VideoError("Give at least one clip for a contact sheet.", reason="bad_argument")
    if not 1 <= frames_per_clip <= 16:
        raise VideoError("frames_per_clip must be 1 to 16.", reason="bad_argument")
    shape = probe(paths[0])
    cell_w = CELL_WIDTH
    cell_h = max(2, round(CELL_WIDTH * shape.height / shape.width))
    width = _GAP + frames_per_clip * (cell_w + _GAP)
    height = _GAP + len(paths) * (cell_h + _GAP)
    canvas = bytearray(_BACKGROUND * (width * height))
    for r, path in enumerate(paths):  # one clip's frames in memory at a time
        for c, frame in enumerate(_clip_row(path, frames_per_clip)):
            _paste(canvas, width, frame, _GAP + c * (cell_w + _GAP), _GAP + r * (cell_h + _GAP), cell_w, cell_h)
    return write_png(rgb_frame(bytes(canvas), width, height), out_png)


def _clip_row(path: str | os.PathLike[str], count: int) -> list[VideoFrame]:
    with open_video(path) as (container, stream):
        if count == 1:
            return [first_frame(container, stream)]
        end = video_seconds(container, stream)
        frames = frames_at(container, stream, [end * i / (count - 1) for i in range(count - 1)])
        return [*frames, last_frame(container, stream)]


def _paste(canvas: bytearray, canvas_width: int, frame: VideoFrame, x: int, y: int, box_w: int, box_h: int) -> None:
    """Draw a frame into a box of the canvas, scaled to fit and centred."""
    scale = min(box_w / frame.width, box_h / frame.height)
    w, h = max(1, round(frame.width * scale)), max(1, round(frame.height * scale))
    small = frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA")
    pixels = packed_rows(small, 0, w * 3, h)
    left, top = x + (box_w - w) // 2, y + (box_h - h) // 2
    for row in range(h):
        at = ((top + row) * canvas_width + left) * 3
        canvas[at : at + w * 3] = pixels[row * w * 3 : (row + 1) * w * 3]

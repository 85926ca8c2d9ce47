"""The one exception the video layer raises."""

from __future__ import annotations

from typing import Literal

VideoErrorReason = Literal[
    "not_found",  # no file at the path
    "not_a_file",  # a folder, a FIFO, a device
    "not_a_video",  # readable, but not a video (an image, audio, text...)
    "unreadable",  # claims to be media but cannot be decoded
    "bad_argument",  # a time outside the clip, an empty list, a bad size
    "unsupported_output",  # an output name whose extension says no format we write
    "write_failed",  # the output could not be written
]


class VideoError(Exception):
    """A video operation that cannot be done, with a message fit to show a user.

    ``reason`` says what kind of problem it is, so a caller can map it to its own
    error codes without parsing the message.
    """

    def __init__(self, message: str, *, reason: VideoErrorReason) -> None:
        super().__init__(message)
        self.message = message
        self.reason: VideoErrorReason = reason

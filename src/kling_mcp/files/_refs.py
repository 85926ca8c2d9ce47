"""Which media strings name a local file. Pure: the string's shape decides, nothing is read."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

_BASE64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")
_RELATIVE = ("./", "../", ".\\", "..\\")
# A name with a file extension, or with folders, and no URI scheme.
_BARE_NAME = re.compile(r"^(?![A-Za-z][A-Za-z0-9+.-]*:)[^\n]*?([\\/][^\n]*|\.[A-Za-z0-9]{2,5})$")


def local_path(value: str) -> str | None:
    """The file path a media argument names, or None when it is another form (UUID, URL, data URI,
    base64). Paths are absolute, ``~/...``, ``file://`` URIs, or explicitly relative (``./``,
    ``../``, or a bare ``cat.png``), which the sandbox refuses with a clear message rather than
    guessing a base."""
    if value.startswith("file://"):
        parts = urlsplit(value)
        return unquote(parts.path) if parts.netloc in ("", "localhost") and parts.path else None
    if value.startswith(("~", *_RELATIVE)) or _WINDOWS_DRIVE.match(value):
        return value
    if value.startswith("/"):
        # Raw base64 may start with '/' too (every JPEG's does: "/9j/"); a path never looks like
        # a long run of base64 characters with a length divisible by four.
        looks_base64 = len(value) >= 64 and len(value) % 4 == 0 and _BASE64.match(value) is not None
        return None if looks_base64 else value
    if _BARE_NAME.match(value) and not _BASE64.match(value):
        return value  # "cat.png", "Pictures/cat.png": meant as a file; the sandbox says how to name it
    return None


def is_relative(path: str) -> bool:
    return path.startswith(_RELATIVE)

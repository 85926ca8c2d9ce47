"""The reading sandbox: which local files may be read and sent to Runware.

A file is read only when its real path (symlinks and ``..`` resolved) lies inside an allowed
root, no part of it below the root is hidden (``.ssh``, ``.env``...), it is a regular file
with a single name (no other hard links), within the size limit of its kind, and its bytes
really are media of a format Runware takes.
Each check happens before anything is read or sent; a refusal names the allowed roots.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlsplit

from ._probe import mp4_seconds
from ._refs import is_relative, local_path
from ._sniff import HEAD_BYTES, SUPPORTED, MediaKind, MediaType, sniff

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_CHUNK = 1 << 20
MB = 1_000_000


@dataclass(frozen=True, slots=True)
class SizeLimits:
    image: int = 10 * MB
    video: int = 100 * MB
    audio: int = 20 * MB

    def of(self, kind: MediaKind | None) -> int:
        """The limit for a kind; for a file of a kind not known yet, the largest."""
        return int(getattr(self, kind)) if kind is not None else max(self.image, self.video, self.audio)


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A local file that passed every check, as it was when checked."""

    source: str  # the argument as the agent wrote it
    path: Path  # the real path that was read
    size: int
    sha256: str
    media_type: MediaType
    device: int
    inode: int
    seconds: float | None = None  # a video's length, when its header says

    def open(self) -> IO[bytes]:
        """The file, opened again for upload, provided it is still the file that was checked."""
        fd = _open_no_follow(self.path)
        info = os.fstat(fd)
        if (info.st_dev, info.st_ino, info.st_size) != (self.device, self.inode, self.size):
            os.close(fd)
            raise FileRefused("changed", f"{self.source} changed after it was checked.", "Call again.")
        return os.fdopen(fd, "rb")


class FileRefused(Exception):
    """A local file that may not be read or sent. Nothing was sent."""

    def __init__(self, reason: str, message: str, fix: str) -> None:
        super().__init__(message)
        self.reason, self.message, self.fix = reason, message, fix


class Sandbox:
    """The roots local media may be read from, and the size limits per kind.

    ``always`` roots (the output folder) stay readable whatever the client's roots say: they
    hold only what kling-mcp itself saved, and a saved clip must stay editable."""

    def __init__(
        self,
        roots: Iterable[Path],
        limits: SizeLimits = SizeLimits(),
        *,
        always: Iterable[Path] = (),
        configured: Sequence[Path] | None = None,
        client_roots: Sequence[Path] | None = None,
    ) -> None:
        own = [_real(r) for r in roots]
        self.always = tuple(dict.fromkeys(_real(r) for r in always))
        self.roots = tuple(dict.fromkeys([*own, *self.always]))
        self.limits = limits
        self.configured = tuple(configured) if configured is not None else tuple(own)
        self.client_roots = tuple(client_roots) if client_roots is not None else None

    def narrowed(self, client_root_uris: Sequence[str]) -> Sandbox:
        """This sandbox cut down to what the MCP client's roots also allow: a client can narrow
        what may be read, never widen it. Non-file roots are ignored; no roots, no narrowing."""
        client = [p for p in (_uri_path(u) for u in client_root_uris) if p is not None]
        if not client:
            return self
        client = [_real(p) for p in client]
        overlap = [inner for c in self.configured for r in client for inner in _overlap(c, r)]
        return Sandbox(overlap, self.limits, always=self.always, configured=self.configured, client_roots=client)

    def describe(self) -> list[str]:
        return [str(r) for r in self.roots]

    def _outside(self, source: str, real: Path, shown: str) -> FileRefused:
        other = "or pass an https URL or a Runware media UUID instead."
        allowed = ", ".join(self.describe()) or "none"
        in_configured = any(real == c or real.is_relative_to(c) for c in self.configured)
        if self.client_roots is not None and in_configured:
            return FileRefused(
                "outside_roots",
                f"'{source}'{shown} is outside the MCP client's roots ({', '.join(map(str, self.client_roots))}), "
                f"which narrow what kling-mcp may read to: {allowed}.",
                f"Ask the user to add its folder to the client's roots (its workspace or allowed folders), or use a "
                f"file inside {allowed}; {other}",
            )  # fmt: skip
        return FileRefused(
            "outside_roots", f"'{source}'{shown} is outside the folders kling-mcp may read: {allowed}.",
            f"Use a file inside one of them; or ask the user to add its folder to KLING_MCP_MEDIA_ROOTS (or "
            f"--media-root){' and to the client' + chr(39) + 's roots' if self.client_roots is not None else ''}; {other}",
        )  # fmt: skip

    def check(self, source: str, kind: MediaKind | None) -> LocalFile:
        """Check a local media argument and hash its content. Blocking: run it in a worker thread.
        ``kind`` is what the argument takes; None takes any media. Raises FileRefused, before
        reading anything when the path itself is not allowed."""
        raw = local_path(source) or source
        if is_relative(raw) or not os.path.isabs(os.path.expanduser(raw)):
            raise FileRefused(
                "relative_path", f"'{source}' is a relative path; kling-mcp has no working folder to resolve it against.",
                f"Give the file's absolute path (or ~/...), inside one of: {', '.join(self.describe()) or 'none'}.",
            )  # fmt: skip
        real = _real(Path(os.path.expanduser(raw)))
        root = next((r for r in self.roots if real == r or real.is_relative_to(r)), None)
        if root is None:
            shown = f" (it resolves to {real})" if str(real) != os.path.normpath(os.path.expanduser(raw)) else ""
            raise self._outside(source, real, shown)
        hidden = [part for part in real.relative_to(root).parts if part.startswith(".")]
        if hidden:
            raise FileRefused(
                "hidden_path", f"'{source}' is inside a hidden file or folder ('{hidden[0]}'), which kling-mcp never reads.",
                "Move or copy the media to a visible folder inside the allowed roots.",
            )  # fmt: skip
        try:
            info = os.stat(real)
        except FileNotFoundError:
            raise FileRefused("not_found", f"There is no file at '{source}'.", "Check the path; list the folder first.") from None
        except OSError as exc:
            raise FileRefused("unreadable", f"'{source}' cannot be read ({exc.strerror}).", "Check its permissions.") from None
        if not stat.S_ISREG(info.st_mode):
            what = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file (a pipe, device or socket)"
            raise FileRefused("not_regular_file", f"'{source}' is {what}.", "Pass the path of an image, video or audio file.")
        if info.st_nlink > 1:
            raise _hard_linked(source, info.st_nlink)
        if info.st_size > self.limits.of(kind):
            raise _too_large(source, info.st_size, kind, self.limits.of(kind))
        if info.st_size == 0:
            raise FileRefused("empty", f"'{source}' is empty.", f"Pass {_a(kind or 'media')} file with content.")
        return self._read(source, real, kind)

    def _read(self, source: str, real: Path, kind: MediaKind | None) -> LocalFile:
        try:
            fd = _open_no_follow(real)
        except OSError as exc:
            raise FileRefused("unreadable", f"'{source}' cannot be read ({exc.strerror}).", "Check its permissions.") from None
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):  # swapped after the stat above
                raise FileRefused("not_regular_file", f"'{source}' is not a regular file.", "Pass a media file.")
            if info.st_nlink > 1:  # linked after the stat above
                raise _hard_linked(source, info.st_nlink)
            head = handle.read(HEAD_BYTES)
            found = sniff(head)
            _require_kind(source, kind, found)
            assert found is not None
            limit = self.limits.of(found.kind)
            if info.st_size > limit:
                raise _too_large(source, info.st_size, found.kind, limit)
            digest = hashlib.sha256(head)
            size = len(head)
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                if size > limit:
                    break
            seconds = mp4_seconds(handle, size) if found.mime in ("video/mp4", "video/quicktime") else None
        if size != info.st_size:
            raise FileRefused("changed", f"'{source}' changed while it was read.", "Call again once it is written.")
        return LocalFile(source, real, size, digest.hexdigest(), found, info.st_dev, info.st_ino, seconds)


def _hard_linked(source: str, links: int) -> FileRefused:
    # Its other names may lie outside the roots (a link to ~/.ssh/id_rsa made inside ~/Pictures reads the key),
    # and a file cannot tell where they are.
    return FileRefused(
        "hard_linked", f"'{source}' has {links} hard links (other names for the same file), which may lie outside the "
        "folders kling-mcp may read, so it is not read.",
        "Copy the file (a copy has one name) inside an allowed folder and pass the copy.",
    )  # fmt: skip


def _too_large(source: str, size: int, kind: MediaKind | None, limit: int) -> FileRefused:
    what = f"{kind} files" if kind else "media files"
    return FileRefused(
        "too_large", f"'{source}' is {size / MB:.1f} MB; the limit for {what} is {limit / MB:g} MB.",
        f"Use a smaller file (compress or shorten it), or ask the user to raise "
        f"KLING_MCP_MAX_{(kind or 'video').upper()}_MB.",
    )  # fmt: skip


def _require_kind(source: str, kind: MediaKind | None, found: MediaType | None) -> None:
    if found is None:
        formats = SUPPORTED[kind] if kind else "; ".join(f"{k}s: {v}" for k, v in SUPPORTED.items())
        raise FileRefused(
            "not_media", f"'{source}' is not {_a(kind or 'media')} file: its content is no format kling-mcp "
            "recognises (the name does not count, only the bytes).",
            f"Pass {_a(kind or 'media')} file ({formats}).",
        )  # fmt: skip
    kind = kind or found.kind
    if found.kind != kind:
        raise FileRefused(
            "wrong_kind", f"'{source}' is {_a(found.kind)} ({found.label}), but this argument takes {_a(kind)}.",
            f"Pass {_a(kind)} here ({SUPPORTED[kind]}), or move the file to an argument that takes {_a(found.kind)}.",
        )  # fmt: skip
    if not found.supported:
        raise FileRefused(
            "unsupported_format", f"'{source}' is {found.label}, which Runware does not take for {kind} inputs.",
            f"Convert it to {SUPPORTED[kind]} first.",
        )  # fmt: skip


def _a(kind: str) -> str:
    return "an " + kind if kind[0] in "aeiou" else "a " + kind


def _open_no_follow(path: Path) -> int:
    return os.open(path, _OPEN_FLAGS)


def _real(path: Path) -> Path:
    return Path(os.path.realpath(os.path.expanduser(path)))


def _uri_path(uri: str) -> Path | None:
    parts = urlsplit(str(uri))
    if parts.scheme != "file" or parts.netloc not in ("", "localhost") or not parts.path:
        return None
    return Path(unquote(parts.path))


def _overlap(a: Path, b: Path) -> list[Path]:
    """The folder both subtrees contain: the deeper one when one holds the other, else none."""
    if a == b or a.is_relative_to(b):
        return [a]
    if b.is_relative_to(a):
        return [b]
    return []

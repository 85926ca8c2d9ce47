"""Finished videos to files in the output folder: streamed, written atomically, never clobbered.

The result URLs point at Runware's storage, not its API, so they are fetched with a client of
their own that never carries the API key.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx

from .._tempfiles import temporary_beside
from ..ledger import IN_FLIGHT, JobRecord, Ledger
from ._sniff import EXTENSIONS, HEAD_BYTES, sniff

DownloadProgress = Callable[[float, float, str], Awaitable[None]]

_CONTAINERS = {ext: mime for mime, ext in EXTENSIONS.items() if mime.startswith("video/")}  # "mp4": "video/mp4"...
_FORMATS = {"MP4": "mp4", "WEBM": "webm", "MOV": "mov"}
_SAFE_NAME = re.compile(r"^[^/\\\x00-\x1f]{1,120}$")
_WORD = re.compile(r"[a-z0-9]+")
# A whole download (every video of a job: connect, headers, every byte) must end within this many seconds...
DOWNLOAD_DEADLINE_S = 300.0
# ...and, after its first seconds, run at least this fast: per-read timeouts alone let a server that
# trickles a byte at a time hold the tool call for ever.
MIN_BYTES_PER_S = 50_000.0
_SLOW_GRACE_S = 10.0
# HTTP statuses with which storage says a signed or temporary URL is no longer valid.
_GONE = (401, 403, 404, 410)


@dataclass(frozen=True, slots=True)
class SavedVideo:
    video_uuid: str
    path: Path
    size: int
    mime_type: str
    already_downloaded: bool  # True: an earlier download was still on disk, nothing was fetched


class DownloadProblem(Exception):
    def __init__(self, kind: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.kind, self.message, self.extra = kind, message, extra


class VideoDownloads:
    def __init__(
        self,
        output_dir: Path,
        ledger: Ledger,
        *,
        timeout: float = 30.0,
        deadline: float = DOWNLOAD_DEADLINE_S,
        min_bytes_per_s: float = MIN_BYTES_PER_S,
        max_bytes: int = 2_000_000_000,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.output_dir = output_dir
        self.ledger = ledger
        self.deadline = deadline
        self.min_bytes_per_s = min_bytes_per_s
        self.max_bytes = max_bytes
        self._timeout, self._transport = timeout, transport
        self._client: httpx.AsyncClient | None = None

    @property
    def _http(self) -> httpx.AsyncClient:
        # Made on first use: building an HTTPS client costs tens of milliseconds, which server
        # start-up need not pay for a tool it may never call.
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self._timeout, connect=min(self._timeout, 10.0)), follow_redirects=True,
                headers={"User-Agent": "kling-mcp"}, transport=self._transport,
            )  # fmt: skip
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def save(
        self,
        job: JobRecord,
        *,
        filename: str | None = None,
        subfolder: str | None = None,
        overwrite: bool = False,
        progress: DownloadProgress | None = None,
    ) -> list[SavedVideo]:
        """Download every video of a finished job into the output folder. Raises DownloadProblem."""
        if job.status == "stalled":
            raise DownloadProblem(
                "not_finished", f"Job {job.task_uuid} is stalled: Runware has given no final answer for it, so there "
                "is nothing to download.", next_step=f"Call get_video_status with task_id {job.task_uuid} later; it is "
                "looked up again on request.",
            )  # fmt: skip
        if job.status in IN_FLIGHT:
            raise DownloadProblem(
                "not_finished", f"Job {job.task_uuid} is still {job.status}; there is nothing to download yet.",
                next_step=f"Call wait_for_video with task_id {job.task_uuid}, then download_video.",
            )  # fmt: skip
        videos = [r for r in job.results if r.get("video_url")]
        if not videos:
            raise DownloadProblem(
                "no_videos", f"Job {job.task_uuid} ended '{job.status}' with no video to download.",
                next_step="See the job's errors (get_video_status); submit again if it failed.",
            )  # fmt: skip
        folder = await anyio.to_thread.run_sync(self._folder, subfolder)
        stem = _checked_name(filename) if filename is not None else None
        earlier = await anyio.to_thread.run_sync(self.ledger.downloads, job.task_uuid)
        saved = []
        for index, video in enumerate(videos):
            extension = _extension(video["video_url"], job.payload)
            if stem is not None:
                name = _with_extension(stem, extension, index if len(videos) > 1 else None)
            else:
                name = _default_name(job, extension, index if len(videos) > 1 else None)
            # Asked again for the same folder (and, if named, the same name): the earlier file is the answer.
            before = next((d for d in reversed(earlier) if d["video_uuid"] == video["video_uuid"]
                           and Path(d["path"]).parent == folder and (stem is None or Path(d["path"]).name == name)
                           and _still_there(d)), None)  # fmt: skip
            if before is not None and not overwrite:
                saved.append(SavedVideo(video["video_uuid"], Path(before["path"]), before["size"],
                                        _CONTAINERS[extension], already_downloaded=True))  # fmt: skip
                continue
            saved.append(await self._fetch(job, video, folder, name, explicit=stem is not None, overwrite=overwrite,
                                           progress=progress, part=(index, len(videos))))  # fmt: skip
        return saved

    def _folder(self, subfolder: str | None) -> Path:
        root = Path(os.path.realpath(self.output_dir))
        if subfolder:
            parts = Path(subfolder).parts
            if Path(subfolder).is_absolute() or any(p in ("..", ".") or p.startswith(".") or not _SAFE_NAME.match(p) for p in parts):
                raise DownloadProblem(
                    "bad_subfolder", f"subfolder '{subfolder}' must be a relative folder name inside the output folder "
                    f"{root} (no '..', no hidden or absolute parts).", output_dir=str(root),
                    next_step="Pass a plain name such as 'trailer/shots', or leave subfolder out.",
                )  # fmt: skip
            return _inside(root, parts, subfolder)
        root.mkdir(parents=True, exist_ok=True)
        return root

    async def _fetch(
        self, job: JobRecord, video: dict[str, Any], folder: Path, name: str, *, explicit: bool, overwrite: bool,
        progress: DownloadProgress | None, part: tuple[int, int],
    ) -> SavedVideo:  # fmt: skip
        url, video_uuid = video["video_url"], video["video_uuid"]
        label = f"video {part[0] + 1} of {part[1]}" if part[1] > 1 else "the video"
        tmp, fd = temporary_beside(folder, name)
        try:
            with os.fdopen(fd, "wb") as out:
                size = await self._stream(job, url, out, label, progress)
                await anyio.to_thread.run_sync(lambda: (out.flush(), os.fsync(out.fileno())))
            final = await anyio.to_thread.run_sync(_place, tmp, folder, name, explicit, overwrite)
        finally:
            tmp.unlink(missing_ok=True)
        await anyio.to_thread.run_sync(self.ledger.download_put, job.task_uuid, video_uuid, str(final), size)
        return SavedVideo(video_uuid, final, size, _CONTAINERS[final.suffix.lstrip(".").lower()], already_downloaded=False)

    async def _stream(self, job: JobRecord, url: str, out: Any, label: str, progress: DownloadProgress | None) -> int:
        size, head, checked = 0, b"", False
        started = time.monotonic()
        try:
            with anyio.fail_after(self.deadline):
                async with self._http.stream("GET", url) as response:
                    if response.status_code in _GONE:
                        raise _expired(job, response.status_code)
                    if response.status_code >= 400:
                        raise DownloadProblem(
                            "download_failed", f"Downloading {label} failed: the storage answered HTTP {response.status_code}.",
                            next_step="Call download_video again in a minute; the URL may still be valid.",
                        )  # fmt: skip
                    total = int(response.headers.get("Content-Length") or 0) or None
                    # As the bytes come (no fixed chunk size), so a trickle is seen as it trickles.
                    async for chunk in response.aiter_bytes():
                        elapsed = time.monotonic() - started
                        if elapsed > _SLOW_GRACE_S and (size + len(chunk)) / elapsed < self.min_bytes_per_s:
                            raise DownloadProblem(
                                "too_slow", f"The storage sent {label} at under {self.min_bytes_per_s / 1000:g} kB/s; "
                                "stopped.", next_step="Call download_video again in a minute.",
                            )  # fmt: skip
                        if not checked:
                            head += chunk[: HEAD_BYTES - len(head)]
                            if len(head) >= HEAD_BYTES:
                                _require_video(head, label)
                                checked = True
                        size += len(chunk)
                        if size > self.max_bytes:
                            raise DownloadProblem("too_large", f"{label} is over {self.max_bytes / 1e9:g} GB; stopped.")
                        await anyio.to_thread.run_sync(out.write, chunk)
                        if progress is not None:
                            await progress(size, total or 0, f"Downloading {label}: {size / 1e6:.1f} MB")
                    if not checked:
                        _require_video(head, label)
                    if total is not None and size != total:
                        raise DownloadProblem("incomplete", f"The download of {label} ended early ({size} of {total} bytes).",
                                              next_step="Call download_video again.")  # fmt: skip
        except TimeoutError:
            raise DownloadProblem("timeout", f"Downloading {label} took longer than {self.deadline:g} s; stopped.",
                                  next_step="Call download_video again.") from None  # fmt: skip
        except httpx.TimeoutException:
            raise DownloadProblem("timeout", f"The storage stopped sending {label}.",
                                  next_step="Call download_video again.") from None  # fmt: skip
        except httpx.TransportError as exc:
            raise DownloadProblem("network", f"The connection broke while downloading {label} ({type(exc).__name__}).",
                                  next_step="Check the network and call download_video again.") from None  # fmt: skip
        return size


def _inside(root: Path, parts: tuple[str, ...], subfolder: str) -> Path:
    """The subfolder's real path, made one level at a time below the real output folder. Each level is
    resolved (symlinks included) and checked before the next is made, so no folder is ever created
    outside the output folder, even through a symlink that points out of it."""
    root.mkdir(parents=True, exist_ok=True)
    folder = root
    for part in parts:
        target = folder / part
        if not os.path.lexists(target):
            try:
                os.mkdir(target)
            except FileExistsError:
                pass  # made by someone else meanwhile: checked below like any other
        real = Path(os.path.realpath(target))
        if not real.is_relative_to(root):
            raise DownloadProblem("bad_subfolder", f"subfolder '{subfolder}' leads outside the output folder {root} "
                                  f"(through '{part}'); nothing was created there.", output_dir=str(root),
                                  next_step="Use another subfolder.")  # fmt: skip
        if not real.is_dir():
            raise DownloadProblem("bad_subfolder", f"'{part}' in subfolder '{subfolder}' is not a folder.",
                                  output_dir=str(root), next_step="Use another subfolder.")  # fmt: skip
        folder = real
    return folder


def _require_video(head: bytes, label: str) -> None:
    found = sniff(head)
    if found is None or found.kind != "video":
        raise DownloadProblem(
            "not_a_video", f"The URL of {label} did not return a video (its content is "
            f"{found.label if found else 'no video format'}); nothing was saved.",
            next_step="Check the job with get_video_status; if it persists, the result may be corrupt.",
        )  # fmt: skip


def _expired(job: JobRecord, status: int) -> DownloadProblem:
    ttl = job.payload.get("ttl")
    when = ""
    if isinstance(ttl, int) and job.finished_at:
        when = f" This job asked for ttl={ttl} s, so its URLs lapsed around {_local(job.finished_at + ttl)}."
    estimate = job.estimate or {}
    cost = job.cost_usd if job.cost_usd is not None else estimate.get("total_usd")
    again = f" (billed again, about ${cost:.2f})" if isinstance(cost, int | float) else " (billed again)"
    return DownloadProblem(
        "url_expired",
        f"The video's URL no longer works (HTTP {status}): Runware keeps result files only for a limited time.{when} "
        "This video cannot be downloaded any more.",
        expired=True,
        next_step=f"To get it again, submit the same request again{again}: get_video_status shows the job's payload "
        "with every setting. Download soon after a job ends, or set a longer ttl.",
    )  # fmt: skip


def _place(tmp: Path, folder: Path, name: str, explicit: bool, overwrite: bool) -> Path:
    """Give the finished temporary file its name, never replacing a file unless asked to. A
    default name that is taken gets a numbered suffix instead."""
    stem, suffix = os.path.splitext(name)
    for attempt in range(1, 1000):
        final = folder / (name if attempt == 1 else f"{stem}-{attempt}{suffix}")
        if overwrite:
            os.replace(tmp, final)
            return final
        if _claim(tmp, final):
            return final
        if explicit:
            raise DownloadProblem(
                "file_exists", f"{final} already exists; it was not replaced.", path=str(final),
                next_step="Pass another filename, or overwrite=true to replace it.",
            )  # fmt: skip
    raise DownloadProblem("file_exists", f"Too many files named like {name} in {folder}.", next_step="Pass a filename.")


def _claim(tmp: Path, final: Path) -> bool:
    """Move ``tmp`` to ``final`` unless that name is taken (False). With hard links this is one
    atomic step, so there is no moment in which an existing file could be clobbered."""
    try:
        os.link(tmp, final)
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links: claim the name, then move onto it
        try:
            os.close(os.open(final, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            return False
        os.replace(tmp, final)
        return True
    tmp.unlink()
    return True


def _checked_name(filename: str) -> str:
    name = filename.strip()
    if not _SAFE_NAME.match(name) or name.startswith(".") or name in ("..", "."):
        raise DownloadProblem(
            "bad_filename", f"filename '{filename}' must be a plain file name: no folders, not hidden, at most 120 characters.",
            next_step="Pass a name such as 'fox-in-snow' (the extension is added), or put folders in subfolder.",
        )  # fmt: skip
    return name


def _with_extension(stem: str, extension: str, index: int | None) -> str:
    base, dot_ext = os.path.splitext(stem)
    if dot_ext.lower().lstrip(".") in _CONTAINERS:
        if dot_ext.lower().lstrip(".") != extension:
            raise DownloadProblem(
                "bad_filename", f"filename '{stem}' ends in {dot_ext}, but the video is {extension.upper()}.",
                next_step=f"Name it '{base}.{extension}', or leave the extension off.",
            )  # fmt: skip
        stem = base
    return f"{stem}{'' if index is None else f'-{index + 1}'}.{extension}"


def _default_name(job: JobRecord, extension: str, index: int | None) -> str:
    payload = job.payload
    prompt = payload.get("positivePrompt")
    if not isinstance(prompt, str):
        shots = (payload.get("providerSettings") or {}).get("klingai", {}).get("multiPrompt") or [{}]
        prompt = str(shots[0].get("prompt", ""))
    slug = "-".join(_WORD.findall(prompt.lower())[:6])[:48].strip("-") or "video"
    day = datetime.fromtimestamp(job.created_at or time.time()).strftime("%Y-%m-%d")
    return f"{day}_{slug}_{job.task_uuid[:8]}{'' if index is None else f'-{index + 1}'}.{extension}"


def _extension(url: str, payload: dict[str, Any]) -> str:
    suffix = Path(urlsplit(url).path).suffix.lower().lstrip(".")
    if suffix in _CONTAINERS:
        return suffix
    return _FORMATS.get(str(payload.get("outputFormat", "MP4")).upper(), "mp4")


def _still_there(record: dict[str, Any]) -> bool:
    try:
        return os.stat(record["path"]).st_size == record["size"]
    except OSError:
        return False


def _local(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M %Z")

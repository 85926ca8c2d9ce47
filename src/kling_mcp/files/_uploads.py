"""Local media to Runware media UUIDs: each content uploaded once per account, then reused."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio

from ..ledger import Ledger
from ..runware import RunwareClient
from ._sandbox import LocalFile

# Runware deletes stored media 30 days after its last use; an upload older than this since
# its last use is sent again rather than trusted.
REUSE_WITHIN_S = 25 * 24 * 3600

UploadProgress = Callable[[int, int], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class StoredMedia:
    local: LocalFile
    media_uuid: str
    media_url: str | None
    reused: bool  # True: an earlier upload of the same bytes was used, nothing was sent


class MediaUploads:
    def __init__(self, client: RunwareClient, ledger: Ledger) -> None:
        self.client = client
        self.ledger = ledger
        self._locks: dict[str, anyio.Lock] = {}
        self.uploads_sent = 0

    async def store(self, local: LocalFile, progress: UploadProgress | None = None) -> StoredMedia:
        """The media UUID for a checked local file, uploading it only if this account has not got
        the same bytes already. Concurrent calls for the same content upload it once."""
        account = self.client.account
        lock = self._locks.setdefault(local.sha256, anyio.Lock())
        async with lock:
            known = await anyio.to_thread.run_sync(
                lambda: self.ledger.upload_get(local.sha256, account, fresher_than=time.time() - REUSE_WITHIN_S)
            )
            if known is not None:
                await anyio.to_thread.run_sync(self.ledger.upload_used, local.sha256, account)
                return StoredMedia(local, known["media_uuid"], known["media_url"], reused=True)
            media_uuid, media_url = await self.client.upload_file(
                local.open, local.media_type.mime, local.size, progress
            )
            self.uploads_sent += 1
            await anyio.to_thread.run_sync(
                lambda: self.ledger.upload_put(
                    sha256=local.sha256, account=account, kind=local.media_type.kind, mime=local.media_type.mime,
                    media_uuid=media_uuid, media_url=media_url, size=local.size, source=str(local.path),
                )
            )  # fmt: skip
            return StoredMedia(local, media_uuid, media_url, reused=False)

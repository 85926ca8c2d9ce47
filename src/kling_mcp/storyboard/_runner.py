"""Makes storyboards: sends each planned clip when it may go, chains continuing clips from the last
frame of the clip before, and assembles the finished clips into one file.

Everything it does is derived from the ledger (a clip's job and its status) and from files it
wrote, so it picks up where it was after a restart or a ``kill -9`` at any point. A planned
clip leaves only through the job service's one-way promotion of its planned job, so no clip is
ever sent twice, whichever process (or how many) runs the storyboard.

Of several instances sharing a ledger, one makes each storyboard, under a lease renewed every tick;
another takes it over once that one stops (at once if it shut down cleanly, or was a process of the
same host). So frames are taken and clips joined once. A save names the version it was read at, and
is refused if a tool call (a retry, a cancel) saved the storyboard meanwhile: the next tick starts
from that.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ..files import DownloadProblem, FileRefused, MediaUploads, Sandbox, VideoDownloads
from ..ledger import JobRecord, Ledger, UnavailableLedger
from ..payload import VideoRequest
from ..service import Refusal, VideoService
from ._plan import CONTINUITY_FRAME
from ._records import ACTIVE, ClipState, StoryboardRecord
from ._service import StoryboardService

log = logging.getLogger("kling_mcp.storyboard")

_FAILED = ("failed", "rejected", "cancelled", "stalled")
_SLUG = re.compile(r"[^a-z0-9]+")


class StoryboardRunner:
    def __init__(
        self,
        boards: StoryboardService,
        videos: VideoService,
        ledger: Ledger,
        uploads: MediaUploads,
        downloads: VideoDownloads,
        sandbox: Sandbox,
        *,
        tick_s: float = 1.0,
    ) -> None:
        self.boards, self.videos, self.ledger = boards, videos, ledger
        self.uploads, self.downloads, self.sandbox = uploads, downloads, sandbox
        self.tick_s = tick_s
        self._busy: set[str] = set()

    async def start(self, task_group: TaskGroup) -> None:
        task_group.start_soon(self._loop)

    async def _loop(self) -> None:
        if isinstance(self.ledger, UnavailableLedger):
            return  # no storyboards can be read; the tools say why
        jobs = self.videos.jobs
        async with anyio.create_task_group() as steps:
            while True:
                if not jobs.client.has_key:
                    await anyio.sleep(self.tick_s * 5)
                    continue
                try:
                    mine = await anyio.to_thread.run_sync(
                        lambda: self.ledger.claim_storyboards(jobs.instance_id, lease_s=jobs.lease_s)
                    )
                    for data in mine:
                        # Each in a task of its own: a long assembly holds up neither the others nor the heartbeat.
                        if data["id"] not in self._busy:
                            steps.start_soon(self._advance_logged, StoryboardRecord.from_json(data))
                except Exception:  # the ledger's trouble must not stop the runner
                    log.exception("Reading storyboards failed; will try again")
                with anyio.move_on_after(self.tick_s):
                    await self.boards.wake.wait()
                self.boards.wake = anyio.Event()

    async def _advance_logged(self, record: StoryboardRecord) -> None:
        try:
            await self.advance(record)
        except Exception:  # one storyboard's trouble must not stop the others
            log.exception("Advancing storyboard %s failed; will try again", record.id)

    async def advance(self, record: StoryboardRecord) -> None:
        """One step for every clip that can take one; then, once all are made, the assembly."""
        if record.id in self._busy or record.status not in ACTIVE:
            return
        self._busy.add(record.id)
        try:
            await self._advance(record)
        finally:
            self._busy.discard(record.id)

    async def _advance(self, record: StoryboardRecord) -> None:
        jobs = {c.index: await self._job(c) for c in record.clips}
        changed = False
        for clip in record.clips:
            job = jobs[clip.index]
            if job is None or job.status != "planned" or clip.problem is not None:
                continue
            if clip.continues:
                before = jobs.get(clip.index - 1)
                if before is None or before.status != "success":
                    continue  # waits for its predecessor (or for that one's retry)
                media = await self._continuity_frame(record, clip, before)
                if media is None:
                    changed = True
                    continue
                request = VideoRequest.model_validate(clip.request | {"first_frame": media})
            else:
                request = VideoRequest.model_validate(clip.request)
            changed |= await self._send(record, clip, request)
            jobs[clip.index] = await self._job(clip)
        statuses = [j.status if j is not None else "missing" for j in jobs.values()]
        if all(s == "success" for s in statuses):
            if record.assemble and record.output is None:
                await self._assemble(record, jobs)
            else:
                record.status, record.finished_at = "done", time.time()
            changed = True
        else:
            stuck = any(s in _FAILED for s in statuses) or any(c.problem for c in record.clips)
            status = "blocked" if stuck else "running"
            if status != record.status:
                record.status, changed = status, True
        if changed and not await self.boards.save(record, if_unchanged=True):
            log.info("Storyboard %s was changed meanwhile; its next step starts from that", record.id)

    async def _job(self, clip: ClipState) -> JobRecord | None:
        return await anyio.to_thread.run_sync(self.ledger.get, clip.task_uuid)

    async def _send(self, record: StoryboardRecord, clip: ClipState, request: VideoRequest) -> bool:
        checked = await self.videos.check_request(clip.tool, request, self.sandbox, check_costs=False,
                                                  task_uuid=clip.task_uuid)  # fmt: skip
        if not checked.ok:
            clip.problem = {"error": "constraint_violations", "violations": [v.to_dict() for v in checked.violations]}
            return True
        outcome = await self.videos.submit(checked, planned=True)
        if isinstance(outcome, Refusal):
            clip.problem = {"error": outcome.kind, "message": outcome.message}
            log.warning("Storyboard %s clip %d was not sent: %s", record.id, clip.index, outcome.message)
            return True
        log.debug("Storyboard %s: clip %d sent as %s", record.id, clip.index, clip.task_uuid)
        return False

    async def _continuity_frame(self, record: StoryboardRecord, clip: ClipState, before: JobRecord) -> str | None:
        """The previous clip's last frame, as a media UUID the next clip can start on."""
        from ..video import VideoError, extract_frame

        folder = _folder(record)
        try:
            source = await self._save_clip(record, before, clip.index - 1)
            png = self.downloads.output_dir / folder / f"clip-{clip.index:02d}-first-frame.png"
            await anyio.to_thread.run_sync(lambda: extract_frame(source, "last", png))
            local = await anyio.to_thread.run_sync(self.sandbox.check, str(png), "image")
            stored = await self.uploads.store(local)
        except (DownloadProblem, VideoError, FileRefused) as exc:
            clip.problem = {"error": "continuity_frame", "message": f"The last frame of clip {clip.index - 1} could "
                            f"not be taken: {getattr(exc, 'message', exc)}"}  # fmt: skip
            return None
        clip.first_frame_png = str(png)
        return stored.media_uuid

    async def _save_clip(self, record: StoryboardRecord, job: JobRecord, index: int) -> Path:
        saved = await self.downloads.save(job, filename=f"clip-{index:02d}", subfolder=_folder(record))
        path = saved[0].path
        record.clips[index].video = str(path)
        return path

    async def _assemble(self, record: StoryboardRecord, jobs: dict[int, JobRecord | None]) -> None:
        from ..video import VideoError, contact_sheet, join

        record.status = "assembling"
        if not await self.boards.save(record, if_unchanged=True):
            return  # cancelled, or taken over, meanwhile
        try:
            paths = [await self._save_clip(record, job, index) for index, job in jobs.items() if job is not None]
            name = _folder(record)
            output = self.downloads.output_dir / f"{name}.mp4"
            sheet = self.downloads.output_dir / name / "contact-sheet.png"
            joined = await anyio.to_thread.run_sync(lambda: join(paths, output))
            await anyio.to_thread.run_sync(lambda: contact_sheet(paths, sheet))
        except (DownloadProblem, VideoError) as exc:
            record.status = "blocked"
            record.problem = {"error": "assembly", "message": str(getattr(exc, "message", exc)),
                              "next_step": "The clips are made and paid for; call get_storyboard to see them, "
                              "or assemble_videos with their task_ids."}  # fmt: skip
            return
        record.output, record.contact_sheet = str(joined.path), str(sheet)
        record.assembly = _assembly_view(joined)
        record.status, record.finished_at = "done", time.time()


def _folder(record: StoryboardRecord) -> str:
    slug = _SLUG.sub("-", record.title.lower()).strip("-")[:40] or "storyboard"
    return f"storyboard-{slug}-{record.id[:8]}"


def _assembly_view(joined: Any) -> dict[str, Any]:
    return {"duration_s": round(joined.duration_s, 3), "width": joined.width, "height": joined.height,
            "reencoded": joined.reencoded, "reason": joined.reason}  # fmt: skip


__all__ = ["CONTINUITY_FRAME", "StoryboardRunner"]

"""The MCP tools for whole videos: storyboards, frames and joins. Thin: parse, call the core, format."""

from __future__ import annotations

import base64
import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ImageContent, ResourceLink, TextContent
from pydantic import BaseModel, Field

from .files import DownloadProblem, FileRefused, local_path
from .ledger import TERMINAL
from .state import AppState
from .arguments import parse_arguments
from .service import Checked, Refusal
from .storyboard import ACTIVE, ClipState, StoryboardArgs, StoryboardCheck, StoryboardRecord
from .tool_args import WAIT_DEFAULT_S, WAIT_MAX_S, ModelId, _Strict
from .tools import (
    GENERATE,
    READ_ONLY,
    SAVE,
    _error,
    _names_local_file,
    _parsed,
    _refused,
    _usd,
    flat_tool,
    invalid_arguments,
    paid_tool,
)

# -- arguments and results -----------------------------------------------------------------------


class GetStoryboardArgs(_Strict):
    """A storyboard's clips (status, cost), progress, final file and contact sheet; waits up to wait_seconds."""

    storyboard_id: str = Field(min_length=1, max_length=64)
    wait_seconds: float = Field(WAIT_DEFAULT_S, ge=0, le=WAIT_MAX_S, description="0: answer at once.")


class ClipChanges(_Strict):
    """What to change in the clip before it is made again."""

    prompt: str | None = Field(None, min_length=2, max_length=2500)
    duration: int | None = Field(None, ge=3, le=15)
    model: ModelId | None = None
    negative_prompt: str | None = Field(None, min_length=2, max_length=2500)


class UpdateStoryboardArgs(_Strict):
    """retry_clip: make a failed clip again (optionally changed, confirmed again); its chain goes on. cancel: clips
    not yet sent are dropped, their reservation released."""

    storyboard_id: str = Field(min_length=1, max_length=64)
    action: Literal["retry_clip", "cancel"]
    clip: int | None = Field(None, ge=0, le=99, description="The clip to retry (from 0).")
    changes: ClipChanges | None = None
    max_cost_usd: float | None = Field(None, gt=0, le=10_000, description="USD ceiling for the retry.")


class ExtractFrameArgs(_Strict):
    """A frame of a job's video or a local video as a PNG (path usable as first_frame), with a thumbnail."""

    task_id: str | None = Field(None, min_length=1, max_length=64)
    video: str | None = Field(None, min_length=1, max_length=4096, description="A local video file instead.")
    at: Literal["first", "last"] | float = Field("last", description="'first', 'last' or seconds from the start.")
    filename: str | None = Field(None, min_length=1, max_length=200, description="PNG name, no folders.")


class AssembleArgs(_Strict):
    """Join jobs' videos and/or local clips, in order, into one file (re-encoded to one size if they differ)."""

    items: list[Annotated[str, Field(min_length=1, max_length=4096)]] = Field(
        min_length=1, max_length=50, description="task_id values and/or local video paths, in order."
    )
    filename: str | None = Field(None, min_length=1, max_length=200, description="File name, no folders.")


class StoryboardResult(BaseModel):
    storyboard_id: str | None  # None for a dry run: nothing was created
    status: str
    done: bool
    next_step: str


class FrameResult(BaseModel):
    path: str
    width: int
    height: int
    time_s: float
    next_step: str


class AssembleResult(BaseModel):
    path: str
    duration_s: float
    width: int
    height: int
    size_bytes: int
    reencoded: bool
    reason: str | None
    next_step: str


# -- storyboards ----------------------------------------------------------------------------------


async def _check_storyboard(state: AppState, arguments: dict[str, Any], sandbox: Any) -> StoryboardCheck:
    return await state.storyboards.check(arguments, sandbox)


def _storyboard_question(plan: StoryboardCheck) -> str:
    assert plan.args is not None
    seconds = plan.plan_view()["total_seconds"]
    return (f"Make the storyboard '{plan.args.title}' ({len(plan.clips)} clips, {seconds} s in all)? Estimated "
            f"total: ${_usd(plan.total)}" + (" (simulated: nothing is paid)" if plan.budget and plan.budget.simulated
                                             else "") + ".")  # fmt: skip


async def _create_storyboard(ctx: Context, plan: StoryboardCheck) -> Any:
    state: AppState = ctx.request_context.lifespan_context
    if plan.dry_run:
        body = {"storyboard_id": None, "status": "dry_run", "done": True, "plan": plan.plan_view(),
                "next_step": "Nothing was submitted. Show the user the clips and the total; once they agree, call "
                "create_storyboard again with the same arguments and dry_run false"
                + (f" (the total is above ${plan.confirm_above_usd:.2f}: the user is asked to confirm, or pass "
                   f"max_cost_usd: {_usd(plan.total)} once they agreed)" if plan.needs_confirmation else "") + "."}  # fmt: skip
        return _answer(body)
    created = await state.storyboards.create(plan)
    if not isinstance(created, StoryboardRecord):
        return _refused(created)
    return _answer(await _storyboard_view(state, created))


async def get_storyboard(ctx: Context, arguments: Any) -> Any:
    args = _parsed(GetStoryboardArgs, arguments, "get_storyboard")
    if isinstance(args, CallToolResult):
        return args
    state: AppState = ctx.request_context.lifespan_context
    deadline = time.monotonic() + args.wait_seconds
    while True:
        record = await state.storyboards.get(args.storyboard_id)
        if record is None:
            return _error("unknown_storyboard", f"No storyboard {args.storyboard_id} is recorded here.",
                          fix="Use the storyboard_id create_storyboard returned.")  # fmt: skip
        view = await _storyboard_view(state, record)
        if record.status not in ("running", "assembling") or time.monotonic() >= deadline:
            return _answer(view)
        progress = view["progress"]
        await ctx.report_progress(progress["percent"], 100, f"{record.status}: {progress['clips_done']} of "
                                  f"{progress['clips']} clips made")  # fmt: skip
        with anyio.move_on_after(min(1.0, max(0.0, deadline - time.monotonic()))):
            await anyio.sleep_forever()


class _UpdatePlan:
    """What update_storyboard will do, checked before the user is asked: a retry carries the clip's
    checked request (its cost is confirmed like any other); a cancel costs nothing."""

    dry_run = False

    def __init__(self, record: StoryboardRecord | None = None, clip: ClipState | None = None,
                 checked: Checked | None = None, refused: Refusal | None = None) -> None:  # fmt: skip
        self.record, self.clip, self.checked, self.refused = record, clip, checked, refused

    def __getattr__(self, name: str) -> Any:  # cost, confirm_above_usd, estimate_view... of the retried clip
        return getattr(self.checked, name)

    @property
    def ok(self) -> bool:
        return self.refused is None and (self.checked is None or self.checked.ok)

    @property
    def needs_confirmation(self) -> bool:
        return self.checked is not None and self.checked.needs_confirmation

    def refusal(self) -> Refusal | None:
        return self.refused or (self.checked.refusal() if self.checked is not None else None)


async def _check_update(state: AppState, arguments: dict[str, Any], sandbox: Any) -> _UpdatePlan:
    parsed = parse_arguments(UpdateStoryboardArgs, arguments)
    if parsed.args is None:
        return _UpdatePlan(refused=invalid_arguments(parsed, "update_storyboard"))
    args = parsed.args
    record = await state.storyboards.get(args.storyboard_id)
    if record is None:
        return _UpdatePlan(refused=Refusal("unknown_storyboard", f"No storyboard {args.storyboard_id} is recorded "
                                           "here.", {"fix": "Use the storyboard_id create_storyboard returned."}))  # fmt: skip
    if args.action == "cancel":
        return _UpdatePlan(record)
    if args.clip is None:
        return _UpdatePlan(refused=Refusal("invalid_arguments", "retry_clip needs the clip to retry.", {"violations": [{
            "field": "clip", "rule": "required", "message": "retry_clip needs 'clip'.",
            "fix": "Set 'clip' to the number of the failed clip (get_storyboard lists them)."}]}))  # fmt: skip
    changes = args.changes.model_dump(exclude_none=True) if args.changes else None
    max_cost = Decimal(str(args.max_cost_usd)) if args.max_cost_usd is not None else None
    checked = await state.storyboards.check_retry(record, args.clip, changes, sandbox, max_cost)
    if isinstance(checked, Refusal):
        return _UpdatePlan(record, refused=checked)
    return _UpdatePlan(record, checked[0], checked[1])


def _update_question(plan: _UpdatePlan) -> str:
    assert plan.record is not None and plan.clip is not None
    return f"Make clip {plan.clip.index} of '{plan.record.title}' again? Estimated cost: ${_usd(plan.cost)}."


async def _update_storyboard(ctx: Context, plan: _UpdatePlan) -> Any:
    state: AppState = ctx.request_context.lifespan_context
    assert plan.record is not None
    if plan.checked is None:
        return _answer(await _storyboard_view(state, await state.storyboards.cancel(plan.record)))
    assert plan.clip is not None
    retried = await state.storyboards.retry(plan.record, plan.clip, plan.checked)
    if not isinstance(retried, StoryboardRecord):
        return _refused(retried)
    return _answer(await _storyboard_view(state, retried))


async def _storyboard_view(state: AppState, record: StoryboardRecord) -> dict[str, Any]:
    clips, done, cost = [], 0, 0.0
    for clip in record.clips:
        job = await anyio.to_thread.run_sync(state.ledger.get, clip.task_uuid)
        status = job.status if job is not None else "missing"
        done += status == "success"
        cost += job.cost_usd or 0.0 if job is not None else 0.0
        view: dict[str, Any] = {"clip": clip.index, "status": status, "task_id": clip.task_uuid,
                                "continues_from_previous": clip.continues, "estimate_usd": clip.estimate.get("total_usd"),
                                "cost_usd": job.cost_usd if job is not None else None}  # fmt: skip
        if clip.video:
            view["video"] = clip.video
        if clip.first_frame_png:
            view["first_frame_png"] = clip.first_frame_png
        if clip.problem or (job is not None and job.status in ("failed", "rejected", "stalled")):
            view["problem"] = clip.problem or {"errors": job.errors if job is not None else []}
        if clip.earlier_task_uuids:
            view["earlier_task_ids"] = clip.earlier_task_uuids
        clips.append(view)
    total = len(record.clips)
    percent = 100 if record.status == "done" else int(95 * done / total) if total else 0
    body: dict[str, Any] = {
        "storyboard_id": record.id, "title": record.title, "status": record.status,
        "done": record.status not in ACTIVE,
        "progress": {"clips_done": done, "clips": total, "percent": percent},
        "clips": clips, "total_estimate_usd": record.total_usd, "cost_usd": round(cost, 6),
    }  # fmt: skip
    if record.output:
        body["output"] = {"path": record.output, "uri": Path(record.output).as_uri(), **(record.assembly or {})}
        body["contact_sheet"] = record.contact_sheet
    if record.problem:
        body["problem"] = record.problem
    body["next_step"] = _storyboard_next_step(record, clips)
    return body


def _storyboard_next_step(record: StoryboardRecord, clips: list[dict[str, Any]]) -> str:
    match record.status:
        case "done":
            return (f"Done: the video is {record.output}" if record.output else "Done: every clip is made") + (
                "; the contact sheet shows frames of each clip." if record.contact_sheet else ".")  # fmt: skip
        case "cancelled":
            return "Cancelled: nothing more will be sent. Clips already made stay in the output folder."
        case "blocked":
            failed = [c["clip"] for c in clips if "problem" in c]
            return (f"Clip(s) {failed} failed; the clips after them wait. Retry with update_storyboard "
                    f"(action retry_clip, clip {failed[0] if failed else 0}, optional changes), or cancel."
                    if failed else "Assembly failed; see problem.")  # fmt: skip
        case _:
            return f"Being made. Call get_storyboard with storyboard_id {record.id} (it waits up to {WAIT_DEFAULT_S:g} s)."


# -- frames and joins ---------------------------------------------------------------------------------


async def extract_frame(ctx: Context, arguments: Any) -> Any:
    args = _parsed(ExtractFrameArgs, arguments, "extract_frame")
    if isinstance(args, CallToolResult):
        return args
    if (args.task_id is None) == (args.video is None):
        return _error("invalid_arguments", "Give exactly one of task_id and video.", violations=[{
            "field": "task_id/video", "rule": "exactly_one", "message": "Give exactly one of task_id and video.",
            "fix": "Set 'task_id' to a finished job's id, or 'video' to a local video path."}])  # fmt: skip
    state: AppState = ctx.request_context.lifespan_context
    source = await _video_file(state, args.task_id, args.video)
    if isinstance(source, CallToolResult):
        return source
    from .video import VideoError
    from .video import extract_frame as extract
    from .video import thumbnail_png

    stem = (args.filename or f"{source.stem}-{args.at if isinstance(args.at, str) else f'{args.at:g}s'}-frame")
    if "/" in stem or "\\" in stem or stem.startswith("."):
        return _error("invalid_arguments", "filename is a name, not a path.", violations=[{
            "field": "filename", "rule": "format", "message": "filename may not hold folders or start with '.'.",
            "fix": "Use a plain name such as 'hero-frame'."}])  # fmt: skip
    target = state.downloads.output_dir / "frames" / (stem.removesuffix(".png") + ".png")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        frame = await anyio.to_thread.run_sync(lambda: extract(source, args.at, target))
        thumb = await anyio.to_thread.run_sync(lambda: thumbnail_png(frame.path))
    except VideoError as exc:
        return _video_error(exc)
    except OSError as exc:
        return _error("output_folder", f"The frame could not be written: {exc.strerror}.",
                      fix="Check that the output folder (KLING_MCP_OUTPUT_DIR) is writable.")  # fmt: skip
    result = FrameResult(path=str(frame.path), width=frame.width, height=frame.height, time_s=round(frame.time_s, 3),
                         next_step="Pass path as first_frame (image_to_video) to continue from this frame.")  # fmt: skip
    body = result.model_dump(mode="json")
    return CallToolResult(content=[
        TextContent(type="text", text=json.dumps(body, indent=1)),
        ImageContent(type="image", data=base64.b64encode(thumb).decode(), mime_type="image/png"),
        ResourceLink(type="resource_link", uri=frame.path.as_uri(), name=frame.path.name, mime_type="image/png"),
    ], structured_content=body)  # fmt: skip


async def assemble_videos(ctx: Context, arguments: Any) -> Any:
    args = _parsed(AssembleArgs, arguments, "assemble_videos")
    if isinstance(args, CallToolResult):
        return args
    state: AppState = ctx.request_context.lifespan_context
    paths: list[Path] = []
    for item in args.items:
        is_path = local_path(item) is not None
        source = await _video_file(state, None if is_path else item, item if is_path else None)
        if isinstance(source, CallToolResult):
            return source
        paths.append(source)
    from .video import VideoError, join

    name = args.filename or f"assembled-{time.strftime('%Y%m%d-%H%M%S')}"
    if "/" in name or "\\" in name or name.startswith("."):
        return _error("invalid_arguments", "filename is a name, not a path.", violations=[{
            "field": "filename", "rule": "format", "message": "filename may not hold folders or start with '.'.",
            "fix": "Use a plain name such as 'trailer'."}])  # fmt: skip
    target = state.downloads.output_dir / (name.removesuffix(".mp4") + ".mp4")
    if target.exists():
        return _error("file_exists", f"{target} exists already; nothing was written.", fix="Choose another filename.")
    def progress(share: float) -> None:  # called from the worker thread the join runs in
        anyio.from_thread.run(ctx.report_progress, round(100 * share, 1), 100, f"Joining {len(paths)} clips")

    try:
        joined = await anyio.to_thread.run_sync(lambda: join(paths, target, on_progress=progress))
    except VideoError as exc:
        return _video_error(exc)
    result = AssembleResult(
        path=str(joined.path), duration_s=round(joined.duration_s, 3), width=joined.width, height=joined.height,
        size_bytes=joined.path.stat().st_size, reencoded=joined.reencoded, reason=joined.reason,
        next_step="The file is ready for the user" + (f" (re-encoded: {joined.reason})" if joined.reencoded else "") + ".",
    )  # fmt: skip
    body = result.model_dump(mode="json")
    link = ResourceLink(type="resource_link", uri=joined.path.as_uri(), name=joined.path.name, mime_type="video/mp4")
    return CallToolResult(content=[TextContent(type="text", text=json.dumps(body, indent=1)), link],
                          structured_content=body)  # fmt: skip


async def _video_file(state: AppState, task_id: str | None, video: str | None) -> Path | CallToolResult:
    """A finished job's (first) video, saved if it was not yet, or a local video inside the roots."""
    if task_id is not None:
        record = (await state.jobs.refresh([task_id])).get(task_id)
        if record is None:
            return _error("unknown_task_id", f"No job with task_id {task_id} is recorded here.",
                          fix="Use a task_id a video tool returned.")  # fmt: skip
        if record.status not in TERMINAL:
            return _error("not_finished", f"Job {task_id} is {record.status}.",
                          fix=f"Call wait_for_video with task_id {task_id} first.")  # fmt: skip
        try:
            saved = await state.downloads.save(record)
        except DownloadProblem as exc:
            return _error(exc.kind, exc.message, task_id=task_id, **exc.extra)
        return saved[0].path
    assert video is not None
    try:
        local = await anyio.to_thread.run_sync(state.sandbox.check, video, "video")
    except FileRefused as exc:
        return _error("local_files_refused", exc.message, violations=[{
            "field": "video", "rule": exc.reason, "message": exc.message, "fix": exc.fix, "value": video}])  # fmt: skip
    return local.path


def _video_error(exc: Any) -> CallToolResult:
    fixes = {"bad_argument": "Use 'first', 'last', or a time inside the clip.",
             "write_failed": "Check that the output folder (KLING_MCP_OUTPUT_DIR) is writable and has room."}  # fmt: skip
    return _error("video_error", str(exc), reason=exc.reason,
                  fix=fixes.get(exc.reason, "Use a video kling-mcp can read (MP4, MOV, WEBM)."))  # fmt: skip


def _answer(body: dict[str, Any]) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=json.dumps(body, indent=1))], structured_content=body)


def storyboard_tools() -> list[Any]:
    def local_in_clips(arguments: dict[str, Any]) -> bool:
        return _names_local_file(arguments.get("clips"))

    handler, resolved = paid_tool("create_storyboard", local_in_clips, _check_storyboard, _storyboard_question,
                                  _create_storyboard)  # fmt: skip
    update, update_resolved = paid_tool("update_storyboard", lambda _: False, _check_update, _update_question,
                                        _update_storyboard)  # fmt: skip
    return [
        flat_tool("create_storyboard", StoryboardArgs, handler, StoryboardResult, GENERATE, "Make a multi-clip video",
                  resolved=resolved),
        flat_tool("get_storyboard", GetStoryboardArgs, get_storyboard, StoryboardResult, READ_ONLY, "Storyboard status"),
        flat_tool("update_storyboard", UpdateStoryboardArgs, update, StoryboardResult, GENERATE,
                  "Retry a clip or cancel a storyboard", resolved=update_resolved),
        flat_tool("extract_frame", ExtractFrameArgs, extract_frame, FrameResult, SAVE, "Extract a frame as PNG"),
        flat_tool("assemble_videos", AssembleArgs, assemble_videos, AssembleResult, SAVE, "Join videos into one file"),
    ]  # fmt: skip


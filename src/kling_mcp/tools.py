"""The MCP tools: parse the arguments, call the core, format the answer. Nothing else lives here."""

from __future__ import annotations

import inspect
import json
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context, ListRoots, Resolve
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, ListRootsResult, ResourceLink, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field
from pydantic import Field as PydanticField

from .catalog import MODELS, describe, get_model
from .constraints import Violation
from .core import PreparedRequest, prepare
from .files import DownloadProblem, FileRefused, LocalFile, Sandbox, local_path
from .jobs import MissingApiKey
from .ledger import TERMINAL, JobRecord, LedgerUnavailable, SpendCapExceeded
from .payload import MediaInput, media_inputs, with_media
from .runware import RunwareError
from .state import AppState
from .tool_args import (
    DownloadArgs,
    DownloadResult,
    EditVideoArgs,
    ImageToVideoArgs,
    Job,
    ModelsResult,
    SavedFile,
    StatusArgs,
    StatusResult,
    TextToVideoArgs,
    UploadMediaArgs,
    UploadResult,
    WaitArgs,
    WaitResult,
)

log = logging.getLogger("kling_mcp.tools")

GENERATE = ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=True)
READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=True)
LOCAL_READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False)
UPLOAD = ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=True, openWorldHint=True)
# Writes files, but never replaces one unless asked to (overwrite), hence not destructive by default.
SAVE = ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=True, openWorldHint=True)


class ListModelsArgs(BaseModel):
    """The Kling models with everything needed to plan within their limits: capabilities, aspect ratios and pixel
    sizes, duration rules, input limits, settings, and per-second prices."""

    model_config = ConfigDict(extra="forbid")
    model: str | None = PydanticField(None, description="Only this model (id or alias such as 'o3-pro').")
    include_rules: bool = PydanticField(
        False, description="Also give each page's cross-field rules verbatim, with the reading kling-mcp takes."
    )


class Confirm(BaseModel):
    """The user's answer to a cost confirmation."""

    confirm: bool = Field(description="Submit and pay for this video?")


# -- answers -----------------------------------------------------------------------------------


def _error(kind: str, message: str, **extra: Any) -> CallToolResult:
    body = {"error": kind, "message": message, **extra}
    return CallToolResult(is_error=True, structured_content=body, content=[TextContent(type="text", text=json.dumps(body, indent=1))])


def _violations(
    prepared: PreparedRequest, refused: list[tuple[MediaInput, FileRefused]] = (), sandbox: Sandbox | None = None  # type: ignore[assignment]
) -> CallToolResult:
    problems = prepared.violations + [_file_violation(m, exc) for m, exc in refused]
    lines = "\n".join(f"- {v}" for v in problems)
    nothing = "nothing was uploaded or submitted" if sandbox is not None else "nothing was submitted"
    message = (
        f"{len(problems)} problem(s) with this request for {prepared.payload.get('model')}; {nothing}, and nothing "
        f"was spent. Fix them all and call again:\n{lines}"
    )
    extra = _sandbox_facts(sandbox) if refused and sandbox is not None else {}
    return _error("constraint_violations" if prepared.violations else "local_files_refused", message,
                  violations=[v.to_dict() for v in problems],
                  estimate=prepared.estimate.to_dict() if prepared.estimate else None, **extra)  # fmt: skip


def _job_view(record: JobRecord, **extra: Any) -> dict[str, Any]:
    view = record.to_dict()
    # The poller's bookkeeping on per-result failures is not for agents.
    view["errors"] = [{k: v for k, v in e.items() if k not in ("result_failure", "result_key")} for e in view["errors"]]
    view["done"] = record.status in TERMINAL
    view["next_step"] = _next_step(record)
    view.update(extra)
    return view


def _next_step(record: JobRecord) -> str:
    match record.status:
        case "success":
            return "Done. Save the videos as files with download_video (the result URLs expire)."
        case "partial":
            return ("Some videos succeeded (results; save them with download_video), some failed (errors). "
                    "Resubmit for more variations if needed.")  # fmt: skip
        case "failed":
            return "The job failed; see errors[].next_step. Nothing more will happen for this task_id."
        case "rejected":
            return "Runware did not take the job and nothing was charged; see errors[].next_step."
        case "unknown":
            return (f"The submission's fate is being established from Runware's own record; it is sent again only "
                    f"if that shows it never arrived, so that it is not paid for twice. Call get_video_status with task_id "
                    f"{record.task_uuid} in a little while.")  # fmt: skip
        case "stalled":
            return (f"No final answer from Runware for a long time, so kling-mcp stopped polling; the job still counts "
                    f"against the spend caps at its estimate. Call get_video_status with task_id {record.task_uuid} "
                    "later (it is looked up again on request); if it never ends, ask Runware support with the task_id.")  # fmt: skip
        case _:
            return f"Rendering. Call wait_for_video with task_id {record.task_uuid} (Kling takes 30-90 s)."


# -- handlers -----------------------------------------------------------------------------------


async def _generate(
    tool: str, args: TextToVideoArgs | ImageToVideoArgs | EditVideoArgs, ctx: Context, client_roots: ListRootsResult | None
) -> Any:
    state: AppState = ctx.request_context.lifespan_context
    prepared = prepare(args.to_request(), local_files=True)
    extra = _tool_level_violations(args)
    if extra:
        prepared = PreparedRequest(prepared.request, prepared.payload, prepared.violations + extra, prepared.estimate)
    # Local files are checked even when the request breaks a rule, so every problem comes back at once.
    # The checks read nothing outside the allowed roots and send nothing.
    local = [m for m in media_inputs(prepared.payload) if local_path(m.value) is not None]
    sandbox = _sandbox(state, client_roots)
    checked: list[tuple[MediaInput, LocalFile]] = []
    refused: list[tuple[MediaInput, FileRefused]] = []
    if local:
        checked, refused = await anyio.to_thread.run_sync(_check_local, sandbox, local)
    if not prepared.ok or refused:
        return _violations(prepared, refused, sandbox if local else None)
    assert prepared.estimate is not None
    estimate = prepared.estimate.to_dict()
    if checked:
        source = next((f for m, f in checked if m.path == ("inputs", "video")), None)
        if source is not None and source.seconds and prepared.request.source_duration is None:
            # The clip's own header gives its length: the edit is priced exactly, not at the reserve.
            prepared = prepared.priced_for_source(max(1, math.ceil(source.seconds)))
            assert prepared.estimate is not None
            estimate = prepared.estimate.to_dict()
    if args.dry_run:
        return Job(
            task_id=prepared.payload["taskUUID"], status="dry_run", done=True, model=prepared.payload["model"],
            tool=tool, estimate=estimate, payload=prepared.payload,
            local_files=[_local_view(m, f, None) for m, f in checked],
            next_step="Dry run: nothing was submitted" + (" and no file uploaded (local files are checked and "
            "uploaded on submit)" if checked else "") + ". Call again without dry_run to submit this exact request.",
        )  # fmt: skip
    if not state.jobs.client.has_key:
        return _error("missing_api_key", str(MissingApiKey()))
    try:
        await state.jobs.check_caps(prepared)
    except SpendCapExceeded as exc:
        return _spend_cap(exc)
    declined = await _confirm_cost(ctx, state, prepared)
    if declined is not None:
        return declined
    uses: list[dict[str, Any]] = []
    if checked:
        try:
            replacements, uses = await _upload_local(ctx, state, checked)
        except FileRefused as exc:
            return _error("local_file_changed", f"{exc.message} Nothing was submitted.", fix=exc.fix)
        except RunwareError as exc:
            return _runware_error(exc, "Uploading a local file failed, so nothing was submitted: ")
        prepared = PreparedRequest(prepared.request, with_media(prepared.payload, replacements), [], prepared.estimate)
    try:
        record = await state.jobs.submit(prepared, tool)
    except SpendCapExceeded as exc:
        return _spend_cap(exc)
    except RunwareError as exc:
        return _runware_error(exc)
    view = Job.model_validate(_job_view(record, local_files=uses))
    if record.status == "rejected":
        return _error("rejected_by_runware", view.next_step, job=view.model_dump(mode="json"))
    return view


def _runware_error(exc: RunwareError, prefix: str = "") -> CallToolResult:
    details = exc.to_dict()
    details.pop("message")
    return _error(exc.category, prefix + str(exc), **details)


def _spend_cap(exc: SpendCapExceeded) -> CallToolResult:
    return _error("spend_cap", str(exc), cap=exc.cap_name, cap_usd=float(exc.cap),
                  committed_usd=float(exc.committed), request_usd=float(exc.request_cost))  # fmt: skip


# -- local files ----------------------------------------------------------------------------------


def _sandbox(state: AppState, client_roots: ListRootsResult | None) -> Sandbox:
    if client_roots is None:
        return state.sandbox
    return state.sandbox.narrowed([str(root.uri) for root in client_roots.roots])


def _check_local(
    sandbox: Sandbox, local: list[MediaInput]
) -> tuple[list[tuple[MediaInput, LocalFile]], list[tuple[MediaInput, FileRefused]]]:
    """Every local file checked, and every refusal, so that all come back at once."""
    checked, refused = [], []
    for item in local:
        try:
            checked.append((item, sandbox.check(item.value, item.kind)))
        except FileRefused as exc:
            refused.append((item, exc))
    return checked, refused


def _file_violation(item: MediaInput, exc: FileRefused) -> Violation:
    return Violation(field=item.argument, rule=exc.reason, message=exc.message, fix=exc.fix, value=item.value)


def _sandbox_facts(sandbox: Sandbox) -> dict[str, Any]:
    return {"allowed_roots": sandbox.describe(),
            "size_limits_mb": {k: getattr(sandbox.limits, k) / 1e6 for k in ("image", "video", "audio")}}  # fmt: skip


async def _upload_local(
    ctx: Context, state: AppState, checked: list[tuple[MediaInput, LocalFile]]
) -> tuple[dict[tuple[str | int, ...], str], list[dict[str, Any]]]:
    replacements: dict[tuple[str | int, ...], str] = {}
    uses = []
    for item, local in checked:
        stored = await state.uploads.store(local, _upload_progress(ctx, f"Uploading {item.argument}"))
        replacements[item.path] = stored.media_uuid
        uses.append(_local_view(item, local, stored.media_uuid, uploaded=not stored.reused))
    return replacements, uses


def _upload_progress(ctx: Context, label: str) -> Callable[[int, int], Awaitable[None]]:
    async def progress(sent: int, total: int) -> None:
        await ctx.report_progress(sent, total, f"{label}: {sent / 1e6:.1f} of {total / 1e6:.1f} MB")

    return progress


def _local_view(item: MediaInput, local: LocalFile, media_uuid: str | None, uploaded: bool | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {"argument": item.argument, "path": str(local.path), "format": local.media_type.label,
                            "size_bytes": local.size}  # fmt: skip
    if local.seconds is not None:
        view["seconds"] = round(local.seconds, 3)
    if media_uuid is not None:
        view |= {"media_uuid": media_uuid, "uploaded": bool(uploaded)}
    return view


def _tool_level_violations(args: BaseModel) -> list[Violation]:
    if isinstance(args, ImageToVideoArgs) and args.first_frame is None and args.last_frame is None:
        return [Violation("first_frame", "required", "image_to_video needs an image to animate.",
                          "Set 'first_frame' (or 'last_frame') to an image, or use text_to_video.")]  # fmt: skip
    return []


async def _confirm_cost(ctx: Context, state: AppState, prepared: PreparedRequest) -> CallToolResult | None:
    """Ask the user to confirm a costly submission, when the client can be asked."""
    assert prepared.estimate is not None
    cost = prepared.estimate.total if prepared.estimate.total is not None else prepared.estimate.reserve
    if cost <= state.settings.confirm_above_usd:
        return None
    caps = ctx.client_capabilities
    if not (caps and caps.elicitation and ctx.session.can_send_request):
        return None  # the spend caps still apply
    spec = get_model(prepared.payload["model"])
    what = f"{spec.name if spec else prepared.payload['model']}, {prepared.estimate.seconds or '?'} s"
    answer = await ctx.elicit(
        f"Submit this video ({what}, {prepared.estimate.number_results} result(s))? Estimated cost: ${cost:.3f}.",
        Confirm,
    )
    if getattr(answer, "action", None) == "accept" and getattr(answer.data, "confirm", False):  # type: ignore[attr-defined]
        return None
    return _error("not_confirmed", f"The user did not confirm the ${cost:.3f} cost; nothing was submitted.")


async def text_to_video(args: TextToVideoArgs, ctx: Context, client_roots: ListRootsResult | None = None) -> Any:
    return await _generate("text_to_video", args, ctx, client_roots)


async def image_to_video(args: ImageToVideoArgs, ctx: Context, client_roots: ListRootsResult | None = None) -> Any:
    return await _generate("image_to_video", args, ctx, client_roots)


async def edit_video(args: EditVideoArgs, ctx: Context, client_roots: ListRootsResult | None = None) -> Any:
    return await _generate("edit_video", args, ctx, client_roots)


async def upload_media(args: UploadMediaArgs, ctx: Context, client_roots: ListRootsResult | None = None) -> Any:
    state: AppState = ctx.request_context.lifespan_context
    sandbox = _sandbox(state, client_roots)
    if local_path(args.path) is None:
        return _error("not_a_local_path", f"'{args.path[:120]}' is not a local file path.",
                      fix=f"Pass the file's absolute path (or ~/..., or file://...), inside one of: "
                      f"{', '.join(sandbox.describe()) or 'none'}. URLs and UUIDs go straight into the video tools' "
                      "media arguments; they need no upload.", **_sandbox_facts(sandbox))  # fmt: skip
    try:
        local = await anyio.to_thread.run_sync(sandbox.check, args.path, args.kind)
    except FileRefused as exc:
        problem = _file_violation(MediaInput((), "path", args.path, args.kind or "image"), exc)
        return _error("local_files_refused", f"The file was refused and nothing was uploaded: {problem}",
                      violations=[problem.to_dict()], **_sandbox_facts(sandbox))  # fmt: skip
    if not state.jobs.client.has_key:
        return _error("missing_api_key", str(MissingApiKey()))

    try:
        stored = await state.uploads.store(local, _upload_progress(ctx, "Uploading"))
    except FileRefused as exc:
        return _error("local_file_changed", exc.message, fix=exc.fix)
    except RunwareError as exc:
        return _runware_error(exc, "The upload failed: ")
    kind = local.media_type.kind
    return UploadResult(
        media_uuid=stored.media_uuid, media_url=stored.media_url, kind=kind, format=local.media_type.label,
        size_bytes=local.size, sha256=local.sha256, path=str(local.path), uploaded=not stored.reused,
        next_step=f"Pass media_uuid in any {kind} argument of the video tools."
        + ("" if stored.reused is False else " (The same content was uploaded before; nothing was sent.)"),
    )  # fmt: skip


async def download_video(args: DownloadArgs, ctx: Context) -> Any:
    state: AppState = ctx.request_context.lifespan_context
    record = (await state.jobs.refresh([args.task_id])).get(args.task_id)
    if record is None:
        return _error("unknown_task_id", f"No job with task_id {args.task_id} is recorded here.",
                      fix="Use a task_id a video tool returned; get_video_status lists what it knows.")  # fmt: skip

    async def progress(done: float, total: float, message: str) -> None:
        await ctx.report_progress(done, total or None, message)

    try:
        saved = await state.downloads.save(
            record, filename=args.filename, subfolder=args.subfolder, overwrite=args.overwrite, progress=progress
        )
    except DownloadProblem as exc:
        return _error(exc.kind, exc.message, task_id=args.task_id, **exc.extra)
    files = [
        SavedFile(video_uuid=v.video_uuid, path=str(v.path), uri=v.path.as_uri(), size_bytes=v.size,
                  mime_type=v.mime_type, already_downloaded=v.already_downloaded)  # fmt: skip
        for v in saved
    ]
    result = DownloadResult(
        task_id=args.task_id, output_dir=str(state.downloads.output_dir), files=files,
        next_step="Saved. The paths can be passed back as `video` to edit_video, or opened by the user.",
    )  # fmt: skip
    body = result.model_dump(mode="json")
    links = [
        ResourceLink(type="resource_link", uri=v.path.as_uri(), name=v.path.name, mime_type=v.mime_type, size=v.size)
        for v in saved
    ]
    return CallToolResult(content=[TextContent(type="text", text=json.dumps(body, indent=1)), *links],
                          structured_content=body)  # fmt: skip


async def get_video_status(args: StatusArgs, ctx: Context) -> StatusResult:
    state: AppState = ctx.request_context.lifespan_context
    jobs = await state.jobs.refresh(list(dict.fromkeys(args.task_ids)))
    return StatusResult(
        jobs=[Job.model_validate(_job_view(j)) for j in jobs.values() if j is not None],
        unknown_task_ids=[u for u, j in jobs.items() if j is None],
    )


async def wait_for_video(args: WaitArgs, ctx: Context) -> Any:
    state: AppState = ctx.request_context.lifespan_context

    async def progress(done: float, total: float, message: str) -> None:
        await ctx.report_progress(done, total, message)

    timeout = min(args.timeout_seconds, state.settings.max_wait_s)
    record, ended = await state.jobs.wait(args.task_id, timeout, progress)
    if record is None:
        return _error("unknown_task_id", f"No job with task_id {args.task_id} is recorded here. Use the task_id a "
                      "video tool returned; get_video_status lists what it knows.")  # fmt: skip
    return WaitResult.model_validate(_job_view(record, timed_out=not ended))


async def list_models(args: ListModelsArgs, ctx: Context) -> Any:
    specs = MODELS
    if args.model is not None:
        spec = get_model(args.model)
        if spec is None:
            return _error("unknown_model", f"No model '{args.model}'. Known: {', '.join(m.id for m in MODELS)}.")
        specs = (spec,)
    return ModelsResult(models=[describe(s, with_readings=args.include_rules) for s in specs])


# -- registration: flat, strict argument schemas from the argument models ------------------------

Handler = Callable[..., Awaitable[Any]]


def flat_tool(
    name: str,
    args_model: type[BaseModel],
    handler: Handler,
    returns: type,
    annotations: ToolAnnotations,
    title: str,
    *,
    media_args: tuple[str, ...] = (),
) -> Tool:
    """A tool whose arguments are the fields of ``args_model`` at the top level, with
    ``additionalProperties: false`` there too (the SDK leaves the top level open by default).

    With ``media_args``, the handler also gets the MCP client's roots as ``client_roots`` when
    one of those arguments names a local file (None otherwise, or when the client has no roots)."""
    params = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)]
    hints: dict[str, Any] = {"ctx": Context, "return": returns}
    if media_args:
        roots_hint = Annotated[ListRootsResult | None, Resolve(_roots_resolver(name, media_args))]
        params.append(inspect.Parameter("client_roots", inspect.Parameter.KEYWORD_ONLY, annotation=roots_hint))
        hints["client_roots"] = roots_hint
    own = set(args_model.__annotations__)  # the tool's own arguments first, shared options after
    fields = sorted(args_model.model_fields.items(), key=lambda item: item[0] not in own)
    for field_name, info in fields:
        hint = Annotated[info.annotation, info]  # type: ignore[name-defined]
        default = inspect.Parameter.empty if info.is_required() else info.get_default(call_default_factory=True)
        params.append(inspect.Parameter(field_name, inspect.Parameter.KEYWORD_ONLY, annotation=hint, default=default))
        hints[field_name] = hint

    async def call(ctx: Context, **arguments: Any) -> Any:
        try:
            if media_args:
                roots = arguments.pop("client_roots", None)
                return await handler(args_model.model_validate(arguments), ctx, client_roots=roots)
            return await handler(args_model.model_validate(arguments), ctx)
        except LedgerUnavailable as exc:
            return _error("ledger_unavailable", str(exc), **exc.to_dict())

    call.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
    call.__annotations__ = hints
    call.__name__ = name
    tool = Tool.from_function(call, name=name, title=title, description=inspect.cleandoc(args_model.__doc__ or ""),
                              annotations=annotations)  # fmt: skip
    arg_model = tool.fn_metadata.arg_model
    arg_model.model_config["extra"] = "forbid"
    arg_model.model_rebuild(force=True)
    tool.parameters = compact_schema(arg_model.model_json_schema(by_alias=True), drop_null=True)
    if tool.fn_metadata.output_schema is not None:
        tool.fn_metadata.output_schema = compact_schema(tool.fn_metadata.output_schema, drop_null=False)
    return tool


def _roots_resolver(tool: str, media_args: tuple[str, ...]) -> Callable[..., Awaitable[Any]]:
    """A resolver that asks the client for its roots only when it has some and a local path is in
    play: no round trip otherwise. The SDK passes it the named tool arguments."""

    async def resolver(ctx: Context, **values: Any) -> ListRoots | ListRootsResult | None:
        caps = ctx.client_capabilities
        if caps is None or caps.roots is None or not any(_names_local_file(v) for v in values.values()):
            return None
        return ListRoots()

    resolver.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)]
        + [inspect.Parameter(a, inspect.Parameter.KEYWORD_ONLY, default=None) for a in media_args]
    )
    resolver.__annotations__ = {"ctx": Context, "return": ListRoots | ListRootsResult | None}
    resolver.__name__ = resolver.__qualname__ = f"client_roots_for_{tool}"
    return resolver


def _names_local_file(value: Any) -> bool:
    if isinstance(value, str):
        return local_path(value) is not None
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, dict):
        return any(_names_local_file(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_names_local_file(v) for v in value)
    return False


def compact_schema(schema: Any, *, drop_null: bool) -> Any:
    """A JSON schema without what costs an agent's context and says nothing: pydantic's generated
    titles, null defaults, and open-object markers. Inputs (``drop_null``) also lose the null branch
    of optional arguments, since leaving an argument out is how to say "none"; outputs keep it, as a
    short type list, because results are validated against it."""
    if isinstance(schema, list):
        return [compact_schema(s, drop_null=drop_null) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if (key == "title" and isinstance(value, str)) or (key == "additionalProperties" and value is True):
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: compact_schema(v, drop_null=drop_null) for name, v in value.items()}
        else:
            out[key] = compact_schema(value, drop_null=drop_null)
    if "default" in out and out["default"] is None:
        del out["default"]
    branches = out.get("anyOf")
    if isinstance(branches, list) and {"type": "null"} in branches:
        rest = [b for b in branches if b != {"type": "null"}]
        if drop_null or (len(rest) == 1 and set(rest[0]) == {"type"} and isinstance(rest[0]["type"], str)):
            del out["anyOf"]
            if len(rest) == 1:
                kept = dict(rest[0])
                if not drop_null:
                    kept["type"] = [kept["type"], "null"]
                out = kept | out
            else:
                out["anyOf"] = rest
    return out


def all_tools() -> list[Tool]:
    return [
        flat_tool("list_models", ListModelsArgs, list_models, ModelsResult, LOCAL_READ_ONLY, "List Kling models"),
        flat_tool("text_to_video", TextToVideoArgs, text_to_video, Job, GENERATE, "Text to video",
                  media_args=("reference_images", "reference_videos", "elements")),
        flat_tool("image_to_video", ImageToVideoArgs, image_to_video, Job, GENERATE, "Image to video",
                  media_args=("first_frame", "last_frame", "reference_images", "elements")),
        flat_tool("edit_video", EditVideoArgs, edit_video, Job, GENERATE, "Edit a video",
                  media_args=("video", "reference_images")),
        flat_tool("get_video_status", StatusArgs, get_video_status, StatusResult, READ_ONLY, "Video job status"),
        flat_tool("wait_for_video", WaitArgs, wait_for_video, WaitResult, READ_ONLY, "Wait for a video job"),
        flat_tool("upload_media", UploadMediaArgs, upload_media, UploadResult, UPLOAD, "Upload a local media file",
                  media_args=("path",)),
        flat_tool("download_video", DownloadArgs, download_video, DownloadResult, SAVE, "Save a job's videos to files"),
    ]


__all__ = ["all_tools", "flat_tool"]

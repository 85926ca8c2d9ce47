"""The MCP tools: parse the arguments, call the core, format the answer. Nothing else lives here."""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field
from pydantic import Field as PydanticField

from .catalog import MODELS, describe, get_model
from .constraints import Violation
from .core import PreparedRequest, prepare
from .jobs import MissingApiKey
from .ledger import TERMINAL, JobRecord, SpendCapExceeded
from .runware import RunwareError
from .state import AppState
from .tool_args import (
    EditVideoArgs,
    ImageToVideoArgs,
    Job,
    ModelsResult,
    StatusArgs,
    StatusResult,
    TextToVideoArgs,
    WaitArgs,
    WaitResult,
)

log = logging.getLogger("kling_mcp.tools")

GENERATE = ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=True)
READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=True)
LOCAL_READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False)


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


def _violations(prepared: PreparedRequest) -> CallToolResult:
    items = [v.to_dict() for v in prepared.violations]
    lines = "\n".join(f"- {v}" for v in prepared.violations)
    message = (
        f"{len(items)} problem(s) with this request for {prepared.payload.get('model')}; nothing was submitted "
        f"and nothing was spent. Fix them all and call again:\n{lines}"
    )
    return _error("constraint_violations", message, violations=items,
                  estimate=prepared.estimate.to_dict() if prepared.estimate else None)  # fmt: skip


def _job_view(record: JobRecord, **extra: Any) -> dict[str, Any]:
    view = record.to_dict()
    view["done"] = record.status in TERMINAL
    view["next_step"] = _next_step(record)
    view.update(extra)
    return view


def _next_step(record: JobRecord) -> str:
    match record.status:
        case "success":
            return "Done: the videos are at results[].video_url (the URLs expire; download them soon)."
        case "partial":
            return "Some videos succeeded (results), some failed (errors). Resubmit for more variations if needed."
        case "failed":
            return "The job failed; see errors[].next_step. Nothing more will happen for this task_id."
        case "rejected":
            return "Runware did not take the job and nothing was charged; see errors[].next_step."
        case "unknown":
            return (f"The submission's fate is being established; it is never re-sent blindly. Call "
                    f"get_video_status with task_id {record.task_uuid} in a little while.")  # fmt: skip
        case _:
            return f"Rendering. Call wait_for_video with task_id {record.task_uuid} (Kling takes 30-90 s)."


# -- handlers -----------------------------------------------------------------------------------


async def _generate(tool: str, args: TextToVideoArgs | ImageToVideoArgs | EditVideoArgs, ctx: Context) -> Any:
    state: AppState = ctx.request_context.lifespan_context
    prepared = prepare(args.to_request())
    extra = _tool_level_violations(args)
    if extra:
        prepared = PreparedRequest(prepared.request, prepared.payload, prepared.violations + extra, prepared.estimate)
    if not prepared.ok:
        return _violations(prepared)
    assert prepared.estimate is not None
    estimate = prepared.estimate.to_dict()
    if args.dry_run:
        return Job(
            task_id=prepared.payload["taskUUID"], status="dry_run", done=True, model=prepared.payload["model"],
            tool=tool, estimate=estimate, payload=prepared.payload,
            next_step="Dry run: nothing was submitted. Call again without dry_run to submit this exact request.",
        )  # fmt: skip
    if not state.jobs.client.has_key:
        return _error("missing_api_key", str(MissingApiKey()))
    declined = await _confirm_cost(ctx, state, prepared)
    if declined is not None:
        return declined
    try:
        record = await state.jobs.submit(prepared, tool)
    except SpendCapExceeded as exc:
        return _error("spend_cap", str(exc), cap=exc.cap_name, cap_usd=float(exc.cap),
                      committed_usd=float(exc.committed), request_usd=float(exc.request_cost))  # fmt: skip
    except RunwareError as exc:
        return _error(exc.category, str(exc), **exc.to_dict())
    view = Job.model_validate(_job_view(record))
    if record.status == "rejected":
        return _error("rejected_by_runware", view.next_step, job=view.model_dump(mode="json"))
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


async def text_to_video(args: TextToVideoArgs, ctx: Context) -> Any:
    return await _generate("text_to_video", args, ctx)


async def image_to_video(args: ImageToVideoArgs, ctx: Context) -> Any:
    return await _generate("image_to_video", args, ctx)


async def edit_video(args: EditVideoArgs, ctx: Context) -> Any:
    return await _generate("edit_video", args, ctx)


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

Handler = Callable[[Any, Context], Awaitable[Any]]


def flat_tool(name: str, args_model: type[BaseModel], handler: Handler, returns: type, annotations: ToolAnnotations, title: str) -> Tool:
    """A tool whose arguments are the fields of ``args_model`` at the top level, with
    ``additionalProperties: false`` there too (the SDK leaves the top level open by default)."""
    params = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)]
    hints: dict[str, Any] = {"ctx": Context, "return": returns}
    own = set(args_model.__annotations__)  # the tool's own arguments first, shared options after
    fields = sorted(args_model.model_fields.items(), key=lambda item: item[0] not in own)
    for field_name, info in fields:
        hint = Annotated[info.annotation, info]  # type: ignore[name-defined]
        default = inspect.Parameter.empty if info.is_required() else info.get_default(call_default_factory=True)
        params.append(inspect.Parameter(field_name, inspect.Parameter.KEYWORD_ONLY, annotation=hint, default=default))
        hints[field_name] = hint

    async def call(ctx: Context, **arguments: Any) -> Any:
        return await handler(args_model.model_validate(arguments), ctx)

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
        flat_tool("text_to_video", TextToVideoArgs, text_to_video, Job, GENERATE, "Text to video"),
        flat_tool("image_to_video", ImageToVideoArgs, image_to_video, Job, GENERATE, "Image to video"),
        flat_tool("edit_video", EditVideoArgs, edit_video, Job, GENERATE, "Edit a video"),
        flat_tool("get_video_status", StatusArgs, get_video_status, StatusResult, READ_ONLY, "Video job status"),
        flat_tool("wait_for_video", WaitArgs, wait_for_video, WaitResult, READ_ONLY, "Wait for a video job"),
    ]


__all__ = ["all_tools", "flat_tool"]

"""The MCP tools: parse the arguments, call the core, format the answer. Nothing else lives here."""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any, TypeVar

import anyio
from mcp.server.elicitation import AcceptedElicitation, CancelledElicitation, DeclinedElicitation, ElicitationResult
from mcp.server.mcpserver import Context, Elicit, ListRoots, Resolve
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata
from mcp.types import CallToolResult, ListRootsResult, ResourceLink, TextContent, ToolAnnotations
from mcp_types.version import is_version_at_least
from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic import Field as PydanticField

from .arguments import ParsedArguments, closest, parse_arguments
from .catalog import MODELS, describe, get_model
from .constraints import Violation
from .files import DownloadProblem, FileRefused, LocalFile, Sandbox, local_path
from .jobs import MissingApiKey
from .ledger import TERMINAL, JobRecord, LedgerUnavailable
from .payload import MediaInput
from .runware import RunwareError
from .service import Checked, Consent, Refusal, sandbox_facts
from .state import AppState
from .tool_args import (
    MODEL_CHOICES,
    WAIT_DEFAULT_S,
    DownloadArgs,
    DownloadResult,
    EditVideoArgs,
    ImageToVideoArgs,
    Job,
    ModelsResult,
    SavedFile,
    SpendingArgs,
    SpendingResult,
    StatusArgs,
    StatusResult,
    TextToVideoArgs,
    UploadMediaArgs,
    UploadResult,
    WaitArgs,
    WaitResult,
)

A = TypeVar("A", bound=BaseModel)

log = logging.getLogger("kling_mcp.tools")

# Only what differs from the spec's defaults (readOnly false, destructive true, idempotent false, openWorld
# true) is stated: every listing carries these, and the defaults mean the same when left out.
GENERATE = ToolAnnotations(destructiveHint=False)
READ_ONLY = ToolAnnotations(readOnlyHint=True)
LOCAL_READ_ONLY = ToolAnnotations(readOnlyHint=True, openWorldHint=False)
UPLOAD = ToolAnnotations(destructiveHint=False, idempotentHint=True)
# Writes files, but never replaces one unless asked to (overwrite), hence not destructive by default.
SAVE = ToolAnnotations(destructiveHint=False, idempotentHint=True)


class ListModelsArgs(BaseModel):
    """The Kling models: capabilities, sizes, durations, input limits, settings and prices."""

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


def _ledger_refusal(exc: LedgerUnavailable) -> Refusal:
    return Refusal("ledger_unavailable", str(exc), exc.to_dict())


class _LedgerDown:
    """The plan of a call made while the ledger cannot be used: refused, with the ledger's one line."""

    ok = dry_run = needs_confirmation = False

    def __init__(self, exc: LedgerUnavailable) -> None:
        self.exc = exc

    def refusal(self) -> Refusal:
        return _ledger_refusal(self.exc)


def _refused(refusal: Refusal) -> CallToolResult:
    return _error(refusal.kind, refusal.message, **refusal.details)


def invalid_arguments(parsed: ParsedArguments[Any], tool: str) -> Refusal:
    problems = "\n".join(f"- {v}" for v in parsed.violations)
    return Refusal("invalid_arguments", f"{len(parsed.violations)} problem(s) with the arguments of {tool}; nothing "
                   f"was done. Fix them all and call again:\n{problems}",
                   {"violations": [v.to_dict() for v in parsed.violations]})  # fmt: skip


def _invalid(parsed: ParsedArguments[Any], tool: str) -> CallToolResult:
    return _refused(invalid_arguments(parsed, tool))


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
        case "planned":
            return ("A storyboard's clip, its cost reserved, waiting for its turn (the clip before it, or a retry); "
                    "get_storyboard follows the storyboard.")  # fmt: skip
        case "cancelled":
            return "A storyboard's clip that was cancelled before it was sent: nothing was charged."
        case "stalled":
            return (f"No final answer from Runware for a long time, so kling-mcp stopped polling; the job still counts "
                    f"against the spend caps at its estimate. Call get_video_status with task_id {record.task_uuid} "
                    "later (it is looked up again on request); if it never ends, ask Runware support with the task_id.")  # fmt: skip
        case _:
            return (f"Rendering (Kling takes 30-90 s). Call wait_for_video with task_id {record.task_uuid}; each "
                    f"call waits up to {WAIT_DEFAULT_S:g} s, so call it again until done is true.")  # fmt: skip


# -- the video tools: one path, through the service -------------------------------------------


async def _generate(ctx: Context, plan: Checked) -> Any:
    state: AppState = ctx.request_context.lifespan_context
    assert plan.prepared is not None
    estimate = plan.estimate_view()
    if plan.dry_run:
        return Job(
            task_id=plan.prepared.payload["taskUUID"], status="dry_run", done=True, model=plan.prepared.payload["model"],
            tool=plan.tool, estimate=estimate, payload=plan.prepared.payload,
            local_files=[_local_view(m, f, None) for m, f in plan.local_files],
            notes=[n.to_dict() for n in plan.prepared.notes], next_step=_dry_run_next_step(plan),
        )  # fmt: skip

    async def progress(argument: str, sent: int, total: int) -> None:
        await ctx.report_progress(sent, total, f"Uploading {argument}: {sent / 1e6:.1f} of {total / 1e6:.1f} MB")

    outcome = await state.videos.submit(plan, progress=progress)
    if isinstance(outcome, Refusal):
        return _refused(outcome)
    uploads = [_local_view(item, stored.local, stored.media_uuid, uploaded=not stored.reused)
               for item, stored in outcome.uploads]  # fmt: skip
    notes = [n.to_dict() for n in plan.prepared.notes]
    view = Job.model_validate(_job_view(outcome.record, local_files=uploads, estimate=estimate, notes=notes))
    if outcome.record.status == "rejected":
        return _error("rejected_by_runware", view.next_step, job=view.model_dump(mode="json"))
    return view


def _dry_run_next_step(plan: Checked) -> str:
    files = " and no file uploaded (local files are uploaded on submit)" if plan.local_files else ""
    step = f"Dry run: nothing was submitted{files}. Call again without dry_run to submit this exact request"
    if plan.needs_confirmation:
        step += (f"; it costs more than ${plan.confirm_above_usd:.2f}, so the user will be asked to confirm (or, if "
                 f"your client cannot ask, show the user the cost and pass max_cost_usd: {_usd(plan.cost)} once they "
                 "agree)")  # fmt: skip
    return step + "."


def unconfirmed(plan: Consent, answer: Any) -> CallToolResult | None:
    """None when the cost is confirmed; else the answer that says it is not, and what to do."""
    cost = _usd(plan.cost)
    if isinstance(answer, AcceptedElicitation) and isinstance(answer.data, Confirm):
        if answer.data.confirm:
            return None
        return _error("not_confirmed", f"The user did not confirm the ${cost} cost; nothing was submitted.")
    if isinstance(answer, DeclinedElicitation | CancelledElicitation):
        return _error("not_confirmed", f"The user declined the ${cost} cost; nothing was submitted.")
    if plan.confirmed_by_ceiling:
        return None
    return _error(
        "needs_confirmation",
        f"This request is estimated at ${cost}, above the ${plan.confirm_above_usd:.2f} confirmation threshold, and "
        "this client cannot ask the user. Nothing was submitted. Show the user the estimate; once they agree, call "
        f"again with the same arguments and max_cost_usd: {cost} (or more).",
        estimate=plan.estimate_view() if hasattr(plan, "estimate_view") else plan.plan_view(),
        max_cost_usd_needed=float(cost), confirm_above_usd=float(plan.confirm_above_usd),
    )  # fmt: skip


def _usd(value: Decimal | None) -> Decimal:
    return (value or Decimal(0)).quantize(Decimal("0.001"), rounding="ROUND_CEILING")


def _local_view(item: MediaInput, local: LocalFile, media_uuid: str | None, uploaded: bool | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {"argument": item.argument, "path": str(local.path), "format": local.media_type.label,
                            "size_bytes": local.size}  # fmt: skip
    if local.seconds is not None:
        view["seconds"] = round(local.seconds, 3)
    if media_uuid is not None:
        view |= {"media_uuid": media_uuid, "uploaded": bool(uploaded)}
    return view


def _can_ask(ctx: Context) -> bool:
    """Whether this client can be asked to confirm, under the protocol it speaks: from 2026-07-28 the
    question rides the tool result (input_required); before, it is a request sent mid-call."""
    caps = ctx.client_capabilities
    elicitation = caps.elicitation if caps is not None else None
    if elicitation is None or (elicitation.form is None and elicitation.url is not None):
        return False
    version = ctx.protocol_version
    if version is not None and is_version_at_least(version, "2026-07-28"):
        return True
    return bool(ctx.session.can_send_request)


def _confirm_question(plan: Checked) -> str:
    """The question, worded from the request alone: it must read the same in every round of a call."""
    assert plan.prepared is not None and plan.estimate is not None
    spec = get_model(plan.prepared.payload["model"])
    estimate = plan.estimate
    what = f"{spec.name if spec else plan.prepared.payload['model']}, {estimate.seconds or '?'} s"
    return (f"Submit this video ({what}, {estimate.number_results} result(s))? Estimated cost: ${_usd(plan.cost)}"
            + (" (simulated: nothing is paid)" if plan.budget.simulated else "") + ".")  # fmt: skip


CheckFn = Callable[[AppState, dict[str, Any], Sandbox], Awaitable[Any]]
BodyFn = Callable[[Context, Any], Awaitable[Any]]


def paid_tool(
    tool: str, has_local_file: Callable[[dict[str, Any]], bool], check: CheckFn, question: Callable[[Any], str],
    body: BodyFn,
) -> tuple[Handler, dict[str, Any]]:
    """The handler of a tool that spends, and its resolvers: the client's roots (asked only when a
    local path is in the call), the checked plan (``check``), and the user's confirmation (asked
    only when the plan needs it and the client can be asked). The SDK runs resolvers before the
    body under both protocol eras: mid-call requests before 2026-07-28, input_required after.
    ``body`` runs only for a plan that was not refused and whose cost is confirmed (or needs no
    confirmation: a dry run, or under the threshold)."""

    async def client_roots(ctx: Context, arguments: Any) -> ListRoots | ListRootsResult | None:
        caps = ctx.client_capabilities
        if caps is None or caps.roots is None or not isinstance(arguments, dict) or not has_local_file(arguments):
            return None
        return ListRoots()

    async def checked(ctx: Context, arguments: Any, roots: Any) -> Any:
        state: AppState = ctx.request_context.lifespan_context
        try:
            return await check(state, arguments if isinstance(arguments, dict) else {}, _sandbox(state, roots))
        except LedgerUnavailable as exc:  # resolvers run before the body: answered here, not as a crash
            return _LedgerDown(exc)

    async def confirmation(ctx: Context, plan: Any) -> Elicit[Confirm] | None:
        if not plan.ok or plan.dry_run or not plan.needs_confirmation or not _can_ask(ctx):
            return None
        return Elicit(question(plan), Confirm)

    # This module's annotations are strings (PEP 563), and these name closures: the SDK reads them
    # with get_type_hints, so they are given as objects.
    roots_hint = Annotated[ListRootsResult | None, Resolve(client_roots)]
    plan_hint = Annotated[Any, Resolve(checked)]
    answer_hint = Annotated[ElicitationResult[Confirm], Resolve(confirmation)]
    client_roots.__annotations__ = {"ctx": Context, "arguments": Any, "return": ListRoots | ListRootsResult | None}
    checked.__annotations__ = {"ctx": Context, "arguments": Any, "roots": roots_hint, "return": Any}
    confirmation.__annotations__ = {"ctx": Context, "plan": plan_hint, "return": Elicit[Confirm] | None}
    for fn in (client_roots, checked, confirmation):
        fn.__qualname__ = f"{tool}.{fn.__name__}"  # a stable, distinct wire key per tool

    async def handler(ctx: Context, arguments: Any, plan: Any, answer: Any) -> Any:
        refusal = plan.refusal()
        if refusal is not None:
            return _refused(refusal)
        if not plan.dry_run and plan.needs_confirmation:
            declined = unconfirmed(plan, answer)
            if declined is not None:
                return declined
        return await body(ctx, plan)

    return handler, {"plan": plan_hint, "answer": answer_hint}


def _video_tool(tool: str, media_args: tuple[str, ...]) -> tuple[Handler, dict[str, Any]]:
    async def check(state: AppState, arguments: dict[str, Any], sandbox: Sandbox) -> Checked:
        return await state.videos.check(tool, arguments, sandbox)

    return paid_tool(tool, lambda args: any(_names_local_file(args.get(a)) for a in media_args), check,
                     _confirm_question, _generate)  # fmt: skip


# -- local files ----------------------------------------------------------------------------------


def _sandbox(state: AppState, client_roots: ListRootsResult | None) -> Sandbox:
    if client_roots is None:
        return state.sandbox
    return state.sandbox.narrowed([str(root.uri) for root in client_roots.roots])


# -- the other tools ----------------------------------------------------------------------------------


def _parsed(model: type[A], arguments: Any, tool: str) -> A | CallToolResult:
    parsed = parse_arguments(model, arguments)
    return parsed.args if parsed.args is not None else _invalid(parsed, tool)


async def upload_media(ctx: Context, arguments: Any, client_roots: ListRootsResult | None = None) -> Any:
    args = _parsed(UploadMediaArgs, arguments, "upload_media")
    if isinstance(args, CallToolResult):
        return args
    state: AppState = ctx.request_context.lifespan_context
    sandbox = _sandbox(state, client_roots)
    if local_path(args.path) is None:
        return _error("not_a_local_path", f"'{args.path[:120]}' is not a local file path.",
                      fix=f"Pass the file's absolute path (or ~/..., or file://...), inside one of: "
                      f"{', '.join(sandbox.describe()) or 'none'}. URLs and UUIDs go straight into the video tools' "
                      "media arguments; they need no upload.", **sandbox_facts(sandbox))  # fmt: skip
    try:
        local = await anyio.to_thread.run_sync(sandbox.check, args.path, args.kind)
    except FileRefused as exc:
        problem = Violation(field="path", rule=exc.reason, message=exc.message, fix=exc.fix, value=args.path)
        return _error("local_files_refused", f"The file was refused and nothing was uploaded: {problem}",
                      violations=[problem.to_dict()], **sandbox_facts(sandbox))  # fmt: skip
    if not state.jobs.client.has_key:
        return _error("missing_api_key", str(MissingApiKey()))

    async def progress(sent: int, total: int) -> None:
        await ctx.report_progress(sent, total, f"Uploading: {sent / 1e6:.1f} of {total / 1e6:.1f} MB")

    try:
        stored = await state.uploads.store(local, progress)
    except FileRefused as exc:
        return _error("local_file_changed", exc.message, fix=exc.fix)
    except RunwareError as exc:
        details = exc.to_dict()
        details.pop("message")
        return _error(exc.category, f"The upload failed: {exc}", **details)
    kind = local.media_type.kind
    return UploadResult(
        media_uuid=stored.media_uuid, media_url=stored.media_url, kind=kind, format=local.media_type.label,
        size_bytes=local.size, sha256=local.sha256, path=str(local.path), uploaded=not stored.reused,
        next_step=f"Pass media_uuid in any {kind} argument of the video tools."
        + ("" if stored.reused is False else " (The same content was uploaded before; nothing was sent.)"),
    )  # fmt: skip


async def download_video(ctx: Context, arguments: Any) -> Any:
    args = _parsed(DownloadArgs, arguments, "download_video")
    if isinstance(args, CallToolResult):
        return args
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


async def get_video_status(ctx: Context, arguments: Any) -> Any:
    args = _parsed(StatusArgs, arguments, "get_video_status")
    if isinstance(args, CallToolResult):
        return args
    state: AppState = ctx.request_context.lifespan_context
    jobs = await state.jobs.refresh(list(dict.fromkeys(args.task_ids)))
    return StatusResult(
        jobs=[Job.model_validate(_job_view(j)) for j in jobs.values() if j is not None],
        unknown_task_ids=[u for u, j in jobs.items() if j is None],
    )


async def wait_for_video(ctx: Context, arguments: Any) -> Any:
    args = _parsed(WaitArgs, arguments, "wait_for_video")
    if isinstance(args, CallToolResult):
        return args
    state: AppState = ctx.request_context.lifespan_context

    async def progress(done: float, total: float, message: str) -> None:
        await ctx.report_progress(done, total, message)

    limit = state.settings.max_wait_s
    timeout = min(args.timeout_seconds, limit)
    record, ended = await state.jobs.wait(args.task_id, timeout, progress)
    if record is None:
        return _error("unknown_task_id", f"No job with task_id {args.task_id} is recorded here.",
                      fix="Use the task_id a video tool returned; get_video_status lists what it knows.")  # fmt: skip
    extra: dict[str, Any] = {"timed_out": not ended, "waited_up_to_seconds": timeout}
    if timeout < args.timeout_seconds:
        extra["note"] = f"Waits are limited to {limit:g} s per call here (KLING_MCP_MAX_WAIT)."
    return WaitResult.model_validate(_job_view(record, **extra))


async def list_models(ctx: Context, arguments: Any) -> Any:
    args = _parsed(ListModelsArgs, arguments, "list_models")
    if isinstance(args, CallToolResult):
        return args
    specs = MODELS
    if args.model is not None:
        spec = get_model(args.model)
        if spec is None:
            guess = closest(args.model, [n for m in MODELS for n in (m.id, *m.aliases)])
            fix = f"Use '{guess}'." if guess else f"Use one of: {', '.join(MODEL_CHOICES)} (or their full ids)."
            return _error("unknown_model", f"No model '{args.model}'. {fix}",
                          violations=[Violation("model", "allowed_values", f"No model '{args.model}'.", fix,
                                                value=args.model, allowed=list(MODEL_CHOICES)).to_dict()])  # fmt: skip
        specs = (spec,)
    return ModelsResult(models=[describe(s, with_readings=args.include_rules) for s in specs])


async def get_spending(ctx: Context, arguments: Any) -> Any:
    args = _parsed(SpendingArgs, arguments, "get_spending")
    if isinstance(args, CallToolResult):
        return args
    state: AppState = ctx.request_context.lifespan_context
    budget = await state.videos.budget()
    day = budget.caps[0].resets_at
    assert day is not None
    since = (day - timedelta(days=1)).timestamp()
    rows = await anyio.to_thread.run_sync(state.ledger.spend_by_model, since)
    simulated = " These are simulated jobs: nothing is paid." if state.simulated else ""
    left = budget.left_usd
    return SpendingResult(
        caps=[c.to_dict() for c in budget.caps], left_usd=None if left is None else float(left),
        today_by_model=[{k: (round(v, 6) if isinstance(v, float) else v) for k, v in r.items()} for r in rows],
        confirm_above_usd=float(state.settings.confirm_above_usd), simulated=state.simulated,
        next_step=("No cap applies" if left is None else f"A new request may reserve up to ${left:.3f} now")
        + f"; a request estimated above ${state.settings.confirm_above_usd:.2f} is confirmed with the user first."
        + simulated,
    )  # fmt: skip


# -- registration: strict schemas shown, arguments checked by kling-mcp ---------------------------

Handler = Callable[..., Awaitable[Any]]


class _RawArguments(FuncMetadata):
    """Hands a tool the call's arguments as sent. The schema the client sees stays strict; the
    checking is kling-mcp's own (arguments.parse_arguments), so a malformed call gets the same
    structured answer as a broken model rule, together with them, instead of the SDK's text."""

    def validate_arguments(self, arguments_to_validate: dict[str, Any]) -> dict[str, Any]:
        return {"arguments": dict(arguments_to_validate or {})}


def flat_tool(
    name: str,
    args_model: type[BaseModel],
    handler: Handler,
    returns: type,
    annotations: ToolAnnotations,
    title: str,
    *,
    resolved: Mapping[str, Any] | None = None,
    description: str | None = None,
) -> Tool:
    """A tool whose advertised arguments are the fields of ``args_model`` at the top level, closed
    (``additionalProperties: false``). The handler gets ``ctx`` and the raw ``arguments``, plus one
    value per ``resolved`` parameter (``Annotated[T, Resolve(...)]``, filled by the SDK's resolvers,
    which may take ``arguments`` by name)."""
    params = [
        inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context),
        inspect.Parameter("arguments", inspect.Parameter.KEYWORD_ONLY, annotation=dict[str, Any] | None, default=None),
    ]
    hints: dict[str, Any] = {"ctx": Context, "arguments": dict[str, Any] | None, "return": returns}
    for param, hint in (resolved or {}).items():
        params.append(inspect.Parameter(param, inspect.Parameter.KEYWORD_ONLY, annotation=hint))
        hints[param] = hint

    async def call(ctx: Context, arguments: dict[str, Any] | None = None, **values: Any) -> Any:
        try:
            return await handler(ctx, arguments or {}, **values)
        except LedgerUnavailable as exc:
            return _refused(_ledger_refusal(exc))

    call.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
    call.__annotations__ = hints
    call.__name__ = name
    tool = Tool.from_function(call, name=name, title=title,
                              description=description or inspect.cleandoc(args_model.__doc__ or ""),
                              annotations=annotations)  # fmt: skip
    tool.fn_metadata = _RawArguments.model_construct(**dict(tool.fn_metadata))
    shown = _advertised_model(args_model)
    tool.parameters = compact_schema(shown.model_json_schema(by_alias=True), drop_null=True)
    if tool.fn_metadata.output_schema is not None:
        tool.fn_metadata.output_schema = _outline(compact_schema(tool.fn_metadata.output_schema, drop_null=False))
    return tool


def _outline(schema: dict[str, Any]) -> dict[str, Any]:
    """An output schema of what every result carries (the required fields). Results carry more
    (results, costs, errors...), which the open schema allows; spelling all of it out in every
    listing would cost an agent's context several KB for fourteen tools."""
    for node in (schema, *schema.get("$defs", {}).values()):
        required = set(node.get("required", []))
        if "properties" in node:
            node["properties"] = {k: v for k, v in node["properties"].items() if k in required}
    if "$defs" in schema:
        used = json.dumps({k: v for k, v in schema.items() if k != "$defs"})
        schema["$defs"] = {k: v for k, v in schema["$defs"].items() if f"#/$defs/{k}" in used}
        if not schema["$defs"]:
            del schema["$defs"]
    return schema


def _advertised_model(args_model: type[BaseModel]) -> type[BaseModel]:
    """The argument model as advertised: its own arguments first, shared options after, closed."""
    own = set(args_model.__annotations__)
    fields = sorted(args_model.model_fields.items(), key=lambda item: item[0] not in own)
    definitions: dict[str, Any] = {name: (info.annotation, info) for name, info in fields}
    return create_model(args_model.__name__, __config__=ConfigDict(extra="forbid"), **definitions)


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
    def video(name: str, args: type[BaseModel], title: str, media_args: tuple[str, ...]) -> Tool:
        handler, resolved = _video_tool(name, media_args)
        return flat_tool(name, args, handler, Job, GENERATE, title, resolved=resolved)

    upload_roots = _video_roots_only("upload_media")
    return [
        flat_tool("list_models", ListModelsArgs, list_models, ModelsResult, LOCAL_READ_ONLY, "List Kling models"),
        video("text_to_video", TextToVideoArgs, "Text to video", ("reference_images", "reference_videos", "elements")),
        video("image_to_video", ImageToVideoArgs, "Image to video",
              ("first_frame", "last_frame", "reference_images", "elements")),
        video("edit_video", EditVideoArgs, "Edit a video", ("video", "reference_images")),
        flat_tool("get_video_status", StatusArgs, get_video_status, StatusResult, READ_ONLY, "Video job status"),
        flat_tool("wait_for_video", WaitArgs, wait_for_video, WaitResult, READ_ONLY, "Wait for a video job"),
        flat_tool("upload_media", UploadMediaArgs, upload_media, UploadResult, UPLOAD, "Upload a local media file",
                  resolved={"client_roots": Annotated[ListRootsResult | None, Resolve(upload_roots)]}),
        flat_tool("download_video", DownloadArgs, download_video, DownloadResult, SAVE, "Save a job's videos to files"),
        flat_tool("get_spending", SpendingArgs, get_spending, SpendingResult, LOCAL_READ_ONLY, "Spending and caps"),
    ]


def _video_roots_only(tool: str) -> Callable[..., Awaitable[Any]]:
    async def client_roots(ctx: Context, arguments: Any) -> ListRoots | ListRootsResult | None:
        caps = ctx.client_capabilities
        if caps is None or caps.roots is None or not isinstance(arguments, dict):
            return None
        return ListRoots() if _names_local_file(arguments.get("path")) else None

    client_roots.__annotations__ = {"ctx": Context, "arguments": Any, "return": ListRoots | ListRootsResult | None}
    client_roots.__qualname__ = f"{tool}.client_roots"
    return client_roots


__all__ = ["all_tools", "flat_tool"]

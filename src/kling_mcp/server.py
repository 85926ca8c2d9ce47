"""The kling-mcp MCP server: tools, resources, prompts and completions on the SDK's MCPServer."""

from __future__ import annotations

import json

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError
from mcp.types import Completion, CompletionArgument, CompletionContext, PromptReference, ResourceTemplateReference

from . import __version__
from .catalog import MODEL_NAMES, MODELS, describe, get_model
from .prompts import register_prompts
from .settings import Settings
from .state import AppState, make_lifespan, simulated_settings
from .storyboard_tools import storyboard_tools
from .tools import all_tools

INSTRUCTIONS = """\
kling-mcp makes videos with the Kling models on Runware. Every request is checked against the model's published
limits before anything is sent: invalid requests come back with every problem and its fix, and cost nothing.
Workflow: list_models to choose; text_to_video / image_to_video / edit_video with dry_run=true to see the exact
request and its cost; submit; then wait_for_video (or get_video_status) with the returned task_id. Jobs take
30-90 s and survive restarts; keep the task_id. Each wait_for_video call waits under 60 s: call it again until
done. Real money is spent on each submission: show the user the estimate first. Save finished videos with
download_video (the result URLs expire)."""

SPENDING = """
Spending: {caps}. Committed spend counts finished jobs at their cost and running ones at their estimate;
get_spending shows what is left. A request estimated above ${confirm} is confirmed with the user: the client is
asked when it can be; otherwise the call returns needs_confirmation, and is repeated with max_cost_usd set to the
amount the user agreed to."""

LOCAL_FILES = """
Local files: any image, video or audio argument also takes an absolute path (or ~/...), uploaded for you once.
Only files in these folders are read (the client's roots may narrow them): {roots}. download_video saves to
{output_dir}."""

ASPECT_RATIOS = ("16:9", "9:16", "1:1")


def _caps(settings: Settings) -> str:
    daily, total = settings.daily_cap_usd, settings.total_cap_usd
    return (f"daily cap ${daily} per UTC day" if daily is not None else "no daily cap") + ", " + (
        f"total cap ${total}" if total is not None else "no total cap")  # fmt: skip


def create_server(settings: Settings | None = None, *, simulate: bool = False) -> MCPServer:
    settings = settings or Settings()
    shown = simulated_settings(settings) if simulate else settings  # the folders the server really uses
    running: list[AppState] = []  # filled by the lifespan, for the static resources (they get no Context)
    server = MCPServer(
        name="kling-mcp",
        title="Kling video (Runware)",
        instructions=INSTRUCTIONS + SPENDING.format(caps=_caps(settings), confirm=settings.confirm_above_usd)
        + LOCAL_FILES.format(roots=", ".join(map(str, shown.read_roots)) or "none", output_dir=shown.output_dir),
        version=__version__,
        tools=all_tools() + storyboard_tools(),
        lifespan=make_lifespan(settings, simulate=simulate, on_start=running.append, on_stop=running.remove),
        log_level="WARNING",
    )

    # The running job service, for the webhook receiver cli.http_app serves beside /mcp.
    server.running_jobs = lambda: running[-1].jobs if running else None  # type: ignore[attr-defined]

    @server.resource("kling://models", name="models", title="Kling model catalog", mime_type="application/json")
    def catalog() -> str:
        """Every model's capabilities, limits, prices and published rules."""
        return json.dumps([describe(m) for m in MODELS], indent=1)

    @server.resource("kling://models/{model_id}", name="model", title="One Kling model", mime_type="application/json")
    def model_spec(model_id: str) -> str:
        """One model's spec, by id or alias (e.g. o3-pro)."""
        spec = get_model(model_id)
        if spec is None:
            raise ResourceNotFoundError(f"No model '{model_id}'. Known: {', '.join(MODEL_NAMES)}")
        return json.dumps(describe(spec), indent=1)

    @server.resource("kling://jobs", name="recent_jobs", title="Recent video jobs", mime_type="application/json")
    async def recent_jobs() -> str:
        """The 20 most recent jobs in this server's ledger."""
        if not running:
            return "[]"
        return json.dumps([j.to_dict() for j in running[-1].ledger.recent(20)], indent=1)

    @server.resource("kling://jobs/{task_id}", name="job", title="One video job", mime_type="application/json")
    async def job(task_id: str, ctx: Context) -> str:
        """One job by task_id, as the ledger has it."""
        state: AppState = ctx.request_context.lifespan_context
        record = state.ledger.get(task_id)
        if record is None:
            raise ResourceNotFoundError(f"No job with task_id {task_id}")
        return json.dumps(record.to_dict(), indent=1)

    @server.resource("kling://storyboards/{storyboard_id}", name="storyboard", title="One storyboard",
                     mime_type="application/json")
    async def storyboard(storyboard_id: str, ctx: Context) -> str:
        """A storyboard: its clips, their jobs, the final file."""
        state: AppState = ctx.request_context.lifespan_context
        record = await state.storyboards.get(storyboard_id)
        if record is None:
            raise ResourceNotFoundError(f"No storyboard {storyboard_id}")
        return json.dumps(record.to_json(), indent=1)

    register_prompts(server)

    @server.completion()
    async def complete(
        ref: PromptReference | ResourceTemplateReference, argument: CompletionArgument, context: CompletionContext | None
    ) -> Completion | None:
        values: list[str] = []
        if argument.name in ("model", "model_id"):
            values = [n for n in MODEL_NAMES if n.startswith(argument.value.lower())]
        elif argument.name == "aspect_ratio":
            values = [a for a in ASPECT_RATIOS if a.startswith(argument.value)]
        elif argument.name == "total_seconds":
            values = [s for s in ("5", "10", "15", "30", "60") if s.startswith(argument.value)]
        return Completion(values=values, total=len(values), has_more=False) if values else None

    return server



"""The one path a paid video request takes, whoever asks: the MCP tools, storyboards, the command line.

``check`` does everything that decides whether a request may be sent, and sends nothing: the
arguments, every model rule, every local file, the price, the spend caps and the caller's own
ceiling, all at once. ``submit`` then uploads the local files and submits. What is MCP's (progress
notifications, the client's roots, asking the user) comes in from the caller.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import anyio
from pydantic import BaseModel, ValidationError

from .arguments import ParsedArguments, parse_arguments
from .budget import Budget, read_budget
from .constraints import Violation
from .core import PreparedRequest, prepare
from .files import FileRefused, LocalFile, MediaUploads, Sandbox, StoredMedia, local_path
from .jobs import Caps, JobService, MissingApiKey
from .ledger import JobRecord, Ledger, SpendCapExceeded
from .payload import MediaInput, VideoRequest, media_inputs, with_media
from .pricing import CostEstimate
from .runware import RunwareError
from .tool_args import EditVideoArgs, ImageToVideoArgs, TextToVideoArgs
from .webhooks import WebhookIssuer

UploadProgress = Callable[[str, int, int], Awaitable[None]]

VIDEO_TOOLS: dict[str, type[TextToVideoArgs | ImageToVideoArgs | EditVideoArgs]] = {
    "text_to_video": TextToVideoArgs,
    "image_to_video": ImageToVideoArgs,
    "edit_video": EditVideoArgs,
}


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request that was not sent, and why: ``kind`` names the main reason, ``details`` the rest."""

    kind: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


class Consent:
    """How a plan's cost stands against the confirmation threshold and the caller's own ceiling;
    a single clip and a whole storyboard follow the same rule."""

    confirm_above_usd: Decimal
    max_cost_usd: Decimal | None

    @property
    def cost(self) -> Decimal | None:
        raise NotImplementedError

    @property
    def needs_confirmation(self) -> bool:
        return self.cost is not None and self.cost > self.confirm_above_usd

    @property
    def confirmed_by_ceiling(self) -> bool:
        """A ``max_cost_usd`` at or above the cost states that the user agreed to that amount."""
        return self.max_cost_usd is not None and self.cost is not None and self.cost <= self.max_cost_usd

    def with_threshold(self, view: dict[str, Any]) -> dict[str, Any]:
        """A cost view that says, when it applies, above what amount the user is asked."""
        if self.needs_confirmation:
            view["needs_confirmation_above_usd"] = float(self.confirm_above_usd)
        return view


@dataclass(slots=True)
class Checked(Consent):
    """A request as checked: sendable when it has no violations (and, above the threshold, once confirmed)."""

    tool: str
    prepared: PreparedRequest | None  # None: the model is not known, so nothing could be built
    request_violations: list[Violation]  # arguments and model rules
    local_files: list[tuple[MediaInput, LocalFile]]
    file_violations: list[Violation]
    budget: Budget
    confirm_above_usd: Decimal
    max_cost_usd: Decimal | None = None
    dry_run: bool = False
    cost_violations: list[Violation] = field(default_factory=list)  # caps and max_cost_usd
    sandbox_facts: dict[str, Any] = field(default_factory=dict)  # where files may come from, when one was refused

    @property
    def violations(self) -> list[Violation]:
        return self.request_violations + self.file_violations + self.cost_violations

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def estimate(self) -> CostEstimate | None:
        return self.prepared.estimate if self.prepared is not None else None

    @property
    def cost(self) -> Decimal | None:
        """What the request may cost: its total, or for an edit of unknown length what is reserved."""
        estimate = self.estimate
        if estimate is None:
            return None
        return estimate.total if estimate.total is not None else estimate.reserve

    def estimate_view(self) -> dict[str, Any] | None:
        """The estimate as an agent sees it, with how it fits what the caps leave."""
        if self.estimate is None or self.cost is None:
            return None
        return self.with_threshold(self.estimate.to_dict() | self.budget.fit_of(self.cost))

    def refusal(self) -> Refusal | None:
        """Every problem with the request in one answer, or None when it may go ahead."""
        if self.ok:
            return None
        problems = "\n".join(f"- {v}" for v in self.violations)
        kind = ("constraint_violations" if self.request_violations else "local_files_refused" if self.file_violations
                else "spend_cap" if any(v.rule == "spend_cap" for v in self.cost_violations) else "over_max_cost")  # fmt: skip
        model = self.prepared.payload.get("model") if self.prepared is not None else None
        files = self.local_files or self.file_violations
        nothing = "nothing was uploaded or submitted" if files else "nothing was submitted"
        message = (f"{len(self.violations)} problem(s) with this request" + (f" for {model}" if model else "")
                   + f"; {nothing}, and nothing was spent. Fix them all and call again:\n{problems}")  # fmt: skip
        details: dict[str, Any] = {"violations": [v.to_dict() for v in self.violations], "estimate": self.estimate_view()}
        details |= self.sandbox_facts if self.file_violations else {}
        cap = self.budget.broken_by(self.cost) if self.cost is not None else None
        if cap is not None:
            details |= {"cap": cap.name, "cap_usd": float(cap.cap_usd or 0), "committed_usd": float(cap.committed_usd),
                        "request_usd": float(self.cost or 0)}  # fmt: skip
        return Refusal(kind, message, details)


@dataclass(frozen=True, slots=True)
class Submission:
    """A request that left: its job (whatever became of it) and the local files it took along."""

    record: JobRecord
    uploads: list[tuple[MediaInput, StoredMedia]] = field(default_factory=list)


class VideoService:
    def __init__(
        self,
        *,
        jobs: JobService,
        ledger: Ledger,
        uploads: MediaUploads,
        caps: Caps,
        confirm_above_usd: Decimal,
        simulated: bool = False,
        webhooks: WebhookIssuer | None = None,
    ) -> None:
        self.jobs, self.ledger, self.uploads = jobs, ledger, uploads
        self.webhooks = webhooks  # set when Runware can reach this server: each submission names its webhook
        self.caps, self.confirm_above_usd, self.simulated = caps, confirm_above_usd, simulated

    # -- what may be spent ---------------------------------------------------------------------------

    async def budget(self) -> Budget:
        return await anyio.to_thread.run_sync(
            lambda: read_budget(self.ledger, daily_cap=self.caps.daily_usd, total_cap=self.caps.total_usd,
                                simulated=self.simulated, now=time.time())  # fmt: skip
        )

    # -- checking: nothing leaves the machine ------------------------------------------------------

    async def check(self, tool: str, arguments: Mapping[str, Any], sandbox: Sandbox) -> Checked:
        """A tool call's arguments, checked in full: argument types and bounds, model rules, local
        files, cost against the caps and ``max_cost_usd``. Every problem comes back at once."""
        parsed: ParsedArguments[Any] = parse_arguments(VIDEO_TOOLS[tool], arguments)
        args = parsed.args
        request = args.to_request() if args is not None else _partial_request(
            _with_defaults(VIDEO_TOOLS[tool], parsed.valid, parsed.bad_fields))
        max_cost = _decimal(args.max_cost_usd if args is not None else parsed.valid.get("max_cost_usd"))
        dry_run = bool(args.dry_run if args is not None else parsed.valid.get("dry_run") is True)
        extra = list(parsed.violations)
        if not parsed.bad_fields & {"first_frame", "last_frame"}:
            extra += _tool_level_violations(tool, args if args is not None else parsed.valid)
        return await self.check_request(tool, request, sandbox, extra=extra, max_cost_usd=max_cost, dry_run=dry_run,
                                        skip_fields=parsed.bad_fields)  # fmt: skip

    async def check_request(
        self,
        tool: str,
        request: VideoRequest | None,
        sandbox: Sandbox,
        *,
        extra: list[Violation] = (),  # type: ignore[assignment]
        max_cost_usd: Decimal | None = None,
        dry_run: bool = False,
        skip_fields: set[str] = frozenset(),  # type: ignore[assignment]
        check_costs: bool = True,
        task_uuid: str | None = None,
    ) -> Checked:
        """A request in the core's terms, checked in full. ``skip_fields`` are arguments already
        refused (their model-rule echoes would only repeat the problem). Without ``check_costs``
        the caps and ceiling are left to the caller (a storyboard checks its total once)."""
        budget = await self.budget()
        violations = list(extra)
        prepared = prepare(request, task_uuid=task_uuid, local_files=True) if request is not None else None
        if prepared is not None:
            violations += [v for v in prepared.violations if _top(v.field) not in skip_fields]
        local = [m for m in media_inputs(prepared.payload) if local_path(m.value) is not None] if prepared else []
        checked: list[tuple[MediaInput, LocalFile]] = []
        refused: list[Violation] = []
        if local:
            checked, refused = await anyio.to_thread.run_sync(_check_local, sandbox, local)
        if prepared is not None and prepared.request.source_duration is None:
            source = next((f for m, f in checked if m.path == ("inputs", "video")), None)
            if source is not None and source.seconds:
                # The clip's own header gives its length: the edit is priced exactly, not at the reserve.
                prepared = prepared.priced_for_source(max(1, math.ceil(source.seconds)))
        result = Checked(tool, prepared, violations, checked, refused, budget, self.confirm_above_usd,
                         max_cost_usd, dry_run, sandbox_facts=sandbox_facts(sandbox) if refused else {})  # fmt: skip
        if check_costs and result.cost is not None:
            result.cost_violations += cost_violations(budget, result.cost, max_cost_usd)
        return result

    # -- submitting ----------------------------------------------------------------------------------

    async def submit(
        self, checked: Checked, *, progress: UploadProgress | None = None, planned: bool = False
    ) -> Submission | Refusal:
        """Upload the request's local files and submit it. The caller has checked it (``checked.ok``)
        and had it confirmed where needed. The job is in the ledger before its request leaves; a
        ``planned`` one (a storyboard's clip) is there already, with its cost reserved."""
        assert checked.ok and checked.prepared is not None and not checked.dry_run
        if not self.jobs.client.has_key:
            return Refusal("missing_api_key", str(MissingApiKey()))
        prepared = checked.prepared
        uploads: list[tuple[MediaInput, StoredMedia]] = []
        if checked.local_files:
            try:
                uploads = await self._upload(checked.local_files, progress)
            except FileRefused as exc:
                return Refusal("local_file_changed", f"{exc.message} Nothing was submitted.", {"fix": exc.fix})
            except RunwareError as exc:
                details = exc.to_dict()
                details.pop("message", None)
                return Refusal(exc.category, f"Uploading a local file failed, so nothing was submitted: {exc}", details)
            replacements = {item.path: stored.media_uuid for item, stored in uploads}
            prepared = PreparedRequest(prepared.request, with_media(prepared.payload, replacements), [], prepared.estimate)
        try:
            if self.webhooks is not None:
                prepared = replace(prepared, payload=await self.webhooks.attach(prepared.payload))
            return Submission(await self.jobs.submit(prepared, checked.tool, planned=planned), uploads)
        except SpendCapExceeded as exc:
            return spend_cap_refusal(exc)
        except MissingApiKey as exc:
            return Refusal("missing_api_key", str(exc))
        except RunwareError as exc:
            details = exc.to_dict()
            details.pop("message", None)
            return Refusal(exc.category, str(exc), details)

    async def _upload(
        self, local: list[tuple[MediaInput, LocalFile]], progress: UploadProgress | None
    ) -> list[tuple[MediaInput, StoredMedia]]:
        stored_files = []
        for item, file in local:
            step = None
            if progress is not None:
                label = item.argument

                async def step(sent: int, total: int, label: str = label) -> None:
                    await progress(label, sent, total)  # type: ignore[misc]

            stored_files.append((item, await self.uploads.store(file, step)))
        return stored_files


def cost_violations(budget: Budget, cost: Decimal, max_cost_usd: Decimal | None) -> list[Violation]:
    """What stops a cost: a spend cap it would break, a ceiling it is above."""
    problems = []
    cap = budget.broken_by(cost)
    if cap is not None:
        problems.append(_cap_violation(cap.name, cap.cap_usd, cap.committed_usd, cost))
    if max_cost_usd is not None and cost > max_cost_usd:
        problems.append(Violation(
            "max_cost_usd", "max_cost", f"This is estimated at ${cost:.3f}, above the max_cost_usd of "
            f"${max_cost_usd:.3f}.", f"Raise max_cost_usd to at least {_round_up(cost)} if the user agrees to that "
            "cost, or make it cheaper (shorter, fewer results, a Standard model, no audio).",
            value=float(max_cost_usd), allowed={"min": float(_round_up(cost))},
        ))  # fmt: skip
    return problems


def spend_cap_refusal(exc: SpendCapExceeded) -> Refusal:
    return Refusal("spend_cap", str(exc), {
        "cap": exc.cap_name, "cap_usd": float(exc.cap), "committed_usd": float(exc.committed),
        "request_usd": float(exc.request_cost),
        "violations": [_cap_violation(exc.cap_name, exc.cap, exc.committed, exc.request_cost).to_dict()],
    })  # fmt: skip


def _cap_violation(name: str, cap: Decimal | None, committed: Decimal, cost: Decimal) -> Violation:
    left = max(Decimal(0), (cap or Decimal(0)) - committed)
    return Violation(
        "cost", "spend_cap",
        f"This request may cost ${cost:.3f}, but only ${left:.3f} of the ${cap:.2f} {name} spend cap is left "
        f"(${committed:.3f} committed: finished jobs at their cost, running ones at their estimate).",
        ("Wait for the daily window to reset (get_spending says when), " if name == "daily" else "")
        + f"make the request cost at most ${left:.3f} (shorter, fewer results, a Standard model, no audio), or ask "
        f"the user to raise KLING_MCP_{name.upper()}_CAP_USD.",
        value=float(cost), allowed={"max": float(left)},
    )  # fmt: skip


def sandbox_facts(sandbox: Sandbox) -> dict[str, Any]:
    return {"allowed_roots": sandbox.describe(),
            "size_limits_mb": {k: getattr(sandbox.limits, k) / 1e6 for k in ("image", "video", "audio")}}  # fmt: skip


def _check_local(sandbox: Sandbox, local: list[MediaInput]) -> tuple[list[tuple[MediaInput, LocalFile]], list[Violation]]:
    """Every local file checked, and every refusal, so that all come back at once."""
    checked, refused = [], []
    for item in local:
        try:
            checked.append((item, sandbox.check(item.value, item.kind)))
        except FileRefused as exc:
            refused.append(Violation(item.argument, exc.reason, exc.message, exc.fix, value=item.value))
    return checked, refused


def _tool_level_violations(tool: str, args: BaseModel | Mapping[str, Any] | None) -> list[Violation]:
    get = (lambda k: getattr(args, k, None)) if isinstance(args, BaseModel) else (lambda k: (args or {}).get(k))
    if tool == "image_to_video" and get("first_frame") is None and get("last_frame") is None:
        return [Violation("first_frame", "required", "image_to_video needs an image to animate.",
                          "Set 'first_frame' (or 'last_frame') to an image, or use text_to_video.")]  # fmt: skip
    return []


def _with_defaults(model: type[BaseModel], valid: Mapping[str, Any], refused: set[str]) -> dict[str, Any]:
    """What the call would mean, as far as it is valid: the tool's own defaults (aspect_ratio 16:9...)
    stand for what was left out, so the model rules see the request the agent would make."""
    defaults = {name: info.default for name, info in model.model_fields.items()
                if name not in valid and name not in refused and info.default is not None
                and not info.is_required() and info.default_factory is None}  # fmt: skip
    return defaults | dict(valid)


def _partial_request(valid: Mapping[str, Any]) -> VideoRequest | None:
    """What of a call with bad arguments can still be checked against the model's rules."""
    if "model" not in valid:
        return None
    try:
        return VideoRequest.model_validate({k: v for k, v in valid.items() if k in VideoRequest.model_fields})
    except ValidationError:
        return None


def _top(path: str) -> str:
    return path.replace("[", ".").split(".", 1)[0].split("/", 1)[0]


def _decimal(value: Any) -> Decimal | None:
    return Decimal(str(value)) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _round_up(cost: Decimal) -> Decimal:
    return cost.quantize(Decimal("0.01"), rounding="ROUND_CEILING")

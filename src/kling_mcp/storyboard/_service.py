"""Storyboards: a whole plan checked, priced and confirmed as one, reserved, then made clip by clip.

Checking goes through the same ``VideoService.check_request`` as a single clip, once per clip,
and the caps and ceiling are then applied to the total. Creating one reserves the total before
anything is sent: every clip is written to the ledger as a *planned* job carrying its estimate,
all in one transaction that checks the caps, so the spend caps count the whole plan at once.
The runner (``_runner``) then sends each planned job when it may go.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import anyio

from ..arguments import parse_arguments, without
from ..budget import Budget
from ..constraints import Violation
from ..files import Sandbox
from ..ledger import JobRecord, Ledger, SpendCapExceeded
from ..service import Checked, Consent, Refusal, VideoService, cost_violations, spend_cap_refusal
from ._plan import ClipArgs, PlannedClip, StoryboardArgs, plan_clips
from ._records import ACTIVE, ClipState, StoryboardRecord


@dataclass(slots=True)
class StoryboardCheck(Consent):
    """A storyboard as checked: every clip's problems (named clips[i]...), the total against the caps."""

    args: StoryboardArgs | None
    clips: list[tuple[PlannedClip, Checked]]
    violations: list[Violation]
    budget: Budget | None
    confirm_above_usd: Decimal
    max_cost_usd: Decimal | None = None
    dry_run: bool = True
    storyboard_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def total(self) -> Decimal | None:
        costs = [c.cost for _, c in self.clips]
        return sum(costs, Decimal(0)) if costs and all(c is not None for c in costs) else None  # type: ignore[misc]

    @property
    def cost(self) -> Decimal | None:
        return self.total

    def plan_view(self) -> dict[str, Any]:
        clips = []
        for planned, checked in self.clips:
            payload = checked.prepared.payload if checked.prepared is not None else None
            estimate = checked.estimate
            clips.append({
                "clip": planned.index, "tool": planned.tool, "model": payload.get("model") if payload else None,
                "seconds": estimate.seconds if estimate else None, "continues_from_previous": planned.continues,
                "estimate_usd": float(checked.cost) if checked.cost is not None else None,
                "payload": payload,
            })  # fmt: skip
        total = self.total
        view: dict[str, Any] = {"clips": clips, "total_usd": None if total is None else float(total),
                                "total_seconds": sum(c["seconds"] or 0 for c in clips)}  # fmt: skip
        if total is not None and self.budget is not None:
            view |= self.budget.fit_of(total)
        return self.with_threshold(view)

    def refusal(self) -> Refusal | None:
        if self.ok:
            return None
        problems = "\n".join(f"- {v}" for v in self.violations)
        kind = ("spend_cap" if all(v.rule == "spend_cap" for v in self.violations)
                else "over_max_cost" if all(v.rule in ("spend_cap", "max_cost") for v in self.violations)
                else "constraint_violations")  # fmt: skip
        return Refusal(kind, f"{len(self.violations)} problem(s) in this storyboard; nothing was submitted, and "
                       f"nothing was spent. Fix them all and call again:\n{problems}",
                       {"violations": [v.to_dict() for v in self.violations], "plan": self.plan_view()})  # fmt: skip


class StoryboardService:
    def __init__(self, videos: VideoService, ledger: Ledger) -> None:
        self.videos, self.ledger = videos, ledger
        self.wake = anyio.Event()  # set when there is new work for the runner

    # -- checking --------------------------------------------------------------------------------

    async def check(self, arguments: Mapping[str, Any], sandbox: Sandbox) -> StoryboardCheck:
        parsed = parse_arguments(StoryboardArgs, arguments)
        confirm = self.videos.confirm_above_usd
        args, bad = parsed.args, {v.field for v in parsed.violations}
        if args is None:
            # The clips' other settings are still checked, without the values already refused.
            args = parse_arguments(StoryboardArgs, without(arguments, sorted(bad))).args
            if args is None:
                return StoryboardCheck(None, [], parsed.violations, None, confirm)
        planned, problems = plan_clips(args)
        clips: list[tuple[PlannedClip, Checked]] = []
        violations = list(parsed.violations) + problems
        for clip in planned:
            checked = await self.videos.check_request(clip.tool, clip.request, sandbox, check_costs=False)
            clips.append((clip, checked))
            refused = {f.removeprefix(f"clips[{clip.index}].").split(".")[0] for f in bad}
            violations += [_in_clip(clip.index, _continuing(v, clip.index) if clip.continues else v)
                           for v in checked.violations
                           if not (v.field.split(".")[0].split("[")[0] in refused
                                   and any(f.startswith(f"clips[{clip.index}].") for f in bad))]  # fmt: skip
        # With a refused value the plan is only checked, never made (a default might pass in its place).
        result = StoryboardCheck(args, clips, violations, None, confirm, _decimal(args.max_cost_usd),
                                 args.dry_run or parsed.args is None)  # fmt: skip
        result.budget = await self.videos.budget()
        if result.total is not None:
            violations += [_total(v) for v in cost_violations(result.budget, result.total, result.max_cost_usd)]
        return result

    # -- making ------------------------------------------------------------------------------------

    async def create(self, checked: StoryboardCheck) -> StoryboardRecord | Refusal:
        """Reserve the whole plan and hand it to the runner. The caller has confirmed the total."""
        assert checked.ok and checked.args is not None and not checked.dry_run
        if not self.videos.jobs.client.has_key:
            from ..jobs import MissingApiKey

            return Refusal("missing_api_key", str(MissingApiKey()))
        now = time.time()
        clips, jobs = [], []
        for planned, clip_check in checked.clips:
            assert clip_check.prepared is not None and clip_check.estimate is not None
            job = _planned_job(clip_check)
            jobs.append(job)
            clips.append(ClipState(planned.index, planned.tool, planned.continues,
                                   planned.request.model_dump(mode="json", exclude_none=True), job.task_uuid,
                                   clip_check.estimate.to_dict()))  # fmt: skip
        record = StoryboardRecord(checked.storyboard_id, checked.args.title, "running", checked.args.assemble, clips,
                                  float(checked.total or 0), checked.args.aspect_ratio, created_at=now,
                                  updated_at=now)  # fmt: skip
        caps = self.videos.caps
        try:
            await anyio.to_thread.run_sync(lambda: self.ledger.storyboard_create(
                record.id, record.to_json(), jobs, daily_cap=caps.daily_usd, total_cap=caps.total_usd))  # fmt: skip
        except SpendCapExceeded as exc:
            return spend_cap_refusal(exc)
        self.wake.set()
        return record

    async def get(self, storyboard_id: str) -> StoryboardRecord | None:
        data = await anyio.to_thread.run_sync(self.ledger.storyboard_get, storyboard_id)
        return StoryboardRecord.from_json(data) if data is not None else None

    async def save(self, record: StoryboardRecord, *, if_unchanged: bool = False) -> bool:
        """Write the record. With ``if_unchanged`` (the runner's saves), only if no one saved it since it was
        read: False, nothing written, if someone did (a retry or a cancel, or an instance that took it over)."""
        read_at, record.updated_at = record.updated_at, time.time()
        saved = await anyio.to_thread.run_sync(lambda: self.ledger.storyboard_save(
            record.id, record.to_json(), if_updated_at=read_at if if_unchanged else None))  # fmt: skip
        if not saved:
            record.updated_at = read_at
        return saved

    async def check_retry(
        self, record: StoryboardRecord, index: int, changes: Mapping[str, Any] | None, sandbox: Sandbox,
        max_cost_usd: Decimal | None,
    ) -> tuple[ClipState, Checked] | Refusal:
        """A failed clip, checked again as it will be retried (with ``changes`` to its own settings)."""
        if record.status not in ACTIVE:
            return Refusal("storyboard_ended", f"Storyboard {record.id} is {record.status}; nothing can be retried.")
        if not 0 <= index < len(record.clips):
            return Refusal("no_such_clip", f"Storyboard {record.id} has clips 0 to {len(record.clips) - 1}.",
                           {"violations": [Violation("clip", "out_of_range", f"No clip {index}.",
                                                     f"Use a clip number from 0 to {len(record.clips) - 1}.",
                                                     value=index, allowed={"min": 0, "max": len(record.clips) - 1}).to_dict()]})  # fmt: skip
        clip = record.clips[index]
        job = await anyio.to_thread.run_sync(self.ledger.get, clip.task_uuid)
        if job is None or job.status not in ("failed", "rejected", "cancelled") and clip.problem is None:
            state = job.status if job is not None else "unknown"
            return Refusal("clip_not_failed", f"Clip {index} is {state}; only a failed clip is retried (a finished "
                           "clip is never paid for twice).", {"clip": index, "status": state})  # fmt: skip
        request = dict(clip.request)
        problems: list[Violation] = []
        if changes:
            parsed = parse_arguments(ClipArgs, changes)
            problems += [_in_clip(index, v) for v in parsed.violations]
            request |= {k: v for k, v in (parsed.args.model_dump(exclude_none=True) if parsed.args else {}).items()
                        if k not in ("continue_from_previous",)}  # fmt: skip
        from ..payload import VideoRequest

        checked = await self.videos.check_request(clip.tool, VideoRequest.model_validate(request), sandbox,
                                                  max_cost_usd=max_cost_usd, extra=problems)  # fmt: skip
        checked.request_violations = [_in_clip(index, v) if not v.field.startswith("clips[") else v
                                      for v in checked.request_violations]  # fmt: skip
        return clip, checked

    async def retry(self, record: StoryboardRecord, clip: ClipState, checked: Checked) -> StoryboardRecord | Refusal:
        assert checked.ok and checked.prepared is not None and checked.estimate is not None
        job = _planned_job(checked)
        caps = self.videos.caps
        try:
            await anyio.to_thread.run_sync(lambda: self.ledger.record_planned(
                [job], daily_cap=caps.daily_usd, total_cap=caps.total_usd))  # fmt: skip
        except SpendCapExceeded as exc:
            return spend_cap_refusal(exc)
        clip.earlier_task_uuids.append(clip.task_uuid)
        clip.task_uuid, clip.problem, clip.video = job.task_uuid, None, None
        clip.request = checked.prepared.request.model_dump(mode="json", exclude_none=True)
        clip.estimate = checked.estimate.to_dict()
        record.status, record.problem = "running", None
        await self.save(record)
        self.wake.set()
        return record

    async def cancel(self, record: StoryboardRecord) -> StoryboardRecord:
        """Stop a storyboard: its clips not yet sent are cancelled and their reservation released.
        Clips already sent finish (and are charged) as they would."""
        planned = [c.task_uuid for c in record.clips]
        await anyio.to_thread.run_sync(self.ledger.cancel_planned, planned)
        record.status, record.finished_at = "cancelled", time.time()
        await self.save(record)
        return record


def _planned_job(checked: Checked) -> JobRecord:
    assert checked.prepared is not None and checked.estimate is not None
    payload = checked.prepared.payload
    return JobRecord(task_uuid=payload["taskUUID"], model=payload["model"], tool=checked.tool, status="planned",
                     payload=payload, reserve_usd=checked.estimate.reserve,
                     number_results=int(payload.get("numberResults", 1)), estimate=checked.estimate.to_dict())  # fmt: skip


def _in_clip(index: int, violation: Violation) -> Violation:
    return replace(violation, field=f"clips[{index}].{violation.field}",
                   fix=violation.fix.replace("'", f"'clips[{index}].", 1) if violation.fix.count("'") >= 2 else violation.fix)  # fmt: skip


def _continuing(violation: Violation, index: int) -> Violation:
    """A frame rule broken by a continuing clip: its frame is the previous clip's last one, which the
    agent did not write, so the fix says where it comes from and how to do without it."""
    if not violation.field.startswith(("duration", "first_frame", "aspect_ratio")):
        return violation
    return replace(violation, fix=f"{violation.fix} This clip starts on the previous clip's last frame; to start "
                   f"from text instead, set 'clips[{index}].continue_from_previous' to false.")  # fmt: skip


def _total(violation: Violation) -> Violation:
    return replace(violation, field="total_cost" if violation.field == "cost" else violation.field,
                   message="The whole storyboard: " + violation.message[0].lower() + violation.message[1:])  # fmt: skip


def _decimal(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))

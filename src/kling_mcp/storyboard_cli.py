"""``kling-mcp storyboard plan.json``: a storyboard made from a file, for pipelines and people,
through the same service the MCP tool uses. Confirmation is the person's (a prompt), or
``--yes``, or the plan's own ``max_cost_usd``; the caps apply as always."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import anyio

from .settings import Settings
from .state import make_lifespan


def _say(text: str = "") -> None:
    print(text, flush=True)


async def run_storyboard(settings: Settings, plan_file: Path, *, simulate: bool, dry_run: bool, yes: bool) -> int:
    try:
        plan = json.loads(plan_file.read_text())
    except (OSError, ValueError) as exc:
        _say(f"kling-mcp: cannot read the storyboard {plan_file}: {exc}")
        return 2
    if not isinstance(plan, dict):
        _say(f"kling-mcp: {plan_file} must hold one JSON object (create_storyboard's arguments).")
        return 2
    plan["dry_run"] = dry_run
    async with make_lifespan(settings, simulate=simulate)(None) as state:
        checked = await state.storyboards.check(plan, state.sandbox)
        view = checked.plan_view()
        for clip in view["clips"]:
            _say(f"clip {clip['clip']}: {clip['tool']} {clip['model']} {clip['seconds']} s"
                 + (" (continues from the previous clip)" if clip["continues_from_previous"] else "")
                 + (f"  ${clip['estimate_usd']:.3f}" if clip["estimate_usd"] is not None else ""))  # fmt: skip
        if view.get("total_usd") is not None:
            _say(f"total: {view['total_seconds']} s, ${view['total_usd']:.3f}"
                 + (f" (caps leave ${view['caps_left_usd']:.3f})" if view.get("caps_left_usd") is not None else "")
                 + (" - simulated, nothing is paid" if simulate else ""))  # fmt: skip
        refusal = checked.refusal()
        if refusal is not None:
            _say(f"\nrefused: {refusal.message}")
            return 1
        if dry_run:
            _say("\ndry run: nothing was sent.")
            return 0
        if checked.needs_confirmation and not checked.confirmed_by_ceiling and not yes:
            if not sys.stdin.isatty():
                _say(f"\nThe total is above ${checked.confirm_above_usd:.2f}: confirm with --yes, or set max_cost_usd "
                     "in the plan. Nothing was sent.")  # fmt: skip
                return 2
            answer = input(f"Make it for ${checked.total:.3f}? [y/N] ").strip().lower()
            if answer not in ("y", "yes"):
                _say("Not confirmed; nothing was sent.")
                return 1
        created = await state.storyboards.create(checked)
        if not hasattr(created, "id"):
            _say(f"refused: {created.message}")  # type: ignore[union-attr]
            return 1
        _say(f"\nstoryboard {created.id}: {len(created.clips)} clips")  # type: ignore[union-attr]
        return await _follow(state, created.id)  # type: ignore[union-attr]


async def _follow(state: Any, storyboard_id: str) -> int:
    started = time.monotonic()
    tty = sys.stdout.isatty()
    last = ""
    while True:
        record = await state.storyboards.get(storyboard_id)
        jobs = [await anyio.to_thread.run_sync(state.ledger.get, c.task_uuid) for c in record.clips]
        done = sum(j is not None and j.status == "success" for j in jobs)
        width = 30
        bar = (f"[{'#' * (width * done // len(jobs)):.<{width}}] {done}/{len(jobs)} clips, {record.status}, "
               f"{time.monotonic() - started:.0f} s")  # fmt: skip
        if tty:
            sys.stdout.write("\r" + bar.ljust(80))
            sys.stdout.flush()
        elif bar.split(",")[0] + record.status != last:
            _say(bar)
            last = bar.split(",")[0] + record.status
        if record.status not in ("running", "assembling"):
            break
        await anyio.sleep(0.5)
    if tty:
        _say()
    cost = sum(j.cost_usd or 0 for j in jobs if j is not None)
    for clip, job in zip(record.clips, jobs, strict=True):
        _say(f"clip {clip.index}: {job.status if job else 'missing'}, ${(job.cost_usd or 0) if job else 0:.3f}"
             + (f", {clip.video}" if clip.video else ""))  # fmt: skip
    if record.status == "done":
        _say(f"\nthe video: {record.output}" if record.output else "\nevery clip is made")
        if record.contact_sheet:
            _say(f"contact sheet: {record.contact_sheet}")
        if record.assembly:
            _say(f"{record.assembly['duration_s']} s, {record.assembly['width']}x{record.assembly['height']}"
                 + (f", re-encoded: {record.assembly['reason']}" if record.assembly.get("reencoded") else ", stream copy"))  # fmt: skip
        _say(f"cost: ${cost:.3f}")
        return 0
    _say(f"\nstoryboard {record.status}: {json.dumps(record.problem or [c.problem for c in record.clips if c.problem])}")
    _say(f"Retry or cancel with the update_storyboard tool (storyboard_id {storyboard_id}).")
    return 1

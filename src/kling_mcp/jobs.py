"""The job lifecycle: spend guard, ledger, submission, one shared poller, and waiting.

Every paid job is written to the ledger before its request leaves, and is tracked
until it ends, across restarts: a new process resumes polling every job the ledger
still has in flight. All in-flight jobs are polled together, one HTTP request per
tick, at an interval that starts short and backs off to a cap.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import anyio
from anyio.abc import TaskGroup

from .core import PreparedRequest
from .ledger import REDACTED_PREFIX, TERMINAL, JobRecord, Ledger, LedgerUnavailable
from .runware import ProviderError, RunwareClient, RunwareError, SubmitResult, TaskUpdate, scrub

log = logging.getLogger("kling_mcp.jobs")

ProgressCallback = Callable[[float, float, str], Awaitable[None]]

# A Kling job typically renders in 30 to 90 s; progress between polls is estimated against this.
TYPICAL_JOB_SECONDS = 90.0
# A job Runware keeps saying it does not know is given this many polls before it is written off.
NOT_FOUND_POLLS = 3
# The categories of an error naming a running job that end it: the provider's verdict on the job.
# A code nobody knows that names the job is taken as its failure: providers' codes vary.
ENDS_A_JOB = frozenset({"provider_failure", "provider_timeout", "content_policy", "unknown"})
# The category of the note a job carries while its submission's fate is unknown.
UNKNOWN_FATE = "unknown_fate"
# A job with no final answer after this long is marked stalled and no longer polled (KLING_MCP_STALLED_AFTER).
DEFAULT_STALLED_AFTER_S = 3 * 3600.0


class MissingApiKey(RunwareError):
    MESSAGE = (
        "No Runware API key is configured, so nothing can be submitted. Set RUNWARE_API_KEY in the MCP "
        "client's configuration for kling-mcp, or in the environment for the command line (create a key at "
        "https://my.runware.ai), or run kling-mcp "
        "with --simulate to use the built-in emulator. Listing models and dry runs work without a key."
    )

    def __init__(self) -> None:
        super().__init__("auth", self.MESSAGE)
        self.args = (self.MESSAGE,)

    def __str__(self) -> str:
        return self.MESSAGE


@dataclass(frozen=True, slots=True)
class Caps:
    daily_usd: Decimal | None = None
    total_usd: Decimal | None = None


class JobService:
    def __init__(
        self,
        client: RunwareClient,
        ledger: Ledger,
        *,
        caps: Caps = Caps(),
        poll_initial_s: float = 2.0,
        poll_max_s: float = 10.0,
        poll_factor: float = 1.5,
        stalled_after_s: float = DEFAULT_STALLED_AFTER_S,
        submit_deadline_s: float = 60.0,
        refresh_deadline_s: float = 30.0,
        resend_interval_s: float = 15.0,
        safety_poll_s: float | None = None,
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.caps = caps
        self._poll_initial, self._poll_max, self._poll_factor = poll_initial_s, poll_max_s, poll_factor
        self._interval = poll_initial_s
        self.stalled_after_s = stalled_after_s
        # The longest a submit tool call waits for Runware before it answers "unknown" with the task_id.
        self.submit_deadline_s = submit_deadline_s
        self.refresh_deadline_s = refresh_deadline_s
        # How long after a send was given up on the poller waits before it may send the task again: a request
        # that timed out may still reach Runware, and its record must have had the time to show it.
        self.resend_interval_s = resend_interval_s
        # Set when webhooks bring each result (webhooks.py): routine polls then come only this often, a safety
        # net for a delivery that never came, and a new submission does not bring the next poll forward.
        self.safety_poll_s = safety_poll_s
        self._applying = anyio.Lock()
        self._in_flight: set[str] = set()
        self._not_found: dict[str, int] = {}
        self._last_send: dict[str, float] = {}
        self._last_sweep = 0.0
        self._changed: dict[str, anyio.Event] = {}
        self._wake = anyio.Event()
        self.polls_sent = 0
        self.resends = 0  # submissions sent again because Runware's record showed they never arrived
        self.finished_at: dict[str, float] = {}  # when the poller first saw each job end (for benchmarks)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self, task_group: TaskGroup) -> None:
        """Resume tracking every job the ledger still has in flight, and start the poller."""
        try:
            resumed = await anyio.to_thread.run_sync(self.ledger.in_flight)
        except LedgerUnavailable:
            resumed = []  # already reported at start-up; every job tool reports it again
        for job in resumed:
            self._in_flight.add(job.task_uuid)
        if self._in_flight:
            log.info("Resuming %d job(s) still in flight", len(self._in_flight))
        task_group.start_soon(self._poll_loop)

    def _track(self, task_uuid: str) -> None:
        self._in_flight.add(task_uuid)
        if self.safety_poll_s is None:
            self._interval = self._poll_initial
        self._wake.set()

    # -- submitting --------------------------------------------------------------------------------

    async def check_caps(self, prepared: PreparedRequest) -> None:
        """Raise SpendCapExceeded now if the request would not fit under the caps, so that no
        work (uploads) is done for a submission that would be refused. Submit checks again."""
        assert prepared.estimate is not None
        reserve = prepared.estimate.reserve
        await anyio.to_thread.run_sync(
            lambda: self.ledger.check_caps(reserve, daily_cap=self.caps.daily_usd, total_cap=self.caps.total_usd)
        )

    async def submit(self, prepared: PreparedRequest, tool: str, *, planned: bool = False) -> JobRecord:
        """Reserve the estimate under the caps, record the job, then submit it.

        A ``planned`` job (a storyboard's clip) is in the ledger already with its cost reserved: it
        is promoted to pending, once; if another process promoted it first, it is not sent again.
        Raises SpendCapExceeded (nothing recorded or sent) or MissingApiKey. Otherwise
        always returns the job, whatever became of the submission, within ``submit_deadline_s``.
        """
        if not self.client.has_key:
            raise MissingApiKey()
        assert prepared.ok and prepared.estimate is not None
        payload = prepared.payload
        job = JobRecord(
            task_uuid=payload["taskUUID"],
            model=payload["model"],
            tool=tool,
            status="pending",
            payload=payload,
            reserve_usd=prepared.estimate.reserve,
            number_results=int(payload.get("numberResults", 1)),
            estimate=prepared.estimate.to_dict(),
        )
        if planned:
            promoted = await anyio.to_thread.run_sync(self.ledger.promote_planned, job)
            if not promoted:
                current = await self.get(job.task_uuid)
                assert current is not None
                return current
        else:
            await anyio.to_thread.run_sync(
                lambda: self.ledger.record_new(job, daily_cap=self.caps.daily_usd, total_cap=self.caps.total_usd)
            )
        self._last_send[job.task_uuid] = time.monotonic()
        result: SubmitResult | None = None
        try:
            with anyio.move_on_after(self.submit_deadline_s):
                result = await self.client.submit(payload)
        except BaseException:
            # Cancelled or crashed mid-send: the job may or may not be at Runware; the poller finds out.
            with anyio.CancelScope(shield=True):
                await self._update(job.task_uuid, status="unknown")
                self._track(job.task_uuid)
            raise
        if result is None:
            result = SubmitResult("unknown", note=f"Runware did not settle the submission within "
                                  f"{self.submit_deadline_s:g} s")  # fmt: skip
        # A request given up on may still arrive: a re-send waits resend_interval_s from now, not from the send.
        self._last_send[job.task_uuid] = time.monotonic()
        record = await self._apply_submission(job.task_uuid, result, [])
        assert record is not None
        return record

    async def _apply_submission(self, task_uuid: str, result: SubmitResult, earlier: list[dict[str, Any]]) -> JobRecord | None:
        settled = _settled(earlier)
        errors = [e.to_dict() for e in result.errors]
        now = time.time()
        match result.outcome:
            case "accepted":
                record = await self._update(task_uuid, status="submitted", submitted_at=now, errors=settled)
                self._track(task_uuid)
            case "rejected":
                record = await self._update(task_uuid, status="rejected", errors=settled + errors, finished_at=now)
            case "failed":
                record = await self._update(task_uuid, status="failed", errors=settled + errors, finished_at=now)
            case _:
                note = {"category": UNKNOWN_FATE, "message": scrub(result.note), "next_step": "kling-mcp keeps "
                        "looking the task up in Runware's record; it is sent again only if that shows it never "
                        "arrived, so that it is not paid for twice. Check again with get_video_status."}  # fmt: skip
                record = await self._update(task_uuid, status="unknown", errors=settled + errors + [note])
                self._track(task_uuid)
        return record

    async def _update(self, task_uuid: str, **changes: Any) -> JobRecord | None:
        record = await anyio.to_thread.run_sync(lambda: self.ledger.update(task_uuid, **changes))
        event = self._changed.pop(task_uuid, None)
        if event is not None:
            event.set()
        return record

    # -- reading -------------------------------------------------------------------------------------

    async def get(self, task_uuid: str) -> JobRecord | None:
        return await anyio.to_thread.run_sync(self.ledger.get, task_uuid)

    async def refresh(self, task_uuids: list[str]) -> dict[str, JobRecord | None]:
        """The jobs, after one poll of those still in flight or stalled (a single HTTP request),
        within ``refresh_deadline_s``."""
        jobs = {u: await self.get(u) for u in task_uuids}
        live = [u for u, j in jobs.items() if j is not None and (j.in_flight or j.status == "stalled")]
        if live and self.client.has_key:
            try:
                with anyio.move_on_after(self.refresh_deadline_s):
                    await self._poll_once(live, on_request=True)
            except RunwareError as exc:
                log.warning("Refreshing %d job(s) failed: %s", len(live), exc)
            jobs.update({u: await self.get(u) for u in live})
        return jobs

    async def wait(
        self, task_uuid: str, timeout: float, on_progress: ProgressCallback | None = None
    ) -> tuple[JobRecord | None, bool]:
        """Wait until the job ends or ``timeout`` passes: (the job as it is then, whether it ended)."""
        job = await self.get(task_uuid)
        if job is None or job.status in TERMINAL:
            return job, job is not None
        if job.status == "stalled":
            # Not polled any more: one look-up on request, then the answer as it stands.
            job = (await self.refresh([task_uuid]))[task_uuid]
            return job, job is not None and job.status in TERMINAL
        if job.in_flight and task_uuid not in self._in_flight:
            self._track(task_uuid)
        started = time.monotonic()
        with anyio.move_on_after(timeout):
            while True:
                event = self._changed.setdefault(task_uuid, anyio.Event())
                with anyio.move_on_after(1.0):
                    await event.wait()
                job = await self.get(task_uuid)
                if job is None or job.status in TERMINAL or job.status == "stalled":
                    break
                if on_progress is not None:
                    await on_progress(*_progress(job, time.monotonic() - started))
        job = await self.get(task_uuid)
        ended = job is not None and job.status in TERMINAL
        if on_progress is not None and ended:
            await on_progress(100.0, 100.0, f"{job.status}")  # type: ignore[union-attr]
        return job, ended

    # -- polling ---------------------------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        while True:
            if not self._in_flight or not self.client.has_key:
                self._wake = anyio.Event()
                await self._wake.wait()
                continue
            if self.safety_poll_s is not None:
                await anyio.sleep(self.safety_poll_s)
            else:
                with anyio.move_on_after(self._interval):
                    self._wake = anyio.Event()
                    await self._wake.wait()
            await self._sweep_stalled()
            if not self._in_flight:
                continue
            try:
                await self._poll_once(sorted(self._in_flight))
            except RunwareError as exc:
                log.warning("Polling %d job(s) failed, will retry: %s", len(self._in_flight), exc)
            except Exception:  # the poller must outlive any one bad answer
                log.exception("Unexpected error while polling")
            self._interval = min(self._interval * self._poll_factor, self._poll_max)

    async def _poll_once(self, task_uuids: list[str], *, on_request: bool = False) -> None:
        self.polls_sent += 1
        updates = await self.client.poll(task_uuids)
        for task_uuid, update in updates.items():
            job = await self.get(task_uuid)
            if job is None or job.status in TERMINAL:
                # Ended (perhaps by another process, or by a re-send's answer): nothing may change it now.
                self._in_flight.discard(task_uuid)
                continue
            silent = not update.items and not update.errors
            if update.not_found or (silent and job.status in ("pending", "unknown")):
                # Not known to getResponse (or not a word about a submission whose fate is open): ask the record.
                changes = await self._not_found_changes(job)
            else:
                self._not_found.pop(task_uuid, None)
                changes = self._merge(job, update)
            if changes:
                record = await self._update(task_uuid, **changes)
                if record is not None and record.status in TERMINAL:
                    self._in_flight.discard(task_uuid)
                    self.finished_at.setdefault(task_uuid, time.monotonic())

    async def apply_update(self, task_uuid: str, update: TaskUpdate) -> JobRecord | None:
        """Merge what Runware said of one task outside a poll (a webhook's delivery) by the rules a poll's
        answer follows, and wake whoever waits on the job. ``update`` holds only what names this task.
        The job as it is afterwards; None if the ledger has no such job. An ended job is left as it is,
        and "not found" is not taken from a delivery: only Runware's record may say a task never arrived."""
        async with self._applying:  # two deliveries for one job must not merge from the same stale read
            job = await self.get(task_uuid)
            if job is None or job.status in TERMINAL or update.not_found:
                return job
            changes = self._merge(job, update)
            if not changes:
                return job
            record = await self._update(task_uuid, **changes)
            if record is not None and record.status in TERMINAL:
                self._in_flight.discard(task_uuid)
                self.finished_at.setdefault(task_uuid, time.monotonic())
            return record

    async def _sweep_stalled(self) -> None:
        """Stop polling jobs that have had no final answer for longer than the maximum age. Every job is read
        from the ledger for this, so it runs a few times per maximum age, not on every tick."""
        now = time.time()
        if now - self._last_sweep < min(30.0, self.stalled_after_s / 4):
            return
        self._last_sweep = now
        for task_uuid in sorted(self._in_flight):
            job = await self.get(task_uuid)
            if job is None or not job.in_flight:
                self._in_flight.discard(task_uuid)
            elif now - job.created_at > self.stalled_after_s:
                self._in_flight.discard(task_uuid)
                await self._update(task_uuid, **self._stalled(job))
                log.warning("Job %s has had no final answer for %d s: stalled", task_uuid, int(self.stalled_after_s))

    def _stalled(self, job: JobRecord) -> dict[str, Any]:
        note = {"category": "stalled", "message": f"Runware gave no final answer for this job within "
                f"{int(self.stalled_after_s)} s; kling-mcp stopped polling it. It still counts against the spend "
                "caps at its estimate, since it may yet be charged.", "next_step": "Call get_video_status with this "
                "task_id later: it is looked up again on request. If it never ends, ask Runware support about it "
                "with the task_id."}  # fmt: skip
        return {"status": "stalled", "errors": [*job.errors, note]}

    async def _not_found_changes(self, job: JobRecord) -> dict[str, Any]:
        """getResponse said it does not know the task (``taskFailedOrNotFound`` and the like): ask Runware's
        own record whether it never arrived, arrived and failed, or is there after all."""
        record = await self.client.task_details(job.task_uuid)
        never_acknowledged = job.status in ("pending", "unknown") or (job.status == "stalled" and not job.submitted_at)
        if record.state == "failed":
            self._not_found.pop(job.task_uuid, None)
            errors = [*_settled(job.errors), *(e.to_dict() for e in record.errors)]
            return {"status": "failed", "errors": errors, "finished_at": time.time(), "progress": 100}
        if record.state == "present":
            self._not_found.pop(job.task_uuid, None)
            if job.status in ("pending", "unknown"):
                return {"status": "submitted", "submitted_at": time.time(), "errors": _settled(job.errors)}
            return {"submitted_at": time.time()} if not job.submitted_at else {}
        if record.state is None:
            return {}
        if never_acknowledged:
            return await self._resend(job)
        # Acknowledged once, now unknown to Runware: give it a few polls before writing it off.
        seen = self._not_found[job.task_uuid] = self._not_found.get(job.task_uuid, 0) + 1
        if seen < NOT_FOUND_POLLS:
            return {}
        self._not_found.pop(job.task_uuid, None)
        error = ProviderError("not_found", "taskNotFound", "Runware no longer knows this task.")
        return {"status": "failed", "errors": [*job.errors, error.to_dict()], "finished_at": time.time()}

    async def _resend(self, job: JobRecord) -> dict[str, Any]:
        """Send again, with the same taskUUID, a job Runware's record shows it never received."""
        if time.monotonic() - self._last_send.get(job.task_uuid, 0.0) < self.resend_interval_s:
            return {}
        if _has_redacted_media(job.payload):
            # Inline media is never stored, so this request cannot be rebuilt: end it, nothing was charged.
            error = ProviderError("not_found", "taskNotFound", "Runware never received this task, and it held inline "
                                  "media that kling-mcp does not keep, so it cannot be sent again. Nothing was "
                                  "charged. Submit the request again if you still want it.")  # fmt: skip
            return {"status": "rejected", "errors": [*job.errors, error.to_dict()], "finished_at": time.time()}
        self._last_send[job.task_uuid] = time.monotonic()
        self.resends += 1
        log.info("Runware's record shows job %s never arrived: sending it again with the same taskUUID", job.task_uuid)
        result = SubmitResult("unknown", note=f"The re-sent submission was not settled within {self.submit_deadline_s:g} s")
        with anyio.move_on_after(self.submit_deadline_s):
            result = await self.client.submit(job.payload)
        self._last_send[job.task_uuid] = time.monotonic()
        keep = job.status if job.status == "stalled" and result.outcome == "unknown" else None
        record = await self._apply_submission(job.task_uuid, result, job.errors)
        if keep is not None:
            await self._update(job.task_uuid, status=keep)
        if record is not None and record.status in TERMINAL:
            self._in_flight.discard(job.task_uuid)
        return {}

    def _merge(self, job: JobRecord, update: TaskUpdate) -> dict[str, Any]:
        results = {r["video_uuid"]: r for r in job.results}
        failures = [e for e in job.errors if e.get("result_failure")]
        progress: list[int] = []
        # Each poll lists every result so far, in order; one that carries no id of its own is known by its
        # place among those (so the same failure seen in two polls is counted once).
        keyless = 0
        for item in update.items:
            status = item.get("status")
            if status in (None, "success") and _usable_video(item):
                results[item["videoUUID"]] = {
                    "video_uuid": item["videoUUID"],
                    "video_url": item["videoURL"],
                    "cost_usd": item.get("cost") if isinstance(item.get("cost"), (int, float)) else None,
                    "seed": item.get("seed"),
                }
            elif status == "success" or (status is None and ("videoUUID" in item or "videoURL" in item)):
                error = ProviderError("provider_failure", "noUsableVideo", "Runware reported a result without a "
                                      "usable video (no videoUUID or videoURL).").to_dict()  # fmt: skip
                error |= {"item": item, "result_failure": True}
                if isinstance(item.get("cost"), (int, float)):
                    error["cost_usd"] = item["cost"]  # billed all the same
                key = item.get("videoUUID") if isinstance(item.get("videoUUID"), str) else None
                if key is None:
                    key, keyless = f"result-{keyless}", keyless + 1
                if not any(f.get("result_key") == key for f in failures):
                    error["result_key"] = key
                    failures.append(error)
            elif status == "error" or "error" in item:
                error = ProviderError.parse(item.get("error") or item).to_dict()
                error["result_failure"] = True
                key = item.get("videoUUID") or item.get("imageUUID")
                if not isinstance(key, str):
                    key, keyless = f"result-{keyless}", keyless + 1
                if not any(f.get("result_key") == key for f in failures):
                    error["result_key"] = key
                    failures.append(error)
            elif isinstance(item.get("progress"), (int, float)):
                progress.append(int(item["progress"]))
        # An error about the poll itself (busy, a server error, a refused key...) says nothing of the job's fate.
        task_errors = [e.to_dict() for e in update.errors if e.category in ENDS_A_JOB]
        other_errors = [e for e in job.errors if not e.get("result_failure")]

        changes: dict[str, Any] = {}
        new_results = sorted(results.values(), key=lambda r: r["video_uuid"])
        if new_results != job.results:
            changes["results"] = new_results
        errors = other_errors + failures + [e for e in task_errors if e not in other_errors]
        costs = [c["cost_usd"] for c in [*new_results, *failures] if isinstance(c.get("cost_usd"), (int, float))]
        if costs and round(sum(costs), 6) != job.cost_usd:
            changes["cost_usd"] = round(sum(costs), 6)
        if errors != job.errors:
            changes["errors"] = errors
        done = len(results) + len(failures)
        ended = bool(task_errors) or done >= job.number_results
        if ended:
            status = "success" if not failures and not task_errors else ("partial" if results else "failed")
            changes.update(status=status, finished_at=time.time(), progress=100)
        elif update.items and job.status in ("pending", "submitted", "unknown"):
            changes["status"] = "processing"
        if not ended and progress:
            average = sum(progress) // len(progress)
            if average != job.progress:
                changes["progress"] = average
        return changes


def _settled(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The errors without the notes that said the submission's fate was unknown, once it is known."""
    return [e for e in errors if e.get("category") != UNKNOWN_FATE]


def _usable_video(item: dict[str, Any]) -> bool:
    uuid, url = item.get("videoUUID"), item.get("videoURL")
    return isinstance(uuid, str) and bool(uuid) and isinstance(url, str) and url.startswith(("https://", "http://"))


def _has_redacted_media(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_redacted_media(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_redacted_media(v) for v in value)
    return isinstance(value, str) and value.startswith(REDACTED_PREFIX)


def _progress(job: JobRecord, waited: float) -> tuple[float, float, str]:
    started = job.submitted_at or job.created_at
    elapsed = max(waited, time.time() - started)
    estimated = min(95.0, 100.0 * elapsed / TYPICAL_JOB_SECONDS)
    pct = max(float(job.progress or 0), estimated)
    ready = len(job.results)
    message = f"{job.status}: {ready} of {job.number_results} video(s) ready, {int(elapsed)} s elapsed"
    return pct, 100.0, message

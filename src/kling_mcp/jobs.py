"""The job lifecycle: spend guard, ledger, submission, one shared poller, and waiting.

Every paid job is written to the ledger before its request leaves, and is tracked
until it ends, across restarts and across instances sharing a ledger. Each in-flight job
is polled by one instance at a time, the holder of its lease in the ledger; an instance
renews its leases with a heartbeat, and takes over the jobs of one that stopped sending
it. An instance polls the jobs it holds together, one HTTP request per tick, each job on
its own schedule (``_poll_schedule``), and reads and writes the ledger once per tick.
Waiters see every job, whoever polls it: on PostgreSQL, told of each change as it commits (LISTEN/NOTIFY),
and otherwise through one batched watch of the ledger.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ._poll_schedule import DEFAULT_RENDER_S, RenderWindow, is_probe, may_poll_early_by, next_poll_in, render_windows
from .core import PreparedRequest
from .ledger import REDACTED_PREFIX, TERMINAL, JobRecord, Ledger, LedgerUnavailable, PollLease
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
# An instance that sends no heartbeat for this long loses its polling leases (KLING_MCP_POLL_LEASE);
# heartbeats go every third of it, so a dead instance's jobs are taken over within 4/3 of it.
DEFAULT_LEASE_S = 30.0
# How often waiters' jobs are read back from the ledger, to see what other instances wrote.
WATCH_INTERVAL_S = 0.5
# While the ledger's change feed listens (PostgreSQL), waiters learn of other instances' changes from it as
# they commit; the read is then only a safety net, this often.
FEED_WATCH_INTERVAL_S = 5.0
# Render-time history is read again this often.
HISTORY_REFRESH_S = 60.0


class MissingApiKey(RunwareError):
    MESSAGE = (
        "No Runware API key is configured, so nothing can be submitted. Set RUNWARE_API_KEY in the MCP "
        "client's configuration for kling-mcp (create a key at https://my.runware.ai), or run kling-mcp "
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
        poll_max_s: float = 30.0,
        stalled_after_s: float = DEFAULT_STALLED_AFTER_S,
        submit_deadline_s: float = 60.0,
        refresh_deadline_s: float = 30.0,
        resend_interval_s: float = 15.0,
        safety_poll_s: float | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        default_render_s: tuple[float, float] = DEFAULT_RENDER_S,
        watch_interval_s: float = WATCH_INTERVAL_S,
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.caps = caps
        # The shortest and the longest gap between two polls of a job.
        self._poll_floor, self._poll_cap = poll_initial_s, poll_max_s
        self.stalled_after_s = stalled_after_s
        # The longest a submit tool call waits for Runware before it answers "unknown" with the task_id.
        self.submit_deadline_s = submit_deadline_s
        self.refresh_deadline_s = refresh_deadline_s
        # How long after a send was given up on the poller waits before it may send the task again: a request
        # that timed out may still reach Runware, and its record must have had the time to show it.
        self.resend_interval_s = resend_interval_s
        # Set when webhooks bring each result (webhooks.py): a job already acknowledged is then polled only
        # this often, a safety net for a delivery that never came.
        self.safety_poll_s = safety_poll_s
        self._applying = anyio.Lock()
        # This instance's name in the ledger's leases: unique per process and start, and saying which process
        # on which host holds them, so that a dead process's leases on this host are taken at once.
        self.instance_id = f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
        self.lease_s, self.watch_interval_s = lease_s, watch_interval_s
        self._default_window = RenderWindow.default(default_render_s)
        self._windows: dict[str, RenderWindow] = {}
        self._windows_read = -HISTORY_REFRESH_S
        # The in-flight jobs this instance holds the lease of, when each is next due (monotonic), and how much
        # earlier it may be polled along with others, in one request.
        self._held: dict[str, PollLease] = {}
        self._due: dict[str, float] = {}
        self._early: dict[str, float] = {}
        self._sending: set[str] = set()  # jobs whose submission this instance has on its way: not polled meanwhile
        self._seen: dict[str, float] = {}  # the ledger's updated_at of each waited-on job, as last read
        # The held jobs last read or written here as rendering with nothing come yet: (updated_at, progress) then.
        # Most of a tick is such jobs still rendering; their progress is moved without reading them again, on
        # condition that no one wrote them since (Ledger.advance_progress).
        self._rendering: dict[str, tuple[float, int]] = {}
        self._writes = 0  # write transactions so far: a tick's early read is used only if none came since
        self._not_found: dict[str, int] = {}
        # When a poll here last found each job still rendering (wall clock): with the time its end was noticed,
        # the interval its render ended in, which the ledger keeps for the schedule to learn from.
        self._seen_running: dict[str, float] = {}
        self._last_send: dict[str, float] = {}
        self._changed: dict[str, anyio.Event] = {}
        self._listening = False  # whether the ledger's change feed tells this instance of others' changes
        self._wake = anyio.Event()
        self.polls_sent = 0
        self.resends = 0  # submissions sent again because Runware's record showed they never arrived
        self.finished_at: dict[str, float] = {}  # when the poller first saw each job end (for benchmarks)

    @property
    def polled_here(self) -> set[str]:
        """The in-flight jobs this instance holds the polling lease of."""
        return set(self._held)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self, task_group: TaskGroup) -> None:
        """Take the leases of every job the ledger has in flight that no live instance polls, and start
        the poller, the heartbeat and the waiters' watch."""
        await self._claim()
        if self._held:
            log.info("Resuming %d job(s) still in flight", len(self._held))
        task_group.start_soon(self._poll_loop)
        task_group.start_soon(self._lease_loop)
        task_group.start_soon(self._watch_loop)

    async def _claim(self, only: list[str] | None = None) -> list[PollLease]:
        """Renew this instance's leases and take those free (of ``only``, if given); schedule new ones."""
        try:
            if only is None:
                await self._free_dead_local_leases()
            leases = await anyio.to_thread.run_sync(
                lambda: self.ledger.claim_polls(self.instance_id, lease_s=self.lease_s, only=only)
            )
        except LedgerUnavailable:
            return []  # already reported; leases are kept as they are until the ledger answers
        now = time.monotonic()
        if only is None:
            for gone in set(self._held) - {lease.task_uuid for lease in leases}:
                self._drop(gone)  # ended, or taken by another instance while this one was silent
        for lease in leases:
            self._held[lease.task_uuid] = lease
            if lease.task_uuid not in self._due:
                self._schedule(lease, now)
                self._wake.set()
        return leases

    async def _free_dead_local_leases(self) -> None:
        """Release the leases of processes on this host that no longer run (a crashed server, restarted):
        their jobs are polled again at once, not a lease later. Other hosts' leases expire by themselves."""
        host = socket.gethostname()
        for owner in await anyio.to_thread.run_sync(self.ledger.lease_owners):
            owner_host, _, rest = owner.partition("/")
            pid = rest.partition("/")[0]
            if owner != self.instance_id and owner_host == host and pid.isdigit() and not _process_exists(int(pid)):
                released = await anyio.to_thread.run_sync(self.ledger.release_leases, owner)
                log.info("Taking over %d job(s) and storyboard(s) of a kling-mcp process of this host that stopped",
                         released)  # fmt: skip

    def _drop(self, task_uuid: str) -> None:
        self._held.pop(task_uuid, None)
        self._due.pop(task_uuid, None)
        self._early.pop(task_uuid, None)
        self._seen_running.pop(task_uuid, None)
        self._rendering.pop(task_uuid, None)

    def _remember(self, job: JobRecord) -> None:
        if _rendering_plainly(job) and job.task_uuid in self._held:
            self._rendering[job.task_uuid] = (job.updated_at, job.progress)
        else:
            self._rendering.pop(job.task_uuid, None)

    def _schedule(self, lease: PollLease, now: float) -> None:
        open_fate = lease.status in ("pending", "unknown") or lease.submitted_at is None
        started = lease.created_at if open_fate else lease.submitted_at
        age = max(0.0, time.time() - (started or time.time()))
        window = self._windows.get(lease.model, self._default_window)
        if lease.task_uuid in self._sending:
            # Its submission settles it and schedules it again; until then, a poll could only find it absent.
            self._due[lease.task_uuid], self._early[lease.task_uuid] = now + self.submit_deadline_s, 0.0
            return
        if self.safety_poll_s is not None and not open_fate:
            # Webhooks bring its results: a poll is only the safety net for a delivery that never came.
            self._due[lease.task_uuid], self._early[lease.task_uuid] = now + self.safety_poll_s, 0.0
            return
        probe = is_probe(lease.task_uuid)
        gap = next_poll_in(age, window, open_fate=open_fate, floor=self._poll_floor, cap=self._poll_cap, probe=probe)
        self._due[lease.task_uuid] = now + gap
        self._early[lease.task_uuid] = may_poll_early_by(age, window, gap, open_fate=open_fate)

    async def _track(self, task_uuid: str) -> None:
        """Hold the lease of a job this instance sends, and schedule its polls from its state now (the
        schedules of other jobs are left as they are)."""
        self._due.pop(task_uuid, None)
        await self._claim(only=[task_uuid])

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
        # Held before it is sent: no other instance looks at a job while its submission is on its way.
        self._sending.add(job.task_uuid)
        await self._track(job.task_uuid)
        self._last_send[job.task_uuid] = time.monotonic()
        result: SubmitResult | None = None
        try:
            with anyio.move_on_after(self.submit_deadline_s):
                result = await self.client.submit(payload)
        except BaseException:
            # Cancelled or crashed mid-send: the job may or may not be at Runware; the poller finds out.
            with anyio.CancelScope(shield=True):
                self._sending.discard(job.task_uuid)
                await self._update(job.task_uuid, status="unknown")
                await self._track(job.task_uuid)
            raise
        self._sending.discard(job.task_uuid)
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
                await self._track(task_uuid)
            case "rejected":
                record = await self._update(task_uuid, status="rejected", errors=settled + errors, finished_at=now)
            case "failed":
                record = await self._update(task_uuid, status="failed", errors=settled + errors, finished_at=now)
            case _:
                note = {"category": UNKNOWN_FATE, "message": scrub(result.note), "next_step": "kling-mcp keeps "
                        "looking the task up in Runware's record; it is sent again only if that shows it never "
                        "arrived, so that it is not paid for twice. Check again with get_video_status."}  # fmt: skip
                record = await self._update(task_uuid, status="unknown", errors=settled + errors + [note])
                await self._track(task_uuid)
        return record

    async def _update(self, task_uuid: str, **changes: Any) -> JobRecord | None:
        return (await self._update_many({task_uuid: changes})).get(task_uuid)

    async def _update_many(self, changes: dict[str, dict[str, Any]], *, states_only: bool = False) -> dict[str, JobRecord]:
        """Write a tick's changes in one transaction, wake the waiters of every changed job, and stop
        polling those that ended (with ``states_only``, the jobs come back without payload or estimate)."""
        if not changes:
            return {}
        records = await anyio.to_thread.run_sync(
            lambda: self.ledger.update_many(changes, keep_ended=True, states_only=states_only)
        )
        self._writes += 1
        for task_uuid, record in records.items():
            self._remember(record)
            self._changed_here(task_uuid, record.updated_at)
            if record.status in TERMINAL:
                self._drop(task_uuid)
                self.finished_at.setdefault(task_uuid, time.monotonic())
        return records

    def _changed_here(self, task_uuid: str, updated_at: float) -> None:
        if task_uuid in self._changed:
            self._seen[task_uuid] = updated_at  # the watch need not wake its waiters again
        self._notify(task_uuid)

    def _notify(self, task_uuid: str) -> None:
        event = self._changed.pop(task_uuid, None)
        if event is not None:
            event.set()

    # -- reading -------------------------------------------------------------------------------------

    async def get(self, task_uuid: str) -> JobRecord | None:
        return await anyio.to_thread.run_sync(self.ledger.get, task_uuid)

    async def refresh(self, task_uuids: list[str]) -> dict[str, JobRecord | None]:
        """The jobs, after one poll (a single HTTP request, within ``refresh_deadline_s``) of those still in
        flight that no other live instance polls, and of stalled ones. A job another instance holds is
        read as that instance last wrote it: it is polled there on its own schedule."""
        found = await anyio.to_thread.run_sync(self.ledger.get_many, task_uuids)
        jobs: dict[str, JobRecord | None] = {u: found.get(u) for u in task_uuids}
        in_flight = [u for u, j in jobs.items() if j is not None and j.in_flight]
        stalled = [u for u, j in jobs.items() if j is not None and j.status == "stalled"]
        live = stalled + [lease.task_uuid for lease in (await self._claim(in_flight) if in_flight else [])]
        if live and self.client.has_key:
            try:
                with anyio.move_on_after(self.refresh_deadline_s):
                    await self._poll_once(live)
            except RunwareError as exc:
                log.warning("Refreshing %d job(s) failed: %s", len(live), exc)
            jobs.update(await anyio.to_thread.run_sync(self.ledger.get_many, live))
        return jobs

    async def wait(
        self, task_uuid: str, timeout: float, on_progress: ProgressCallback | None = None
    ) -> tuple[JobRecord | None, bool]:
        """Wait until the job ends or ``timeout`` passes: (the job as it is then, whether it ended). The job
        may be polled by any instance: this one learns of its changes from its own writes at once, and from
        other instances' through the ledger watch, within ``watch_interval_s``."""
        job = await self.get(task_uuid)
        if job is None or job.status in TERMINAL:
            return job, job is not None
        if job.status == "stalled":
            # Not polled any more: one look-up on request, then the answer as it stands.
            job = (await self.refresh([task_uuid]))[task_uuid]
            return job, job is not None and job.status in TERMINAL
        started = time.monotonic()
        with anyio.move_on_after(timeout):
            while True:
                event = self._changed.setdefault(task_uuid, anyio.Event())
                self._seen.setdefault(task_uuid, job.updated_at)
                # Progress is estimated between changes, so it moves at least every few seconds.
                with anyio.move_on_after(2.0):
                    await event.wait()
                job = await self.get(task_uuid)
                if job is None or job.status in TERMINAL or job.status == "stalled":
                    break
                if on_progress is not None:
                    await on_progress(*_progress(job, time.monotonic() - started))
        self._changed.pop(task_uuid, None)
        job = await self.get(task_uuid)
        ended = job is not None and job.status in TERMINAL
        if on_progress is not None and ended:
            await on_progress(100.0, 100.0, f"{job.status}")  # type: ignore[union-attr]
        return job, ended

    async def _watch_loop(self) -> None:
        """Wake the waiters of jobs another instance changed: as the ledger's change feed tells of them, and
        through one read of every waited-on job per interval (only a safety net while the feed listens)."""
        try:
            feed = self.ledger.change_feed()
        except LedgerUnavailable:
            feed = None
        async with anyio.create_task_group() as tg:
            if feed is not None:
                tg.start_soon(feed.follow, self._heard, self._feed_listens)
            await self._read_waited_loop()

    def _heard(self, task_uuids: list[str]) -> None:
        for task_uuid in task_uuids:
            self._notify(task_uuid)

    def _feed_listens(self, listening: bool) -> None:
        if listening and not self._listening:
            for task_uuid in list(self._changed):  # what changed while no one listened: each waiter reads once
                self._notify(task_uuid)
        self._listening = listening

    async def _read_waited_loop(self) -> None:
        read_at = time.monotonic()
        while True:
            await anyio.sleep(self.watch_interval_s)
            for task_uuid in set(self._seen) - set(self._changed):
                del self._seen[task_uuid]
            waited = list(self._changed)
            if not waited or (self._listening and time.monotonic() - read_at < FEED_WATCH_INTERVAL_S):
                continue
            read_at = time.monotonic()
            try:
                records = await anyio.to_thread.run_sync(self.ledger.poll_states, waited)
            except LedgerUnavailable:
                continue
            for task_uuid, record in records.items():
                if record.updated_at != self._seen.get(task_uuid):
                    self._seen[task_uuid] = record.updated_at
                    self._notify(task_uuid)

    # -- polling ---------------------------------------------------------------------------------------

    async def _lease_loop(self) -> None:
        """The heartbeat: renew this instance's leases, take free and expired ones, and read the render-time
        history now and then. When the service stops (its task group is cancelled),
        its leases are given up, so that other instances take its jobs at once, not after the lease."""
        try:
            while True:
                await anyio.sleep(self.lease_s / 3)
                try:
                    await self._claim()
                    await self._read_history()
                except Exception:  # the heartbeat must outlive any one failure
                    log.exception("Unexpected error while renewing polling leases")
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    await anyio.to_thread.run_sync(self.ledger.release_leases, self.instance_id)
                except Exception:  # noqa: BLE001 - a closed or unreachable ledger: the leases expire by themselves
                    log.debug("Polling leases not released; they expire in %g s", self.lease_s)
                self._held.clear()

    async def _read_history(self) -> None:
        if time.monotonic() - self._windows_read < HISTORY_REFRESH_S:
            return
        self._windows_read = time.monotonic()
        try:
            samples = await anyio.to_thread.run_sync(self.ledger.render_samples)
        except LedgerUnavailable:
            return
        self._windows = render_windows(samples, self._default_window)

    async def _poll_loop(self) -> None:
        await self._read_history()
        while True:
            if not self._due or not self.client.has_key:
                self._wake = anyio.Event()
                await self._wake.wait()
                continue
            with anyio.move_on_after(max(0.0, min(self._due.values()) - time.monotonic())):
                self._wake = anyio.Event()
                await self._wake.wait()
            await self._sweep_stalled()
            now = time.monotonic()
            # Every job due now, and those due within half their gap: one request for them all.
            batch = sorted(u for u, due in self._due.items() if due - now <= self._early.get(u, 0.0))
            if not batch:
                continue
            try:
                await self._poll_once(batch)
            except RunwareError as exc:
                log.warning("Polling %d job(s) failed, will retry: %s", len(batch), exc)
            except Exception:  # the poller must outlive any one bad answer
                log.exception("Unexpected error while polling")
            now = time.monotonic()
            for task_uuid in batch:
                lease = self._held.get(task_uuid)
                if lease is not None:
                    self._schedule(lease, now)

    async def _poll_once(self, task_uuids: list[str]) -> None:
        """One tick: the poll request, and side by side the ledger read of the jobs not known here to be
        rendering. Those that still are have their progress moved in one write; the rest are merged."""
        self.polls_sent += 1
        jobs: dict[str, JobRecord] = {}
        writes = self._writes
        unknown = [u for u in task_uuids if u not in self._rendering]

        async def read() -> None:
            if unknown:
                jobs.update(await anyio.to_thread.run_sync(self.ledger.poll_states, unknown))

        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            updates = await self.client.poll(task_uuids)
        rest = await self._advance_rendering(updates)
        await self._apply_updates(rest, jobs, read_after_writes=writes)

    async def _advance_rendering(self, updates: Mapping[str, TaskUpdate]) -> dict[str, TaskUpdate]:
        """Move the progress of the jobs known here to be rendering that Runware says still are, without
        reading them: the updates left to merge (every other one, and any of these written elsewhere since)."""
        rest: dict[str, TaskUpdate] = {}
        moves: dict[str, tuple[float, int]] = {}
        async with self._applying:
            now = time.time()
            for task_uuid, update in updates.items():
                known = self._rendering.get(task_uuid)
                if known is None or not _says_still_rendering(update):
                    rest[task_uuid] = update
                    continue
                self._seen_running[task_uuid] = now
                progress = _average_progress(update)
                if progress is not None and progress != known[1]:
                    moves[task_uuid] = (known[0], progress)
            if not moves:
                return rest
            moved = await anyio.to_thread.run_sync(self.ledger.advance_progress, moves)
        for task_uuid, (_, progress) in moves.items():
            if task_uuid in moved:
                self._rendering[task_uuid] = (moved[task_uuid], progress)
                self._changed_here(task_uuid, moved[task_uuid])
            else:
                self._rendering.pop(task_uuid, None)
                rest[task_uuid] = updates[task_uuid]
        return rest

    async def apply_update(self, task_uuid: str, update: TaskUpdate) -> JobRecord | None:
        """Merge what Runware said of one task outside a poll (a webhook's delivery) through the one path a
        poll's answer takes, and wake whoever waits on the job: the job as it is afterwards (None if the
        ledger has no such job). A delivery saying nothing, or "not found", changes nothing: only Runware's
        record may say a task never arrived."""
        if update.not_found or (not update.items and not update.errors):
            return await self.get(task_uuid)
        await self._apply_updates({task_uuid: update}, delivered=True)  # one answer at a time, polls' too
        return await self.get(task_uuid)

    async def _apply_updates(
        self, updates: Mapping[str, TaskUpdate], jobs: Mapping[str, JobRecord] | None = None,
        read_after_writes: int | None = None, *, delivered: bool = False,
    ) -> dict[str, JobRecord]:  # fmt: skip
        """The one path by which Runware's word on jobs reaches the ledger, for polls and webhooks alike: read
        the jobs in one batch (unless the caller read them while the answer came, and nothing was written
        here since), merge each update, write every change in one transaction, wake waiters."""
        async with self._applying:  # two answers for one job must not merge from the same stale read
            return await self._apply_locked(updates, jobs if read_after_writes == self._writes else None, delivered)

    async def _apply_locked(
        self, updates: Mapping[str, TaskUpdate], jobs: Mapping[str, JobRecord] | None, delivered: bool
    ) -> dict[str, JobRecord]:
        missing = list(updates) if jobs is None else [u for u in updates if u not in jobs]
        if missing:
            jobs = {**(jobs or {}), **await anyio.to_thread.run_sync(self.ledger.poll_states, missing)}
        assert jobs is not None
        for job in jobs.values():
            self._remember(job)
        changes: dict[str, dict[str, Any]] = {}
        for task_uuid, update in updates.items():
            job = jobs.get(task_uuid)
            if job is None or job.status in TERMINAL:
                # Ended (perhaps by another instance, or by a re-send's answer): nothing may change it now.
                self._drop(task_uuid)
                continue
            silent = not update.items and not update.errors
            if update.not_found or (silent and job.status in ("pending", "unknown")):
                # Not known to getResponse (or not a word about a submission whose fate is open): ask the record.
                # (A tick reads jobs without their payload; a re-send needs it.)
                full = await self.get(task_uuid) if not job.payload else job
                if full is None or full.status in TERMINAL:
                    continue
                found = await self._not_found_changes(full)
            else:
                self._not_found.pop(task_uuid, None)
                found = self._merge(job, update)
                self._note_render_time(job, found, delivered)
            if found:
                changes[task_uuid] = found
        records = await self._update_many(changes, states_only=True)
        for record in records.values():
            lease = self._held.get(record.task_uuid)
            if lease is not None and (lease.status != record.status or lease.submitted_at != record.submitted_at):
                self._held[record.task_uuid] = PollLease(record.task_uuid, record.model, record.status,
                                                         record.created_at, record.submitted_at)  # fmt: skip
        return records

    def _note_render_time(self, job: JobRecord, changes: dict[str, Any], delivered: bool) -> None:
        """Remember when a poll found the job still rendering; when it has ended, add to its changes how long
        it was last seen rendering (a webhook is sent as the job ends: its render took until now)."""
        now = time.time()
        if changes.get("status") not in TERMINAL:
            if not delivered:
                self._seen_running[job.task_uuid] = now
            return
        seen = now if delivered else self._seen_running.pop(job.task_uuid, None)
        if seen is not None and job.submitted_at is not None and seen >= job.submitted_at:
            changes["seen_running_s"] = seen - job.submitted_at

    async def _sweep_stalled(self) -> None:
        """Stop polling jobs that have had no final answer for longer than the maximum age (from the leases'
        creation times: no job is read for this, so it runs before every tick)."""
        now = time.time()
        old = [lease for lease in self._held.values() if now - lease.created_at > self.stalled_after_s]
        if not old:
            return
        jobs = await anyio.to_thread.run_sync(self.ledger.get_many, [lease.task_uuid for lease in old])
        changes = {u: self._stalled(job) for u, job in jobs.items() if job.in_flight}
        for task_uuid in [lease.task_uuid for lease in old]:
            self._drop(task_uuid)
        await self._update_many(changes)
        for task_uuid in changes:
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
        sent_here = self._last_send.get(job.task_uuid)
        if sent_here is not None and time.monotonic() - sent_here < self.resend_interval_s:
            return {}
        # Sent by another instance (or before a restart): its last write is when that send was given up on.
        if sent_here is None and time.time() - job.updated_at < self.resend_interval_s:
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
        await self._apply_submission(job.task_uuid, result, job.errors)
        if keep is not None:
            await self._update(job.task_uuid, status=keep)
        return {}

    def _merge(self, job: JobRecord, update: TaskUpdate) -> dict[str, Any]:
        if _rendering_plainly(job) and _says_still_rendering(update):
            # A job still rendering, as it was. Only its progress may move.
            average = _average_progress(update)
            return {"progress": average} if average is not None and average != job.progress else {}
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


def _process_exists(pid: int) -> bool:
    if sys.platform == "win32":
        return True  # os.kill there would end the process: its leases expire instead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # there, but another user's
    return True


def _rendering_plainly(job: JobRecord) -> bool:
    """Processing, with no result and no failed result yet: an answer that it still is can change nothing
    but its progress."""
    return job.status == "processing" and not job.results and not any(e.get("result_failure") for e in job.errors)


def _says_still_rendering(update: TaskUpdate) -> bool:
    return (
        not update.errors and bool(update.items)
        and all(item.get("status") == "processing" and "error" not in item for item in update.items)
    )  # fmt: skip


def _average_progress(update: TaskUpdate) -> int | None:
    progress = [int(i["progress"]) for i in update.items if isinstance(i.get("progress"), (int, float))]
    return sum(progress) // len(progress) if progress else None


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

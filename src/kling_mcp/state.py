"""What the server holds while it runs: settings, the ledger, the Runware client and the job service."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio

from .files import MediaUploads, Sandbox, SizeLimits, VideoDownloads
from .jobs import Caps, JobService
from .ledger import Ledger, LedgerUnavailable, UnavailableLedger
from .runware import RunwareClient
from .settings import Settings

log = logging.getLogger("kling_mcp")

# Simulated jobs take Kling's 30-90 s, compressed tenfold, so a demo finishes in seconds.
SIMULATED_JOB_SECONDS = (30.0, 90.0)
SIMULATED_TIME_SCALE = 0.1


@dataclass(frozen=True, slots=True)
class AppState:
    settings: Settings
    ledger: Ledger
    jobs: JobService
    simulated: bool
    sandbox: Sandbox  # where local media may be read from (before the client's roots narrow it)
    uploads: MediaUploads
    downloads: VideoDownloads


def make_lifespan(
    settings: Settings,
    *,
    simulate: bool = False,
    on_start: Callable[[AppState], None] | None = None,
    on_stop: Callable[[AppState], None] | None = None,
) -> Callable[[Any], AbstractAsyncContextManager[AppState]]:
    @asynccontextmanager
    async def lifespan(_server: Any) -> AsyncIterator[AppState]:
        async with AsyncExitStack() as stack:
            api_key = settings.api_key.get_secret_value() if settings.api_key else None
            base_url, data_dir, output_dir = settings.base_url, settings.data_dir, settings.output_dir
            poll_initial, poll_max = settings.poll_initial_s, settings.poll_max_s
            if simulate:
                from .emulator import run_emulator

                api_key = secrets.token_urlsafe(24)
                emulator = await stack.enter_async_context(
                    run_emulator(api_key=api_key, job_seconds=SIMULATED_JOB_SECONDS, time_scale=SIMULATED_TIME_SCALE)
                )
                base_url, data_dir, output_dir = emulator.url, data_dir / "simulate", output_dir / "simulate"
                poll_initial, poll_max = min(poll_initial, 1.0), min(poll_max, 2.0)
                log.warning(
                    "SIMULATE MODE: requests go to kling-mcp's built-in Runware emulator at %s, not to Runware. "
                    "Nothing is paid; videos are placeholders. Jobs are kept in %s.", base_url, data_dir,
                )  # fmt: skip
            try:
                ledger: Ledger = Ledger(data_dir / "jobs.sqlite3")
            except LedgerUnavailable as exc:
                log.error("%s", exc)  # one line at start-up; paid and job tools answer with it too
                ledger = UnavailableLedger(exc)  # type: ignore[assignment]
            stack.callback(ledger.close)
            client = await stack.enter_async_context(
                RunwareClient(api_key, base_url, timeout=settings.request_timeout_s)
            )
            if api_key is None:
                log.warning("RUNWARE_API_KEY is not set: listing models and dry runs work; submissions will say how to set it.")
            jobs = JobService(
                client, ledger, caps=Caps(settings.daily_cap_usd, settings.total_cap_usd),
                poll_initial_s=poll_initial, poll_max_s=poll_max, stalled_after_s=settings.stalled_after_s,
                submit_deadline_s=2 * settings.request_timeout_s, refresh_deadline_s=settings.request_timeout_s,
            )  # fmt: skip
            limits = SizeLimits(*(int(mb * 1_000_000) for mb in (settings.max_image_mb, settings.max_video_mb,
                                                                 settings.max_audio_mb)))  # fmt: skip
            sandbox = Sandbox(settings.media_roots_or_default, limits, always=[output_dir])
            log.info("Local media may be read from: %s. Videos are saved to %s.",
                     ", ".join(sandbox.describe()) or "nowhere", output_dir)  # fmt: skip
            downloads = VideoDownloads(output_dir, ledger, timeout=settings.request_timeout_s)
            stack.push_async_callback(downloads.aclose)
            task_group = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(task_group.cancel_scope.cancel)
            await jobs.start(task_group)
            state = AppState(
                settings=settings, ledger=ledger, jobs=jobs, simulated=simulate, sandbox=sandbox,
                uploads=MediaUploads(client, ledger), downloads=downloads,
            )  # fmt: skip
            if on_start is not None:
                on_start(state)
                if on_stop is not None:
                    stack.callback(on_stop, state)
            yield state

    return lifespan

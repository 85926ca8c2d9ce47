"""What the server holds while it runs: settings, the ledger, the Runware client and the job service."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx

from ._poll_schedule import DEFAULT_RENDER_S
from .files import MediaUploads, Sandbox, SizeLimits, VideoDownloads
from .jobs import Caps, JobService
from .ledger import Ledger, LedgerUnavailable, UnavailableLedger
from .runware import RunwareClient
from .service import VideoService
from .storyboard import StoryboardRunner, StoryboardService
from .settings import Settings
from .webhooks import WebhookIssuer

log = logging.getLogger("kling_mcp")

# Simulated jobs take Kling's 30-90 s, compressed tenfold, so a demo finishes in seconds.
SIMULATED_JOB_SECONDS = (30.0, 90.0)
SIMULATED_TIME_SCALE = 0.1
# The host of every simulated result and upload URL. Each simulating process serves its
# emulator on a port of its own, and a URL naming that port would die with the process; so
# the URLs name this host instead (.invalid never resolves, RFC 2606), and each process
# fetches them from its own live emulator, which reads the store all of them share.
SIMULATED_MEDIA_BASE = "http://emulator.kling-mcp.invalid"
SIMULATED_STORE = "emulator.sqlite3"  # in the simulate data folder: the simulated jobs and uploads


def simulated_settings(settings: Settings) -> Settings:
    """The settings a simulating server runs with: its ledger, emulator store and videos
    are kept apart from the real ones, in ``simulate`` folders."""
    return settings.model_copy(
        update={"data_dir": settings.data_dir / "simulate", "output_dir": settings.output_dir / "simulate"}
    )


class _ThroughEmulator(httpx.AsyncBaseTransport):
    """Sends requests for :data:`SIMULATED_MEDIA_BASE` to this process's emulator; others go out as usual."""

    def __init__(self, emulator_base_url: str) -> None:
        self._simulated = httpx.URL(SIMULATED_MEDIA_BASE)
        self._emulator = httpx.URL(emulator_base_url)
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == self._simulated.host:
            request.url = request.url.copy_with(
                scheme=self._emulator.scheme, host=self._emulator.host, port=self._emulator.port
            )
            request.headers["Host"] = request.url.netloc.decode("ascii")
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass(frozen=True, slots=True)
class AppState:
    settings: Settings
    ledger: Ledger
    jobs: JobService
    simulated: bool
    sandbox: Sandbox  # where local media may be read from (before the client's roots narrow it)
    uploads: MediaUploads
    downloads: VideoDownloads
    videos: VideoService  # the one submission path: check, price, caps, uploads, submit
    storyboards: StoryboardService


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
            default_render_s = DEFAULT_RENDER_S
            download_transport: httpx.AsyncBaseTransport | None = None
            if simulate:
                from .emulator import run_emulator

                run_settings = simulated_settings(settings)
                data_dir, output_dir = run_settings.data_dir, run_settings.output_dir
                api_key = secrets.token_urlsafe(24)
                emulator = await stack.enter_async_context(run_emulator(
                    api_key=api_key, job_seconds=SIMULATED_JOB_SECONDS, time_scale=SIMULATED_TIME_SCALE,
                    store_path=data_dir / SIMULATED_STORE, media_base_url=SIMULATED_MEDIA_BASE,
                ))  # fmt: skip
                base_url = emulator.url
                download_transport = _ThroughEmulator(emulator.base_url)
                poll_initial, poll_max = min(poll_initial, 1.0), min(poll_max, 2.0)
                # The schedule starts from the emulator's render times, as from Kling's in production.
                default_render_s = (SIMULATED_JOB_SECONDS[0] * SIMULATED_TIME_SCALE, SIMULATED_JOB_SECONDS[1] * SIMULATED_TIME_SCALE)
                log.warning(
                    "SIMULATE MODE: requests go to kling-mcp's built-in Runware emulator at %s, not to Runware. "
                    "Nothing is paid; videos are simulated. Jobs are kept in %s, shared with every "
                    "simulating server that uses this data folder.", base_url, data_dir,
                )  # fmt: skip
            # Simulated jobs never go into a shared database, where real instances would poll them.
            location = data_dir / "jobs.sqlite3" if simulate else settings.ledger_location
            try:
                ledger: Ledger = Ledger(location)
            except LedgerUnavailable as exc:
                if isinstance(location, str):
                    # A shared database that cannot be reached: the instance stops with the one line, so its
                    # supervisor restarts it (a stand-in ledger would never recover when the database does).
                    raise
                # A local data folder: the server still starts (models, dry runs), and says why on every
                # paid or job tool; the same line goes to stderr now.
                log.error("%s", exc)
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
                safety_poll_s=settings.safety_poll_s if settings.public_url else None,
                lease_s=settings.poll_lease_s, default_render_s=default_render_s,
            )  # fmt: skip
            limits = SizeLimits(*(int(mb * 1_000_000) for mb in (settings.max_image_mb, settings.max_video_mb,
                                                                 settings.max_audio_mb)))  # fmt: skip
            sandbox = Sandbox(settings.media_roots_or_default, limits, always=[output_dir])
            log.info("Local media may be read from: %s. Videos are saved to %s.",
                     ", ".join(sandbox.describe()) or "nowhere", output_dir)  # fmt: skip
            downloads = VideoDownloads(output_dir, ledger, timeout=settings.request_timeout_s,
                                       transport=download_transport)  # fmt: skip
            stack.push_async_callback(downloads.aclose)
            task_group = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(task_group.cancel_scope.cancel)
            await jobs.start(task_group)
            uploads = MediaUploads(client, ledger)
            webhooks = WebhookIssuer(settings.public_url, ledger) if settings.public_url else None
            videos = VideoService(jobs=jobs, ledger=ledger, uploads=uploads, caps=jobs.caps,
                                  confirm_above_usd=settings.confirm_above_usd, simulated=simulate,
                                  webhooks=webhooks)  # fmt: skip
            storyboards = StoryboardService(videos, ledger)
            runner = StoryboardRunner(storyboards, videos, ledger, uploads, downloads, sandbox)
            await runner.start(task_group)
            state = AppState(
                settings=settings, ledger=ledger, jobs=jobs, simulated=simulate, sandbox=sandbox,
                uploads=uploads, downloads=downloads, videos=videos, storyboards=storyboards,
            )  # fmt: skip
            if on_start is not None:
                on_start(state)
                if on_stop is not None:
                    stack.callback(on_stop, state)
            yield state

    return lifespan

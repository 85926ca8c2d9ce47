"""The ``kling-mcp`` command.

With no arguments it serves MCP over stdio, which is what MCP clients spawn: stdout then
belongs to the protocol, and everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import logging
import os
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

from . import __version__

LOOPBACK = ("127.0.0.1", "localhost", "::1")
WILDCARD = ("0.0.0.0", "::")


def _host_names(value: str | None) -> list[str]:
    """Host names from KLING_MCP_ALLOWED_HOSTS: separated by commas or spaces."""
    return [name for name in (value or "").replace(",", " ").split() if name]
# Settings whose values are never echoed, even when they are wrong.
SECRET_SETTINGS = ("RUNWARE_API_KEY", "KLING_MCP_DATABASE_URL", "api_key", "database_url")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kling-mcp",
        description="MCP server for the Kling video models on Runware. With no command: serve MCP over stdio.",
    )
    parser.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    parser.add_argument(
        "--token",
        default=os.environ.get("KLING_MCP_HTTP_TOKEN"),
        help="bearer token HTTP clients must send (env KLING_MCP_HTTP_TOKEN); required off loopback",
    )
    parser.add_argument(
        "--allowed-host", action="append", metavar="NAME", dest="allowed_hosts",
        help="a host name (or address) HTTP clients may reach the server by, besides loopback; repeat for more "
        "(replaces KLING_MCP_ALLOWED_HOSTS); needs a token",
    )  # fmt: skip
    parser.add_argument("--simulate", action="store_true", help="use the built-in Runware emulator: no account, no cost")
    parser.add_argument(
        "--media-root", action="append", type=Path, metavar="DIR",
        help="a folder local media may be read from; repeat for more (replaces KLING_MCP_MEDIA_ROOTS)",
    )  # fmt: skip
    parser.add_argument("--output-dir", type=Path, metavar="DIR", help="where download_video saves videos (KLING_MCP_OUTPUT_DIR)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (to stderr)")
    parser.add_argument("-q", "--quiet", action="store_true", help="log only problems (warnings and errors)")
    parser.add_argument("--version", action="version", version=f"kling-mcp {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("models", help="list the models and their limits")
    emulator = commands.add_parser("emulator", help="run the Runware emulator alone")
    emulator.add_argument("--host", default="127.0.0.1", dest="emulator_host")
    emulator.add_argument("--port", type=int, default=8089, dest="emulator_port")
    emulator.add_argument("--api-key", default=os.environ.get("KLING_MCP_EMULATOR_KEY", "emulator-key"))
    emulator.add_argument("--time-scale", type=float, default=0.1, help="multiply simulated job times (default 0.1)")
    commands.add_parser(
        "check", help="check the setup: API key present and accepted (not with --simulate), data and output folders "
        "writable, media folders",
    )  # fmt: skip
    commands.add_parser("demo", help="drive the server through a real MCP session against the emulator")
    board = commands.add_parser(
        "storyboard", help="make a storyboard from a JSON file (create_storyboard's arguments), without an MCP client"
    )
    board.add_argument("plan", type=Path, help="the storyboard as JSON: title, model, clips, ...")
    board.add_argument("--dry-run", action="store_true", help="check and price it only; nothing is sent")
    board.add_argument("--yes", action="store_true", help="confirm the total without asking (up to the caps)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        # The storyboard command prints its own progress: the server's notes would only interleave.
        level=logging.DEBUG if args.verbose else logging.WARNING if args.quiet or args.command == "storyboard"
        else logging.INFO,
        stream=sys.stderr,
        format="kling-mcp %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "httpcore", "mcp", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    match args.command:
        case "models":
            try:
                _print_models()
            except BrokenPipeError:  # e.g. piped into head
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        case "emulator":
            from .emulator import serve

            serve(host=args.emulator_host, port=args.emulator_port, api_key=args.api_key, time_scale=args.time_scale)
        case "check":
            sys.exit(asyncio.run(_check(args)))
        case "storyboard":
            from .storyboard_cli import run_storyboard

            sys.exit(asyncio.run(run_storyboard(_settings(args), args.plan, simulate=args.simulate,
                                                dry_run=args.dry_run, yes=args.yes)))  # fmt: skip
        case "demo":
            from .demo import run_demo

            sys.exit(asyncio.run(run_demo()))
        case _:
            from .ledger_engines import LedgerUnavailable

            unavailable: list[BaseException] = []
            try:
                _serve(args)
            except* LedgerUnavailable as problems:  # one clear line, not a traceback
                unavailable += problems.exceptions
            if unavailable:
                print("\n".join(f"kling-mcp: {problem}" for problem in unavailable), file=sys.stderr)
                sys.exit(2)


def _serve(args: argparse.Namespace) -> None:
    from .runware import register_secret
    from .server import create_server

    settings = _settings(args)
    if not args.http:
        from ._stdio import run_stdio

        run_stdio(create_server(settings, simulate=args.simulate))
        return
    register_secret(args.token)
    allowed = args.allowed_hosts if args.allowed_hosts is not None else _host_names(os.environ.get("KLING_MCP_ALLOWED_HOSTS"))
    public_url = settings.public_url
    if public_url:
        from .webhooks import public_host

        allowed = [*allowed, public_host(public_url)]  # Runware, and clients behind the same name, reach it so
    if (args.host not in LOOPBACK or allowed) and not args.token:
        reached = f"on {args.host}" if args.host not in LOOPBACK else f"to clients that reach it as {', '.join(allowed)}"
        print(
            f"kling-mcp: refusing to serve HTTP {reached} without a bearer token: anyone who can reach it "
            "could spend your Runware balance. Set KLING_MCP_HTTP_TOKEN (or --token), or serve 127.0.0.1 only.",
            file=sys.stderr,
        )
        sys.exit(2)
    import uvicorn

    log = logging.getLogger("kling_mcp")
    if args.host not in LOOPBACK and settings.media_roots == [] and os.environ.get("KLING_MCP_MEDIA_ROOTS") is None \
            and not args.media_root:  # fmt: skip
        log.warning("Serving HTTP off loopback: local media may be read only from the output folder. Set "
                    "KLING_MCP_MEDIA_ROOTS or --media-root to allow more.")  # fmt: skip
    server = create_server(settings, simulate=args.simulate)
    app = http_app(server, args.host, args.token, allowed, webhooks=bool(public_url))
    shown = f"[{args.host}]" if ":" in args.host else args.host
    log.info("Serving MCP over streamable HTTP at http://%s:%d/mcp%s", shown, args.port,
             " (bearer token required)" if args.token else "")  # fmt: skip
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


def _settings(args: argparse.Namespace) -> Any:
    from pydantic import ValidationError

    from .settings import Settings

    overrides: dict[str, Any] = {}
    if args.media_root:
        overrides["media_roots"] = args.media_root
    if args.output_dir:
        overrides["output_dir"] = args.output_dir
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        for problem in exc.errors():
            name = str(problem["loc"][0]) if problem["loc"] else "setting"
            shown = "<hidden>" if name in SECRET_SETTINGS else repr(problem.get("input"))
            print(f"kling-mcp: bad setting {name}={shown}: {problem['msg']}", file=sys.stderr)
        print("kling-mcp: fix the value (the README lists every variable) and start again.", file=sys.stderr)
        sys.exit(2)
    if settings.public_url and not (getattr(args, "http", False) and args.command is None):
        # Nothing would answer Runware's calls: each job is polled as usual.
        settings = settings.model_copy(update={"public_url": None})
        logging.getLogger("kling_mcp").warning("KLING_MCP_PUBLIC_URL is set, but only a server run with --http receives webhooks: polling instead.")
    if getattr(args, "http", False) and args.host not in LOOPBACK and settings.media_roots is None:
        # Remote clients are trusted to spend, not to read this machine's pictures: the default
        # media folders are for a desktop user's own agent. Explicit roots still apply.
        settings = settings.model_copy(update={"media_roots": []})
    return settings


def _host_patterns(name: str) -> list[str]:
    """Host-header patterns for one host name or address: bare (default port) and with any port."""
    name = name.strip().lower()  # clients send host names in lower case; the SDK compares exactly
    if name.count(":") > 1 and not name.startswith("["):  # a bare IPv6 address, as Host headers bracket it
        name = f"[{name}]"
    if ":" in name.rpartition("]")[2]:  # a port was given: that port only
        return [name]
    return [name, f"{name}:*"]


def http_app(
    server: Any, host: str, token: str | None, allowed_hosts: list[str] | None = None, *, webhooks: bool = False
) -> Any:
    """The streamable-HTTP ASGI app at /mcp: DNS-rebinding protection always, a bearer token when given.

    Requests must name this machine's loopback, the bind address, or one of ``allowed_hosts`` in
    their Host header (else 421); the caller allows other names only with a token. With ``webhooks``,
    Runware's result deliveries are received beside it (webhooks.py): checked against the same hosts,
    authenticated by each job's own secret instead of the token, which Runware cannot send."""
    from mcp.server.transport_security import TransportSecuritySettings

    names = ["127.0.0.1", "localhost", "::1"]
    if host not in LOOPBACK and host not in WILDCARD:
        names.append(host)
    hosts = [pattern for name in [*names, *(allowed_hosts or [])] for pattern in _host_patterns(name)]
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=[f"http://{h}" for h in hosts] + [f"https://{h}" for h in hosts],
    )
    app = server.streamable_http_app(streamable_http_path="/mcp", transport_security=security)
    guarded = BearerAuth(app, token) if token else app
    if not webhooks:
        return guarded
    from .webhooks import WebhookReceiver

    return WebhooksBeside(guarded, WebhookReceiver(server.running_jobs, hosts))


class WebhooksBeside:
    """Webhook deliveries to their receiver, everything else (the lifespan too) to the MCP app."""

    def __init__(self, app: Any, receiver: Any) -> None:
        self.app, self.receiver = app, receiver

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from .webhooks import WEBHOOK_PATH

        if scope["type"] == "http" and scope["path"].startswith(WEBHOOK_PATH):
            await self.receiver(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class BearerAuth:
    """Pure ASGI, so the lifespan scope passes through to the MCP session manager."""

    def __init__(self, app: Any, token: str) -> None:
        self.app, self.expected = app, token.encode()

    def _authorized(self, header: bytes) -> bool:
        # The scheme is case-insensitive (RFC 9110, section 11.1); the token is compared in constant time.
        scheme, _, given = header.strip().partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.expected)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            if not self._authorized(dict(scope["headers"]).get(b"authorization", b"")):
                from starlette.responses import JSONResponse

                response = JSONResponse(
                    {"error": "unauthorized", "message": "Send 'Authorization: Bearer <KLING_MCP_HTTP_TOKEN>'."},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _print_models() -> None:
    from .catalog import MODELS, describe

    def money(value: float | None) -> str:
        return f"${value}/s" if value is not None else "n/a"

    for spec in MODELS:
        d = describe(spec, with_readings=False)
        price, duration = d["pricing_usd_per_second"], d["duration_seconds"]
        special = "; ".join(
            f"{k.removeprefix('with_').replace('_or_', ' or ')}: "
            + (" or ".join(map(str, v)) if isinstance(v, list) else f"{v['min']}-{v['max']}")
            for k, v in duration.items()
            if k.startswith("with_")
        )
        print(f"{spec.id}  ({spec.name}; alias {spec.aliases[0]})")
        print(f"  {spec.summary}")
        print(f"  sizes:    {', '.join(f'{k} {v}' for k, v in d['aspect_ratios'].items())}")
        print(f"  duration: {duration['min']}-{duration['max']} s, default {duration['default']}"
              + (f" ({special})" if special else ""))  # fmt: skip
        print(f"  price:    {money(price['base'])}; with audio {money(price['with_audio'])}; "
              f"with a video input {money(price['with_video_input'])}")  # fmt: skip
        print(f"  tools:    {', '.join(spec.capabilities)}; {d['number_results']['min']}-"
              f"{d['number_results']['max']} results per request\n")  # fmt: skip


async def _check(args: argparse.Namespace) -> int:
    from .ledger import Ledger, LedgerUnavailable

    settings = _settings(args)
    if args.simulate:
        from .emulator import EmulatorStore
        from .state import SIMULATED_STORE, simulated_settings

        settings = simulated_settings(settings)
        print("SIMULATING: `kling-mcp --simulate` sends nothing to Runware; its built-in emulator needs no API key, "
              "charges nothing and renders stand-in videos.")  # fmt: skip
    ok = True
    print(f"data directory: {settings.data_dir}")
    try:
        shared_database = settings.database_url is not None and not args.simulate
        if shared_database:  # the ledger is the database, checked below
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        else:
            Ledger(settings.data_dir / settings.ledger_path.name).close()
        if args.simulate:  # the simulated jobs, shared by every simulating server using this folder
            EmulatorStore(settings.data_dir / SIMULATED_STORE).close()
        with tempfile.NamedTemporaryFile(dir=settings.data_dir):
            pass
        print("  writable: yes" + ("" if shared_database else "; job ledger readable"))
    except LedgerUnavailable as exc:
        ok = False
        print(f"  NO: {exc}")
    except (OSError, sqlite3.Error) as exc:
        ok = False
        print(f"  writable: NO ({exc}); set KLING_MCP_DATA_DIR to a writable directory")
    if settings.database_url is not None and not args.simulate:
        from .ledger import check_ledger

        ledger_ok, lines = check_ledger(settings.ledger_location)
        ok = ok and ledger_ok
        print("\n".join(lines))
    print("local media may be read from (MCP clients' roots may narrow this):")
    for root in settings.read_roots:
        print(f"  {root}" + ("" if root.is_dir() else "  (does not exist yet)"))
    print(f"videos are saved to: {settings.output_dir}")
    try:
        settings.output_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=settings.output_dir):
            pass
        print("  writable: yes")
    except OSError as exc:
        ok = False
        print(f"  writable: NO ({exc}); set KLING_MCP_OUTPUT_DIR (or --output-dir) to a writable folder")
    if args.simulate:
        print("Runware endpoint: none (the built-in emulator, started by each simulating server)")
    else:
        ok = await _check_key(settings) and ok
    print("spend caps" + (" (counted on simulated costs)" if args.simulate else "") + ": daily "
          + (f"${settings.daily_cap_usd}" if settings.daily_cap_usd is not None else "none")
          + ", total " + (f"${settings.total_cap_usd}" if settings.total_cap_usd is not None else "none"))  # fmt: skip
    return 0 if ok else 1


async def _check_key(settings: Any) -> bool:
    from .runware import RunwareClient, RunwareError

    print(f"Runware endpoint: {settings.base_url}")
    if settings.api_key is None:
        print("  API key: NOT SET. Set RUNWARE_API_KEY (create a key at https://my.runware.ai); to try kling-mcp "
              "without an account, run `kling-mcp demo` or serve with `kling-mcp --simulate`.")
        return False
    async with RunwareClient(settings.api_key.get_secret_value(), settings.base_url, retry_attempts=2) as client:
        try:
            await client.call([{"taskType": "getResponse", "taskUUID": "00000000-0000-4000-8000-000000000000"}])
        except RunwareError as exc:
            print(f"  API key: set, but the check failed: {exc}")
            return False
    print("  API key: set and accepted")
    return True


if __name__ == "__main__":
    main(sys.argv[1:])


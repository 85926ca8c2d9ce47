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
import sys
import tempfile
from pathlib import Path
from typing import Any

LOOPBACK = ("127.0.0.1", "localhost", "::1")


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
    parser.add_argument("--simulate", action="store_true", help="use the built-in Runware emulator: no account, no cost")
    parser.add_argument(
        "--media-root", action="append", type=Path, metavar="DIR",
        help="a folder local media may be read from; repeat for more (replaces KLING_MCP_MEDIA_ROOTS)",
    )  # fmt: skip
    parser.add_argument("--output-dir", type=Path, metavar="DIR", help="where download_video saves videos (KLING_MCP_OUTPUT_DIR)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (to stderr)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("models", help="list the models and their limits")
    emulator = commands.add_parser("emulator", help="run the Runware emulator alone")
    emulator.add_argument("--host", default="127.0.0.1", dest="emulator_host")
    emulator.add_argument("--port", type=int, default=8089, dest="emulator_port")
    emulator.add_argument("--api-key", default=os.environ.get("KLING_MCP_EMULATOR_KEY", "emulator-key"))
    emulator.add_argument("--time-scale", type=float, default=0.1, help="multiply simulated job times (default 0.1)")
    commands.add_parser(
        "check", help="check the setup: API key present and accepted, data and output folders writable, media folders"
    )
    commands.add_parser("demo", help="drive the server through a real MCP session against the emulator")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
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
        case "demo":
            from .demo import run_demo

            sys.exit(asyncio.run(run_demo()))
        case _:
            _serve(args)


def _serve(args: argparse.Namespace) -> None:
    from .runware import register_secret
    from .server import create_server
    from .settings import Settings

    server = create_server(_settings(args), simulate=args.simulate)
    if not args.http:
        from ._stdio import run_stdio

        run_stdio(server)
        return
    register_secret(args.token)
    if args.host not in LOOPBACK and not args.token:
        print(
            f"kling-mcp: refusing to serve HTTP on {args.host} without a bearer token: anyone who can reach it "
            "could spend your Runware balance. Set KLING_MCP_HTTP_TOKEN (or --token), or bind 127.0.0.1.",
            file=sys.stderr,
        )
        sys.exit(2)
    import uvicorn

    uvicorn.run(http_app(server, args.host, args.token), host=args.host, port=args.port, log_level="warning")


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
            print(f"kling-mcp: bad setting {name}={problem.get('input')!r}: {problem['msg']}", file=sys.stderr)
        print("kling-mcp: fix the value (the README lists every variable) and start again.", file=sys.stderr)
        sys.exit(2)
    if getattr(args, "http", False) and args.host not in LOOPBACK and settings.media_roots is None:
        # Remote clients are trusted to spend, not to read this machine's pictures: the default
        # media folders are for a desktop user's own agent. Explicit roots still apply.
        settings = settings.model_copy(update={"media_roots": []})
        logging.getLogger("kling_mcp").warning(
            "Serving HTTP off loopback: local media may be read only from the output folder. Set "
            "KLING_MCP_MEDIA_ROOTS or --media-root to allow more."
        )
    return settings


def http_app(server: Any, host: str, token: str | None) -> Any:
    """The streamable-HTTP ASGI app at /mcp: DNS-rebinding protection always, a bearer token when given."""
    from mcp.server.transport_security import TransportSecuritySettings

    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
    if host not in LOOPBACK and host not in ("0.0.0.0", "::"):
        hosts.append(f"{host}:*")
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=[f"http://{h}" for h in hosts] + [f"https://{h}" for h in hosts],
    )
    app = server.streamable_http_app(streamable_http_path="/mcp", transport_security=security)
    return BearerAuth(app, token) if token else app


class BearerAuth:
    """Pure ASGI, so the lifespan scope passes through to the MCP session manager."""

    def __init__(self, app: Any, token: str) -> None:
        self.app, self.expected = app, f"Bearer {token}".encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
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
    from .runware import RunwareClient, RunwareError

    settings = _settings(args)
    ok = True
    data_dir = settings.data_dir / "simulate" if args.simulate else settings.data_dir
    print(f"data directory: {data_dir}")
    try:
        Ledger(data_dir / settings.ledger_path.name).close()
        print("  writable: yes; job ledger readable")
    except LedgerUnavailable as exc:
        ok = False
        print(f"  NO: {exc}")
    print("local media may be read from (MCP clients' roots may narrow this):")
    for root in settings.read_roots:
        print(f"  {root}" + ("" if root.is_dir() else "  (does not exist yet)"))
    output_dir = settings.output_dir / "simulate" if args.simulate else settings.output_dir
    print(f"videos are saved to: {output_dir}")
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output_dir):
            pass
        print("  writable: yes")
    except OSError as exc:
        ok = False
        print(f"  writable: NO ({exc}); set KLING_MCP_OUTPUT_DIR (or --output-dir) to a writable folder")
    print(f"Runware endpoint: {settings.base_url}")
    if settings.api_key is None:
        print("  API key: NOT SET. Set RUNWARE_API_KEY (create a key at https://my.runware.ai); to try kling-mcp "
              "without an account, run `kling-mcp demo` or serve with `kling-mcp --simulate`.")
        return 1
    async with RunwareClient(settings.api_key.get_secret_value(), settings.base_url, retry_attempts=2) as client:
        try:
            await client.call([{"taskType": "getResponse", "taskUUID": "00000000-0000-4000-8000-000000000000"}])
            print("  API key: set and accepted")
        except RunwareError as exc:
            ok = False
            print(f"  API key: set, but the check failed: {exc}")
    print("spend caps: daily " + (f"${settings.daily_cap_usd}" if settings.daily_cap_usd is not None else "none")
          + ", total " + (f"${settings.total_cap_usd}" if settings.total_cap_usd is not None else "none"))  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    main(sys.argv[1:])


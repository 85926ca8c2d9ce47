"""MCP over stdio, answering every line that is not a JSON-RPC message.

The SDK's stdio reader drops a line it cannot parse (it logs it at debug level), so a client that
sends a broken line waits for an answer that never comes. This reader checks each line first:
invalid JSON (or bytes that are not UTF-8, which decode to something that is not JSON) gets a
JSON-RPC parse error (-32700, id null), and valid JSON that is not a JSON-RPC message gets an
invalid-request error (-32600, with its id when it has one). Either way the server keeps serving.
A line of bytes that are not UTF-8 inside an otherwise valid message is read with U+FFFD in place
of the bad bytes, as the SDK does; that is the most the transport allows.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import AsyncIterator
from io import TextIOWrapper
from typing import Any

import anyio
import mcp_types as types
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import _claim_fd, _open_stdin_diversion, stdio_server
from mcp.shared.message import SessionMessage

log = logging.getLogger("kling_mcp.stdio")


class _UnownedText(TextIOWrapper):
    """Text over stdin's binary buffer that never closes it (the SDK's own reader does the same)."""

    def close(self) -> None:
        try:
            self.detach()
        except ValueError:
            pass


class CheckedLines:
    """The request lines, with every line that is not a JSON-RPC message answered and held back."""

    def __init__(self, lines: Any) -> None:
        self._lines = lines
        self.replies: Any = None  # the transport's write stream, once it exists
        self.refused = 0

    def __aiter__(self) -> AsyncIterator[str]:
        return self._checked()

    async def _checked(self) -> AsyncIterator[str]:
        async for line in self._lines:
            if not line.strip():
                continue
            error = _problem(line)
            if error is None:
                yield line
                continue
            self.refused += 1
            log.warning("Answered a request line that is not a JSON-RPC message: %s", error.error.message)
            if self.replies is not None:
                try:
                    await self.replies.send(SessionMessage(error))
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    return


def _problem(line: str) -> types.JSONRPCError | None:
    try:
        types.jsonrpc_message_adapter.validate_json(line, by_name=False)
        return None
    except ValueError:
        pass
    try:
        value = json.loads(line)
    except ValueError:
        return types.JSONRPCError(
            jsonrpc="2.0", id=None,
            error=types.ErrorData(code=types.PARSE_ERROR, message="Parse error: the line is not valid JSON (or not UTF-8)"),
        )  # fmt: skip
    raw_id = value.get("id") if isinstance(value, dict) else None
    request_id = raw_id if isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool) else None
    return types.JSONRPCError(
        jsonrpc="2.0", id=request_id,
        error=types.ErrorData(code=types.INVALID_REQUEST, message="Invalid request: not a JSON-RPC 2.0 message"),
    )  # fmt: skip


async def serve_stdio(server: MCPServer) -> None:
    # fd 0 is claimed as the SDK claims it (children read EOF, not the protocol's bytes).
    stdin_buffer, restore = _claim_fd(0, sys.stdin, "rb", _open_stdin_diversion)
    try:
        lines = CheckedLines(anyio.wrap_file(_UnownedText(stdin_buffer, encoding="utf-8", errors="replace")))
        async with stdio_server(stdin=lines) as (read_stream, write_stream):  # type: ignore[arg-type]
            lines.replies = write_stream
            lowlevel = server._lowlevel_server  # what MCPServer.run_stdio_async runs, with our reader
            await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
    finally:
        if restore is not None:
            restore()


def run_stdio(server: MCPServer) -> None:
    anyio.run(serve_stdio, server)

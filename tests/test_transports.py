"""The installed console script, over stdio and over streamable HTTP, as clients meet it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from mcp import Client, StdioServerParameters

from kling_mcp.emulator import run_emulator

from .helpers import KEY

SCRIPT = Path(sys.executable).parent / "kling-mcp"
INIT = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}},
}  # fmt: skip
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def test_the_console_script_is_installed() -> None:
    assert SCRIPT.exists(), f"{SCRIPT} missing: install the package (pip install -e .)"


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_stdio_list_submit_wait_status_with_progress(tmp_path: Path, mode: str) -> None:
    async with run_emulator(api_key=KEY, job_seconds=(0.5, 1.0), seed=5) as emu:
        env = {
            "RUNWARE_API_KEY": KEY, "RUNWARE_BASE_URL": emu.url, "KLING_MCP_DATA_DIR": str(tmp_path),
            "KLING_MCP_POLL_INITIAL": "0.1", "KLING_MCP_POLL_MAX": "0.3", "PATH": os.environ.get("PATH", ""),
        }  # fmt: skip
        progress: list[float] = []

        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            progress.append(done)

        async with Client(StdioServerParameters(command=str(SCRIPT), env=env), mode=mode) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            job = (await client.call_tool("text_to_video", {
                "model": "klingai:kling-video@3-pro", "prompt": "A violinist on black sand", "duration": 5,
            })).structured_content  # fmt: skip
            done = (await client.call_tool("wait_for_video", {"task_id": job["task_id"], "timeout_seconds": 20},
                                           progress_callback=on_progress)).structured_content  # fmt: skip
            status = (await client.call_tool("get_video_status", {"task_ids": [job["task_id"]]})).structured_content
        assert "wait_for_video" in names and job["status"] == "submitted"
        assert done["status"] == "success" and done["cost_usd"] == pytest.approx(0.56)
        assert status["jobs"][0]["results"] == done["results"]
        assert progress and progress[-1] == 100.0
        assert emu.stats.accepted[job["task_id"]] == 1


def test_stdio_mode_writes_nothing_but_protocol_to_stdout(tmp_path: Path) -> None:
    env = {**os.environ, "KLING_MCP_DATA_DIR": str(tmp_path)}
    env.pop("RUNWARE_API_KEY", None)
    out = subprocess.run([str(SCRIPT)], input=b"", capture_output=True, env=env, timeout=30)
    assert out.stdout == b""
    assert b"RUNWARE_API_KEY" in out.stderr  # the missing key is announced, on stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KLING_MCP_DATA_DIR": str(tmp_path), "RUNWARE_API_KEY": KEY}
    proc = subprocess.Popen([str(SCRIPT), "--http", "--port", str(port), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return proc
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the HTTP server did not start")


def test_http_refuses_a_foreign_host_header(tmp_path: Path) -> None:
    port = _free_port()
    proc = _start([], tmp_path, port)
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        evil = httpx.post(url, json=INIT, headers=MCP_HEADERS | {"Host": "evil.example"}, timeout=10)
        good = httpx.post(url, json=INIT, headers=MCP_HEADERS, timeout=10)
        assert evil.status_code == 421
        assert good.status_code == 200 and "kling-mcp" in good.text
    finally:
        proc.terminate()
        proc.wait(10)


def test_http_off_loopback_needs_a_token(tmp_path: Path) -> None:
    port = _free_port()
    refused = _start(["--host", "0.0.0.0"], tmp_path, port)
    assert refused.wait(10) == 2
    assert b"bearer token" in refused.stderr.read()

    proc = _start(["--host", "0.0.0.0", "--token", "s3cret-token"], tmp_path, port)
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        missing = httpx.post(url, json=INIT, headers=MCP_HEADERS, timeout=10)
        wrong = httpx.post(url, json=INIT, headers=MCP_HEADERS | {"Authorization": "Bearer nope"}, timeout=10)
        right = httpx.post(url, json=INIT, headers=MCP_HEADERS | {"Authorization": "Bearer s3cret-token"}, timeout=10)
        assert missing.status_code == 401 and wrong.status_code == 401
        assert right.status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)

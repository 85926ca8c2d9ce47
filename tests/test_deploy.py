"""Deployment: serving named hosts over HTTP, the bearer scheme, --version, and check in simulate mode."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from kling_mcp import __version__

from .test_transports import INIT, MCP_HEADERS, SCRIPT, _free_port, _start

TOKEN = "s3cret-token"


def _address_off_loopback() -> str:
    """An address of this machine other than loopback, when it has one (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the outgoing interface
            address = probe.getsockname()[0]
        except OSError:
            address = "127.0.0.1"
    return address if not address.startswith("127.") else "127.0.0.1"


def test_a_named_host_is_served_off_loopback_with_the_token_and_other_hosts_get_421(tmp_path: Path) -> None:
    port = _free_port()
    proc = _start(["--host", "0.0.0.0", "--token", TOKEN, "--allowed-host", "Kling.Example"], tmp_path, port)
    address = _address_off_loopback()
    url = f"http://{address}:{port}/mcp"

    def post(host: str, authorization: str | None = f"Bearer {TOKEN}") -> httpx.Response:
        headers = MCP_HEADERS | {"Host": host} | ({"Authorization": authorization} if authorization else {})
        return httpx.post(url, json=INIT, headers=headers, timeout=10)

    try:
        named = post(f"kling.example:{port}")
        lower_case_scheme = post("kling.example", authorization=f"bearer {TOKEN}")  # behind a proxy on port 80
        other = post(f"evil.example:{port}")
        by_address = post(f"{address}:{port}")
        no_token = post(f"kling.example:{port}", authorization=None)
        wrong_token = post(f"kling.example:{port}", authorization="Bearer nope")
    finally:
        proc.terminate()
        proc.wait(10)
    assert named.status_code == 200 and "kling-mcp" in named.text
    assert lower_case_scheme.status_code == 200
    assert other.status_code == 421
    # The address itself was not named: a DNS-rebinding page would reach it the same way.
    assert by_address.status_code == (200 if address == "127.0.0.1" else 421)
    assert no_token.status_code == 401 and wrong_token.status_code == 401


def test_allowed_hosts_from_the_environment_and_never_without_a_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KLING_MCP_ALLOWED_HOSTS", "kling.example, studio.lan")
    monkeypatch.delenv("KLING_MCP_HTTP_TOKEN", raising=False)
    refused = _start([], tmp_path, _free_port())
    assert refused.wait(10) == 2  # even bound to loopback: a named host means remote clients
    assert refused.stderr is not None and b"kling.example, studio.lan without a bearer token" in refused.stderr.read()

    port = _free_port()
    proc = _start(["--token", TOKEN], tmp_path, port)
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        auth = {"Authorization": f"BEARER {TOKEN}"}
        studio = httpx.post(url, json=INIT, headers=MCP_HEADERS | auth | {"Host": "studio.lan"}, timeout=10)
        other = httpx.post(url, json=INIT, headers=MCP_HEADERS | auth | {"Host": "kling.example.evil"}, timeout=10)
    finally:
        proc.terminate()
        proc.wait(10)
    assert studio.status_code == 200
    assert other.status_code == 421


def test_version() -> None:
    out = subprocess.run([str(SCRIPT), "--version"], capture_output=True, timeout=30)
    assert out.returncode == 0 and out.stdout.decode().strip() == f"kling-mcp {__version__}"


def test_check_in_simulate_mode_needs_no_key(tmp_path: Path) -> None:
    env = {**os.environ, "KLING_MCP_DATA_DIR": str(tmp_path / "data"), "KLING_MCP_OUTPUT_DIR": str(tmp_path / "out"),
           "KLING_MCP_MEDIA_ROOTS": str(tmp_path / "media")}  # fmt: skip
    env.pop("RUNWARE_API_KEY", None)
    simulated = subprocess.run([str(SCRIPT), "--simulate", "check"], env=env, capture_output=True, timeout=60)
    real = subprocess.run([str(SCRIPT), "check"], env=env, capture_output=True, timeout=60)
    report = simulated.stdout.decode()
    assert simulated.returncode == 0, report
    assert "SIMULATING" in report and "API key: NOT SET" not in report
    assert f"data directory: {tmp_path / 'data' / 'simulate'}" in report
    assert f"videos are saved to: {tmp_path / 'out' / 'simulate'}" in report
    assert (tmp_path / "out" / "simulate").is_dir()
    # Without --simulate the missing key still fails the check.
    assert real.returncode == 1 and "API key: NOT SET" in real.stdout.decode()


def test_check_in_simulate_mode_reports_an_unwritable_data_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data folder should be")
    env = {**os.environ, "KLING_MCP_DATA_DIR": str(blocker), "KLING_MCP_OUTPUT_DIR": str(tmp_path / "out")}
    out = subprocess.run([str(SCRIPT), "--simulate", "check"], env=env, capture_output=True, timeout=60)
    text = out.stdout.decode()
    assert out.returncode == 1 and "NO: " in text and f"{blocker} is a file, where a folder is needed" in text

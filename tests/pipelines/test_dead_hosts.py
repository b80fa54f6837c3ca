"""A host nobody listens on, or one that accepts and never answers: `check` answers within 10 s for every vendor,
and `run` gives up after the configured time with one message that does not repeat itself."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from simulators.harness import Faults
from tests.chaos.vendors import VENDORS
from tests.support import run_cli

# What a user has: the documented retry delays, not the test suite's milliseconds.
REAL_RETRIES = {
    "CLICKHAUL_RETRY_BASE_DELAY": "0.5",
    "CLICKHAUL_RETRY_MAX_DELAY": "60",
    "CLICKHAUL_RETRY_AFTER_FLOOR": "0.5",
    "CLICKHAUL_RETRY_MAX_ATTEMPTS": "8",
    "CLICKHAUL_RETRY_MAX_ELAPSED_SECONDS": "900",
    "CLICKHAUL_RETRY_AFTER_CAP": "900",
}


@contextmanager
def silent_host() -> Iterator[str]:
    """Accepts every connection and never answers: a hung server, or a firewall that swallows the request."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        server.close()


def dead_env(name: str, tmp_path: Path) -> tuple[dict[str, str], str]:
    """The vendor's simulator config, then the simulator gone: its port now refuses every connection."""
    vendor = VENDORS[name]
    with vendor.build(Faults()) as server:
        config = vendor.config(server)
        address = server.url.split("//", 1)[1]
    return {**config, **REAL_RETRIES, "DLT_DATA_DIR": str(tmp_path / "dlt")}, address


@pytest.mark.parametrize("name", sorted(VENDORS))
@pytest.mark.parametrize("host", ["refusing", "silent"])
def test_check_answers_within_10_s_when_the_host_is_down(name: str, host: str, tmp_path: Path) -> None:
    env, address = dead_env(name, tmp_path)
    with silent_host() as silent:
        if host == "silent":
            env = {key: value.replace(address, silent) for key, value in env.items()}
        began = time.monotonic()
        result = run_cli("check", name, env=env, cwd=tmp_path, timeout=120)
        took = time.monotonic() - began
    assert result.returncode == 1, result.stdout + result.stderr
    assert took < 10, f"check {name} took {took:.1f} s against a {host} host"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {name} check failed"), result.stderr
    assert lines[0].count("gave up") == 1 and "--timeout" in lines[0], lines[0]


@pytest.mark.parametrize("name", ["pirsch", "webtrekk"])
def test_run_gives_up_after_the_configured_time_with_one_message(name: str, tmp_path: Path) -> None:
    env, _ = dead_env(name, tmp_path)
    vendor = VENDORS[name]
    env["CLICKHAUL_RETRY_MAX_ELAPSED_SECONDS"] = "4"
    args = ["run", name, "--start", vendor.start.isoformat(), "--end", vendor.end.isoformat(), "--progress", "off"]
    began = time.monotonic()
    result = run_cli(*args, env=env, cwd=tmp_path, timeout=300)
    took = time.monotonic() - began
    assert result.returncode == 1
    assert took < 4 + 8, f"run {name} took {took:.1f} s to give up after 4 s of retries"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].count("gave up") == 1 and lines[0].count(f"{name}:") == 1, lines[0]
    assert "CLICKHAUL_RETRY_MAX_ELAPSED_SECONDS" in lines[0]

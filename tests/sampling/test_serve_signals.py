"""`prefkit serve` as systemd, Kubernetes or Slurm stop it: SIGTERM, or SIGKILL after the grace period.

Either way vLLM's api_server (its own session) and every process it started are gone and the port is free.
SIGHUP and SIGINT take the same path as SIGTERM (test_engine_lifetime.py checks each of them on a cheap
engine); here each case pays one real server start, so only these two run.
"""

from __future__ import annotations

import importlib.util
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import psutil
import pytest

from prefkit.serve import free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed"),
]


def wait_healthy(owner: subprocess.Popen, port: int, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert owner.poll() is None, owner.stderr.read()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise AssertionError("the server did not become healthy")


def port_is_free(port: int) -> bool:
    """Nobody listens on the port and a new server could bind it (as servers do, with SO_REUSEADDR)."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            server.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def running(processes: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for process in processes:
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.NoSuchProcess:
            pass
    return alive


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_stopped_serve_leaves_no_engine_and_frees_its_port(tiny_model_dir, stop_signal):
    port = free_port()
    command = [sys.executable, "-m", "prefkit", "serve", str(tiny_model_dir), "--port", str(port)]
    command += ["--dtype", "float32", "--enforce-eager", "--max-model-len", "512"]
    owner = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    engine: list[psutil.Process] = []
    try:
        wait_healthy(owner, port)
        engine = psutil.Process(owner.pid).children(recursive=True)
        assert any("api_server" in " ".join(process.cmdline()) for process in engine)
        owner.send_signal(stop_signal)
        code = owner.wait(timeout=60)
        assert code == (128 + signal.SIGTERM if stop_signal == signal.SIGTERM else -signal.SIGKILL)
        deadline = time.monotonic() + 30
        while running(engine) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert running(engine) == [], "vLLM processes outlived prefkit serve"
        assert port_is_free(port)
    finally:  # whatever failed, leave nothing behind
        owner.kill()
        for process in running(engine):
            process.kill()

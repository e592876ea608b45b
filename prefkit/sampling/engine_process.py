"""Run an engine (a vLLM sampler, a vLLM reward scorer) in a child process that exits when the stage ends.

A vLLM engine inside the stage's own process does not reliably give its memory back when closed (CUDA
context, allocator caches, worker threads); a process that exits always does. `EngineProcess` starts
`python -m prefkit.sampling.engine_process`, which builds the engine from an importable factory and
answers method calls over a socket pair: one pickled `(method, args, kwargs)` request, one
`("ok", result)` or `("error", exception)` reply. Results come back per call, so the sampling stage still
writes (and a resumed run skips) one shard at a time.

The child dies with its owner: an idle child ends when the owner's end of the socket closes; a busy one
gets SIGTERM from Linux when the parent dies (when the owner started it from its main thread) or from its
own watch of the parent pid (the backstop), and turns SIGTERM into a clean shutdown of the engine. It
ignores SIGINT: on Ctrl-C the owner stops it (see `close`).
"""

from __future__ import annotations

import importlib
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from prefkit.errors import ModelError

CLOSE_GRACE_SECONDS = 30.0  # an idle engine shuts down in well under this
TERMINATE_GRACE_SECONDS = 15.0


def free_cached_gpu_memory() -> None:
    """Hand memory this process cached on the GPU (e.g. after training) back before an engine needs it."""
    import gc

    torch = sys.modules.get("torch")  # not imported: nothing of this process is on a GPU
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        gc.collect()
        torch.cuda.empty_cache()


class EngineProcess:
    """One engine in a child process: `call(method, *args, **kwargs)`, `close()`; `info` holds the
    attributes the engine published at start (e.g. `max_model_len`)."""

    def __init__(self, factory: str, *args: Any, published: tuple[str, ...] = (), **kwargs: Any) -> None:
        """Start the child and build `factory(*args, **kwargs)` there ('module:attribute'); publish the
        named attributes of the built object in `info`. Raises what the factory raised."""
        free_cached_gpu_memory()
        ours, theirs = socket.socketpair()
        from_main_thread = threading.current_thread() is threading.main_thread()
        command = [sys.executable, "-m", __name__, str(theirs.fileno()), str(os.getpid())]
        command.append("main-thread" if from_main_thread else "other-thread")
        self.process = subprocess.Popen(command, pass_fds=(theirs.fileno(),))
        theirs.close()
        self.connection = Connection(ours.detach())
        self.busy = False
        self.started_seconds = 0.0
        started = time.perf_counter()
        try:
            self.info: dict[str, Any] = self._exchange(("__build__", (factory, args, kwargs, published), {}))
        except BaseException:
            self.close()
            raise
        self.started_seconds = time.perf_counter() - started

    @property
    def pid(self) -> int:
        return self.process.pid

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Run `engine.method(*args, **kwargs)` in the child and return its result (or raise its error)."""
        if self.process.poll() is not None:
            raise self._exited()
        return self._exchange((method, args, kwargs))

    def _exchange(self, request: tuple) -> Any:
        self.busy = True
        try:
            self.connection.send(request)
            status, value = self.connection.recv()
        except (EOFError, OSError, BrokenPipeError):
            raise self._exited() from None
        self.busy = False
        if status == "error":
            raise rebuild_error(*value)
        return value

    def _exited(self) -> ModelError:
        try:
            code = self.process.wait(timeout=TERMINATE_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            code = None
        return ModelError(
            f"the engine process (pid {self.process.pid}) exited unexpectedly (exit code {code})",
            hint="its own messages are printed above; out of memory is the usual cause",
        )

    def close(self) -> None:
        """Stop the child and wait until it has exited: a polite close when it is idle, SIGTERM when it is
        busy (interrupted mid-call) or slow, SIGKILL as the last resort."""
        if self.process.poll() is None and not self.busy:
            try:
                self.connection.send(("__close__", (), {}))
                self.process.wait(timeout=CLOSE_GRACE_SECONDS)
            except (OSError, BrokenPipeError, subprocess.TimeoutExpired):
                pass
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=TERMINATE_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.connection.close()


def build(factory: str, args: tuple, kwargs: dict) -> Any:
    """`factory(*args, **kwargs)` for a 'module:attribute' path."""
    module_name, _, attribute = factory.partition(":")
    return getattr(importlib.import_module(module_name), attribute)(*args, **kwargs)


def rebuild_error(error_class: type[BaseException], args: tuple, state: dict) -> BaseException:
    """The child's exception, rebuilt without calling its `__init__` (whose signature may differ from its
    `args`, e.g. PromptTooLongError(index, num_tokens, max_model_len)), attributes included."""
    error = error_class.__new__(error_class)
    error.args = args
    error.__dict__.update(state)
    return error


def reply_safely(connection: Connection, status: str, value: Any) -> None:
    """Send a reply; an error travels as (class, args, attributes), or as a ModelError with its text when
    those (or a result) cannot be pickled (e.g. an exception holding a lock or a C object)."""
    if status == "error":
        value = (value.__class__, value.args, dict(vars(value)))
    try:
        payload = pickle.dumps((status, value))
    except Exception as error:
        what = f"{value[0].__name__}: {value[1][0] if value[1] else ''}" if status == "error" else str(error)
        substitute = ModelError(f"the engine process could not send its reply ({what})")
        payload = pickle.dumps(("error", (ModelError, substitute.args, dict(vars(substitute)))))
    connection.send_bytes(payload)


def serve(connection: Connection) -> None:
    """The child's loop: build the engine, then answer calls until `__close__` or the owner goes away."""
    engine = None
    try:
        while True:
            try:
                method, args, kwargs = connection.recv()
            except (EOFError, OSError):
                return  # the owner closed its end
            if method == "__close__":
                return
            try:
                if method == "__build__":
                    factory, build_args, build_kwargs, published = args
                    engine = build(factory, build_args, build_kwargs)
                    result = {name: getattr(engine, name) for name in published}
                else:
                    result = getattr(engine, method)(*args, **kwargs)
            except Exception as error:  # the owner re-raises it (a ModelError, a ConfigError, a bug)
                reply_safely(connection, "error", error)
                continue
            reply_safely(connection, "ok", result)
    finally:
        close = getattr(engine, "close", None)
        if callable(close):
            close()


def child_main(argv: list[str]) -> None:
    """Entry point of the child: `python -m prefkit.sampling.engine_process FD PARENT_PID STARTED_FROM`."""
    from prefkit.process_lifetime import StopRequested, die_with_parent, stop_on_signals, watch_parent

    fd, parent_pid, started_from = int(argv[0]), int(argv[1]), argv[2]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the owner decides when an interrupted engine stops
    if started_from == "main-thread":
        die_with_parent(parent_pid)
    watch_parent(parent_pid)
    with stop_on_signals():
        try:
            serve(Connection(fd))
        except StopRequested:
            pass  # the engine was closed in serve's finally


if __name__ == "__main__":
    child_main(sys.argv[1:])

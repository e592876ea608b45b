"""Engine child processes never outlive their owner: real processes, signals and `prctl`, no vLLM needed.

The owner here is a small Python process that starts an `EngineProcess` (or a server-like child with
`parent_death_preexec`), exactly as the sample stage or `prefkit serve` does; the engine is a cheap
importable object, so each test takes about a second. The same paths with vLLM are in
test_serve_signals.py (slow).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from prefkit.errors import ModelError
from prefkit.sampling.engine_process import EngineProcess

OWNER_WITH_ENGINE = """
import time
from prefkit.process_lifetime import stop_on_signals
from prefkit.sampling.engine_process import EngineProcess

engine = EngineProcess("collections:Counter")
print(engine.pid, flush=True)
with stop_on_signals():
    try:
        time.sleep(120)
    finally:
        engine.close()
"""

OWNER_WITH_SERVER_CHILD = """
import subprocess, sys, time
from prefkit.process_lifetime import parent_death_preexec

child = subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(120)"],
    start_new_session=True,
    preexec_fn=parent_death_preexec(),
)
print(child.pid, flush=True)
time.sleep(120)
"""


def start_owner(code: str) -> tuple[subprocess.Popen, int]:
    """Run `code` in a fresh interpreter; return it and the child pid it prints."""
    owner = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = owner.stdout.readline()
    assert line.strip().isdigit(), owner.stderr.read()
    return owner, int(line)


def wait_gone(pid: int, timeout: float = 15.0) -> bool:
    """True once `pid` has exited (a zombie waiting for its new parent counts as exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stop_signal_to_the_owner_stops_its_engine(stop_signal):
    owner, engine_pid = start_owner(OWNER_WITH_ENGINE)
    try:
        assert psutil.pid_exists(engine_pid)
        time.sleep(0.3)  # inside the `with` block
        owner.send_signal(stop_signal)
        code = owner.wait(timeout=30)
        if stop_signal != signal.SIGINT:  # SIGINT ends in Python's KeyboardInterrupt exit
            assert code == 128 + stop_signal, owner.stderr.read()
        assert wait_gone(engine_pid, timeout=1.0)  # close() waited for it: gone when the owner is
    finally:
        owner.kill()


@pytest.mark.parametrize("code", [OWNER_WITH_ENGINE, OWNER_WITH_SERVER_CHILD], ids=["engine", "server"])
def test_a_child_dies_with_an_owner_killed_by_sigkill(code):
    owner, child_pid = start_owner(code)
    try:
        owner.kill()  # no handler, no finally: only the parent-death signal can stop the child
        owner.wait(timeout=10)
        assert wait_gone(child_pid), "the child outlived its SIGKILLed owner"
    finally:
        if psutil.pid_exists(child_pid):
            os.kill(child_pid, signal.SIGKILL)


def test_engine_process_answers_calls_and_relays_errors():
    engine = EngineProcess("collections:Counter", "abracadabra")
    try:
        assert engine.call("most_common", 2) == [("a", 5), ("b", 2)]
        with pytest.raises(AttributeError):
            engine.call("no_such_method")
        assert engine.call("total") == 11  # still serving after an error
    finally:
        engine.close()
    assert wait_gone(engine.pid, timeout=1.0)


def test_an_error_keeps_its_class_and_attributes_across_the_process_boundary():
    from multiprocessing import Pipe

    from prefkit.sampling.engine_process import rebuild_error, reply_safely
    from prefkit.sampling.prompt_tokens import PromptTooLongError

    child_end, owner_end = Pipe()
    # its __init__ takes (index, num_tokens, max_model_len), not the message pickle would pass it
    reply_safely(child_end, "error", PromptTooLongError(1, 600, 512))
    status, details = owner_end.recv()
    error = rebuild_error(*details)
    assert status == "error" and isinstance(error, PromptTooLongError)
    assert (error.index, error.num_tokens, error.max_model_len, error.field) == (1, 600, 512, "prompt")
    assert str(error) == str(PromptTooLongError(1, 600, 512))


def test_an_engine_that_cannot_be_built_raises_its_error_and_leaves_no_process(tmp_path):
    before = {child.pid for child in psutil.Process().children()}
    with pytest.raises(ModelError, match="model folder does not exist"):
        EngineProcess("prefkit.models:resolve_model", str(tmp_path / "missing"))
    assert {child.pid for child in psutil.Process().children()} <= before

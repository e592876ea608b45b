"""Processes that own an engine stop it on SIGTERM, SIGHUP and SIGINT; an engine child dies with its owner.

Python's default for SIGTERM and SIGHUP is to die on the spot, so the `finally` that stops a vLLM server or
engine child never runs and the child (in its own session) lives on, holding its port and memory.
`stop_on_signals()` turns both into `StopRequested` (a SystemExit), so every `finally` and context manager
unwinds as on Ctrl-C. A parent killed with SIGKILL runs no code at all: for that the child asks Linux
to send it SIGTERM when its parent dies (`prctl(PR_SET_PDEATHSIG)`), see `die_with_parent`.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class StopRequested(SystemExit):
    """Raised in the main thread by SIGTERM/SIGHUP; exits with 128 + the signal number, as a shell reports it."""

    def __init__(self, signal_number: int) -> None:
        self.signal_name = signal.Signals(signal_number).name
        super().__init__(128 + signal_number)


def _raise_stop(signal_number: int, _frame) -> None:
    # later SIGTERM/SIGHUP are ignored while the owner stops its engines (a supervisor escalates to
    # SIGKILL, which the children's parent-death signal covers)
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)
    print(f"prefkit: {signal.Signals(signal_number).name} received, stopping", file=sys.stderr, flush=True)
    raise StopRequested(signal_number)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise StopRequested in the main thread (SIGINT already raises
    KeyboardInterrupt); the previous handlers come back afterwards. A no-op outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    for number in STOP_SIGNALS:
        signal.signal(number, _raise_stop)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def set_parent_death_signal(signal_number: int = signal.SIGTERM) -> bool:
    """Ask Linux to send `signal_number` to this process when the thread that started it exits; False
    where prctl is unavailable (not Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(PR_SET_PDEATHSIG, int(signal_number), 0, 0, 0) == 0


def die_with_parent(parent_pid: int) -> None:
    """For a child, right after it starts: SIGTERM when the parent dies, and exit now if it already has
    (the parent may have died between fork and prctl, then the signal never comes)."""
    set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent_pid:
        os._exit(1)


def parent_death_preexec():
    """A `subprocess.Popen(preexec_fn=...)` that makes the child (e.g. vLLM's api_server) die with this
    process. The signal follows the *thread* that forks: call Popen from the thread that lives as long as
    the owner (the main thread)."""
    parent_pid = os.getpid()

    def preexec() -> None:
        die_with_parent(parent_pid)

    return preexec


def watch_parent(parent_pid: int, interval: float = 1.0) -> threading.Thread:
    """A daemon thread that ends this process (SIGTERM to itself) once its parent is gone: the backstop for
    a parent whose starting thread could exit earlier than the parent (PDEATHSIG would fire too soon)."""

    def watch() -> None:
        stopped = threading.Event()
        while not stopped.wait(interval):
            if os.getppid() != parent_pid:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    thread = threading.Thread(target=watch, name="prefkit-parent-watch", daemon=True)
    thread.start()
    return thread

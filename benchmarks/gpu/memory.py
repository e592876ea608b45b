"""Run a command while sampling memory: GPU memory in use (NVML, else nvidia-smi) or, without a GPU, the
resident memory of the command's whole process tree. Samples go to a CSV (unix time, MiB).

    python benchmarks/gpu/memory.py --out mem.csv -- python -m prefkit iterate run.toml

GPU memory is the device's total in use, every process included (a vLLM engine in a child process
too): what a stage leaves behind is what the next stage cannot have.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

MIB = 1024 * 1024


def gpu_reader() -> Callable[[], float] | None:
    """A function returning device 0's memory in use (MiB), or None when no NVIDIA GPU answers."""
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        return lambda: pynvml.nvmlDeviceGetMemoryInfo(handle).used / MIB
    except Exception:  # no pynvml, no driver or no device: try the command line tool
        pass
    if shutil.which("nvidia-smi") is None:
        return None
    query = ["nvidia-smi", "--id=0", "--query-gpu=memory.used", "--format=csv,noheader,nounits"]
    try:
        float(subprocess.run(query, capture_output=True, text=True, check=True).stdout.strip())
    except (subprocess.CalledProcessError, ValueError):
        return None
    return lambda: float(subprocess.run(query, capture_output=True, text=True).stdout.strip() or "nan")


def tree_rss_reader(pid: int) -> Callable[[], float]:
    """A function returning the summed resident memory (MiB) of `pid` and all its descendants."""
    import psutil

    root = psutil.Process(pid)

    def read() -> float:
        total = 0
        try:
            processes = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return float("nan")
        for process in processes:
            try:
                total += process.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total / MIB

    return read


def run_sampled(command: list[str], out: Path, interval: float = 0.25) -> tuple[int, str]:
    """Run `command`, write (time, MiB) samples to `out` every `interval` s; return (exit code, source)."""
    read = gpu_reader()
    source = "gpu" if read else "rss"
    process = subprocess.Popen(command)
    if read is None:
        read = tree_rss_reader(process.pid)
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.time(), read()))
            stop.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        code = process.wait()
    except BaseException:  # interrupted: stop the command, keep what was sampled
        process.terminate()
        code = process.wait()
        raise
    finally:
        stop.set()
        sampler.join()
        with open(out, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["time", "mib", source])
            writer.writerows(samples)
    return code, source


def read_samples(path: Path) -> tuple[str, list[tuple[float, float]]]:
    """The source ('gpu' or 'rss') and the samples of a CSV written by `run_sampled`."""
    with open(path) as handle:
        rows = list(csv.reader(handle))
    return rows[0][2], [(float(t), float(m)) for t, m in rows[1:]]


def peak_between(samples: list[tuple[float, float]], start: float, end: float) -> float | None:
    """The largest sample taken in [start, end] (None when none was)."""
    inside = [mib for moment, mib in samples if start <= moment <= end and mib == mib]
    return max(inside) if inside else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--interval", type=float, default=0.25)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command after --")
    code, _ = run_sampled(command, args.out, args.interval)
    return code


if __name__ == "__main__":
    sys.exit(main())

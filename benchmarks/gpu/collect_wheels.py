"""Collect the wheels that vLLM, prefkit and the GPU check need on the offline GPU machine and its image lacks.

    python3 benchmarks/gpu/collect_wheels.py dist/prefkit-0.1.0-py3-none-any.whl vllm==0.20.0 trl==1.16.0 --out .gpu/wheels

A breadth-first walk over Requires-Dist from the roots given (a requirement or a local wheel file; markers
evaluated for CPython 3.12 on Linux x86_64, extras skipped): a requirement whose project the GPU image
already holds (gpu_image_packages.txt) is not followed, the torch family never is (vllm pins the torch the
image has), anything else is downloaded with `pip download --no-deps` for that interpreter and its own
requirements are walked in turn. A project is downloaded once, for the first requirement that names it;
a later requirement its version does not satisfy fails the walk with both named. pip's full resolver
cannot be used here: it insists on resolving torch's CUDA wheels for this platform.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import zipfile
from collections import deque
from collections.abc import Callable
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

HERE = Path(__file__).resolve().parent
NEVER = {"torch", "torchaudio", "torchvision", "triton"}
# optional kernel packages vLLM imports only when a feature needs them: together 470 of the 760 MB a full
# walk collects (flashinfer-cubin alone 295 MB). Start without them (VLLM_USE_FLASHINFER_SAMPLER=0) and
# carry them only if a run asks (--with-optional).
OPTIONAL = {
    "flashinfer-cubin",
    "flashinfer-python",
    "nvidia-cutlass-dsl",
    "nvidia-cutlass-dsl-libs-cu12",
    "nvidia-cutlass-dsl-libs-base",
    "tilelang",
    "z3-solver",
    "quack-kernels",
    "apache-tvm-ffi",
}
ENVIRONMENT = {
    "python_version": "3.12",
    "python_full_version": "3.12.3",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
    "extra": "",
}
PLATFORMS = [
    "manylinux_2_35_x86_64",
    "manylinux_2_34_x86_64",
    "manylinux_2_31_x86_64",
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_24_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
    "any",
]


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def download(requirement: str, out: Path) -> Path:
    before = set(out.glob("*.whl"))
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "-q",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        "3.12",
        "--implementation",
        "cp",
        "-d",
        str(out),
        requirement,
    ]
    for platform in PLATFORMS:
        command[5:5] = ["--platform", platform]
    subprocess.run(command, check=True, stderr=subprocess.DEVNULL)
    new = set(out.glob("*.whl")) - before
    name = norm(Requirement(requirement).name)
    return (
        next(iter(new)) if new else next(p for p in out.glob("*.whl") if norm(p.name.split("-")[0]) == name)
    )


def wheel_version(wheel: Path) -> Version:
    return Version(wheel.name.split("-")[1])


def requirements_of(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        lines = archive.read(metadata).decode().splitlines()
    found = []
    for line in lines:
        if line.startswith("Requires-Dist:"):
            requirement = Requirement(line.split(":", 1)[1].strip())
            if requirement.marker is None or requirement.marker.evaluate(ENVIRONMENT):
                found.append(requirement)
    return found


def walk(
    roots: list[str], out: Path, present: set[str], skipped: set[str], fetch: Callable = download
) -> list[str]:
    """Collect the wheels of `roots` and their requirements into `out` (see the module docstring); return
    the conflicts found: a project's chosen version that a later requirement does not accept."""
    queue = deque(Requirement(root) for root in roots if not root.endswith(".whl"))
    chosen: dict[str, Version] = {}
    conflicts: list[str] = []
    for root in roots:
        if root.endswith(".whl"):  # a local wheel (prefkit built from the checkout): carried as it is
            wheel = Path(shutil.copy(root, out))
            chosen[norm(wheel.name.split("-")[0])] = wheel_version(wheel)
            print(f"{wheel.name}  ({wheel.stat().st_size / 1e6:.1f} MB, local)", flush=True)
            queue.extend(requirements_of(wheel))  # after the named roots: their pins come first
    named = {norm(Requirement(root).name) for root in roots if not root.endswith(".whl")}
    while queue:
        requirement = queue.popleft()
        name = norm(requirement.name)
        if name in chosen:
            if not requirement.specifier.contains(chosen[name], prereleases=True):
                conflicts.append(f"{name} {chosen[name]} does not satisfy '{requirement}'")
            continue
        if name in skipped or (name in present and name not in named):
            continue
        wheel = fetch(str(requirement).split(";")[0], out)
        chosen[name] = wheel_version(wheel)
        print(f"{wheel.name}  ({wheel.stat().st_size / 1e6:.1f} MB)", flush=True)
        queue.extend(requirements_of(wheel))
    return conflicts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="+", help="requirements (vllm==0.20.0) or local wheel files")
    parser.add_argument("--out", type=Path, default=Path(".gpu/wheels"))
    parser.add_argument(
        "--with-optional", action="store_true", help="also carry flashinfer, cutlass, tilelang"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    present = {
        norm(line.strip())
        for line in (HERE / "gpu_image_packages.txt").read_text().splitlines()
        if line.strip()
    }
    skipped = NEVER | (set() if args.with_optional else OPTIONAL)
    conflicts = walk(args.roots, args.out, present, skipped)
    total = sum(p.stat().st_size for p in args.out.glob("*.whl")) / 1e6
    print(f"{len(list(args.out.glob('*.whl')))} wheels, {total:.0f} MB in {args.out}")
    for conflict in conflicts:
        print(f"conflict: {conflict}", file=sys.stderr)
    return 1 if conflicts else 0


if __name__ == "__main__":
    sys.exit(main())

"""The wheel walk behind `check.sh prepare`: what the GPU image has is not carried, the first version chosen
for a project stays, and a later requirement it does not satisfy is named (checked without a network)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from packaging.requirements import Requirement

from tests.benchmarks.gpu_modules import load

collect = load("collect_wheels")


def write_wheel(folder: Path, name: str, version: str, requires: list[str]) -> Path:
    path = folder / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    metadata = "\n".join([f"Name: {name}", f"Version: {version}", *(f"Requires-Dist: {r}" for r in requires)])
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{name.replace('-', '_')}-{version}.dist-info/METADATA", metadata + "\n")
    return path


class FakeIndex:
    """`pip download --no-deps` over a dict: the newest version a requirement accepts."""

    def __init__(self, projects: dict[str, dict[str, list[str]]]) -> None:
        self.projects = projects
        self.asked: list[str] = []

    def __call__(self, requirement: str, out: Path) -> Path:
        self.asked.append(requirement)
        parsed = Requirement(requirement)
        versions = self.projects[parsed.name]
        version = max(
            (v for v in versions if parsed.specifier.contains(v)), key=lambda v: tuple(map(int, v.split(".")))
        )
        return write_wheel(out, parsed.name, version, versions[version])


def test_walk_skips_what_the_image_has_keeps_pins_and_names_conflicts(tmp_path):
    index = FakeIndex(
        {
            "vllm": {"0.20.0": ["torch==2.11.0", "pydantic>=2.12", "numpy", "openai>=1.0", "fast-kernels"]},
            "pydantic": {"2.11.0": [], "2.14.4": ["pydantic-core==2.50.5"]},
            "pydantic-core": {"2.50.5": []},
            "openai": {"1.5.0": [], "3.60.0": ["httpx"]},
            "trl": {"1.16.0": ["datasets>=3", "pydantic<2.12"]},
            "datasets": {"5.2.0": ["dill", "numpy"]},
            "dill": {"0.4.1": []},
        }
    )
    local = write_wheel(
        tmp_path, "prefkit", "0.1.0", ["polars>=1.0", "openai>=1.40", 'pywin32; sys_platform == "win32"']
    )
    index.projects["polars"] = {"2.1.0": []}
    out = tmp_path / "out"
    out.mkdir()
    conflicts = collect.walk(
        [str(local), "vllm==0.20.0", "trl==1.16.0"],
        out,
        present={"numpy", "httpx", "datasets"},
        skipped={"torch", "fast-kernels"},
        fetch=index,
    )
    carried = sorted(path.name.split("-")[0] for path in out.glob("*.whl"))
    assert carried == ["openai", "polars", "prefkit", "pydantic", "pydantic_core", "trl", "vllm"]
    assert index.asked[:2] == ["vllm==0.20.0", "trl==1.16.0"]  # named roots before the local wheel's needs
    assert "torch==2.11.0" not in index.asked and "numpy" not in index.asked  # never / already there
    assert conflicts == ["pydantic 2.14.4 does not satisfy 'pydantic<2.12'"]

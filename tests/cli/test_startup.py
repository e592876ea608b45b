"""`prefkit --help` and every command's start stay fast: building the CLI (every command registered, its
flags derived from the stage config models) imports no data or model library."""

import subprocess
import sys

HEAVY = ("polars", "pyarrow", "numpy", "torch", "transformers", "vllm", "datasets")


def test_building_the_cli_imports_no_heavy_library():
    probe = (
        "import sys, prefkit.cli as cli; "
        "assert cli.app.registered_commands; "
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout

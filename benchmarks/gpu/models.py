"""The models the GPU check runs on, written once into its log folder; their paths as JSON.

    python benchmarks/gpu/models.py --out LOGS/models --json-out LOGS/models.json             # Llama-3.2-1B shape
    python benchmarks/gpu/models.py --out LOGS/models --json-out LOGS/models.json --dry-run   # tiny, for CPU

policy: the causal LM that is sampled and trained; reward: a one-output sequence classifier of the same
shape (random weights: its scores are meaningless, its cost is a real 1B reward model's); smollm2: a
folder with SmolLM2's real weights when one is present (`$SMOLLM2`, or prefkit's embedded default when its
package is installed), else null with the reason; in a dry run the tiny policy stands in for it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the checkout's prefkit
sys.path.insert(0, str(HERE.parent))  # benchmarks/architectures.py

ARCHITECTURE = "llama-3.2-1b"


def find_smollm2() -> tuple[str | None, str]:
    """SmolLM2's real weights if they are on this machine (nothing is downloaded), and where they came from."""
    folder = os.environ.get("SMOLLM2")
    if folder:
        if (Path(folder) / "config.json").exists():
            return folder, f"$SMOLLM2={folder}"
        return None, f"$SMOLLM2={folder} has no config.json"
    try:
        from prefkit.models import resolve_model

        return resolve_model("smollm2"), "prefkit's embedded default"
    except Exception as error:  # not installed here: the row is skipped with this reason
        return None, f"not present ({type(error).__name__}: {str(error).splitlines()[0][:120]})"


def write_models(out: Path, dry_run: bool) -> dict[str, str | None]:
    """Write (or reuse) the policy and reward model under `out`; return their folders and SmolLM2's."""
    from architectures import random_model, reward_model_from

    if dry_run:
        from prefkit.testing import build_tiny_llama

        policy = build_tiny_llama(out / "policy")
        reward = out / "reward"
        if not (reward / "config.json").exists():
            reward_model_from(str(policy), reward)
        return {
            "policy": str(policy),
            "reward": str(reward),
            "policy_name": "tiny Llama (dry run)",
            "smollm2": str(policy),
            "smollm2_source": "tiny Llama standing in (dry run)",
        }
    policy, reward = out / "policy" / "model", out / "reward" / "model"
    if not (policy / "config.json").exists():
        random_model(ARCHITECTURE, out / "policy")
    if not (reward / "config.json").exists():
        random_model(ARCHITECTURE, out / "reward", head="reward")
    smollm2, source = find_smollm2()
    return {
        "policy": str(policy),
        "reward": str(reward),
        "policy_name": f"random:{ARCHITECTURE}",
        "smollm2": smollm2,
        "smollm2_source": source,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--json-out", type=Path, required=True)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    text = json.dumps(write_models(args.out, args.dry_run), indent=2)
    args.json_out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

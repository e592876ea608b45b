"""The GPU check's final table: one row per step (iterate: one per stage), from the step files in its log folder.

    python benchmarks/gpu/report.py LOGS      # prints the Markdown table, writes LOGS/summary.md and summary.json

Each step left `<step>.status.json` (exit code, start and end time, or why it was skipped) and, when it ran,
its own JSON (`sampling.json`, `reward-scoring.json`, `iterate.json`, `train.json`). A step whose
command failed, or whose JSON lacks what the row needs, is a `failed` row naming why.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

# step name -> (row label, JSON it writes); the order is the table's
STEPS = {
    "install": ("install (parts -> wheels)", "install.json"),
    "models": ("models", "models.json"),
    "sampling": ("sampling: vLLM vs transformers", "sampling.json"),
    "sampling-smollm2": ("sampling: vLLM vs transformers, SmolLM2", "sampling-smollm2.json"),
    "reward-scoring": ("reward scoring: vLLM pooling vs transformers", "reward-scoring.json"),
    "iterate": ("iterate round", "iterate.json"),
    "train": ("training benchmark (benchmarks/train.py)", "train.json"),
}
SAMPLING_TARGET = 10.0  # issue 26: vLLM >= 10x the transformers sampler on the 1B shape
COLUMNS = ("step", "status", "wall s", "peak memory", "result")


class RowError(Exception):
    """The step ran but its output does not hold what its row reports."""


def load(path: Path) -> dict:
    if not path.exists():
        raise RowError(f"{path.name} was not written")
    return json.loads(path.read_text())


def number(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def sampling_result(data: dict) -> str:
    by_backend = {row["backend"]: row for row in data.get("results", [])}
    if "vllm" not in by_backend or "transformers" not in by_backend:
        raise RowError(f"a backend did not run: {data.get('skipped') or sorted(by_backend)}")
    fast, slow = by_backend["vllm"], by_backend["transformers"]
    ratio = fast["tokens_per_second"] / slow["tokens_per_second"]
    shape = data.get("arguments", {})
    target = "meets" if ratio >= SAMPLING_TARGET else "below"
    return (
        f"{shape.get('num_prompts')} prompts x {shape.get('n')} x {shape.get('max_new_tokens')} tokens: "
        f"vLLM {number(fast['tokens_per_second'])} tok/s (load {fast['load_seconds']} s), "
        f"transformers {number(slow['tokens_per_second'])} tok/s (batch {shape.get('batch_size')}); {ratio:.2f}x "
        f"({target} the {SAMPLING_TARGET:g}x target)"
    )


def reward_result(data: dict) -> str:
    by_engine = {row["engine"]: row for row in data.get("results", [])}
    if "max_abs_score_difference" not in data or len(by_engine) < 2:
        raise RowError(f"both engines must run, ran: {sorted(by_engine)}")
    fast, slow = by_engine["vllm"], by_engine["transformers"]
    return (
        f"vLLM {number(fast['completions_per_s'], 1)} completions/s (load {fast['load_s']} s), "
        f"transformers {number(slow['completions_per_s'], 1)}/s; {data['ratio']:.2f}x; "
        f"largest score difference {data['max_abs_score_difference']:.2e}"
    )


def install_result(data: dict) -> str:
    return (
        f"rehearsal: set {data['set']}, {data['parts']} parts arriving one per call, installed after the last; "
        f"{data['calls']} calls (the last a no-op)"
    )


def models_result(data: dict) -> str:
    smollm2 = data.get("smollm2") and data.get("smollm2_source")
    return f"policy and reward model: {data['policy_name']}; SmolLM2: {smollm2 or data.get('smollm2_source')}"


def stage_result(stage: dict) -> str:
    counts = stage.get("counts", {})
    if stage["stage"] == "sample":
        rate = counts["completion_tokens"] / counts["seconds"] if counts.get("seconds") else 0.0
        return (
            f"{counts['prompts']} prompts, {counts['completions']} completions, {counts['completion_tokens']:,} "
            f"tokens, {number(rate)} tok/s while generating"
        )
    if stage["stage"] == "label":
        usage = counts.get("labeler_usage", {})
        return f"{counts['candidates']} completions scored, {usage.get('samples_per_s', 0):.1f}/s; {counts['pairs']} pairs"
    if stage["stage"] == "train":
        return f"{counts['train_pairs']} pairs, {counts['steps']} steps"
    return f"reward-kl: {counts.get('evaluated', 0)} of {counts.get('subjects', 0)} subjects evaluated"


def memory_text(mib: float | None, source: str) -> str:
    if mib is None:
        return "no sample"
    return f"{mib / 1024:.1f} GiB {'GPU' if source == 'gpu' else 'RSS'}"


def train_result(data: dict) -> tuple[str, str]:
    """One line for the training benchmark and its peak memory: prefkit's fastest row against TRL's fastest.

    Reads `rows` (benchmarks/train.py --out: name, trainer prefkit/trl, pairs_per_s, mfu, peak_memory_mb,
    oom, failed) or `results` (read from the table an older train.py prints)."""
    rows = data.get("rows") or data.get("results") or []
    ran = [row for row in rows if not row.get("oom") and not row.get("failed") and "pairs_per_s" in row]
    for row in ran:
        row.setdefault("name", row.get("trainer"))
    ours = [row for row in ran if not str(row["name"]).startswith("trl")]
    theirs = [row for row in ran if str(row["name"]).startswith("trl")]
    trl = max(theirs, key=lambda row: row["pairs_per_s"]) if theirs else None
    if trl is not None and trl.get("batch_size") is not None:  # like with like: TRL's batch size
        ours = [row for row in ours if row.get("batch_size") in (None, trl["batch_size"])]
    if not ours:
        raise RowError(f"no prefkit row with pairs_per_s in train.json ({len(rows)} rows)")
    best = max(ours, key=lambda row: row["pairs_per_s"])
    batch = f" at batch {best['batch_size']}" if best.get("batch_size") is not None else ""
    text = f"{len(ran)} of {len(rows)} rows ran; prefkit best{batch}: {best['name']} {best['pairs_per_s']:.2f} pairs/s"
    if best.get("mfu") is not None:
        text += f" (MFU {100 * best['mfu']:.1f} %)"
    if trl is not None:
        text += f"; TRL best: {trl['name']} {trl['pairs_per_s']:.2f} ({best['pairs_per_s'] / trl['pairs_per_s']:.2f}x)"
    peak = best.get("peak_memory_mb")
    return text, (f"{peak / 1024:.1f} GiB" if peak is not None else "")


def step_rows(logs: Path, name: str, status: dict) -> list[dict]:
    """The table rows of one step (iterate: one per stage)."""
    label, output = STEPS[name]
    row = {"step": label, "status": "ok", "seconds": round(status["ended"] - status["started"], 1)}
    row |= {"peak": "", "result": ""}
    if status["rc"] != 0:
        reason = "timed out" if status["rc"] in (124, 137) else f"exit code {status['rc']}"
        return [row | {"status": "failed", "result": f"{reason}; see {name}.log"}]
    try:
        if name == "install" and not (logs / output).exists():  # installed before this run
            return [row | {"result": status.get("note", "")}]
        data = load(logs / output)
        if name == "iterate":
            return iterate_rows(data, row)
        results: dict[str, Callable[[dict], str]] = {
            "install": install_result,
            "models": models_result,
            "sampling": sampling_result,
            "sampling-smollm2": sampling_result,
            "reward-scoring": reward_result,
        }
        if name == "train":
            text, peak = train_result(data)
            return [row | {"result": text, "peak": peak}]
        return [row | {"result": results[name](data)}]
    except (RowError, KeyError, ValueError, TypeError, ZeroDivisionError) as error:
        return [row | {"status": "failed", "result": f"{type(error).__name__}: {error}"}]


def iterate_rows(data: dict, row: dict) -> list[dict]:
    shape = data["shape"]
    rows = [
        row
        | {
            "result": f"1 round: {shape['prompts']} prompts x {shape['n']} x {shape['max_new_tokens']} tokens, "
            f"{shape['heldout']} held-out prompts (stages below)"
        }
    ]
    for stage in data["stages"]:
        if stage["status"] != "ok":
            rows.append(
                {
                    "step": f"  iterate: {stage['stage']}",
                    "status": "failed",
                    "seconds": "",
                    "peak": "",
                    "result": stage.get("error", ""),
                }
            )
            continue
        rows.append(
            {
                "step": f"  iterate: {stage['stage']}",
                "status": "ok",
                "seconds": stage["seconds"],
                "peak": memory_text(stage["peak_mib"], stage["memory"]),
                "result": stage_result(stage),
            }
        )
    if data.get("rc"):
        rows[0] |= {"status": "failed", "result": f"prefkit iterate exit code {data['rc']}; see iterate.log"}
    return rows


def collect(logs: Path) -> list[dict]:
    """Every row, in step order, of the steps that left a status file."""
    rows = []
    for name in STEPS:
        path = logs / f"{name}.status.json"
        if not path.exists():
            continue
        status = json.loads(path.read_text())
        if status.get("skipped"):
            rows.append(
                {
                    "step": STEPS[name][0],
                    "status": "skipped",
                    "seconds": "",
                    "peak": "",
                    "result": status["skipped"],
                }
            )
        else:
            rows.extend(step_rows(logs, name, status))
    return rows


def markdown(rows: list[dict], heading: str) -> str:
    lines = [heading, "", "| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    for row in rows:
        cells = [row["step"], row["status"], str(row["seconds"]), row["peak"], row["result"]]
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def heading(logs: Path) -> str:
    environment = logs / "environment.json"
    if not environment.exists():
        return f"GPU check, {logs}"
    values = json.loads(environment.read_text())
    return "GPU check: " + ", ".join(f"{key} {value}" for key, value in values.items())


def main(argv: list[str] | None = None) -> int:
    logs = Path((argv or sys.argv[1:])[0])
    rows = collect(logs)
    text = markdown(rows, heading(logs))
    (logs / "summary.md").write_text(text)
    (logs / "summary.json").write_text(json.dumps(rows, indent=2))
    print(text)
    return 0 if rows and all(row["status"] in ("ok", "skipped") for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

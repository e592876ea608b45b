"""Read an artifact or an iterate run folder into the plain data one report page shows.

Everything here is I/O at the edge: it opens folders, reads Parquet / JSON / Markdown, and returns
JSON-ready dicts (`ReportData`). The page (`prefkit.report.page`) only renders what this returns.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from prefkit.artifacts import CARD_FILE, DATA_FILE, MANIFEST_FILE, read_manifest
from prefkit.conversation import completion_text, is_conversation
from prefkit.errors import InputError
from prefkit.report.statistics import constant_columns, per_prompt_mean_and_se

# a page embeds at most this many pairs (a seeded random sample beyond it, said on the page)
DEFAULT_MAX_PAIRS = 20_000
RUN_CONFIG_FILE = "iterate.json"


@dataclass
class PairSet:
    """The pairs of one preferences artifact, possibly a bounded sample of them."""

    name: str
    rows: list[dict[str, Any]]
    total: int
    length_unit: str
    dropped: dict[str, int]
    note: str | None = None


@dataclass
class CandidateSet:
    """The k completions per prompt of one candidates artifact, with scores where a label run gave them."""

    name: str
    rows: list[dict[str, Any]]
    total: int
    note: str | None = None


@dataclass
class Provenance:
    """What one shown artifact is: its manifest and data card."""

    name: str
    path: str
    manifest: dict[str, Any]
    card: str | None


@dataclass
class ReportData:
    """All a page shows; each list may be empty (a checkpoint has no pairs)."""

    title: str
    kind: str
    source: str
    pair_sets: list[PairSet] = field(default_factory=list)
    candidate_sets: list[CandidateSet] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    leaderboard: dict[str, Any] | None = None
    provenance: list[Provenance] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes null so the page's JSON stays valid)."""
        return _clean(asdict(self))


def collect(path: str | Path, max_pairs: int = DEFAULT_MAX_PAIRS) -> ReportData:
    """Read any prefkit artifact folder or iterate run folder into ReportData."""
    path = Path(path)
    if not path.exists():
        raise InputError("does not exist", file=path)
    if not path.is_dir():
        raise InputError("is a file; give an artifact folder or an iterate run folder", file=path)
    if (path / RUN_CONFIG_FILE).exists():
        return _collect_run(path, max_pairs)
    if not (path / MANIFEST_FILE).exists():
        raise InputError(
            "is neither a finished prefkit artifact (no manifest.json) nor an iterate run (no iterate.json)",
            file=path,
        )
    stage = read_manifest(path).stage
    data = ReportData(
        title=f"{stage}: {path.resolve().parent.name}/{path.name}", kind=stage, source=str(path)
    )
    if stage == "preferences":
        data.pair_sets.append(read_pairs(path, path.name, max_pairs))
    elif stage == "candidates":
        data.candidate_sets.append(read_candidates(path, path.name, None, max_pairs))
    elif stage == "eval":
        data.leaderboard = read_leaderboard(path)
    elif stage != "checkpoint":
        raise InputError(f"a report of a '{stage}' artifact is not supported", file=path)
    data.provenance.append(read_provenance(path, path.name))
    return data


def _collect_run(run_dir: Path, max_pairs: int) -> ReportData:
    config = json.loads((run_dir / RUN_CONFIG_FILE).read_text())
    data = ReportData(
        title=f"iterate run: {config.get('name', run_dir.name)}", kind="run", source=str(run_dir)
    )
    data.provenance.append(
        Provenance(name="run config", path=str(run_dir / RUN_CONFIG_FILE), manifest=config, card=None)
    )
    for round_dir in sorted(run_dir.glob("round-[0-9][0-9]")):
        preferences, candidates = round_dir / "preferences", round_dir / "candidates"
        if (preferences / MANIFEST_FILE).exists():
            pairs = read_pairs(preferences, round_dir.name, max_pairs)
            data.pair_sets.append(pairs)
            data.provenance.append(read_provenance(preferences, f"{round_dir.name} preferences"))
        if (candidates / MANIFEST_FILE).exists():
            scored = preferences if (preferences / MANIFEST_FILE).exists() else None
            data.candidate_sets.append(read_candidates(candidates, round_dir.name, scored, max_pairs))
            data.provenance.append(read_provenance(candidates, f"{round_dir.name} candidates"))
        if (round_dir / "checkpoint" / MANIFEST_FILE).exists():
            data.provenance.append(read_provenance(round_dir / "checkpoint", f"{round_dir.name} checkpoint"))
    report = run_dir / "report.parquet"
    if report.exists():
        data.rounds = pl.read_parquet(report).to_dicts()
    if (run_dir / "eval" / MANIFEST_FILE).exists():
        data.leaderboard = read_leaderboard(run_dir / "eval")
        data.provenance.append(read_provenance(run_dir / "eval", "evaluation"))
    return data


def read_pairs(folder: Path, name: str, max_pairs: int) -> PairSet:
    """The pairs of a preferences artifact as rows for the page (a seeded sample past `max_pairs`)."""
    manifest = read_manifest(folder)
    frame = _read_parquet(folder / DATA_FILE)
    total = frame.height
    note = None
    indices = list(range(total))
    if total > max_pairs:
        indices = sorted(random.Random(0).sample(range(total), max_pairs))
        frame = frame.select(pl.all().gather(indices))
        note = (
            f"{total:,} pairs: this page embeds a random sample of {max_pairs:,} (seed 0) to stay small; "
            f"rerun with --max-pairs to embed more"
        )
    unit = manifest.extra.get("length_unit", manifest.config.get("length_unit", "tokens"))
    # rows are numbered from 1 as in the artifact, so a sampled page still names the file's row
    rows = [
        _pair_row(index + 1, row) for index, row in zip(indices, frame.iter_rows(named=True), strict=True)
    ]
    dropped = {str(k): int(v) for k, v in (manifest.counts.get("dropped") or {}).items()}
    return PairSet(name=name, rows=rows, total=total, length_unit=unit, dropped=dropped, note=note)


def _pair_row(index: int, row: dict[str, Any]) -> dict[str, Any]:
    chosen, rejected = completion_text(row["chosen"]), completion_text(row["rejected"])
    shown = {
        "row": index,
        "prompt_id": row.get("prompt_id"),
        "prompt": _prompt_value(row.get("prompt")),
        "chosen": chosen,
        "rejected": rejected,
        "score_chosen": row.get("score_chosen"),
        "score_rejected": row.get("score_rejected"),
        "margin": row.get("margin"),
        "len_chosen": row.get("len_chosen"),
        "len_rejected": row.get("len_rejected"),
        "chars_chosen": len(chosen),
        "chars_rejected": len(rejected),
    }
    if shown["len_chosen"] is not None and shown["len_rejected"] is not None:
        shown["gap"] = shown["len_chosen"] - shown["len_rejected"]
    for side in ("chosen", "rejected"):  # finish reasons and EOS flags, when the labeling stage wrote them
        for key in (f"finish_{side}", f"finish_reason_{side}"):
            if key in row:
                shown[f"finish_{side}"] = row[key]
        if f"eos_{side}" in row:
            shown[f"eos_{side}"] = row[f"eos_{side}"]
    extra = {
        key: value
        for key, value in row.items()
        if key not in shown
        and key not in ("chosen_index", "rejected_index")
        and not key.startswith(("finish", "eos_"))
    }
    if extra:  # e.g. judge verdicts and rationale columns a labeler added
        shown["extra"] = extra
    return shown


def read_candidates(folder: Path, name: str, preferences: Path | None, max_prompts: int) -> CandidateSet:
    """The completions per prompt; with the round's preferences, the chosen/rejected ones are marked."""
    frame = _read_parquet(folder / DATA_FILE)
    total = frame.height
    note = None
    if total > max_prompts:
        frame = frame.head(max_prompts)
        note = f"{total:,} prompts: this page shows the first {max_prompts:,}"
    picked: dict[str, dict[str, Any]] = {}
    if preferences is not None:
        for row in _read_parquet(preferences / DATA_FILE).iter_rows(named=True):
            picked.setdefault(str(row["prompt_id"]), row)
    rows = []
    for row in frame.iter_rows(named=True):
        pair = picked.get(str(row["prompt_id"]))
        completions = []
        for index, text in enumerate(row["completions"]):
            item: dict[str, Any] = {"text": text, "chars": len(text)}
            if row.get("completion_tokens") is not None:
                item["tokens"] = row["completion_tokens"][index]
            if row.get("finish_reasons") is not None:
                item["finish"] = row["finish_reasons"][index]
            if pair is not None and pair.get("chosen_index") == index:
                item["role"], item["score"] = "chosen", pair.get("score_chosen")
            elif pair is not None and pair.get("rejected_index") == index:
                item["role"], item["score"] = "rejected", pair.get("score_rejected")
            completions.append(item)
        rows.append(
            {
                "prompt_id": row["prompt_id"],
                "prompt": _prompt_value(row["prompt"]),
                "completions": completions,
            }
        )
    return CandidateSet(name=name, rows=rows, total=total, note=note)


def read_leaderboard(folder: Path) -> dict[str, Any]:
    """The eval leaderboard without its constant columns (returned once), plus length error bars."""
    frame = _read_parquet(folder / "leaderboard.parquet")
    constants = constant_columns(frame) if frame.height > 1 else {}
    shown = frame.drop([name for name in constants if name not in ("subject",)])
    rows = shown.to_dicts()
    for row in rows:  # length s.e. from the stored samples (the leaderboard keeps only the mean)
        samples = folder / "results" / str(row["subject"]) / "reward-kl" / "reward_kl_samples.jsonl"
        if samples.exists():
            _, se = per_prompt_mean_and_se(_jsonl(samples), lambda s: len(s.get("completion", "")))
            row["reward-kl/length_chars_se"] = se
    return {"columns": list(rows[0]) if rows else shown.columns, "rows": rows, "constant": constants}


def read_provenance(folder: Path, name: str) -> Provenance:
    """An artifact's manifest and data card."""
    card = folder / CARD_FILE
    return Provenance(
        name=name,
        path=str(folder),
        manifest=json.loads((folder / MANIFEST_FILE).read_text()),
        card=card.read_text() if card.exists() else None,
    )


def _prompt_value(prompt: Any) -> Any:
    # conversations keep their turns so the page shows them as turns
    if is_conversation(prompt):
        return [{"role": m["role"], "content": m["content"]} for m in prompt]
    return prompt


def _read_parquet(path: Path) -> pl.DataFrame:
    try:
        return pl.read_parquet(path)
    except FileNotFoundError:
        raise InputError("is missing", file=path) from None
    except (pl.exceptions.ComputeError, OSError) as error:
        raise InputError(f"cannot be read as Parquet ({str(error).splitlines()[0]})", file=path) from None


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return None if value != value or value in (float("inf"), float("-inf")) else value
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value

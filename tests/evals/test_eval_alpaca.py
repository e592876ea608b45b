"""AlpacaEval 2 through alpaca-eval 0.6.6 as a library, against a real local OpenAI-compatible judge server."""

from __future__ import annotations

import json
import math
import socket
import statistics

import pytest
from alpaca_judge_server import alpaca_judge_server
from prefkit_evals.alpaca_annotators import load_annotator
from prefkit_evals.alpaca_eval import ANNOTATIONS_FILE, MODEL_OUTPUTS_FILE, AlpacaEvalEvaluator
from prefkit_evals.alpaca_judge import JudgeError, run_judge

from prefkit.errors import ConfigError
from prefkit.evaluation.alpaca_data import (
    FULL_SET_SIZE,
    GAMED_FILE,
    bundled_data_dir,
    length_control_unavailable_reason,
    load_alpaca_eval_set,
)
from prefkit.evaluation.stage import EvalSubject
from prefkit.judge.client import JudgeSettings


def local_judge(base_url: str, **options) -> tuple[JudgeSettings, object]:
    """Settings for the local judge server (no retries) and the default weighted annotator."""
    return JudgeSettings(base_url=base_url, max_attempts=1, **options), load_annotator()


@pytest.fixture()
def judge_server():
    with alpaca_judge_server() as server:
        yield server


def expected_win_rate(model_outputs: list[dict], baseline: list[dict]) -> tuple[float, float]:
    """What the length-preferring judge must give: preference - 1 = len(model) / (len(model) + len(baseline))."""
    shares = []
    for model, base in zip(model_outputs, baseline, strict=True):
        total = len(model["output"]) + len(base["output"])
        shares.append(
            0.5 if total == 0 or model["output"] == base["output"] else len(model["output"]) / total
        )
    return 100 * statistics.fmean(shares), 100 * statistics.stdev(shares) / math.sqrt(len(shares))


def truncated_outputs(rows, name="truncated") -> list[dict]:
    return [
        {"instruction": r["instruction"], "output": r["output"][: 40 * (i + 1)], "generator": name}
        for i, r in enumerate(rows)
    ]


def free_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_evaluator_end_to_end_with_the_tiny_model(judge_server, tiny_model_dir, tmp_path):
    evaluator = AlpacaEvalEvaluator(
        judge_base_url=judge_server.base_url,
        judge_model="local-judge",
        judge_price_per_token=1e-6,
        max_instances=5,
        max_new_tokens=12,
        batch_size=5,
        backend="transformers",
    )
    metrics = evaluator.evaluate(EvalSubject("tiny", str(tiny_model_dir)), tmp_path)
    outputs = json.loads((tmp_path / MODEL_OUTPUTS_FILE).read_text())
    baseline = list(load_alpaca_eval_set(max_instances=5).rows)
    assert [o["instruction"] for o in outputs] == [b["instruction"] for b in baseline]
    win_rate, standard_error = expected_win_rate(outputs, baseline)
    assert metrics["win_rate"] == pytest.approx(win_rate, abs=1e-6)
    assert metrics["standard_error"] == pytest.approx(standard_error, abs=1e-6)
    assert metrics["avg_length"] == int(statistics.fmean(len(o["output"]) for o in outputs))
    assert (metrics["n_total"], metrics["n_missing_annotations"]) == (5, 0)
    assert metrics["lc_win_rate"] is None and str(FULL_SET_SIZE) in metrics["lc_missing_reason"]
    assert judge_server.requests == 5 + 1  # one probe, then one request per instruction
    assert metrics["judge_tokens"] > 0
    assert metrics["judge_cost_usd"] == pytest.approx(metrics["judge_tokens"] * 1e-6)
    annotations = json.loads((tmp_path / ANNOTATIONS_FILE).read_text())
    assert len(annotations) == 5 and all(1 <= a["preference"] <= 2 for a in annotations)
    # what the result depends on travels with it
    assert (metrics["judge_model"], metrics["judge_annotator"]) == (
        "local-judge",
        "weighted_alpaca_eval_gpt4_turbo",
    )
    assert len(metrics["judge_template_sha256"]) == 64 and metrics["alpaca_eval_version"] == "0.6.6"


def test_judge_numbers_on_known_outputs(judge_server):
    rows = list(load_alpaca_eval_set(max_instances=8, subset_seed=3).rows)
    outputs = truncated_outputs(rows)
    outputs[0]["output"] = rows[0]["output"]  # identical to the baseline: a draw, never sent to the judge
    result = run_judge(outputs, rows, *local_judge(judge_server.base_url), name="truncated")
    win_rate, standard_error = expected_win_rate(outputs, rows)
    assert result.summary.win_rate == pytest.approx(win_rate, abs=1e-6)
    assert result.summary.standard_error == pytest.approx(standard_error, abs=1e-6)
    identical = sum(o["output"] == r["output"] for o, r in zip(outputs, rows, strict=True))
    assert identical >= 1 and result.summary.n_draws >= identical
    assert judge_server.requests == 1 + len(rows) - identical  # the probe, then the non-identical pairs


def test_judge_without_logprobs_fails_clearly():
    with alpaca_judge_server(with_logprobs=False) as server:
        rows = list(load_alpaca_eval_set(max_instances=3).rows)
        with pytest.raises(JudgeError, match="returned no logprobs"):
            run_judge(truncated_outputs(rows), rows, *local_judge(server.base_url), name="m")


def test_judge_server_down_fails_clearly():
    rows = list(load_alpaca_eval_set(max_instances=2).rows)
    url = free_port_url()
    with pytest.raises(JudgeError, match=rf"judge server at {url} is unreachable"):
        run_judge(truncated_outputs(rows), rows, *local_judge(url), name="m")


def test_missing_annotations_are_counted_not_dropped():
    rows = list(load_alpaca_eval_set(max_instances=6).rows)
    skipped = {rows[1]["instruction"], rows[4]["instruction"]}
    with alpaca_judge_server(unparseable=lambda prompt: any(text in prompt for text in skipped)) as server:
        judge = local_judge(server.base_url)
        with pytest.raises(JudgeError, match=r"2 of 6 judge annotations are missing or invalid"):
            run_judge(truncated_outputs(rows), rows, *judge, name="m")
        result = run_judge(truncated_outputs(rows), rows, *judge, name="m", max_missing=2)
    assert (result.summary.n_total, result.summary.n_missing) == (4, 2)
    kept = [
        (o, b) for o, b in zip(truncated_outputs(rows), rows, strict=True) if b["instruction"] not in skipped
    ]
    win_rate, _ = expected_win_rate([o for o, _ in kept], [b for _, b in kept])
    assert result.summary.win_rate == pytest.approx(win_rate, abs=1e-6)


def test_lc_reason_and_options():
    assert GAMED_FILE in length_control_unavailable_reason(load_alpaca_eval_set())
    assert "805" in length_control_unavailable_reason(load_alpaca_eval_set(max_instances=10))
    with pytest.raises(ConfigError, match="ships no judge config 'gpt5_judge'"):
        AlpacaEvalEvaluator(judge="gpt5_judge")
    with pytest.raises(ConfigError, match="not a weighted"):
        AlpacaEvalEvaluator(judge="alpaca_eval_gpt4")


def write_gamed_csv(path, n: int) -> None:
    """A synthetic df_gamed.csv in upstream's layout: two gamed baselines over the n instructions."""
    lines = ["model,index,instruction_difficulty,preference,std_delta_len,not_gamed_baseline"]
    for model, sign in (("gamed_verbose", 1.0), ("gamed_concise", -1.0)):
        for index in range(n):
            difficulty = (index % 7 - 3) / 3
            preference = 0.5 + 0.3 * sign * (0.5 + 0.5 * (index % 3) / 2)
            lines.append(f"{model},{index},{difficulty},{preference},{-sign * (1 + index % 5) / 5},False")
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.slow
def test_length_controlled_win_rate_on_the_full_set(judge_server, tmp_path):
    data_dir = tmp_path / "alpaca"
    data_dir.mkdir()
    (data_dir / "gpt4_1106_preview.model_outputs.json").write_bytes(
        (bundled_data_dir() / "gpt4_1106_preview.model_outputs.json").read_bytes()
    )
    write_gamed_csv(data_dir / GAMED_FILE, FULL_SET_SIZE)
    data = load_alpaca_eval_set(data_dir)
    assert length_control_unavailable_reason(data) == ""
    rows = list(data.rows)
    outputs = [
        {"instruction": r["instruction"], "output": r["output"][: 100 + 7 * (i % 150)], "generator": "m"}
        for i, r in enumerate(rows)
    ]
    judge = local_judge(judge_server.base_url, max_concurrency=8)
    result = run_judge(outputs, rows, *judge, name="m", gamed_csv=data.gamed_csv, length_controlled=True)
    win_rate, _ = expected_win_rate(outputs, rows)
    assert result.summary.win_rate == pytest.approx(win_rate, abs=1e-6)
    assert result.lc_win_rate is not None and 0 < result.lc_win_rate < 100
    # a judge that only rewards length: removing the length gap must move the win rate towards 50 %
    assert abs(result.lc_win_rate - 50) < abs(result.summary.win_rate - 50)


def fake_hub(monkeypatch, tmp_path, gamed_rows: int | None):
    """Replace huggingface_hub.hf_hub_download: the hub cache layout (snapshots/<commit>/file) or a failure."""
    import huggingface_hub

    calls = []
    commit = "0123456789abcdef0123456789abcdef01234567"

    def download(repo_id, filename, *, repo_type=None, revision=None, **kwargs):
        calls.append((repo_id, filename, repo_type, revision))
        if gamed_rows is None:
            raise huggingface_hub.errors.LocalEntryNotFoundError("offline and not in the cache")
        path = tmp_path / "hub" / "snapshots" / commit / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        write_gamed_csv(path, gamed_rows)
        return str(path)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    return calls, commit


def test_df_gamed_comes_from_the_hub_or_lc_says_why(monkeypatch, tmp_path):
    calls, commit = fake_hub(monkeypatch, tmp_path, FULL_SET_SIZE)
    data = load_alpaca_eval_set(gamed_revision="abc123")
    assert calls == [("tatsu-lab/alpaca_eval", GAMED_FILE, "dataset", "abc123")]
    assert data.gamed_csv is not None and data.gamed_revision == f"tatsu-lab/alpaca_eval@{commit}"
    assert length_control_unavailable_reason(data) == ""
    # a subset never asks the hub (LC is undefined there)
    assert load_alpaca_eval_set(max_instances=5).gamed_csv is None and len(calls) == 1
    # a copy in $PREFKIT_HOME/alpaca_eval wins over the hub, offline
    home = tmp_path / "home"
    (home / "alpaca_eval").mkdir(parents=True)
    write_gamed_csv(home / "alpaca_eval" / GAMED_FILE, FULL_SET_SIZE)
    monkeypatch.setenv("PREFKIT_HOME", str(home))
    local = load_alpaca_eval_set()
    assert local.gamed_revision.startswith("local sha256:") and len(calls) == 1
    # neither: the reason names where prefkit looked and that the hub did not answer
    monkeypatch.setenv("PREFKIT_HOME", str(tmp_path / "empty"))
    fake_hub(monkeypatch, tmp_path, None)
    reason = length_control_unavailable_reason(load_alpaca_eval_set())
    assert "df_gamed.csv is not in" in reason and "LocalEntryNotFoundError" in reason


@pytest.mark.slow
def test_lc_win_rate_with_df_gamed_from_the_hub(judge_server, monkeypatch, tmp_path):
    """The evaluator on the 805 set, df_gamed.csv from the (simulated) hub: LC is computed and recorded."""
    import prefkit_evals.alpaca_eval as alpaca_eval_module

    _, commit = fake_hub(monkeypatch, tmp_path, FULL_SET_SIZE)
    # outputs stand in for generation (the tiny model would need minutes for 805 answers on CPU)
    monkeypatch.setattr(
        AlpacaEvalEvaluator,
        "generate_outputs",
        lambda self, subject, data: [
            {"instruction": r["instruction"], "output": r["output"][: 100 + 7 * (i % 150)], "generator": "m"}
            for i, r in enumerate(data.rows)
        ],
    )
    assert alpaca_eval_module.AlpacaEvalEvaluator is AlpacaEvalEvaluator
    evaluator = AlpacaEvalEvaluator(judge_base_url=judge_server.base_url, judge_model="local-judge")
    metrics = evaluator.evaluate(EvalSubject("m", "unused"), tmp_path / "out")
    assert metrics["lc_win_rate"] is not None and 0 < metrics["lc_win_rate"] < 100
    assert metrics["lc_missing_reason"] == ""
    assert abs(metrics["lc_win_rate"] - 50) < abs(metrics["win_rate"] - 50)  # the judge only rewards length
    assert metrics["data_revision"] == f"tatsu-lab/alpaca_eval@{commit}"

"""Every stage command takes --config FILE and --set KEY=VALUE: defaults < file < flags < --set.

The stage function is replaced by one that records the config it is given, so these tests check the
command line -> config plumbing of each command without running a model.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from prefkit.cli import app, main

OUT = "never-written"  # relative to the test's working folder (tmp_path); must not appear


class Captured(Exception):
    """Raised by the stand-in stage function, carrying the config the command built."""

    def __init__(self, config):
        super().__init__("captured")
        self.config = config


def capture(monkeypatch, module: str, name: str, position: int = 2) -> None:
    """Replace `module.name` by a function that raises Captured(its config argument)."""

    def stand_in(*args, **kwargs):
        raise Captured(args[position])

    monkeypatch.setattr(f"{module}.{name}", stand_in)


def invoke(args: list[str]):
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, Captured), result.output
    return result.exception.config


def test_sample_config_file_flags_and_set(tmp_path, monkeypatch):
    capture(monkeypatch, "prefkit.sampling.stage", "sample")
    config_file = tmp_path / "sample.toml"
    config_file.write_text('[sample]\nn = 2\ntemperature = 0.5\nmax_new_tokens = 9\nstop = ["x"]\n')
    config = invoke(
        [
            "sample",
            "p.jsonl",
            "-o",
            "out",
            "--config",
            str(config_file),
            "-n",
            "3",
            "--set",
            "temperature=0.25",
        ]
    )
    assert (config.model, config.n, config.temperature, config.max_new_tokens) == ("smollm2", 3, 0.25, 9)
    assert config.stop == ("x",) and config.sampling.n == 3
    # --set also takes the nested spelling; it wins over a flag
    config = invoke(["sample", "p.jsonl", "-o", "out", "-n", "3", "--set", "sampling.n=5", "--seed", "4"])
    assert config.n == 5 and config.sampling.seed == config.engine.seed == 4


def test_label_config_file_flags_and_set(tmp_path, monkeypatch):
    capture(monkeypatch, "prefkit.labeling.stage", "label")
    config_file = tmp_path / "run.yaml"
    config_file.write_text(
        "label:\n  pairing: all-pairs\n  min_margin: 0.5\n  labeler_options: {model: rm}\n"
    )
    args = [
        "label",
        "c",
        "-o",
        "out",
        "--config",
        str(config_file),
        "--length-penalty",
        "0.01",
        "--set",
        "min_margin=0.25",
    ]
    config = invoke(args)
    assert (config.pairing, config.min_margin, config.length_penalty) == ("all-pairs", 0.25, 0.01)
    assert config.labeler_options == {"model": "rm"}
    config = invoke(["label", "c", "-o", "out", "--labeler-options", '{"model": "x"}'])
    assert config.labeler_options == {"model": "x"} and config.labeler == "vader"


def test_train_config_file_flags_and_set(tmp_path, monkeypatch):
    capture(monkeypatch, "prefkit.training.stage", "train")
    config_file = tmp_path / "train.toml"
    config_file.write_text(
        '[train]\nbeta = [0.1, 0.2]\nepochs = 3\n[train.options]\nlayout = "padding_free"\n'
    )
    args = ["train", "p", "-o", "out", "--config", str(config_file), "--lr", "1e-4", "--set", "epochs=1"]
    config = invoke([*args, "--trainer-option", "wpo=true", "--alpha", "0.5"])
    assert (config.betas(), config.learning_rate, config.epochs) == ([0.1, 0.2], 1e-4, 1)
    assert config.options == {"layout": "padding_free", "wpo": "true", "alpha": 0.5}
    assert invoke(["train", "p", "-o", "out", "--beta", "0.3,0.4"]).betas() == [0.3, 0.4]


def test_eval_config_file_flags_and_set(tmp_path, monkeypatch):
    capture(monkeypatch, "prefkit.evaluation.stage", "evaluate")
    config_file = tmp_path / "eval.yaml"
    config_file.write_text(
        "evaluators: [reward-kl]\noptions:\n  reward-kl: {n: 2, prompts: p.jsonl}\n  winrate: {judge_model: j}\n"
    )
    args = [
        "eval",
        "m",
        "-o",
        "out",
        "-c",
        str(config_file),
        "-O",
        "n=3",
        "--set",
        "options.reward-kl.seed=5",
    ]
    config = invoke([*args, "--no-plots"])
    # the winrate options are dropped: that evaluator is not run
    assert config.evaluators == ["reward-kl"] and config.plots is False
    assert config.options == {"reward-kl": {"n": 3, "prompts": "p.jsonl", "seed": 5}}
    config = invoke(
        ["eval", "m", "-o", "out", "-c", str(config_file), "-e", "winrate", "--set", "plots=false"]
    )
    assert config.options == {"winrate": {"judge_model": "j"}} and config.plots is False


def test_serve_config_file_flags_and_set(tmp_path, monkeypatch):
    def stand_in(model, options):
        raise Captured(options)

    monkeypatch.setattr("prefkit.serve.OpenAIServer", stand_in)
    config_file = tmp_path / "serve.toml"
    config_file.write_text('[serve]\nmax_model_len = 1024\ndtype = "bfloat16"\nextra_args = ["--a"]\n')
    args = ["serve", "m", "--config", str(config_file), "--dtype", "float16", "--set", "max_model_len=2048"]
    options = invoke([*args, "--vllm-arg=--b", "--enforce-eager"])
    assert (options.dtype, options.max_model_len, options.enforce_eager) == ("float16", 2048, True)
    assert options.extra_args == ("--a", "--b") and options.host == "127.0.0.1"


def test_demo_config_file_flags_and_set(tmp_path, monkeypatch):
    capture(monkeypatch, "prefkit.cli.demo", "run_demo", position=0)
    config_file = tmp_path / "demo.yaml"
    config_file.write_text("demo:\n  epochs: 5\n  beta: 0.2\n")
    config = invoke(
        ["demo", "--config", str(config_file), "--samples", "6", "--beta", "0.3", "--set", "epochs=1"]
    )
    assert (config.samples_per_prompt, config.beta, config.epochs, config.max_new_tokens) == (6, 0.3, 1, 40)


def test_length_penalty_sweep_reads_a_label_table_but_sweeps_the_penalty(tmp_path, monkeypatch):
    capture(monkeypatch, "prefkit.labeling.length_penalty_sweep", "length_penalty_sweep", position=1)
    config_file = tmp_path / "run.toml"
    config_file.write_text('[label]\npairing = "all-pairs"\nlength_penalty = 0.5\nlength_unit = "chars"\n')
    args = ["length-penalty-sweep", "c", "--config", str(config_file), "--set", "min_margin=0.1"]
    config = invoke(args)
    assert (config.pairing, config.length_unit, config.min_margin) == ("all-pairs", "chars", 0.1)
    assert config.length_penalty == 0.0


def assert_one_line_error(capsys, argv: list[str], *fragments: str) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(
    ("command", "text", "field"),
    [
        ([*["sample", "p.jsonl"], "--out", OUT], "[sample]\ntemprature = 0.5\n", "field 'temprature'"),
        ([*["sample", "p.jsonl"], "--out", OUT], "[sample]\nn = 0\n", "field 'n'"),
        ([*["label", "c"], "--out", OUT], "[label]\npairing = 'best'\n", "field 'pairing'"),
        ([*["label", "c"], "--out", OUT], "colour = 1\n", "field 'colour'"),
        ([*["train", "p"], "--out", OUT], "[train]\nwarmup_ratio = 1.5\n", "field 'warmup_ratio'"),
        ([*["train", "p"], "--out", OUT], "[train]\nepoch = 1\n", "field 'epoch'"),
        ([*["eval", "m"], "--out", OUT], "evaluator = ['reward-kl']\n", "field 'evaluator'"),
        ([*["eval", "m"], "--out", OUT], "plots = 'maybe'\n", "field 'plots'"),
        (["demo", "--out", OUT], "[demo]\nsamples_per_prompt = 1\n", "field 'samples_per_prompt'"),
        (["serve", "m"], "[serve]\nport = 70000\n", "field 'port'"),
    ],
)
def test_bad_key_in_config_file_names_file_and_field(tmp_path, capsys, monkeypatch, command, text, field):
    monkeypatch.chdir(tmp_path)
    config_file = tmp_path / "bad.toml"
    config_file.write_text(text)
    assert_one_line_error(capsys, [*command, "--config", str(config_file)], "bad.toml", field)
    assert not (tmp_path / OUT).exists()


@pytest.mark.parametrize(
    "command",
    [
        ["sample", "p.jsonl", "--out", OUT],
        ["label", "c", "--out", OUT],
        ["train", "p", "--out", OUT],
        ["eval", "m", "--out", OUT],
        ["demo", "--out", OUT],
        ["serve", "m"],
    ],
)
def test_bad_set_item_is_one_line(tmp_path, capsys, command):
    assert_one_line_error(capsys, [*command, "--set", "nokey"], "--set", "KEY=VALUE")


def _stage_models():
    from prefkit.demo import DemoConfig
    from prefkit.evaluation.stage import EvalConfig
    from prefkit.labeling.stage import LabelConfig
    from prefkit.sampling.stage import SampleConfig
    from prefkit.serve import ServerOptions
    from prefkit.training.stage import TrainConfig

    return [
        ("sample", SampleConfig, {"n": "--n", "use_chat_template": "--chat-template"}),
        ("label", LabelConfig, {}),
        ("train", TrainConfig, {"options": "--trainer-option", "use_chat_template": "--chat-template"}),
        ("eval", EvalConfig, {"options": "--option", "evaluators": "--evaluator"}),
        ("serve", ServerOptions, {"extra_args": "--vllm-arg"}),
        ("demo", DemoConfig, {"samples_per_prompt": "--samples"}),
        (
            "length-penalty-sweep",
            LabelConfig,
            {"length_penalty": "--length-penalties", "shard_size": "--help", "license": "--help"},
        ),
    ]


@pytest.mark.parametrize(("command", "model", "renamed"), _stage_models())
def test_help_documents_every_option_with_its_description(command, model, renamed):
    from prefkit.cli.options import model_fields

    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "400"}, terminal_width=400)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for name, info in model_fields(model).items():
        assert renamed.get(name, "--" + name.replace("_", "-")) in text, name
        if name not in renamed:
            assert " ".join(info.description.split())[:40] in text, name
    assert "--config" in text and "--set" in text

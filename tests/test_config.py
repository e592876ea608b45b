"""prefkit.config: the one config-file loader and the one KEY=VALUE override parser."""

from __future__ import annotations

import math

import pytest

from prefkit.config import apply_overrides, load_config_file, parse_overrides, parse_value, stage_values
from prefkit.errors import ConfigError


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("c.toml", 'n = 8\n[sample]\ntemperature = 0.5\nstop = ["a", "b"]\n'),
        ("c.yaml", "n: 8\nsample:\n  temperature: 0.5\n  stop: [a, b]\n"),
        ("c.json", '{"n": 8, "sample": {"temperature": 0.5, "stop": ["a", "b"]}}'),
    ],
)
def test_each_format_gives_the_same_mapping(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    assert load_config_file(path) == {"n": 8, "sample": {"temperature": 0.5, "stop": ["a", "b"]}}


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("bad.toml", 'a = 1\nname = "x\n', "line 2"),
        ("bad.yaml", "a: 1\nb: [1, 2\n", "line 3"),
        ("list.yaml", "- a\n- b\n", "mapping"),
        ("c.ini", "a=1", ".toml, .yaml"),
    ],
)
def test_bad_files_name_the_file_and_line(tmp_path, name, text, expected):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    assert str(path) in str(info.value) and expected in str(info.value)


def test_missing_file_and_empty_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config_file(tmp_path / "none.toml")
    (tmp_path / "empty.yaml").write_text("")
    assert load_config_file(tmp_path / "empty.yaml") == {}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("4", 4),
        ("0.5", 0.5),
        ("1e-5", 1e-5),
        ("true", True),
        ("[0.1, 0.2]", [0.1, 0.2]),
        ('"quoted"', "quoted"),
        ("[a, b]", ["a", "b"]),
        ("heldout.jsonl", "heldout.jsonl"),
        ("http://localhost:8000/v1", "http://localhost:8000/v1"),
        ("a: b", "a: b"),
        ("", ""),
    ],
)
def test_parse_value(raw, expected):
    assert parse_value(raw) == expected


def test_parse_value_reads_yaml_infinity_so_validators_can_refuse_it():
    assert math.isinf(parse_value(".inf")) and math.isnan(parse_value(".nan"))


def test_parse_overrides_keeps_dotted_keys_and_splits_at_the_first_equals():
    assert parse_overrides(["rounds=2", "label.length_penalty=0.01", "url=http://h/?a=b"]) == {
        "rounds": 2,
        "label.length_penalty": 0.01,
        "url": "http://h/?a=b",
    }
    assert parse_overrides(["wpo=true"], typed=False) == {"wpo": "true"}


@pytest.mark.parametrize("item", ["rounds", "=1", "a..b=1", "a b=1"])
def test_parse_overrides_refuses_items_that_are_not_pairs(item):
    with pytest.raises(ConfigError) as info:
        parse_overrides([item], flag="--option")
    assert "--option" in str(info.value) and "KEY=VALUE" in str(info.value)


def test_apply_overrides_nests_and_does_not_change_its_input():
    data = {"label": {"labeler": "vader"}, "rounds": 1}
    result = apply_overrides(data, {"label.seed": 3, "train.beta": 0.2, "rounds": 2})
    assert result == {"label": {"labeler": "vader", "seed": 3}, "train": {"beta": 0.2}, "rounds": 2}
    assert data == {"label": {"labeler": "vader"}, "rounds": 1}
    with pytest.raises(ConfigError, match="rounds.x"):
        apply_overrides(data, {"rounds.x": 1}, file="run.toml")


def test_stage_values_precedence_defaults_file_flags_set(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('name = "run"\n[sample]\nn = 2\ntemperature = 0.5\nseed = 7\n')
    values = stage_values(
        path,
        {"n": 3, "temperature": None, "seed": 8},
        ["seed=9"],
        section="sample",
        defaults={"model": "smollm2", "n": 1, "top_p": 0.9},
    )
    # default kept, file over default, flag over file, a flag not given (None) leaves the file's, --set last
    assert values == {"model": "smollm2", "n": 3, "top_p": 0.9, "temperature": 0.5, "seed": 9}


def test_field_from_keeps_the_description_and_constraints_with_a_new_default():
    from pydantic import BaseModel, ValidationError

    from prefkit.config import field_from
    from prefkit.sampling.options import SamplingParams

    class Small(BaseModel):
        max_new_tokens: int = field_from(SamplingParams, "max_new_tokens", 40)
        temperature: float = field_from(SamplingParams, "temperature")

    source = SamplingParams.model_fields
    assert Small().max_new_tokens == 40 and SamplingParams().max_new_tokens == 128
    assert Small().temperature == SamplingParams().temperature
    assert Small.model_fields["max_new_tokens"].description == source["max_new_tokens"].description
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        Small(max_new_tokens=0)  # SamplingParams' ge=1 came along
    with pytest.raises(ValidationError):
        Small(temperature=-0.5)


def test_demo_builds_each_stage_config_from_its_own_fields_and_checks_them_up_front():
    from pydantic import ValidationError

    from prefkit.demo import DemoConfig

    demo = DemoConfig(samples_per_prompt=3, max_new_tokens=24, temperature=0.7, learning_rate=1e-5, seed=5)
    sample = demo.sample_config("folder")
    assert (sample.model, sample.sampling.n, sample.sampling.max_new_tokens) == ("folder", 3, 24)
    assert (sample.sampling.temperature, sample.sampling.seed) == (0.7, 5)
    train = demo.train_config("folder")
    assert (train.policy, train.learning_rate, train.epochs, train.seed) == ("folder", 1e-5, 2, 5)
    options = demo.eval_config("ref", "held.jsonl").options["reward-kl"]
    assert options["reference"] == "ref" and options["prompts"] == "held.jsonl"
    assert (options["n"], options["max_new_tokens"], options["seed"]) == (4, 24, 6)
    # TrainConfig's own rule, checked when the demo config is built (before any stage writes)
    with pytest.raises(ValidationError, match="learning_rate must be > 0"):
        DemoConfig(learning_rate=0)

"""iterate's config handling: parsing, overrides, errors naming file and field, refusing a changed run."""

from __future__ import annotations

import pytest

from prefkit.config import parse_overrides
from prefkit.errors import ConfigError
from prefkit.iteration.stage import IterateConfig, check_run_config, load_iterate_config, next_free_run_dir


def test_loads_shipped_example_configs():
    no_penalty = load_iterate_config("examples/ilr_dpo_no_penalty.toml")
    penalty = load_iterate_config("examples/ilr_dpo_penalty.toml")
    assert no_penalty.rounds == penalty.rounds == 3
    assert no_penalty.label["length_penalty"] == 0.0
    assert penalty.label["length_penalty"] > 0
    assert penalty.reference == "previous"


def test_overrides_reach_nested_sections(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("name: x\nrounds: 2\nlabel:\n  labeler: vader\n")
    config = load_iterate_config(
        path, parse_overrides(["rounds=4", "label.length_penalty=0.5", "train.beta=[0.1, 0.2]"])
    )
    assert config.rounds == 4
    assert config.label == {"labeler": "vader", "length_penalty": 0.5}
    assert config.train["beta"] == [0.1, 0.2]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('name = "x"\nrounds = 0\n', "field 'rounds'"),
        ('name = "x"\nreference = "best"\n', "field 'reference'"),
        ('name = "x"\nroundz = 2\n', "field 'roundz'"),
        ('name = "x\n', "cannot parse"),
    ],
)
def test_bad_config_names_file_and_field(tmp_path, text, expected):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_iterate_config(path)
    assert str(path) in str(info.value) and expected in str(info.value)


def test_override_without_equals_is_an_error():
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_overrides(["rounds"])


def test_changed_config_is_refused_but_more_rounds_are_allowed(tmp_path):
    run_dir = tmp_path / "run"
    check_run_config(run_dir, IterateConfig(name="a", rounds=2))
    check_run_config(run_dir, IterateConfig(name="a", rounds=3))  # extending a run is fine
    with pytest.raises(ConfigError, match="changed: label"):
        check_run_config(run_dir, IterateConfig(name="a", rounds=3, label={"length_penalty": 0.1}))
    assert next_free_run_dir(run_dir) == tmp_path / "run-2"

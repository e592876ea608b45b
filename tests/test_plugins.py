"""construct_plugin: one way to build every kind of plugin, options checked the same way for each."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict

from prefkit.errors import ConfigError
from prefkit.plugins import check_options, check_plugin, construct_plugin, declared_options
from prefkit.protocols import AnswersForJudging, Evaluator, Labeler, ReportsUsage, Sampler, TrainerPlugin
from prefkit.sampling.base import SamplingParams
from prefkit.sampling.options import SamplerOptions


class TakesAnything:
    def __init__(self, **options):
        self.options = options


class StrictOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    beta_floor: float = 0.0


class WithOptionsModel:
    options_model = StrictOptions


@pytest.mark.parametrize(
    ("kind", "name", "options", "field", "fragment"),
    [
        (
            "labelers",
            "vader",
            {"colour": 1},
            "labeler_options.colour",
            "the vader labeler cannot honour option 'colour'",
        ),
        (
            "evals",
            "reward-kl",
            {"promts": "x"},
            "options.promts",
            "the reward-kl evaluator cannot honour option 'promts'",
        ),
        (
            "trainers",
            "dpo",
            {"colour": "red"},
            "options.colour",
            "the dpo trainer cannot honour option 'colour'",
        ),
    ],
)
def test_an_unknown_option_is_named_the_same_way_for_every_kind(kind, name, options, field, fragment):
    with pytest.raises(ConfigError) as error:
        construct_plugin(kind, name, options)
    assert error.value.field == field
    assert fragment in str(error.value)
    assert "its options:" in str(error.value)


def test_a_trainer_option_it_cannot_honour_says_why():
    with pytest.raises(ConfigError, match="cannot honour option 'layout'") as error:
        check_plugin("trainers", "trl", {"layout": "padding_free"})
    assert error.value.field == "options.layout"
    assert str(error.value).count(":") >= 2  # the plugin's reason follows the option name


def test_a_missing_required_option_and_non_finite_values_fail_before_construction():
    with pytest.raises(ConfigError, match="missing a required argument: 'model'") as error:
        construct_plugin("labelers", "reward-model", {})
    assert error.value.field == "labeler_options"
    with pytest.raises(ConfigError, match="finite") as error:
        construct_plugin("labelers", "judge", {"temperature": float("inf")})
    assert error.value.field == "labeler_options.temperature"


def test_an_unknown_plugin_lists_the_installed_ones():
    with pytest.raises(ConfigError, match=r"no labeler plugin named 'nope' \(installed: .*vader") as error:
        construct_plugin("labelers", "nope", {})
    assert error.value.field == "labeler"


def test_declared_options_come_from_the_options_model_or_the_constructor():
    assert declared_options(WithOptionsModel) == ["beta_floor"]
    assert declared_options(TakesAnything) is None  # **kwargs: anything goes
    assert check_options("evals", "anything", TakesAnything, {"x": 1}, "options") == {"x": 1}
    checked = check_options("trainers", "strict", WithOptionsModel, {"beta_floor": 0.5}, "options")
    assert checked == StrictOptions(beta_floor=0.5)
    with pytest.raises(ConfigError, match="valid number") as error:
        check_options("trainers", "strict", WithOptionsModel, {"beta_floor": "high"}, "options")
    assert error.value.field == "options.beta_floor"


def test_constructed_plugins_meet_their_protocols(tiny_model_dir):
    labeler = construct_plugin("labelers", "vader", {})
    assert isinstance(labeler, Labeler)
    scores = labeler.score(["How was it?"], [["wonderful, I love it", "awful and sad"]])
    assert scores[0][0] > scores[0][1]
    assert not isinstance(labeler, ReportsUsage)
    assert isinstance(construct_plugin("trainers", "dpo", {}), TrainerPlugin)
    judge = construct_plugin("evals", "winrate", {"references": "refs.jsonl", "seed": 3})
    assert isinstance(judge, AnswersForJudging) and isinstance(judge, Evaluator)
    assert judge.judging.seed == 3
    sampler = construct_plugin(
        "samplers", "transformers", SamplerOptions(dtype="float32", device="cpu"), model=str(tiny_model_dir)
    )
    assert isinstance(sampler, Sampler)
    try:
        completions = sampler.generate(["Hello"], SamplingParams(n=2, max_new_tokens=3))
    finally:
        sampler.close()
    assert [len(group) for group in completions] == [2]

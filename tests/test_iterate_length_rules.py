"""The per-round loss length rules on hand-made pair sets (prefkit/iteration/length_control.py)."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from prefkit.iteration.length_control import (
    ALPHA_CAP,
    DEFAULT_GAIN,
    LengthHistory,
    LossLengthControl,
    PairLengths,
    length_neutral_alpha,
    length_target_alpha,
    round_setting,
    stop_push,
)


def pairs(chosen, rejected, eos_chosen=None, eos_rejected=None) -> PairLengths:
    return PairLengths(
        chosen, rejected, eos_chosen or [True] * len(chosen), eos_rejected or [True] * len(rejected)
    )


def sigma(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_stop_push_by_hand():
    # gaps [+20, -10], mean length (30 + 10 + 10 + 20) / 4 = 17.5; every side closed by an EOS
    lengths = pairs([30, 10], [10, 20])
    assert stop_push(lengths, 0.0) == pytest.approx(0.5 * (0.5 * -20 / 17.5 + 0.5 * 10 / 17.5))
    alpha = 0.03
    expected = 0.5 * (sigma(-20 * alpha) * -20 / 17.5 + sigma(10 * alpha) * 10 / 17.5)
    assert stop_push(lengths, alpha) == pytest.approx(expected)


def test_zero_mean_gap_needs_no_alpha():
    # symmetric pairs: the pull towards the long chosen answer equals the pull away from the long rejected one
    assert length_neutral_alpha(pairs([10, 30], [30, 10])) == 0.0
    # chosen shorter on average: the pairs already push towards shorter answers; alpha never rewards length
    assert length_neutral_alpha(pairs([10, 12], [30, 10])) == 0.0


def test_alpha_balances_a_long_chosen_pair_against_a_short_one():
    # stop_push = 0  <=>  sigma(10 a) * 10 = sigma(-20 a) * 20  <=>  with u = exp(-10 a): 2u^3 + u^2 - 1 = 0,
    # u = 0.65730 (by hand: 2(0.6573)^3 + 0.6573^2 = 0.56795 + 0.43204 = 0.99999), a = -ln(u) / 10 = 0.041962
    alpha = length_neutral_alpha(pairs([30, 10], [10, 20]))
    assert alpha == pytest.approx(0.041962, abs=2e-5)
    assert stop_push(pairs([30, 10], [10, 20]), alpha) == pytest.approx(0.0, abs=1e-6)


def test_eos_flags_enter_the_push():
    # same lengths, chosen trained without its EOS (cut, `--truncated no-eos`): a push towards longer answers
    # that no pair weight can undo (the gap is 0, so alpha does not reweight it): the rule stops at the cap
    assert stop_push(pairs([20], [20], [False], [True]), 0.0) == pytest.approx(-0.5)
    assert length_neutral_alpha(pairs([20], [20], [False], [True])) == ALPHA_CAP
    # the rejected side cut instead: the pairs already push towards stopping
    assert length_neutral_alpha(pairs([20], [20], [True], [False])) == 0.0


def test_round_setting_per_method():
    lengths = pairs([10, 30], [30, 10])  # mean trained length 20
    norm = round_setting(LossLengthControl(method="sigmoid_norm"), lengths, beta=0.1)
    assert (norm.loss, norm.beta, norm.mean_length) == ("sigmoid_norm", pytest.approx(2.0), 20.0)
    fixed = round_setting(LossLengthControl(method="rdpo", rule="fixed", value=0.05), lengths, beta=0.1)
    assert (fixed.loss, fixed.alpha, fixed.beta) == ("rdpo", 0.05, None)
    neutral = round_setting(LossLengthControl(method="rdpo"), pairs([30, 10], [10, 20]), beta=0.1)
    assert neutral.alpha == pytest.approx(0.041962, abs=2e-5)
    assert neutral.stop_push_before < 0 and neutral.stop_push_after == pytest.approx(0.0, abs=1e-6)
    ld = round_setting(LossLengthControl(method="ld_dpo", rule="fixed", value=0.5), lengths, beta=0.1)
    assert (ld.loss, ld.ld_alpha) == ("sigmoid", 0.5)
    assert set(ld.as_dict()) == {"method", "rule", "loss", "ld_alpha", "mean_length"}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"method": "rdpo", "rule": "fixed"}, "value is needed"),
        ({"method": "rdpo", "value": 0.1}, "chosen per round"),
        ({"method": "ld_dpo"}, "no per-round rule"),
        ({"method": "ld_dpo", "rule": "fixed", "value": 1.5}, r"in \[0, 1\]"),
        ({"method": "sigmoid_norm", "rule": "fixed", "value": 0.0}, "> 0"),
        ({"method": "simpo"}, "method"),
        ({"method": "rdpo", "rule": "length-target"}, "value is needed"),
        ({"method": "sigmoid_norm", "rule": "length-target", "value": 2.0}, "use method = 'rdpo'"),
        ({"method": "rdpo", "rule": "fixed", "value": 0.05, "gain": 0.1}, "by rule = .length-target. only"),
        ({"method": "rdpo", "rule": "length-target", "value": 0.05, "gain": 0.0}, "greater than 0"),
    ],
)
def test_bad_controls_are_refused(values, message):
    with pytest.raises(ValidationError, match=message):
        LossLengthControl(**values)


def test_length_target_moves_alpha_against_the_drift():
    # answers grew from 40 to 50 tokens since round 1 (+25 %): alpha 0.05 + 0.2 * 0.25 = 0.10
    grown = LengthHistory(previous_alpha=0.05, length=50.0, target_length=40.0)
    assert grown.drift() == pytest.approx(0.25)
    assert length_target_alpha(grown, gain=0.2) == pytest.approx(0.10)
    # shrank from 40 to 30 (-25 %): 0.05 - 0.2 * 0.25 = 0.0; further down it stops at 0 (never rewards length)
    assert length_target_alpha(LengthHistory(0.05, 30.0, 40.0), gain=0.2) == pytest.approx(0.0)
    assert length_target_alpha(LengthHistory(0.05, 20.0, 40.0), gain=0.2) == 0.0
    # and up at the cap
    assert length_target_alpha(LengthHistory(0.9, 80.0, 40.0), gain=0.2) == ALPHA_CAP


def test_length_target_round_setting():
    control = LossLengthControl(method="rdpo", rule="length-target", value=0.05)
    lengths = pairs([30, 10], [10, 20])
    first = round_setting(control, lengths, beta=0.1)  # round 1: no history, the given alpha
    assert (first.loss, first.alpha, first.length_drift) == ("rdpo", 0.05, None)
    later = round_setting(control, lengths, beta=0.1, history=LengthHistory(0.06, 44.0, 40.0))
    # default gain: 0.06 + 0.13 * 0.1
    assert DEFAULT_GAIN == 0.13
    assert later.alpha == pytest.approx(0.06 + 0.013)
    assert later.length_drift == pytest.approx(0.1)
    assert later.as_dict()["rule"] == "length-target"
    assert later.stop_push_after == pytest.approx(stop_push(lengths, later.alpha))

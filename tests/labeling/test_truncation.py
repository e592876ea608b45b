"""`--truncated drop|no-eos|keep`: pairing, trained lengths, preference columns, card, sweep, bad input."""

from __future__ import annotations

from collections import Counter

import pytest
import yaml

from prefkit.errors import InputError
from prefkit.labeling.length_penalty_sweep import length_penalty_sweep, render_sweep
from prefkit.labeling.pairing import (
    TRUNCATED,
    appends_eos,
    make_pairs,
    trained_length,
    usable_candidates,
)
from prefkit.labeling.stage import LabelConfig, label
from tests.labeling.conftest import write_candidates


def test_trained_length_counts_the_eos_the_trainer_appends():
    # the sampler's count has the emitted EOS of a finished completion and none for a cut one
    assert trained_length(10, "stop", "keep", "tokens") == 10
    assert trained_length(64, "length", "keep", "tokens") == 65  # EOS appended after the cut
    assert trained_length(64, "length", "no-eos", "tokens") == 64
    assert trained_length(64, "length", "drop", "tokens") == 65  # never paired; counted as if kept
    assert trained_length(200, "length", "keep", "chars") == 200  # an EOS has no characters
    assert trained_length(10, None, "keep", "tokens") == 10  # unrecorded: treated as finished


def test_appends_eos_only_spares_cut_completions_under_no_eos():
    assert appends_eos("length", "no-eos") is False
    assert appends_eos("stop", "no-eos") is True
    assert appends_eos("length", "keep") is True
    assert appends_eos(None, "no-eos") is True


def test_drop_never_pairs_a_cut_completion():
    texts = ["good but cut", "fine", "bad"]
    scores = [0.9, 0.5, -0.5]
    reasons = ["length", "stop", "stop"]
    indices, dropped = usable_candidates(texts, scores, reasons, "drop")
    assert indices == [1, 2] and dropped == Counter({TRUNCATED: 1})
    kept = make_pairs("best-vs-worst", texts, scores, [3, 1, 1], finish_reasons=reasons, truncation="drop")
    assert [(p.chosen, p.rejected) for p in kept.pairs] == [(1, 2)]
    assert kept.dropped == Counter({TRUNCATED: 1})
    for mode in ("no-eos", "keep"):
        result = make_pairs(
            "best-vs-worst", texts, scores, [3, 1, 1], finish_reasons=reasons, truncation=mode
        )
        assert [(p.chosen, p.rejected) for p in result.pairs] == [(0, 2)] and not result.dropped


ROWS = [
    {
        "prompt_id": f"p{index}",
        "prompt": f"Write about a {topic}.",
        # a cut happy one, a finished neutral one, a finished (or cut) sad one
        "completions": [
            f"The {topic} was wonderful and I love",
            f"The {topic} was there.",
            f"The {topic} was terrible and awful and",
        ],
        "completion_tokens": [8, 5, 8],
        "finish_reasons": ["length", "stop", "length" if index % 2 else "stop"],
    }
    for index, topic in enumerate(["movie", "book", "city", "song"])
]


@pytest.fixture()
def cut_candidates(tmp_path):
    return write_candidates(tmp_path / "candidates", ROWS)


def test_preferences_carry_finish_reasons_and_eos_flags(cut_candidates, tmp_path):
    tables = {
        mode: label(cut_candidates, tmp_path / mode, LabelConfig(truncated=mode), progress=False)
        for mode in ("keep", "no-eos", "drop")
    }
    keep = tables["keep"].table()
    assert keep["finish_chosen"].to_list() == ["length"] * 4
    assert keep["finish_rejected"].to_list() == ["stop", "length", "stop", "length"]
    assert keep["eos_chosen"].all() and keep["eos_rejected"].all()
    assert keep["len_chosen"].to_list() == [9] * 4  # 8 sampled tokens + the EOS the trainer appends
    no_eos = tables["no-eos"].table()
    assert no_eos["chosen"].to_list() == keep["chosen"].to_list()  # same pairs, other flags
    assert no_eos["eos_chosen"].to_list() == [False] * 4
    assert no_eos["eos_rejected"].to_list() == [True, False, True, False]
    assert no_eos["len_chosen"].to_list() == [8] * 4
    drop = tables["drop"].table()
    # only the finished candidates remain: the neutral one beats the sad one where the sad one finished
    assert drop["prompt_id"].to_list() == ["p0", "p2"]
    assert drop["finish_chosen"].to_list() == ["stop", "stop"] and drop["eos_chosen"].all()
    counts = tables["drop"].manifest.counts
    assert counts["dropped"] == {TRUNCATED: 6, "too_few_candidates": 2}
    assert counts["candidates"] == 12 and counts["candidates_truncated"] == 6
    assert tables["drop"].manifest.extra["truncated"] == "drop"


def test_card_reports_truncation_per_side(cut_candidates, tmp_path):
    artifact = label(cut_candidates, tmp_path / "prefs", LabelConfig(truncated="no-eos"), progress=False)
    card = (artifact.path / "README.md").read_text()
    assert yaml.safe_load(card.split("---")[1])["prefkit"]["truncated"] == "no-eos"
    assert "Candidates cut: 6 of 12 (50.0%)." in card
    assert "| chosen | 100.0% |" in card and "| rejected | 50.0% |" in card
    assert "trained without an EOS" in card


def test_card_without_finish_reasons(tmp_path):
    rows = [{key: value for key, value in row.items() if key != "finish_reasons"} for row in ROWS]
    artifact = label(write_candidates(tmp_path / "c", rows), tmp_path / "p", LabelConfig(), progress=False)
    assert artifact.table()["finish_chosen"].null_count() == 4
    assert artifact.table()["eos_chosen"].all()
    assert "recorded no finish reasons" in (artifact.path / "README.md").read_text()


def test_sweep_counts_lengths_as_trained(cut_candidates):
    points = {
        mode: length_penalty_sweep(cut_candidates, LabelConfig(truncated=mode), [0.0])[0]
        for mode in ("keep", "no-eos", "drop")
    }
    # chosen is always the cut happy completion (8 tokens); rejected: finished sad (8, EOS included)
    # or cut sad (8 + 1 under keep)
    assert points["keep"].length_gap == pytest.approx(((9 - 8) + (9 - 9) + (9 - 8) + (9 - 9)) / 4)
    assert points["no-eos"].length_gap == pytest.approx(0.0)
    # drop: neutral (5) over sad (8) in the two prompts whose sad completion finished
    assert points["drop"].pairs == 2 and points["drop"].length_gap == pytest.approx(-3.0)
    # truncation per side, per lambda: every chosen is cut, half the rejected (none under drop)
    assert (points["keep"].truncated_chosen, points["keep"].truncated_rejected) == (1.0, 0.5)
    assert (points["drop"].truncated_chosen, points["drop"].truncated_rejected) == (0.0, 0.0)
    assert "| 0 | 4 | +0.5 | 50% | " in render_sweep([points["keep"]], "tokens")
    assert "| 100% | 50% |" in render_sweep([points["keep"]], "tokens")


def test_finish_reasons_of_the_wrong_size_name_the_row(tmp_path):
    rows = [dict(ROWS[0]), {**ROWS[1], "finish_reasons": ["stop"]}]
    candidates = write_candidates(tmp_path / "c", rows)
    with pytest.raises(InputError) as error:
        label(candidates, tmp_path / "p", LabelConfig(), progress=False)
    assert error.value.row == 2 and error.value.field == "finish_reasons"
    assert not (tmp_path / "p").exists()


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="drop, no-eos, keep"):
        LabelConfig(truncated="cut")

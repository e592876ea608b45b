"""The labeling stage end to end with the VADER labeler: pairs, card, histogram, skip, resume, bad input."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest
import yaml

from prefkit.errors import InputError
from prefkit.labeling import stage
from prefkit.labeling.stage import LabelConfig, label
from prefkit.labeling.vader_labeler import VaderLabeler
from tests.labeling.conftest import SENTIMENT_ROWS, write_candidates


def test_vader_pairs_positive_over_negative(sentiment_candidates, tmp_path):
    artifact = label(sentiment_candidates, tmp_path / "prefs", LabelConfig(shard_size=3), progress=False)
    table = artifact.table()
    assert table.height == 8
    assert all("wonderful" in text for text in table["chosen"])
    assert all("terrible" in text for text in table["rejected"])
    assert (table["score_chosen"] > table["score_rejected"]).all()
    # token lengths come from completion_tokens (word counts in this fixture)
    assert table["len_chosen"].to_list() == [8] * 8  # "The movie was wonderful and I love it."
    assert artifact.manifest.counts == {
        "prompts": 8,
        "prompts_with_pairs": 8,
        "pairs": 8,
        "candidates": 24,
        "candidates_truncated": 0,
        "dropped": {},
        "labeler_usage": {},
    }
    assert artifact.manifest.extra["use_chat_template"] is True
    assert artifact.manifest.extra["length_unit"] == "tokens"


def test_card_and_histogram(sentiment_candidates, tmp_path):
    config = LabelConfig(length_penalty=0.01, length_unit="chars", license="apache-2.0")
    artifact = label(sentiment_candidates, tmp_path / "prefs", config, progress=False)
    card = (artifact.path / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["license"] == "apache-2.0"
    assert front["prefkit"]["source"]["path"] == str(sentiment_candidates)
    assert front["prefkit"]["labeler"] == "vader"
    assert front["prefkit"]["length_penalty"] == 0.01
    assert "| pairs | 8 |" in card
    assert "score_chosen" in card and "len_rejected (chars)" in card
    assert "```json" in card and "wonderful" in card
    png = (artifact.path / "histograms.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert artifact.table()["len_chosen"][0] == len(SENTIMENT_ROWS[0]["completions"][0])


def test_loads_with_datasets(sentiment_candidates, tmp_path):
    datasets = pytest.importorskip("datasets")
    artifact = label(sentiment_candidates, tmp_path / "prefs", LabelConfig(), progress=False)
    loaded = datasets.load_dataset("parquet", data_files=str(artifact.data_path), split="train")
    assert loaded.num_rows == 8
    assert {"prompt", "chosen", "rejected"} <= set(loaded.column_names)


def test_rerun_skips_and_force_replaces(sentiment_candidates, tmp_path):
    first = label(sentiment_candidates, tmp_path / "prefs", LabelConfig(), progress=False)
    again = label(sentiment_candidates, tmp_path / "prefs", LabelConfig(), progress=False)
    assert again.manifest.finished_at == first.manifest.finished_at
    with pytest.raises(Exception, match="different inputs or config"):
        label(sentiment_candidates, tmp_path / "prefs", LabelConfig(pairing="all-pairs"), progress=False)
    forced = label(
        sentiment_candidates, tmp_path / "prefs", LabelConfig(pairing="all-pairs"), force=True, progress=False
    )
    assert forced.table().height == 8 * 3  # 3 candidates, all different scores


class FlakyLabeler(VaderLabeler):
    """VADER that counts its calls and can be told to fail on a given call (a crash mid-run)."""

    calls = 0
    fail_on: int | None = None

    def score(self, prompts, completions):
        type(self).calls += 1
        if type(self).calls == self.fail_on:
            raise KeyboardInterrupt
        return super().score(prompts, completions)


def test_interrupted_run_resumes_from_completed_shards(sentiment_candidates, tmp_path, monkeypatch):
    monkeypatch.setattr(stage, "load_labeler", lambda name, options: FlakyLabeler())
    FlakyLabeler.calls, FlakyLabeler.fail_on = 0, 3
    with pytest.raises(KeyboardInterrupt):
        label(sentiment_candidates, tmp_path / "prefs", LabelConfig(shard_size=2), progress=False)
    assert not (tmp_path / "prefs").exists()
    FlakyLabeler.calls, FlakyLabeler.fail_on = 0, None
    artifact = label(sentiment_candidates, tmp_path / "prefs", LabelConfig(shard_size=2), progress=False)
    assert FlakyLabeler.calls == 2  # shards 0 and 1 were done before the crash; 2 and 3 remained
    assert artifact.table().height == 8
    assert artifact.table()["prompt_id"].to_list() == [f"p{i}" for i in range(8)]
    assert artifact.manifest.counts["prompts"] == 8


class NanLabeler(VaderLabeler):
    def score(self, prompts, completions):
        scores = super().score(prompts, completions)
        scores[0][0] = math.nan
        return scores


def test_bad_rows_are_counted_drops(tmp_path, monkeypatch):
    rows = [
        {"prompt_id": "a", "prompt": "x", "completions": ["I love it", "I hate it", ""]},
        {"prompt_id": "b", "prompt": "y", "completions": ["only one"]},
        {"prompt_id": "c", "prompt": "z", "completions": []},
        {"prompt_id": "d", "prompt": "w", "completions": ["good", "good"]},
        {"prompt_id": "e", "prompt": "v", "completions": [None, "fine"], "completion_tokens": [0, 1]},
    ]
    candidates = write_candidates(tmp_path / "cands", rows)
    monkeypatch.setattr(stage, "load_labeler", lambda name, options: NanLabeler())
    artifact = label(candidates, tmp_path / "prefs", LabelConfig(), progress=False)
    # a: candidate 0 NaN, candidate 2 empty -> one usable; b, c: too few; d: tie; e: a null completion
    assert artifact.table().height == 0
    assert artifact.manifest.counts["dropped"] == {
        "empty_completion": 2,
        "nan_score": 1,
        "tie": 1,
        "too_few_candidates": 4,
    }
    assert "No pairs were kept" in (artifact.path / "README.md").read_text()


@pytest.mark.parametrize(
    ("rows", "row", "field", "message"),
    [
        (
            [{"prompt_id": "a", "prompt": "x", "completions": ["p", "q"]}] * 2,
            2,
            "prompt_id",
            "duplicate id 'a' (first seen at row 1)",
        ),
        (
            [
                {"prompt_id": "a", "prompt": "x", "completions": ["p", "q"]},
                {"prompt_id": "b", "prompt": "x", "completions": ["p", "q"], "completion_tokens": [3]},
            ],
            2,
            "completion_tokens",
            "has 1 entries but 'completions' has 2",
        ),
        (
            [{"prompt_id": "a", "prompt": "x", "completions": ["p", "q"], "completion_tokens": None}],
            1,
            "completion_tokens",
            "is missing",
        ),
        ([{"prompt_id": "a", "prompt": None, "completions": ["p", "q"]}], 1, "prompt", "is missing"),
    ],
)
def test_structural_errors_name_file_row_field(tmp_path, rows, row, field, message):
    candidates = write_candidates(tmp_path / "cands", rows)
    with pytest.raises(InputError) as caught:
        label(candidates, tmp_path / "prefs", LabelConfig(), progress=False)
    error = caught.value
    assert (error.row, error.field) == (row, field)
    assert message in error.message and error.file.endswith("data.parquet")
    assert "\n" not in str(error)


def test_missing_tokens_fine_in_chars(tmp_path):
    rows = [
        {
            "prompt_id": "a",
            "prompt": "x",
            "completions": ["I love it", "I hate it"],
            "completion_tokens": None,
        }
    ]
    artifact = label(
        write_candidates(tmp_path / "c", rows),
        tmp_path / "p",
        LabelConfig(length_unit="chars"),
        progress=False,
    )
    assert artifact.table()["len_chosen"].to_list() == [9]


def test_labeler_returning_wrong_shape_is_a_clear_error(sentiment_candidates, tmp_path, monkeypatch):
    class Short(VaderLabeler):
        def score(self, prompts, completions):
            return [row[:-1] for row in super().score(prompts, completions)]

    monkeypatch.setattr(stage, "load_labeler", lambda name, options: Short())
    with pytest.raises(Exception, match="returned 2 scores for 3 completions") as caught:
        label(sentiment_candidates, tmp_path / "prefs", LabelConfig(), progress=False)
    assert caught.value.row == 1


def test_config_rejects_unknown_values():
    with pytest.raises(ValueError, match="best-vs-worst"):
        LabelConfig(pairing="tournament")
    with pytest.raises(ValueError, match="tokens"):
        LabelConfig(length_unit="words")
    with pytest.raises(ValueError):
        LabelConfig(shard_size=0)
    with pytest.raises(ValueError):
        LabelConfig(labler="vader")


def test_manifest_is_json_with_usage_and_no_counts_leftovers(sentiment_candidates, tmp_path):
    artifact = label(sentiment_candidates, tmp_path / "prefs", LabelConfig(), progress=False)
    manifest = json.loads((artifact.path / "manifest.json").read_text())
    assert manifest["stage"] == "preferences" and manifest["counts"]["labeler_usage"] == {}
    assert sorted(p.name for p in artifact.path.iterdir()) == [
        "README.md",
        "data.parquet",
        "histograms.png",
        "manifest.json",
    ]
    assert pl.read_parquet(artifact.data_path).columns[:8] == [
        "prompt_id",
        "prompt",
        "chosen",
        "rejected",
        "score_chosen",
        "score_rejected",
        "len_chosen",
        "len_rejected",
    ]

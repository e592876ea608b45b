"""Judge templates: the shipped files parse, placeholders fill once, verdicts are read strictly."""

from __future__ import annotations

import pytest

from prefkit.errors import ConfigError
from prefkit.judge.templates import builtin_template_dir, load_template


@pytest.mark.parametrize("name", ["dpo_helpfulness", "dpo_summarization", "alpaca_eval"])
def test_shipped_pairwise_templates_load(name):
    template = load_template(name, "pairwise")
    assert template.mode == "pairwise" and len(template.sha256) == 64
    text = template.messages("PROMPT", "FIRST-ANSWER", "SECOND-ANSWER")[-1]["content"]
    assert text.index("FIRST-ANSWER") < text.index("SECOND-ANSWER") and "PROMPT" in text
    assert "{response_a}" not in text


def test_dpo_verdicts():
    template = load_template("dpo_helpfulness", "pairwise")
    assert template.parse('Comparison: B is kinder.\nMore helpful: "B"') == "second"
    assert template.parse("Comparison: A.\nMore helpful: A") == "first"
    # the last verdict line counts (a judge that corrects itself)
    assert template.parse("More helpful: A\nWait.\nMore helpful: B") == "second"
    assert template.parse("Comparison: both fine.\nMore helpful: neither") is None
    assert template.parse("") is None and template.parse(None) is None


def test_alpaca_verdicts_are_case_sensitive():
    template = load_template("alpaca_eval", "pairwise")
    assert template.parse("m") == "first"
    assert template.parse(" M\n") == "second"
    assert template.parse("mM") is None
    assert template.parse("Model m is better") is None
    assert template.messages("p", "a", "b")[0]["role"] == "system"


def test_pointwise_scores_within_range_only():
    template = load_template(None, "pointwise")
    assert template.parse("Assessment: ok.\nScore: 7") == 7.0
    assert template.parse("Score: 11") is None
    assert template.parse("Score: 0") is None
    assert template.parse("Seven out of ten") is None


def test_placeholders_substituted_once_and_braces_kept(tmp_path):
    path = tmp_path / "t.md"
    path.write_text(
        "---\nmode: pairwise\nfirst_label: '1'\nsecond_label: '2'\nanswer_pattern: 'Winner: (\\d)'\n---\n"
        'Q: {prompt}\nX: {response_a}\nY: {response_b}\nReply as {"winner": 1}\n'
    )
    template = load_template(str(path), "pairwise")
    text = template.messages("p", "says {response_b}", "b")[-1]["content"]
    assert "X: says {response_b}\nY: b" in text and '{"winner": 1}' in text
    assert template.parse("Winner: 2") == "second"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no front matter {prompt}", "front matter"),
        (
            "---\nmode: pairwise\nfirst_label: A\nsecond_label: B\nanswer_pattern: '(A)'\n---\n{prompt} {response_a}\n",
            "{response_b}",
        ),
        ("---\nmode: pointwise\nanswer_pattern: '(A)'\n---\n{prompt} {response}\n", "'pointwise' template"),
        (
            "---\nmode: pairwise\nfirst_label: A\nsecond_label: B\n---\n{prompt} {response_a} {response_b}\n",
            "answer_pattern",
        ),
        (
            "---\nmode: pairwise\nfirst_label: A\nsecond_label: B\nanswer_pattern: 'A'\n---\n{prompt} {response_a} {response_b}\n",
            "capturing group",
        ),
    ],
)
def test_bad_templates_fail_clearly(tmp_path, text, message):
    path = tmp_path / "bad.md"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_template(str(path), "pairwise")
    assert str(path) in str(caught.value) or "field" in str(caught.value)


def test_unknown_template_lists_builtins():
    with pytest.raises(ConfigError, match="alpaca_eval, dpo_helpfulness"):
        load_template("nope", "pairwise")
    assert (builtin_template_dir() / "pointwise.md").exists()

"""The conversational record contract: validation names file, row and field."""

import pytest

from prefkit.conversation import (
    assistant_turn,
    check_uniform,
    completion_text,
    display_prompt,
    last_user_text,
    prompt_key,
    validate_conversation,
)
from prefkit.errors import InputError

HISTORY = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "Name a colour."},
]


def test_valid_history_round_trips():
    assert validate_conversation(HISTORY, file="f.jsonl", row=3) == HISTORY
    assert last_user_text(HISTORY) == "Name a colour."
    assert display_prompt(HISTORY).splitlines()[0] == "system: Be brief."
    assert prompt_key(HISTORY) != prompt_key(HISTORY[1:])
    assert completion_text(assistant_turn("Blue.")) == "Blue."


@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        ([{"role": "robot", "content": "x"}], "prompt[0].role", "unknown role 'robot'"),
        ([{"role": "user", "content": "  "}], "prompt[0].content", "is empty"),
        (HISTORY[:3], "prompt", "must end with a user turn"),
        (
            [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}],
            "prompt[1]",
            "only come first",
        ),
        ([], "prompt", "empty conversation"),
        (["hello"], "prompt[0]", "must be an object"),
    ],
)
def test_bad_conversations_name_the_field(value, field, message):
    with pytest.raises(InputError) as error:
        validate_conversation(value, file="f.jsonl", row=7)
    assert error.value.field == field and error.value.row == 7
    assert message in str(error.value)


def test_mixed_rows_are_refused_at_the_first_odd_row():
    assert check_uniform([HISTORY, HISTORY]) is True
    assert check_uniform(["a", "b"]) is False
    with pytest.raises(InputError, match="row 2") as error:
        check_uniform(["a", HISTORY], file="f.jsonl")
    assert "earlier rows are strings" in str(error.value)

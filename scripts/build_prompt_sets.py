"""Rebuild the prompt sets shipped in prefkit/data/prompts/ (see data_cards/ for their cards).

- sentiment_{train,heldout}.jsonl: "Write one sentence about <topic>." over a fixed topic list written by
  the prefkit authors (Apache-2.0), split deterministically (2 of every 3 topics train, 1 held out).
- chatterbot_qa.jsonl: the English question/answer pairs of chatterbot-corpus (BSD-3-Clause), the
  question as `prompt`, the corpus answer as `reference`, for judge win rates.
- chatterbot_multiturn{,_heldout}.jsonl: multi-turn chat prompts from the same corpus (a system prompt,
  then a user/assistant history ending with a user turn; the corpus's next turn as `reference`): its
  real dialogues, plus histories stitched from consecutive Q/A pairs of one topic file.
Run: python scripts/build_prompt_sets.py
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

OUT = Path(__file__).resolve().parents[1] / "prefkit" / "data" / "prompts"
TOPICS = """
a rainy morning; the city at night; a long train ride; a cup of coffee; an old library; a summer festival;
a crowded beach; a quiet forest; a new phone; a Monday meeting; a school reunion; a birthday party;
a broken umbrella; a traffic jam; a home-cooked dinner; a mountain hike; a museum visit; a job interview;
a first day at work; a snowy afternoon; a street market; a football match; a piano lesson; a camping trip;
a late flight; a small bakery; a garden in spring; a group project; a science fair; a thunderstorm;
a used bookstore; a road trip; a hospital waiting room; a jazz concert; a cooking class; a video game;
a neighbour's dog; a weekend in Paris; a power outage; a chess tournament; a public park; a lost wallet;
a wedding speech; a dentist appointment; a comedy show; a farmers' market; a hotel breakfast; a bike ride;
an online course; an autumn walk; an empty stadium; an art gallery; an airport lounge; an old photograph;
a family holiday; a rooftop garden; a movie premiere; a morning run; a language exchange; a board game night;
a busy kitchen; a village fair; a quiet café; a sports car; a ferry crossing; a winter market;
a theatre rehearsal; a hot bath; a music festival; a handwritten letter; a new haircut; a long queue;
a volunteer day; a history lecture; a vegetable soup; a sunset at sea; a noisy neighbour; a science museum;
a children's play; a work deadline; a moving day; a surprise visit; a yoga class; a bus journey;
a seaside town; a pottery workshop; a tech conference; a family recipe; a night market; a zoo visit;
a snow day; a fishing trip; a poetry reading; a karaoke night; a hiking trail; a rainy weekend;
a tea ceremony; a science podcast; a city marathon; a lakeside cabin; a street musician; a job promotion;
a home renovation; a talent show; a vintage car; a sleepless night; a garden party; a boat race;
a quiz night; a chocolate shop; a botanical garden; a country wedding; a winter holiday; a new neighbour
"""


def sentiment_sets() -> tuple[list[dict], list[dict]]:
    topics = [t.strip() for t in TOPICS.replace("\n", " ").split(";") if t.strip()]
    assert len(topics) == len(set(topics)), "duplicate topics"
    train, heldout = [], []
    for index, topic in enumerate(topics):
        row = {"prompt_id": f"sent-{index:03d}", "prompt": f"Write one sentence about {topic}."}
        (heldout if index % 3 == 2 else train).append(row)
    return train, heldout


def chatterbot_pairs() -> list[dict]:
    import chatterbot_corpus

    folder = Path(chatterbot_corpus.__file__).parent / "data" / "english"
    rows, seen = [], set()
    for file in sorted(folder.glob("*.yml")):
        data = yaml.safe_load(file.read_text())
        for conversation in data.get("conversations", []):
            if len(conversation) < 2 or not all(isinstance(x, str) for x in conversation[:2]):
                continue
            question, answer = conversation[0].strip(), conversation[1].strip()
            if not question or not answer or question.lower() in seen:
                continue
            seen.add(question.lower())
            rows.append(
                {"prompt_id": f"cb-{file.stem}-{len(rows):04d}", "prompt": question, "reference": answer}
            )
    return rows


MULTITURN_SYSTEM = "You are a friendly chatbot. Answer in one or two sentences."
DIALOGUE_FILES = ("conversations", "health", "sports")  # the files whose entries are real dialogues
STITCHED_PER_FILE = 3  # histories stitched from each topic file's Q/A pairs


def _chat_row(prompt_id: str, turns: list[str], reference: str | None) -> dict:
    """A conversational prompt row: system turn, then turns alternating user/assistant (odd count)."""
    messages = [{"role": "system", "content": MULTITURN_SYSTEM}]
    messages += [
        {"role": "user" if index % 2 == 0 else "assistant", "content": text}
        for index, text in enumerate(turns)
    ]
    row: dict = {"prompt_id": prompt_id, "prompt": messages}
    if reference:
        row["reference"] = reference
    return row


def chatterbot_multiturn() -> list[dict]:
    """Multi-turn prompts: each real dialogue cut after its 2nd or 3rd user turn, then histories of two
    or three consecutive Q/A pairs from one topic file (the next answer, when there is one, is the reference)."""
    import chatterbot_corpus

    folder = Path(chatterbot_corpus.__file__).parent / "data" / "english"
    rows: list[dict] = []
    for file in sorted(folder.glob("*.yml")):
        data = yaml.safe_load(file.read_text())
        conversations = [
            [str(turn).strip() for turn in conversation]
            for conversation in data.get("conversations", [])
            if all(isinstance(turn, str) and turn.strip() for turn in conversation)
        ]
        if file.stem in DIALOGUE_FILES:
            for conversation in conversations:
                if len(conversation) < 3:
                    continue
                cut = 5 if len(conversation) >= 5 else 3  # end on a user turn: 2 or 3 user turns
                reference = conversation[cut] if len(conversation) > cut else None
                rows.append(_chat_row(f"cbm-{file.stem}-{len(rows):03d}", conversation[:cut], reference))
            continue
        pairs, asked = [], set()
        for conversation in conversations:  # the corpus repeats a question for alternative answers
            if len(conversation) == 2 and conversation[0].lower() not in asked and len(conversation[1]) < 200:
                asked.add(conversation[0].lower())
                pairs.append(conversation)
        for index in range(STITCHED_PER_FILE):
            size = 2 + index % 2  # 2 or 3 user turns
            chunk = pairs[index * 3 : index * 3 + size]
            if len(chunk) < size:
                break
            turns = [text for pair in chunk for text in pair]
            rows.append(_chat_row(f"cbm-{file.stem}-{len(rows):03d}", turns[:-1], turns[-1]))
    return rows


def split_heldout(rows: list[dict], every: int = 4) -> tuple[list[dict], list[dict]]:
    """Every `every`-th row held out (deterministic), the rest for training."""
    train = [row for index, row in enumerate(rows) if index % every != every - 1]
    heldout = [row for index, row in enumerate(rows) if index % every == every - 1]
    return train, heldout


def write_jsonl(rows: list[dict], path: Path) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    train, heldout = sentiment_sets()
    write_jsonl(train, OUT / "sentiment_train.jsonl")
    write_jsonl(heldout, OUT / "sentiment_heldout.jsonl")
    pairs = chatterbot_pairs()
    write_jsonl(pairs, OUT / "chatterbot_qa.jsonl")
    chat_train, chat_heldout = split_heldout(chatterbot_multiturn())
    write_jsonl(chat_train, OUT / "chatterbot_multiturn.jsonl")
    write_jsonl(chat_heldout, OUT / "chatterbot_multiturn_heldout.jsonl")
    print(f"sentiment: {len(train)} train, {len(heldout)} held out; chatterbot: {len(pairs)} Q/A pairs")
    print(f"chatterbot multi-turn: {len(chat_train)} train, {len(chat_heldout)} held out")

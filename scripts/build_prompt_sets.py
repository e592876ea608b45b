"""Rebuild the prompt sets shipped in prefkit/data/prompts/ (see data_cards/ for their cards).

- sentiment_{train,heldout}.jsonl: "Write one sentence about <topic>." over a fixed topic list written by
  the prefkit authors (Apache-2.0), split deterministically (2 of every 3 topics train, 1 held out).
- chatterbot_qa.jsonl: the English question/answer pairs of chatterbot-corpus (BSD-3-Clause), the
  question as `prompt`, the corpus answer as `reference`, for judge win rates.
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


def write_jsonl(rows: list[dict], path: Path) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    train, heldout = sentiment_sets()
    write_jsonl(train, OUT / "sentiment_train.jsonl")
    write_jsonl(heldout, OUT / "sentiment_heldout.jsonl")
    pairs = chatterbot_pairs()
    write_jsonl(pairs, OUT / "chatterbot_qa.jsonl")
    print(f"sentiment: {len(train)} train, {len(heldout)} held out; chatterbot: {len(pairs)} Q/A pairs")

"""Benchmark: how large a `prefkit report` page gets for a big preferences set, and how fast it opens,
filters and sorts in headless chromium.

    python benchmarks/report_page.py --pairs 100000 --max-pairs 20000 100000

Writes a synthetic preferences artifact (answers of about 40 words a side), builds the page for each
--max-pairs, then opens it in Debian's chromium through Playwright and times: load until the first page of
pairs is drawn, a text search, a margin filter, and a sort over every embedded pair.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import polars as pl

from prefkit.artifacts import Manifest
from prefkit.report import build_report

WORDS = "good great bad awful movie meal trip friend really quite very not happy sad long short day".split()


def write_preferences(folder: Path, pairs: int, seed: int = 0) -> Path:
    rng = random.Random(seed)

    def answer() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60))) + "."

    chosen = [answer() for _ in range(pairs)]
    rejected = [answer() for _ in range(pairs)]
    frame = pl.DataFrame(
        {
            "prompt_id": [f"p{i}" for i in range(pairs)],
            "prompt": [f"Write about {rng.choice(WORDS)} number {i}." for i in range(pairs)],
            "chosen": chosen,
            "rejected": rejected,
            "score_chosen": [rng.random() for _ in range(pairs)],
            "score_rejected": [rng.random() - 1 for _ in range(pairs)],
            "len_chosen": [len(c.split()) for c in chosen],
            "len_rejected": [len(r.split()) for r in rejected],
            "margin": [rng.random() for _ in range(pairs)],
        }
    )
    folder.mkdir(parents=True)
    frame.write_parquet(folder / "data.parquet")
    manifest = Manifest(stage="preferences", fingerprint="0" * 64, extra={"length_unit": "tokens"})
    (folder / "manifest.json").write_text(manifest.model_dump_json())
    return folder


def time_in_browser(page_path: Path) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    timings = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page()
        started = time.perf_counter()
        page.goto(page_path.resolve().as_uri())
        page.wait_for_selector("#pair-list tbody tr")
        timings["open_s"] = time.perf_counter() - started
        for name, action in (
            (
                "search_s",
                lambda: (page.fill("#pair-search", "happy sad"), page.press("#pair-search", "Enter")),
            ),
            (
                "margin_filter_s",
                lambda: (
                    page.fill("#pair-search", ""),
                    page.fill("#min-margin", "0.5"),
                    page.press("#min-margin", "Enter"),
                ),
            ),
            ("sort_s", lambda: page.select_option("#sort", "abs-gap-desc")),
        ):
            started = time.perf_counter()
            action()
            page.wait_for_selector("#pair-count")
            page.evaluate("() => new Promise(requestAnimationFrame)")
            timings[name] = time.perf_counter() - started
        browser.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--max-pairs", type=int, nargs="+", default=[20_000, 100_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = write_preferences(Path(scratch) / "preferences", args.pairs)
        print(
            f"{'pairs embedded':>15} {'page MB':>8} {'build s':>8} {'open s':>7} {'search s':>9} {'filter s':>9} {'sort s':>7}"
        )
        results = []
        for max_pairs in args.max_pairs:
            started = time.perf_counter()
            page = build_report(folder, Path(scratch) / f"page-{max_pairs}.html", max_pairs=max_pairs)
            build = time.perf_counter() - started
            size = page.stat().st_size / 1e6
            timings = time_in_browser(page)
            embedded = min(max_pairs, args.pairs)
            print(
                f"{embedded:>15,} {size:>8.1f} {build:>8.2f} {timings['open_s']:>7.2f} {timings['search_s']:>9.2f} "
                f"{timings['margin_filter_s']:>9.2f} {timings['sort_s']:>7.2f}"
            )
            results.append(
                {"pairs": args.pairs, "embedded": embedded, "page_mb": size, "build_s": build, **timings}
            )
        print(json.dumps(results))


if __name__ == "__main__":
    main()

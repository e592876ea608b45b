"""The report pages in a real browser (Debian's chromium driven by Playwright): pairs render with the
right texts, filters change the rows, a round click opens that round's pairs, charts draw, the page asks
the network for nothing and logs no error. Screenshots go to test-artifacts/report/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from prefkit.report import build_report

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = (
    Path(os.environ.get("PREFKIT_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts")) / "report"
)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


class OpenedPage:
    """A page plus everything it asked the network for and every console error it logged."""

    def __init__(self, browser, path: Path) -> None:
        self.context = browser.new_context(viewport={"width": 1300, "height": 900})
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on(
            "console", lambda message: self.errors.append(message.text) if message.type == "error" else None
        )
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.url = path.resolve().as_uri()
        self.page.goto(self.url)

    def rows(self) -> list[str]:
        return self.page.locator("#pair-list tbody tr").all_inner_texts()

    def detail(self) -> str:
        return self.page.locator("#pair-detail").inner_text()

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / name), full_page=True)

    def close_and_check(self) -> None:
        assert self.requests == [self.url], f"the page asked for more than itself: {self.requests}"
        assert self.errors == []
        self.context.close()


def test_pairs_render_filter_and_keyboard(browser, run_folder):
    opened = OpenedPage(browser, build_report(run_folder))
    page = opened.page
    assert page.locator("#tab-pairs").get_attribute("aria-selected") == "true"
    assert len(opened.rows()) == 6
    detail = opened.detail()
    assert "Round 1: a lovely movie." in detail and "Round 1: a dull movie, sadly" in detail
    assert "✓ Chosen" in detail and "✗ Rejected" in detail and "cut at the token limit" in detail
    assert "Dropped while pairing: tie 2" in page.locator(".summary").inner_text()

    page.fill("#pair-search", "garden")
    page.press("#pair-search", "Enter")
    assert len(opened.rows()) == 1 and "garden" in opened.rows()[0]
    page.fill("#pair-search", "")
    page.press("#pair-search", "Enter")
    page.select_option("#truncation", "rejected")
    assert len(opened.rows()) == 1 and "movie" in opened.rows()[0]
    page.select_option("#truncation", "any")
    page.fill("#min-margin", "1.1")
    page.press("#min-margin", "Enter")
    assert len(opened.rows()) == 2  # margins 0.7 + 0.11 i >= 1.1 for i = 4, 5
    page.fill("#min-margin", "")
    page.press("#min-margin", "Enter")
    page.select_option("#sort", "margin-desc")
    assert opened.rows()[0].startswith("6")

    page.select_option("#sort", "row")
    page.locator("#pair-list tbody tr").first.focus()
    page.keyboard.press("ArrowDown")
    assert "Round 1: a lovely book." in opened.detail()
    assert page.evaluate("document.activeElement.dataset.row") == "2"
    page.click("#random-sample")
    assert "random sample" in page.locator("#pair-count").inner_text() and len(opened.rows()) == 6
    opened.screenshot("pairs.png")
    opened.close_and_check()


def test_rounds_charts_draw_and_a_round_click_opens_its_pairs(browser, run_folder):
    opened = OpenedPage(browser, build_report(run_folder))
    page = opened.page
    page.click("#tab-rounds")
    for chart in (
        "#chart-reward",
        "#chart-kl",
        "#chart-length",
        "#chart-winrate",
        "#chart-lambda",
        "#chart-pairs",
    ):
        assert page.locator(f"{chart} .point").count() >= 2, chart
    assert page.locator("#chart-reward .errorbar").count() == 3
    assert page.locator("#chart-length .band").count() == 1
    opened.screenshot("rounds.png")
    page.click("button.open-round[data-round='2']")
    assert page.locator("#tab-pairs").get_attribute("aria-selected") == "true"
    assert page.locator("#pair-set").input_value() == "1"
    assert "Round 2: a lovely movie." in opened.detail()
    page.click("#tab-rounds")
    page.locator("#chart-reward .point").nth(1).click()  # the round-1 point
    assert page.locator("#pair-set").input_value() == "0" and "Round 1:" in opened.detail()
    opened.close_and_check()


def test_checkpoints_show_constants_once_and_charts_with_error_bars(browser, run_folder):
    opened = OpenedPage(browser, build_report(run_folder))
    page = opened.page
    page.click("#tab-checkpoints")
    assert "labeler (reward-kl) = vader" in page.locator("#constant-columns").inner_text()
    headers = page.locator("#leaderboard th").all_inner_texts()
    assert "reward mean (reward-kl)" in headers and not any("labeler" in h for h in headers)
    assert not any(h.endswith("_se") or "reward se" in h for h in headers)  # folded into "± s.e."
    assert "0.300 ± 0.040" in page.locator("#leaderboard").inner_text()
    assert page.locator("#chart-reward-kl .point").count() == 3
    assert page.locator("#chart-lengths .errorbar").count() == 1  # only round-01 stored its samples
    opened.screenshot("checkpoints.png")
    page.click("#tab-candidates")
    text = page.locator("#candidate-list").inner_text()
    assert "✓ chosen" in text and "✗ rejected" in text and "a third answer" in text
    opened.screenshot("candidates.png")
    page.click("#tab-provenance")
    page.locator("details.provenance summary").first.click()  # the run config, folded until opened
    assert '"name": "known-run"' in page.locator("details.provenance").first.inner_text()
    opened.close_and_check()


def test_conversations_render_as_turns(browser, conversation_preferences):
    opened = OpenedPage(browser, build_report(conversation_preferences))
    turns = opened.page.locator("#pair-detail .turn").all_inner_texts()
    assert [t.split("\n")[0].lower() for t in turns] == ["system", "user", "assistant", "user"]
    assert "Name a colour." in turns[-1] and "Blue." in opened.detail()
    opened.screenshot("conversation.png")
    opened.close_and_check()

"""The review page in a real headless Chromium, driven by Playwright, against the real service.

Chromium is Debian's (``apt-get install chromium``; CI installs it); Playwright is pointed at
it and downloads nothing. Skipped, saying so, without a Chromium binary.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serve.test_e2e import KEY, Server

pytestmark = pytest.mark.browser


@pytest.fixture
def review_service(artifact: Path, tmp_path: Path) -> Iterator[Server]:
    server = Server(
        artifact, tmp_path / "server.log", review=f"duckdb:{tmp_path / 'reviews.duckdb'}", review_sample=0.1
    )
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_ten_records_reviewed_with_the_keyboard(
    chromium: str, review_service: Server, records: list[dict], tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    with httpx.Client(base_url=review_service.url, headers={"X-API-Key": KEY}, timeout=30) as http:
        r = http.post("/v1/screen", json={"records": records[:300], "budget": 12})
        assert r.status_code == 200, r.text

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            try:
                page = browser.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(review_service.url + "/review")
                # the service has keys: the page asks for one before it shows any record
                expect(page.locator("#keybox")).to_be_visible()
                page.fill("#apikey", KEY)
                page.press("#apikey", "Enter")
                page.dispatch_event("#apikey", "change")
                expect(page.locator("section.card").first).to_be_visible()
                assert page.locator("#precision").text_content() == "\u2013"
                page.fill("#reviewer", "ana")
                page.dispatch_event("#reviewer", "change")
                page.locator("body").click(position={"x": 5, "y": 300})  # focus out of the inputs

                verdicts = ["r", "r", "w", "r", "r", "r", "w", "r", "r", "r"]
                page.keyboard.press("?")
                expect(page.locator("#help")).to_be_visible()
                for i, key in enumerate(verdicts):
                    page.keyboard.press(key)
                    expect(page.locator("#reviewed")).to_have_text(str(i + 1))
                page.keyboard.press("k")  # back to the last reviewed card: it shows its verdict
                expect(page.locator("section.card.done")).to_have_count(10)
                shot = Path(os.environ.get("WINNOW_REVIEW_SCREENSHOT", tmp_path / "review.png"))
                page.screenshot(path=str(shot), full_page=False)
                assert shot.stat().st_size > 10_000
                precision = page.locator("#precision").text_content()
                assert precision is not None and precision.startswith("80%")  # 8 right of 10 selected
                assert not errors, errors
            finally:
                browser.close()

        stats = http.get("/v1/review/stats").json()
        assert stats["reviewed"] == 10 and stats["reviewed_selected"] == 10
        assert stats["precision"]["value"] == pytest.approx(0.8)
        queue = http.get("/v1/review/queue", params={"limit": 500}).json()["records"]
        # the 12 selected minus the 10 reviewed wait first, then the sample of the others
        assert [q["selected"] for q in queue[:3]] == [True, True, False]
        assert sum(q["selected"] for q in queue) == 2

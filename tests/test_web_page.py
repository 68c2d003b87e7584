"""The web page at `/` in a real headless browser (Debian's chromium, driven by Selenium),
against a real server on loopback with bearer-token auth around the random-weight Turbo
engine: the lists come from the API, Speak streams audio and shows its time to first audio,
Stop cancels on the server (its cancelled-requests counter goes up). A screenshot is kept in
`test-artifacts/` (or $CHATTERBOX_ARTIFACTS)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import httpx
from conftest import serving

from chatterbox_cli.server.page import WEB

TOKEN = "pagetoken"
LONG = "\n\n".join(f"Paragraph {n} is read aloud, sentence by sentence." for n in range(8))


def cancelled(url: str) -> float:
    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    found = re.search(r"^chatterbox_requests_cancelled_total (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def wait_for(condition, timeout_s: float = 180.0):
    deadline = time.monotonic() + timeout_s
    while True:
        found = condition()
        if found:
            return found
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_page_lists_speaks_stops_and_needs_no_network(engine, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    for page in WEB.iterdir():  # offline: nothing fetched from elsewhere
        assert not re.search(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}", page.read_text()), page
    with serving(engine, api_token=TOKEN, max_text_chars=2000) as url:
        assert httpx.get(f"{url}/").status_code == 200  # the page itself needs no token
        assert httpx.get(f"{url}/v1/models").status_code == 401
        browser.get(f"{url}/?token={TOKEN}&max_new_tokens=20&seed=1")
        model = wait_for(lambda: Select(browser.find_element(By.ID, "model")).options)
        assert [o.text for o in model] == ["turbo"]
        voices = wait_for(lambda: Select(browser.find_element(By.ID, "voice")).options)
        assert voices[0].text == "default"
        assert "Ready: turbo" in browser.find_element(By.ID, "status").text

        before = cancelled(url)
        text = browser.find_element(By.ID, "text")
        text.clear()
        text.send_keys(LONG)
        browser.find_element(By.ID, "speak").click()
        row = lambda: browser.find_elements(By.CSS_SELECTOR, "#history tbody tr")[0]  # noqa: E731
        wait_for(lambda: row().find_elements(By.TAG_NAME, "td")[1].text.endswith(" s"))
        ttfa = float(row().find_elements(By.TAG_NAME, "td")[1].text.split()[0])
        assert 0 < ttfa < 180
        browser.find_element(By.ID, "stop").click()
        wait_for(lambda: row().find_elements(By.TAG_NAME, "td")[3].text == "stopped")
        wait_for(lambda: cancelled(url) > before)

        text.clear()
        text.send_keys("A short one.")
        browser.find_element(By.ID, "speak").click()
        wait_for(lambda: row().find_elements(By.TAG_NAME, "td")[3].text == "done")
        cells = [c.text for c in row().find_elements(By.TAG_NAME, "td")]
        assert cells[0] == "A short one." and cells[1].endswith(" s") and float(cells[2]) > 0
        folder = Path(os.environ.get("CHATTERBOX_ARTIFACTS", "test-artifacts"))
        folder.mkdir(parents=True, exist_ok=True)
        shot = folder / "web-page.png"
        browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000

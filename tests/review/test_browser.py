"""The review page in a real headless browser (Debian's chromium driven by Playwright): a keyboard-only
review of 10 rows with a correction and an undo, a SIGKILL of the server, a restart that resumes at the
first undecided row; every decision is in the side table and the page never asks anything off the machine."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import polars as pl
import pytest

from factory.review.store import ReviewLog, current_decisions

CHROMIUM = next((p for p in (os.environ.get("REVIEW_CHROMIUM"), shutil.which("chromium"),
                             shutil.which("chromium-browser")) if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)")
SCREENSHOT = os.environ.get("REVIEW_SCREENSHOT")  # where to keep a screenshot of the page (docs/review.png)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        yield browser
        browser.close()


def open_page(browser, server, requests: list[str]):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.on("request", lambda request: requests.append(request.url))
    page.goto(server.url)
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    assert page.url == server.base + "/"  # the token left the address bar
    return page


def test_keyboard_review_survives_a_kill_and_resumes(review_run, servers, browser, tmp_path):
    from playwright.sync_api import expect

    requests: list[str] = []
    server = servers(review_run, "--reviewer", "alice")
    page = open_page(browser, server, requests)
    status, body = page.locator("#status"), page.locator("body")

    # accessible basics: a live status region, labelled controls, a progress counter
    expect(page.get_by_role("status")).to_have_count(1)
    expect(page.get_by_label("Contains PHI")).to_be_visible()
    expect(page.get_by_label("Cognitive impairment")).to_be_visible()
    expect(page.locator("#progress")).to_contain_text("Row 1 of 12 · 0 decided")

    # informative order: the row whose labels the consistency majority contradicts comes first,
    # shown with its note around it and its evidence highlighted
    expect(page.locator("#sentence")).to_have_text("Her daughter reports she got lost driving to the store.")
    expect(page.locator("#sentence mark")).to_have_text("daughter reports")
    expect(page.locator("#context-before")).to_contain_text("She keeps forgetting recent conversations.")
    expect(page.locator("#facts")).to_contain_text("agreement 0.40")
    if SCREENSHOT:
        Path(SCREENSHOT).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOT, full_page=True)

    seen: list[str] = []

    def press(*keys: str, saved: str | None = None, row: int | None = None) -> None:
        for key in keys:
            page.keyboard.press(key)
        if saved:
            expect(status).to_have_text(re.compile(rf"^Saved: {saved} on row {row}\."))

    def at(index: int) -> str:
        expect(body).to_have_attribute("data-index", str(index))
        return body.get_attribute("data-row-id")

    # 1: correct the label set: "1" takes cognitive impairment off, Enter saves the rest
    seen.append(at(0))
    press("1")
    expect(page.locator("#label-list label.changed")).to_have_count(1)
    press("Enter", saved="correct", row=1)
    seen.append(at(1))
    press("a", saved="accept", row=2)
    seen.append(at(2))
    press("r", saved="reject", row=3)
    # 4: PHI flag and a note, then accept
    seen.append(at(3))
    press("p")
    expect(page.get_by_label("Contains PHI")).to_be_checked()
    press("n")
    expect(page.locator("#note")).to_be_focused()
    page.keyboard.type("name-like token")
    press("Escape", "a", saved="accept", row=4)
    seen.append(at(4))
    press("a", saved="accept", row=5)
    seen.append(at(5))
    press("a", saved="accept", row=6)
    # undo takes back the accept of row 6 and goes back to it; then reject it instead
    at(6)
    press("u")
    expect(status).to_have_text("Undone: accept on row 6.")
    at(5)
    expect(page.locator("#current-decision")).to_have_text("Not decided yet.")
    expect(page.locator("#progress")).to_contain_text("5 decided")
    press("r", saved="reject", row=6)
    for index in range(6, 10):
        seen.append(at(index))
        press("a", saved="accept", row=index + 1)
    at(10)
    expect(page.locator("#progress")).to_contain_text("Row 11 of 12 · 10 decided (7 accepted, 1 corrected, 2 rejected)")
    # previous / next
    press("ArrowLeft")
    at(9)
    expect(page.locator("#current-decision")).to_have_text("Your decision: accept")
    press("ArrowRight")
    at(10)

    server.kill()  # SIGKILL: nothing gets a chance to flush

    decisions = {row["row_id"]: row for row in current_decisions(review_run, "silver", "alice").iter_rows(named=True)}
    assert set(decisions) == set(seen) and len(seen) == 10
    expected = ["correct", "accept", "reject", "accept", "accept", "reject", "accept", "accept", "accept", "accept"]
    assert [decisions[row_id]["decision"] for row_id in seen] == expected
    first = decisions[seen[0]]
    assert first["shown_labels"] == ["notice_by_others", "cognitive_impairment"]
    assert first["corrected_labels"] == first["final_labels"] == ["notice_by_others"]
    assert decisions[seen[3]]["phi_flag"] and decisions[seen[3]]["note"] == "name-like token"
    assert not any(decisions[row_id]["phi_flag"] for row_id in seen if row_id != seen[3])
    events = ReviewLog(review_run, "silver").read()
    assert events.height == 12  # 10 decisions + the undone accept + its retract event
    retract = events.filter(pl.col("decision") == "retract").row(0, named=True)
    undone = events.filter(pl.col("event_id") == retract["retracts"]).row(0, named=True)
    assert undone["row_id"] == retract["row_id"] == seen[5] and undone["decision"] == "accept"
    assert not list((review_run / "silver_review").glob(".*.tmp-*"))  # no half-written shard

    server = servers(review_run, "--reviewer", "alice")
    page = open_page(browser, server, requests)
    expect(page.locator("body")).to_have_attribute("data-index", "10")
    expect(page.locator("#status")).to_have_text("Resumed at row 11, the first undecided.")
    expect(page.locator("#progress")).to_contain_text("10 decided")
    assert page.locator("body").get_attribute("data-row-id") not in seen

    # the page never asked for anything beyond this machine (and only of the review servers)
    assert requests and all(re.match(r"^http://127\.0\.0\.1:\d+/", url) for url in requests), requests


def test_bronze_page_shows_the_phi_scan(review_run, servers, browser):
    from playwright.sync_api import expect

    requests: list[str] = []
    server = servers(review_run, "--queue", "bronze", "--reviewer", "alice")
    page = open_page(browser, server, requests)
    # informative: the quarantined sentence first, with its scan reasons, intended category and attributes
    expect(page.locator("#sentence")).to_have_text("Mr. John Carter was seen at 12 Elm Street.")
    expect(page.locator("#facts")).to_contain_text("quarantined: PERSON: John Carter")
    expect(page.locator("#facts")).to_contain_text("Notice by others")
    expect(page.locator("#facts")).to_contain_text("HPI")
    page.keyboard.press("p")
    page.keyboard.press("r")
    expect(page.locator("#status")).to_have_text("Saved: reject on row 1.")
    decision = current_decisions(review_run, "bronze", "alice").row(0, named=True)
    assert decision["decision"] == "reject" and decision["phi_flag"]
    assert all(url.startswith(server.base + "/") for url in requests), requests

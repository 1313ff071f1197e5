"""The review page in a real headless browser (Debian's chromium driven by Playwright): a keyboard-only
review of 10 rows with a correction and an undo, a SIGKILL of the server, a restart that resumes at the
first undecided row; every decision is in the side table and the page never asks anything off the machine.
A correction is never lost (`a` on changed boxes asks first; `Enter` after a mouse click saves the labels,
not the clicked button); the guideline and the why-here line are on screen; unsure, skips, the end screen
and the reviewer name the page asks for and the browser keeps; a long evidence string stays in its panel."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import polars as pl
import pytest

from factory.data.reviews import consensus
from factory.data.store import shard_paths
from factory.data.taxonomy import load_taxonomy
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


def open_page(browser, server, requests: list[str], context=None, ready: bool = True):
    from playwright.sync_api import expect

    context = context or browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.on("request", lambda request: requests.append(request.url))
    page.goto(server.url)
    if ready:
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
    expect(page.locator("#progress")).to_contain_text("Row 11 of 12 · 10 decided (7 accepted, 1 corrected, 2 rejected, 0 unsure)")
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


def decision_of(run, row_id: str, reviewer: str) -> dict | None:
    rows = current_decisions(run, "silver", reviewer).filter(pl.col("row_id") == row_id)
    return rows.row(0, named=True) if rows.height else None


def test_a_correction_is_never_lost(review_run_with_gold, servers, browser):
    from playwright.sync_api import expect

    run, requests = review_run_with_gold, []
    server = servers(run, "--reviewer", "alice")
    page = open_page(browser, server, requests)
    status, body, confirm = page.locator("#status"), page.locator("body"), page.locator("#confirm")

    # the guideline beside the decision panel: the prompt's rules, the review rule, every definition, no hover
    guideline = page.locator("#guideline")
    expect(guideline).to_be_visible()
    expect(page.locator("#rules")).to_contain_text("Label only what the sentence itself states.")
    expect(page.locator("#rules")).to_contain_text("A symptom that is denied, absent or ruled out is none.")
    for category in (*load_taxonomy().categories, load_taxonomy().none):
        expect(page.locator("#definitions")).to_contain_text(category.definition)
    # why here: the classifier fitted on the run's gold train split, against the LLM, and the votes
    expect(page.locator("#sentence")).to_have_text("Her daughter reports she got lost driving to the store.")
    expect(page.locator("#why")).to_have_text(re.compile(r"^Why here: classifier 0\.\d\d vs LLM (yes|no) \(.+\); "
                                                         r"0 of 5 votes, majority Notice by others$"))
    if SCREENSHOT:
        Path(SCREENSHOT).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOT, full_page=True)

    # lost correction 1: changed boxes, then "a": asks, saves nothing; Enter saves the correction
    first = body.get_attribute("data-row-id")
    page.keyboard.press("1")
    page.keyboard.press("a")
    expect(confirm).to_be_visible()
    expect(confirm).to_contain_text("differ from the LLM's")
    assert ReviewLog(run, "silver").read().height == 0
    page.keyboard.press("Enter")
    expect(status).to_have_text("Saved: correct on row 1.")
    assert decision_of(run, first, "alice")["final_labels"] == ["notice_by_others"]
    # ... and accepting the LLM's labels over changed boxes takes an explicit second "a"
    second = body.get_attribute("data-row-id")
    page.keyboard.press("0")
    page.keyboard.press("a")
    expect(confirm).to_be_visible()
    page.keyboard.press("a")
    expect(status).to_have_text("Saved: accept on row 2.")
    assert decision_of(run, second, "alice")["decision"] == "accept"

    # lost correction 2: a mouse click on Accept, then "0" and Enter: the correction, not another accept
    page.locator("#accept").click()
    expect(status).to_have_text("Saved: accept on row 3.")
    expect(page.locator("#accept")).not_to_be_focused()
    fourth = body.get_attribute("data-row-id")
    page.keyboard.press("0")
    page.keyboard.press("Enter")
    expect(status).to_have_text("Saved: correct on row 4.")
    assert decision_of(run, fourth, "alice")["final_labels"] == ["none"]
    # Enter means "save labels" even on a focused Reject button (unchanged boxes: an accept)
    page.locator("#reject").focus()
    page.keyboard.press("Enter")
    expect(status).to_have_text("Saved: accept on row 5.")
    # the earlier "none" correction cannot be overwritten by "a" without the confirm
    page.keyboard.press("k")
    expect(body).to_have_attribute("data-index", "4")
    page.keyboard.press("k")
    expect(body).to_have_attribute("data-index", "3")
    expect(page.locator("#current-decision")).to_have_text("Your decision: correct (Not AD-related)")
    page.keyboard.press("a")
    expect(confirm).to_be_visible()
    page.keyboard.press("j")  # moving on drops the pending confirm
    expect(confirm).to_be_hidden()
    assert decision_of(run, fourth, "alice")["final_labels"] == ["none"]
    assert all(url.startswith(server.base + "/") for url in requests), requests


def test_unsure_skip_end_screen_name_and_layout(review_run, servers, browser):
    from playwright.sync_api import expect

    run, requests = review_run, []
    # an unbroken evidence string on the first row of the queue
    path = shard_paths(run / "silver")[0]
    frame = pl.read_parquet(path)
    long = "x" * 400
    frame.with_columns(pl.when(pl.col("text").str.starts_with("Her daughter")).then(pl.lit(long))
                       .otherwise(pl.col("evidence")).alias("evidence")).write_parquet(path)

    server = servers(run)  # no --reviewer: the page asks
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = open_page(browser, server, requests, context, ready=False)
    status, body = page.locator("#status"), page.locator("body")
    expect(page.locator("#who")).to_be_visible()
    expect(page.locator("#who-name")).to_be_focused()
    page.keyboard.type("not a name")
    page.keyboard.press("Enter")
    expect(page.locator("#who-status")).to_contain_text("error: reviewer name")
    page.locator("#who-name").fill("dr_lee")
    page.keyboard.press("Enter")
    expect(body).to_have_attribute("data-ready", "1")
    expect(page.locator("#who")).to_be_hidden()
    expect(page.locator("#where")).to_contain_text("dr_lee")

    # layout: the evidence wraps inside its panel; the LLM labels stay visible beside the decision panel
    row, decide = page.locator("#row").bounding_box(), page.locator("#decide").bounding_box()
    evidence = page.locator("#facts dd", has_text=long).bounding_box()
    assert evidence["x"] + evidence["width"] <= row["x"] + row["width"] <= decide["x"]
    expect(page.locator("#facts dd").first).to_be_visible()

    # unsure, a skip, then accept every other row; the why-here line is never empty
    expect(page.locator("#why")).to_contain_text("no classifier: the run has no gold")
    page.keyboard.press("d")
    expect(status).to_have_text("Saved: unsure on row 1.")
    unsure = current_decisions(run, "silver", "dr_lee").row(0, named=True)
    assert unsure["decision"] == "unsure"
    skipped = body.get_attribute("data-row-id")
    page.keyboard.press("ArrowRight")
    expect(status).to_have_text("Skipped row 2.")
    for index in range(2, 12):
        expect(body).to_have_attribute("data-index", str(index))
        expect(page.locator("#why")).to_have_text(re.compile(r"^Why here: no classifier: the run has no gold; \S"))
        page.keyboard.press("a")
        expect(status).to_have_text(f"Saved: accept on row {index + 1}.")
    # the end of the queue is a screen of its own
    expect(page.locator("#end")).to_be_visible()
    expect(page.locator("#row")).to_be_hidden()
    expect(page.locator("#end-summary")).to_have_text(
        "11 decided (10 accepted, 0 corrected, 0 rejected, 1 unsure), 1 skipped of 12 rows. "
        "1 not decided yet: g takes you to the first.")
    page.keyboard.press("a")  # no decision keys at the end
    assert current_decisions(run, "silver", "dr_lee").height == 11

    # a reload keeps the name and does not return to the skipped row: it shows the end; g goes to the skip
    page = open_page(browser, server, requests, context)
    expect(page.locator("#who")).to_be_hidden()
    expect(page.locator("#end")).to_be_visible()
    page.keyboard.press("g")
    expect(page.locator("body")).to_have_attribute("data-row-id", skipped)
    expect(page.locator("#current-decision")).to_have_text("Skipped; not decided yet.")
    decisions = current_decisions(run, "silver", "dr_lee")
    assert set(decisions["reviewer"]) == {"dr_lee"} and skipped not in decisions["row_id"].to_list()
    assert ReviewLog(run, "silver").read().filter(pl.col("decision") == "skip")["row_id"].to_list() == [skipped]
    verdicts = consensus(decisions)  # unsure is no verdict
    assert unsure["row_id"] not in verdicts.agreed and verdicts.reviewed == 10

    # another server (another port) in the same browser: the name is kept, nobody is asked again
    server.kill()
    second = servers(run)
    page = open_page(browser, second, requests, context)
    expect(page.locator("#who")).to_be_hidden()
    expect(page.locator("#where")).to_contain_text("dr_lee")
    context.close()

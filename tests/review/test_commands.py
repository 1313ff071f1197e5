"""`review` and `quality simulate-review` as functions of their specs: what they refuse before any work,
the session `review` serves, and the simulation's report in its final folder. (The same commands from the
command line: tests/review/test_app.py, tests/review/test_simulation.py.)"""

from __future__ import annotations

import json

import pytest

from factory.core.errors import FactoryError
from factory.core.specs import ReviewSpec, SimulateReviewSpec
from factory.review import app
from factory.review.commands import run_simulation, serve_review
from factory.review.queue import build_queue
from factory.review.store import ReviewLog

from tests.review.test_simulation import build_simulation_run


@pytest.fixture
def served(monkeypatch):
    """The session serve_review would serve and the URL it would announce, without a server."""
    seen = {}

    def fake_serve(session, host, port, announce):
        seen.update(session=session, host=host, port=port)
        announce(f"http://{host}:{port}/?token={session.token}")

    monkeypatch.setattr(app, "serve", fake_serve)
    return seen


def test_review_serves_the_ordered_queue_as_the_reviewer(review_run, served, capsys):
    serve_review(ReviewSpec(run=review_run, reviewer="alice", queue="bronze", order="random", seed=2, port=8123))
    session = served["session"]
    assert (served["host"], served["port"]) == ("127.0.0.1", 8123)
    assert session.reviewer == "alice" and session.fixed_reviewer and session.dataset == "bronze"
    assert [item.row_id for item in session.queue] == [item.row_id for item in build_queue(
        review_run, "bronze", session.taxonomy, "random", 2)]
    out, err = capsys.readouterr()
    assert out.strip() == f"http://127.0.0.1:8123/?token={session.token}"  # the URL alone on stdout
    assert "why-here signal: no gold in" in err and "reviewing 4 bronze rows" in err and "as alice" in err
    # the reviewer's hold stays while the server runs: a second server for alice is refused
    with pytest.raises(FactoryError, match="already reviewing"):
        ReviewLog(review_run, "bronze").hold("alice")
    session.held.close()


@pytest.mark.parametrize("change, message", [
    ({"reviewer": "two words"}, "reviewer"),
    ({"host": "0.0.0.0"}, "loopback address only"),
])
def test_review_refuses_bad_settings_before_any_work(review_run, served, change, message):
    with pytest.raises(FactoryError, match=message):
        serve_review(ReviewSpec(run=review_run, **change))
    assert served == {} and not (review_run / "silver_review").exists()


def test_review_with_an_unusable_gold_is_refused(review_run, served, tmp_path):
    (tmp_path / "gold").mkdir()
    with pytest.raises(FactoryError, match="--gold: no gold in"):
        serve_review(ReviewSpec(run=review_run, gold=tmp_path / "gold"))
    assert served == {}


def test_the_simulation_writes_its_report_into_its_folder(tmp_path, taxonomy):
    run, _ = build_simulation_run(tmp_path / "run", taxonomy)
    said = []
    result, paths = run_simulation(SimulateReviewSpec(run=run, batch=10, budget=10, seeds="0"),
                                   lambda *parts: said.append(parts))
    assert {p.parent for p in paths} == {run / "review_simulation"} and all(p.is_file() for p in paths)
    assert json.loads((run / "review_simulation" / "summary.json").read_text())["seeds"] == [0]
    assert result.lines() and said  # progress went to the caller's `say`


def test_the_simulation_needs_a_run_folder(tmp_path):
    (tmp_path / "not-a-run").mkdir()
    with pytest.raises(FactoryError, match="is not a run folder"):
        run_simulation(SimulateReviewSpec(run=tmp_path / "not-a-run"), lambda *parts: None)

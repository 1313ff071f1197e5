"""The review app: over plain HTTP (no browser) the token, Host and Origin checks, the CSRF token, reviewers
kept apart and a refused non-loopback address; in process, a session's decisions, skips and undo."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from factory.core.errors import FactoryError
from factory.data.taxonomy import load_taxonomy
from factory.review.app import ReviewSession, bind, is_loopback
from factory.review.queue import build_queue
from factory.review.store import ReviewLog, current_decisions
from tests.review.conftest import ROOT


def call(url: str, *, cookie: str | None = None, body: dict | None = None, headers: dict | None = None):
    """(status, headers, text) of one request; an HTTP error is an answer, not an exception."""
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                     headers={**({"Cookie": cookie} if cookie else {}), **(headers or {})},
                                     method="GET" if body is None else "POST")
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def session(server) -> tuple[str, str]:
    """The cookie the printed URL sets, and the page's CSRF token."""
    status, headers, _ = call(server.url)
    assert status == 303 and headers["Location"] == "/"
    cookie = headers["Set-Cookie"].split(";")[0]
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=strict" in headers["Set-Cookie"]
    status, headers, page = call(server.base + "/", cookie=cookie)
    assert status == 200 and "default-src 'none'" in headers["Content-Security-Policy"]
    return cookie, re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def test_token_host_origin_and_csrf_are_enforced(review_run, servers):
    server = servers(review_run, "--reviewer", "alice")
    base = server.base
    for path in ("/", "/api/state", "/api/config", "/api/item/0", "/static/app.js", "/static/app.css", "/favicon.ico"):
        assert call(base + path)[0] == 401, path
        assert call(base + path, cookie=f"review_session_{server.port}=wrong")[0] == 401, path
    assert call(base + "/?token=wrong")[0] == 401
    assert call(base + "/api/decide", body={})[0] == 401

    cookie, csrf = session(server)
    status, _, state = call(base + "/api/state", cookie=cookie)
    assert status == 200 and json.loads(state)["total"] == 12
    # DNS rebinding: a page of another name pointing at 127.0.0.1 sends its own Host
    assert call(base + "/api/state", cookie=cookie, headers={"Host": f"evil.example:{server.port}"})[0] == 403

    item = json.loads(call(base + "/api/item/0", cookie=cookie)[2])
    decide = {"index": 0, "row_id": item["row_id"], "decision": "reject"}
    json_type = {"Content-Type": "application/json"}
    own = {"Origin": base, "X-CSRF-Token": csrf, **json_type}
    refused = [
        {**own, "Origin": "http://evil.example"},  # a foreign page, even with the token and the CSRF token
        {**own, "Origin": "null"},
        {"X-CSRF-Token": csrf, **json_type},  # no Origin at all
        {**own, "X-CSRF-Token": "wrong"},
        {"Origin": base, **json_type},  # no CSRF token
    ]
    for headers in refused:
        assert call(base + "/api/decide", cookie=cookie, body=decide, headers=headers)[0] == 403, headers
        assert call(base + "/api/undo", cookie=cookie, body={}, headers=headers)[0] == 403, headers
    assert call(base + "/api/decide", cookie=cookie, body=decide, headers={**own, "Content-Type": "text/plain"})[0] == 415
    assert ReviewLog(review_run, "silver").read().height == 0  # nothing changed

    status, _, text = call(base + "/api/decide", cookie=cookie, body=decide, headers=own)
    assert status == 200 and json.loads(text)["state"]["decided"] == 1
    bad = [{**decide, "decision": "correct", "labels": ["none", "cognitive_impairment"]},
           {**decide, "decision": "correct", "labels": ["not_a_category"]},
           {**decide, "index": 1}]  # not the row at that place
    for body in bad:
        assert call(base + "/api/decide", cookie=cookie, body=body, headers=own)[0] == 409, body
    # the foreign Origin cannot undo or overwrite the standing decision either
    for path, body in (("/api/undo", {}), ("/api/decide", {**decide, "decision": "accept"})):
        assert call(base + path, cookie=cookie, body=body, headers={**own, "Origin": "http://evil.example"})[0] == 403
    decisions = current_decisions(review_run, "silver")
    assert decisions["decision"].to_list() == ["reject"] and decisions["reviewer"].to_list() == ["alice"]


def test_reviewers_are_kept_apart(review_run, servers):
    alice = servers(review_run, "--reviewer", "alice")
    cookie, csrf = session(alice)
    item = json.loads(call(alice.base + "/api/item/0", cookie=cookie)[2])
    own = {"Origin": alice.base, "X-CSRF-Token": csrf, "Content-Type": "application/json"}
    call(alice.base + "/api/decide", cookie=cookie, body={"index": 0, "row_id": item["row_id"], "decision": "accept"},
         headers=own)

    # the same reviewer twice would keep two stale views: refused
    second = subprocess.run([sys.executable, "-m", "factory.cli.review", "--run", str(review_run), "--reviewer", "alice"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert second.returncode == 2 and "already reviewing" in second.stderr

    bob = servers(review_run, "--reviewer", "bob")
    cookie_b, csrf_b = session(bob)
    state = json.loads(call(bob.base + "/api/state", cookie=cookie_b)[2])
    assert state["decided"] == 0 and state["first_undecided"] == 0
    call(bob.base + "/api/decide", cookie=cookie_b, body={"index": 0, "row_id": item["row_id"], "decision": "reject"},
         headers={"Origin": bob.base, "X-CSRF-Token": csrf_b, "Content-Type": "application/json"})
    # bob's undo takes back bob's decision only
    call(bob.base + "/api/undo", cookie=cookie_b, body={},
         headers={"Origin": bob.base, "X-CSRF-Token": csrf_b, "Content-Type": "application/json"})
    decisions = current_decisions(review_run, "silver")
    assert decisions.select("reviewer", "decision").rows() == [("alice", "accept")]
    # alice's cookie is not bob's (one cookie name per port)
    assert call(bob.base + "/api/state", cookie=cookie.replace(str(alice.port), str(bob.port)))[0] == 401


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1"])
def test_a_non_loopback_address_is_refused(review_run, host):
    result = subprocess.run([sys.executable, "-m", "factory.cli.review", "--run", str(review_run), "--host", host],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "loopback address only" in result.stderr
    assert not (review_run / "silver_review").exists()


def test_every_row_has_a_why_here_line(review_run_with_gold, servers):
    """The classifier fitted on the run's gold train split speaks on every row, silver and bronze."""
    for queue in ("silver", "bronze"):
        server = servers(review_run_with_gold, "--reviewer", "alice", "--queue", queue)
        cookie, _ = session(server)
        total = json.loads(call(server.base + "/api/state", cookie=cookie)[2])["total"]
        for index in range(total):
            item = json.loads(call(server.base + f"/api/item/{index}", cookie=cookie)[2])
            assert re.match(r"^classifier 0\.\d\d vs LLM (yes|no) \(.+\)", item["why"]), item["why"]
            assert item["classifier"]["probability"] is not None
    split = json.loads((review_run_with_gold / "gold" / "split.json").read_text())
    assert "test" in split["assignments"].values()  # the frozen split; the classifier saw its train rows only


def test_an_accept_over_changed_labels_and_a_second_name_are_refused(review_run, servers):
    server = servers(review_run, "--reviewer", "alice")
    cookie, csrf = session(server)
    own = {"Origin": server.base, "X-CSRF-Token": csrf, "Content-Type": "application/json"}
    item = json.loads(call(server.base + "/api/item/0", cookie=cookie)[2])
    accept = {"index": 0, "row_id": item["row_id"], "decision": "accept", "labels": ["none"]}
    status, _, text = call(server.base + "/api/decide", cookie=cookie, body=accept, headers=own)
    assert status == 409 and "differ from the LLM's" in json.loads(text)["error"]
    assert ReviewLog(review_run, "silver").read().height == 0
    status, _, _ = call(server.base + "/api/decide", cookie=cookie, body={**accept, "discard_changes": True}, headers=own)
    assert status == 200  # the reviewer confirmed
    status, _, text = call(server.base + "/api/reviewer", cookie=cookie, body={"reviewer": "bob"}, headers=own)
    assert status == 409 and "reviews as alice" in json.loads(text)["error"]
    assert json.loads(call(server.base + "/api/config", cookie=cookie)[2])["rules"][-1]["source"] == "review"


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.0.0.9", True), ("::1", True), ("[::1]", True),
                                            ("localhost", True), ("0.0.0.0", False), ("192.0.2.1", False),
                                            ("example.org", False), ("", False)])
def test_only_loopback_addresses_count_as_this_machine(host, loopback):
    assert is_loopback(host) is loopback


def test_bind_listens_on_loopback_and_refuses_anything_else():
    sock = bind("127.0.0.1", None)
    try:
        assert sock.getsockname()[0] == "127.0.0.1" and sock.getsockname()[1] > 0
    finally:
        sock.close()
    with pytest.raises(FactoryError, match="--host 0.0.0.0: .*loopback address only"):
        bind("0.0.0.0", None)


def _session(run, reviewer="alice") -> ReviewSession:
    taxonomy = load_taxonomy()
    return ReviewSession(run_dir=run, dataset="silver", reviewer=reviewer, order="informative", taxonomy=taxonomy,
                         queue=build_queue(run, "silver", taxonomy), log=ReviewLog(run, "silver"),
                         fixed_reviewer=reviewer is not None)


def test_a_session_decides_skips_and_undoes_in_order(review_run):
    session = _session(review_run)
    first, second = session.queue[0], session.queue[1]
    session.skip({"index": 0, "row_id": first.row_id})
    session.skip({"index": 0, "row_id": first.row_id})  # a reload passing it again records nothing
    assert session.state()["skipped"] == 1 and session.state()["first_open"] == 1
    session.decide({"index": 1, "row_id": second.row_id, "decision": "correct", "labels": ["none"], "note": " why "})
    saved = session.decide({"index": 0, "row_id": first.row_id, "decision": "reject"})
    assert saved["state"]["decided"] == 2 and saved["state"]["skipped"] == 0  # a decision ends the skip
    assert session.item(1)["decision"]["labels"] == ["none"] and session.item(1)["decision"]["note"] == "why"
    assert session.undo()["undone"] == "reject" and session.state()["decided"] == 1  # the latest first
    # a new session of the same reviewer (a restarted server) sees the same decisions
    again = _session(review_run)
    assert again.state()["decided"] == 1 and again.item(1)["decision"]["decision"] == "correct"
    with pytest.raises(ValueError, match="not at that place in the queue"):
        session.decide({"index": 0, "row_id": second.row_id, "decision": "accept"})
    with pytest.raises(ValueError, match="decision must be one of"):
        session.decide({"index": 1, "row_id": second.row_id, "decision": "maybe"})


def test_a_session_without_a_reviewer_asks_for_one_first(review_run):
    session = _session(review_run, reviewer=None)
    first = session.queue[0]
    with pytest.raises(ValueError, match="name yourself first"):
        session.decide({"index": 0, "row_id": first.row_id, "decision": "accept"})
    with pytest.raises(ValueError, match="reviewer"):
        session.set_reviewer({"reviewer": "no spaces allowed"})
    assert session.set_reviewer({"reviewer": "carol"})["reviewer"] == "carol"
    session.decide({"index": 0, "row_id": first.row_id, "decision": "accept"})
    assert current_decisions(review_run, "silver")["reviewer"].to_list() == ["carol"]
    session.held.close()

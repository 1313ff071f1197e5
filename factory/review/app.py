"""The review web app (Starlette) and its local server (uvicorn), bound to a loopback address only.

Security: the printed URL carries a random session token; the first visit trades it for an HttpOnly,
SameSite=Strict cookie and is redirected to a clean URL. Every request without the token gets 401. Every
request must name this server in its Host header (no DNS rebinding), and every state-changing request
(POST) must come from this server's own origin (Origin header) and carry the page's CSRF token in a
header, else 403. The page loads nothing from outside the machine, and its Content-Security-Policy forbids
it to.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from factory.core.errors import FactoryError
from factory.data.taxonomy import Taxonomy
from factory.review.guideline import guideline_rules
from factory.review.queue import Item
from factory.review.store import DECISIONS, MAX_NOTE_CHARS, RETRACT, SKIP, Event, ReviewLog, check_reviewer, resolve

STATIC = Path(__file__).resolve().parent / "static"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                    "X-Frame-Options": "DENY", "Cache-Control": "no-store", "Cross-Origin-Resource-Policy": "same-origin"}
MAX_BODY = 16_384


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class ReviewSession:
    """What one server serves: one dataset, one ordered queue, and one reviewer's decisions. The reviewer is
    given on the command line or, when not, named in the page on first use (the browser keeps the name)."""

    run_dir: Path
    dataset: str
    reviewer: str | None
    order: str
    taxonomy: Taxonomy
    queue: list[Item]
    log: ReviewLog
    fixed_reviewer: bool = True  # --reviewer given: the page cannot change it
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    events: list[Event] = field(default_factory=list)  # this reviewer's events on this dataset
    lock: threading.Lock = field(default_factory=threading.Lock)
    held: object = None  # the open lock file saying "this reviewer is reviewing this dataset"

    def __post_init__(self) -> None:
        self.index_of = {item.row_id: i for i, item in enumerate(self.queue)}
        self.events = self.log.events(self.reviewer) if self.reviewer else []

    def set_reviewer(self, body: dict) -> dict:
        """Name the reviewer (the page asks on first use): their lock, their decisions so far."""
        name = body.get("reviewer")
        if not isinstance(name, str):
            raise ValueError("give your reviewer name")
        if self.fixed_reviewer and name != self.reviewer:
            raise ValueError(f"this server reviews as {self.reviewer} (its --reviewer); restart it without "
                             "--reviewer to review under another name")
        if name != self.reviewer:
            try:
                held = self.log.hold(check_reviewer(name))
            except FactoryError as exc:
                raise ValueError(str(exc)) from None
            if self.held is not None:
                self.held.close()
            self.held, self.reviewer, self.events = held, name, self.log.events(name)
        return {"reviewer": self.reviewer, "state": self.state()}

    def current(self) -> dict[str, Event]:
        """{row_id: this reviewer's current decision}, only for rows whose text is what was reviewed."""
        valid = [e for e in self.events if self._text_unchanged(e)]
        return {row_id: event for (row_id, _), event in resolve(valid).items()}

    def _text_unchanged(self, event: Event) -> bool:
        index = self.index_of.get(event.row_id)
        return index is not None and self.queue[index].text_sha256 == event.text_sha256

    def skipped(self, current: dict[str, Event]) -> set[str]:
        """Rows this reviewer passed by and has not decided since."""
        return {e.row_id for e in self.events if e.decision == SKIP and self._text_unchanged(e)} - set(current)

    def state(self) -> dict:
        current = self.current()
        skipped = self.skipped(current)
        undecided = [i for i, item in enumerate(self.queue) if item.row_id not in current]
        first_open = next((i for i in undecided if self.queue[i].row_id not in skipped), None)
        counts = {d: sum(1 for e in current.values() if e.decision == d) for d in DECISIONS}
        return {"total": len(self.queue), "decided": len(current), "first_undecided": undecided[0] if undecided else None,
                "first_open": first_open, "skipped": len(skipped), "counts": counts,
                "reviewer": self.reviewer, "dataset": self.dataset, "order": self.order}

    def item(self, index: int) -> dict:
        item = self.queue[index]
        current = self.current()
        decision = current.get(item.row_id)
        return {"index": index, **item.payload(), "skipped": item.row_id in self.skipped(current),
                "decision": None if decision is None else {
                    "decision": decision.decision, "labels": list(decision.final_labels),
                    "phi_flag": decision.phi_flag, "note": decision.note, "at": decision.created_at.isoformat()}}

    def _row(self, body: dict) -> Item:
        if not self.reviewer:
            raise ValueError("name yourself first (the page asks for your reviewer name)")
        index, row_id = body.get("index"), body.get("row_id")
        if not isinstance(index, int) or not 0 <= index < len(self.queue) or self.queue[index].row_id != row_id:
            raise ValueError("this row is not at that place in the queue; reload the page")
        return self.queue[index]

    def _labels(self, body: dict) -> list[str]:
        labels = body.get("labels")
        if not isinstance(labels, list) or not labels or not all(isinstance(l, str) for l in labels):
            raise ValueError("a correction needs at least one label (or 'none')")
        unknown = sorted(set(labels) - set(self.taxonomy.all_ids))
        if unknown:
            raise ValueError(f"labels not in the taxonomy: {', '.join(unknown)}")
        if self.taxonomy.none.id in labels and len(set(labels)) > 1:
            raise ValueError(f"'{self.taxonomy.none.id}' cannot be combined with another label")
        return self.taxonomy.normalise_labels(labels)

    def _check_accept(self, body: dict, item: Item) -> None:
        """An accept of labels other than the ones the page shows as checked is a lost correction: refused
        unless the page says the reviewer confirmed it (`discard_changes`)."""
        labels = body.get("labels")
        if labels is None or body.get("discard_changes") is True:
            return
        if not isinstance(labels, list) or sorted(map(str, labels)) != sorted(item.labels):
            raise ValueError("your labels differ from the LLM's: save them as a correction (Enter), or confirm "
                             "that you accept the LLM's labels as they are")

    def decide(self, body: dict) -> dict:
        item, decision = self._row(body), body.get("decision")
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {', '.join(DECISIONS)}")
        if decision == "accept":
            self._check_accept(body, item)
        corrected = self._labels(body) if decision == "correct" else []
        note = body.get("note") or ""
        if not isinstance(note, str) or len(note) > MAX_NOTE_CHARS:
            raise ValueError(f"the note must be text of at most {MAX_NOTE_CHARS} characters")
        event = self.log.append(row_id=item.row_id, text_sha256=item.text_sha256, reviewer=self.reviewer,
                                decision=decision, shown_labels=item.labels, corrected_labels=corrected,
                                phi_flag=bool(body.get("phi_flag")), note=note.strip())
        self.events.append(event)
        return {"saved": event.decision, "event_id": event.event_id, "index": body["index"], "state": self.state()}

    def skip(self, body: dict) -> dict:
        """Record that the reviewer passed an undecided row by (once): a reload does not return to it."""
        item = self._row(body)
        current = self.current()
        if item.row_id not in current and item.row_id not in self.skipped(current):
            self.events.append(self.log.append(row_id=item.row_id, text_sha256=item.text_sha256,
                                               reviewer=self.reviewer, decision=SKIP, shown_labels=item.labels))
        return {"state": self.state()}

    def undo(self) -> dict:
        """Retract this reviewer's most recent decision that is still standing (skips are no decisions)."""
        retracted = {e.retracts for e in self.events if e.decision == RETRACT}
        standing = [e for e in self.events if e.decision in DECISIONS and e.event_id not in retracted
                    and e.row_id in self.index_of]
        if not self.reviewer or not standing:
            return {"undone": None, "state": self.state()}
        last = max(standing, key=lambda e: e.created_at)
        event = self.log.append(row_id=last.row_id, text_sha256=last.text_sha256, reviewer=self.reviewer,
                                decision=RETRACT, retracts=last.event_id)
        self.events.append(event)
        return {"undone": last.decision, "index": self.index_of[last.row_id], "state": self.state()}

    def config(self) -> dict:
        keys = [str(i) for i in range(1, 10)]
        categories = [{"id": c.id, "name": c.name, "definition": c.definition,
                       "key": keys[i] if i < len(keys) else None} for i, c in enumerate(self.taxonomy.categories)]
        none = self.taxonomy.none
        categories.append({"id": none.id, "name": none.name, "definition": none.definition, "key": "0",
                           "exclusive": True})
        return {"categories": categories, "reviewer": self.reviewer, "reviewer_fixed": self.fixed_reviewer,
                "dataset": self.dataset, "order": self.order, "run": self.run_dir.name, "total": len(self.queue),
                "rules": guideline_rules(self.taxonomy)}


def _secure(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def create_app(session: ReviewSession, host: str, port: int) -> Starlette:
    names = {host, "localhost", "127.0.0.1"} if is_loopback(host) else {host}
    names = {f"[{n}]" if ":" in n else n for n in names}
    allowed_hosts = {f"{n}:{port}" for n in names}
    allowed_origins = {f"http://{h}" for h in allowed_hosts}
    cookie = f"review_session_{port}"  # cookies ignore ports: one name per server

    def refuse(status: int, message: str) -> Response:
        return _secure(PlainTextResponse(message, status_code=status))

    def authorised(request: Request) -> bool:
        given = request.cookies.get(cookie) or request.headers.get("x-review-token") or ""
        return hmac.compare_digest(given.encode(), session.token.encode())

    def guarded(handler, write: bool = False):
        async def endpoint(request: Request) -> Response:
            if request.headers.get("host", "") not in allowed_hosts:
                return refuse(403, "forbidden: unknown Host")
            if not authorised(request):
                return refuse(401, "unauthorised: open the URL the review command printed")
            if write:
                if request.headers.get("origin") not in allowed_origins:
                    return refuse(403, "forbidden: cross-site request")
                if not hmac.compare_digest(request.headers.get("x-csrf-token", "").encode(), session.csrf.encode()):
                    return refuse(403, "forbidden: missing or wrong CSRF token")
                if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
                    return refuse(415, "expected application/json")
                raw = await request.body()
                if len(raw) > MAX_BODY:
                    return refuse(413, "request too large")
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    return refuse(400, "invalid JSON")
                if not isinstance(body, dict):
                    return refuse(400, "expected a JSON object")
                try:
                    with session.lock:
                        return _secure(JSONResponse(handler(body)))
                except ValueError as exc:
                    return _secure(JSONResponse({"error": str(exc)}, status_code=409))
                except FactoryError as exc:
                    return _secure(JSONResponse({"error": str(exc)}, status_code=500))
            with session.lock:
                return _secure(handler(request))

        return endpoint

    async def index(request: Request) -> Response:
        if request.headers.get("host", "") not in allowed_hosts:
            return refuse(403, "forbidden: unknown Host")
        given = request.query_params.get("token")
        if given is not None:
            if not hmac.compare_digest(given.encode(), session.token.encode()):
                return refuse(401, "unauthorised: wrong token")
            response = RedirectResponse("/", status_code=303)  # the token leaves the address bar and history
            response.set_cookie(cookie, session.token, httponly=True, samesite="strict", path="/")
            return _secure(response)
        if not authorised(request):
            return refuse(401, "unauthorised: open the URL the review command printed")
        page = (STATIC / "index.html").read_text(encoding="utf-8").replace("{{CSRF}}", session.csrf)
        return _secure(Response(page, media_type="text/html; charset=utf-8"))

    def static(name: str, media_type: str):
        return guarded(lambda request: FileResponse(STATIC / name, media_type=media_type))

    def item(request: Request) -> Response:
        try:
            index = int(request.path_params["index"])
        except ValueError:
            return PlainTextResponse("bad index", status_code=400)
        if not 0 <= index < len(session.queue):
            return PlainTextResponse("no such row", status_code=404)
        return JSONResponse(session.item(index))

    routes = [
        Route("/", index),
        Route("/static/app.js", static("app.js", "text/javascript; charset=utf-8")),
        Route("/static/app.css", static("app.css", "text/css; charset=utf-8")),
        Route("/favicon.ico", guarded(lambda request: Response(status_code=204))),
        Route("/api/config", guarded(lambda request: JSONResponse(session.config()))),
        Route("/api/state", guarded(lambda request: JSONResponse(session.state()))),
        Route("/api/item/{index}", guarded(item)),
        Route("/api/decide", guarded(session.decide, write=True), methods=["POST"]),
        Route("/api/undo", guarded(lambda body: session.undo(), write=True), methods=["POST"]),
        Route("/api/skip", guarded(session.skip, write=True), methods=["POST"]),
        Route("/api/reviewer", guarded(session.set_reviewer, write=True), methods=["POST"]),
    ]
    return Starlette(routes=routes)


def bind(host: str, port: int | None) -> socket.socket:
    """A listening socket on host:port (a free port when None); refuses any address beyond this machine."""
    if not is_loopback(host):
        raise FactoryError(f"--host {host}: the review server shows patient text over plain HTTP and binds to a "
                           "loopback address only (127.0.0.1, ::1, localhost)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port or 0))
    except OSError as exc:
        sock.close()
        raise FactoryError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(64)
    sock.set_inheritable(True)
    return sock


def serve(session: ReviewSession, host: str = "127.0.0.1", port: int | None = None, announce=print) -> None:
    """Listen, print the one URL (with the session token), serve until interrupted."""
    import uvicorn

    sock = bind(host, port)
    port = sock.getsockname()[1]
    url_host = f"[{host}]" if ":" in host else host
    app = create_app(session, host, port)
    announce(f"http://{url_host}:{port}/?token={session.token}")
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", server_header=False)
    uvicorn.Server(config).run(sockets=[sock])

"""`bin/generate review`: clinician review of silver or bronze rows in the browser (factory/review/).

Also runnable on its own: `python -m factory.cli.review` (the tests start the server this way).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from factory.cli.options import SEED, ExistingDir, RegularFile
from factory.core.errors import FactoryError
from factory.core.offline import force_offline


@click.command()
@click.option("--run", "run_dir", type=ExistingDir("run folder"), required=True, help="Run folder to review.")
@click.option("--queue", "dataset", type=click.Choice(["silver", "bronze"]), default="silver", show_default=True,
              help="silver: the LLM's labels of real sentences; bronze: the LLM's sentences for a category.")
@click.option("--reviewer", default=None, help="Your reviewer id (default: the page asks for it on first use and "
              "the browser keeps it). Each reviewer's decisions are kept apart.")
@click.option("--order", type=click.Choice(["informative", "random"]), default="informative", show_default=True,
              help="informative: contested rows first (the gold classifier disagrees with the LLM or is near its "
                   "threshold, votes split, low LLM confidence, verifier or PHI findings), round-robin over "
                   "categories; random: a seeded shuffle (an unbiased audit sample).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of --order random (and of tie-breaks).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address to listen on.")
@click.option("--port", type=click.IntRange(min=0, max=65535), default=None, help="Port (default: a free one).")
@click.option("--taxonomy", type=RegularFile("taxonomy file"), default=None,
              help="Taxonomy JSON (default: schemas/taxonomy.json).")
@click.option("--gold", "gold_dir", type=ExistingDir("gold folder"), default=None,
              help="Imported gold folder whose train split fits the classifier behind each row's why-here line "
                   "(default: RUN/gold).")
def review(run_dir: Path, dataset: str, reviewer: str | None, order: str, seed: int, host: str, port: int | None,
           taxonomy: Path | None, gold_dir: Path | None) -> None:
    """Review silver or bronze rows in the browser: accept, reject or correct each row's labels, keyboard first.

    Prints one local URL carrying a session token; open it in a browser on this machine. Every decision is
    written at once to <run>/<queue>_review/ (an append-only side table); rerunning resumes at the first row
    you have not decided.
    """
    force_offline()  # the network guard stays on: the server only listens on loopback
    from factory.data.taxonomy import load_taxonomy
    from factory.review.app import ReviewSession, bind, serve
    from factory.review.queue import Signals, build_queue
    from factory.review.signals import fit_gold_classifier
    from factory.review.store import ReviewLog, check_reviewer

    if reviewer is not None:
        check_reviewer(reviewer)
    bind(host, 0).close()  # refuse a non-loopback --host before any work
    log = ReviewLog(run_dir, dataset)
    tax = load_taxonomy(taxonomy)
    if not Path(run_dir).is_dir():
        raise FactoryError(f"run folder not found: {run_dir}")
    classifier, missing, about = fit_gold_classifier(gold_dir or Path(run_dir) / "gold", tax, seed)
    if gold_dir is not None and classifier is None:
        raise FactoryError(f"--gold: {about}")
    click.echo(f"why-here signal: {about}", err=True)
    items = build_queue(run_dir, dataset, tax, order, seed, Signals(tax, classifier, missing))
    held = log.hold(reviewer) if reviewer else None  # one server per reviewer and dataset, until this one stops
    log.compact()
    session = ReviewSession(run_dir=Path(run_dir), dataset=dataset, reviewer=reviewer, order=order, taxonomy=tax,
                            queue=items, log=log, fixed_reviewer=reviewer is not None, held=held)
    state = session.state()
    who = f"as {reviewer}" if reviewer else "(the page asks for the reviewer's name)"
    click.echo(f"reviewing {state['total']} {dataset} rows of {run_dir} {who} ({order} order); "
               f"{state['decided']} decided; decisions go to {log.folder}", err=True)

    def announce(url: str) -> None:
        click.echo(url)
        sys.stdout.flush()

    serve(session, host, port, announce)


if __name__ == "__main__":  # the tests start the server this way
    from factory.cli.main import run_command

    run_command(review)

"""`review` and `quality simulate-review` as functions of their specs (factory/core/specs.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from factory.api import existing_run
from factory.core.errors import FactoryError
from factory.core.offline import force_offline
from factory.core.specs import ReviewSpec, SimulateReviewSpec


def run_simulation(spec: SimulateReviewSpec, say):
    """The simulated review loop, informative vs random order; (result, report paths in their final place)."""
    from factory.data.output_folder import claim_output_folder
    from factory.data.taxonomy import load_taxonomy
    from factory.review.simulation import SIMULATION_WRITER, build_pool, simulate, write_report
    from factory.trainer.compare import parse_seeds

    run_dir = existing_run(spec.run)
    taxonomy = load_taxonomy(spec.taxonomy)
    seeds = parse_seeds(spec.seeds)
    gold_dir = spec.gold or run_dir / "gold"
    with claim_output_folder(spec.out or run_dir / "review_simulation", SIMULATION_WRITER) as folder:  # before work
        pool = build_pool(run_dir, gold_dir, taxonomy)
        result = simulate(run_dir, gold_dir, pool, taxonomy, spec.batch, spec.budget, seeds, say)
        paths = write_report(result, folder.build)
    return result, [folder.final(path) for path in paths]


def serve_review(spec: ReviewSpec) -> None:
    """Build the queue and serve it on loopback until stopped; the URL goes to stdout, the rest to stderr."""
    force_offline()  # the network guard stays on: the server only listens on loopback
    from factory.data.taxonomy import load_taxonomy
    from factory.review.app import ReviewSession, bind, serve
    from factory.review.queue import Signals, build_queue
    from factory.review.signals import fit_gold_classifier
    from factory.review.store import ReviewLog, check_reviewer

    run_dir, dataset, reviewer = spec.run, spec.queue, spec.reviewer
    if reviewer is not None:
        check_reviewer(reviewer)
    bind(spec.host, 0).close()  # refuse a non-loopback --host before any work
    log = ReviewLog(run_dir, dataset)
    taxonomy = load_taxonomy(spec.taxonomy)
    if not Path(run_dir).is_dir():
        raise FactoryError(f"run folder not found: {run_dir}")
    classifier, missing, about = fit_gold_classifier(spec.gold or Path(run_dir) / "gold", taxonomy, spec.seed)
    if spec.gold is not None and classifier is None:
        raise FactoryError(f"--gold: {about}")
    click.echo(f"why-here signal: {about}", err=True)
    items = build_queue(run_dir, dataset, taxonomy, spec.order, spec.seed, Signals(taxonomy, classifier, missing))
    held = log.hold(reviewer) if reviewer else None  # one server per reviewer and dataset, until this one stops
    log.compact()
    session = ReviewSession(run_dir=Path(run_dir), dataset=dataset, reviewer=reviewer, order=spec.order,
                            taxonomy=taxonomy, queue=items, log=log, fixed_reviewer=reviewer is not None, held=held)
    state = session.state()
    who = f"as {reviewer}" if reviewer else "(the page asks for the reviewer's name)"
    click.echo(f"reviewing {state['total']} {dataset} rows of {run_dir} {who} ({spec.order} order); "
               f"{state['decided']} decided; decisions go to {log.folder}", err=True)

    def announce(url: str) -> None:
        click.echo(url)
        sys.stdout.flush()

    serve(session, spec.host, spec.port, announce)

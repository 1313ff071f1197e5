"""bin/bench: labelling throughput, start-up, resume and memory of the factory, in one command.

vLLM engines cannot be started and stopped cleanly many times in one process, so the parent runs every
configuration in a child process of `bin/bench` (one engine each), collects one JSON result per child,
and prints a table plus the whole JSON. Every child labels the same sentences with the same model.

Measured:
- labelling throughput (sentences/s, output tokens/s) of vLLM and transformers + Outlines, batched and one
  prompt at a time, through `Engine.generate` (schema constraint, validation and retry included);
- vLLM with and without the schema constraint, and with each structured-output backend;
- engine start-up (compiled vs eager) and the rerun of `run_label` into a finished run folder (no LLM call);
- peak RSS of the process tree (vLLM's engine-core children included) while the label path streams a
  corpus of growing size. That scan measures the pipeline, not the LLM: it uses the model-free trivial
  engine (factory/engines/trivial.py) unless --memory-engine vllm;
- the notes reader without an LLM (`corpus`): sentence splitting of one-line notes of growing size (the
  ratio of their seconds, measured side by side in one run, is ~2 for twice the text when splitting is
  linear), of a line without spaces or punctuation, and validate_notes' cheap pass over a 50,001-row table
  broken at its last row. The tests count the splitter's work (tests/data/test_corpus_hardening.py); the
  seconds live here;
- how fast `bin/generate label` with vLLM stops on SIGTERM once it has committed a shard (`vllm sigterm stop`:
  seconds from the signal to the exit; a service manager kills a command that takes more than a few
  seconds). tests/core/test_engine_processes.py checks what the stop leaves behind, not how long it took.
On a CUDA machine the same run reports the GPU and, with --bandwidth-gbs, the memory-bandwidth bound of
single-stream decoding (bandwidth / bytes of weights read per token).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from factory.core.paths import CACHE_DIR, DATA_DIR, DEMO_DIR, PROJECT_ROOT

BENCH_DIR = DATA_DIR / "bench"
TRIVIAL = "factory.engines.trivial:TrivialEngine"


# ---------------------------------------------------------------- pure helpers (tests/test_bench.py)

def synthetic_notes(sentences: int, per_note: int = 10) -> list[str]:
    """Notes holding exactly `sentences` distinct sentences (none is dropped as a duplicate or header)."""
    subjects = ["She", "He", "The patient", "Her husband", "His daughter"]
    findings = ["keeps forgetting recent conversations", "needs help with the bills", "had a fall at home",
                "is agitated in the evening", "scored low on the MoCA", "was started on donepezil"]
    lines = [f"At visit {i} {subjects[i % 5].lower()} {findings[i % 6]} today." for i in range(sentences)]
    return [" ".join(lines[start:start + per_note]) for start in range(0, sentences, per_note)]


CPU_TRANSFORMERS_SENTENCES = 8


def bandwidth_bound(bandwidth_gbs: float | None, weight_bytes: int) -> float | None:
    """Tokens/s ceiling of one decoding stream: every token reads all weights once from memory."""
    if not bandwidth_gbs or weight_bytes <= 0:
        return None
    return bandwidth_gbs * 1e9 / weight_bytes


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if not numerator or not denominator:
        return None
    return round(numerator / denominator, 2)


def ratios(rows: list[dict]) -> dict[str, float | None]:
    """The headline comparisons, from result rows keyed by their `config` name."""
    by = {r["config"]: r for r in rows if r.get("ok", True)}

    def rate(config: str, key: str = "sentences_per_s"):
        return by.get(config, {}).get(key)

    return {
        "vllm/transformers batched (sentences/s)": ratio(rate("vllm xgrammar batched"), rate("transformers batched")),
        "vllm/transformers one-at-a-time (sentences/s)": ratio(rate("vllm xgrammar single"), rate("transformers single")),
        "vllm batched/single (sentences/s)": ratio(rate("vllm xgrammar batched"), rate("vllm xgrammar single")),
        "constrained/unconstrained (sentences/s)": ratio(rate("vllm xgrammar batched"), rate("vllm unconstrained batched")),
        "constrained/unconstrained (output tok/s)": ratio(rate("vllm xgrammar batched", "output_tokens_per_s"),
                                                          rate("vllm unconstrained batched", "output_tokens_per_s")),
        "compiled/eager (sentences/s)": ratio(rate("vllm xgrammar batched"), rate("vllm xgrammar eager batched")),
        "label path / bare vLLM (sentences/s)": ratio(rate("label path (stage runner)"), rate("bare vLLM, same prompts")),
        "label path / bare vLLM + the one retry (sentences/s)": ratio(rate("label path (stage runner)"),
                                                                      rate("bare vLLM + the one retry")),
        **split_ratios(rows),
    }


def split_ratios(rows: list[dict]) -> dict[str, float | None]:
    """Seconds of each one-line split against the smallest one's (linear splitting: the ratio of the sizes)."""
    splits = sorted((r for r in rows if r.get("ok", True) and r.get("split_mb") and r["config"].startswith("corpus split")),
                    key=lambda r: r["split_mb"])
    if len(splits) < 2:
        return {}
    base = splits[0]
    return {f"corpus split {r['split_mb']:g} MB / {base['split_mb']:g} MB (seconds; linear: {r['split_mb'] / base['split_mb']:g})":
            ratio(r["seconds"], base["seconds"]) for r in splits[1:]}


COLUMNS = [("config", "config", 30), ("n", "n", 6), ("seconds", "s", 7), ("sentences_per_s", "sent/s", 8),
           ("output_tokens_per_s", "out tok/s", 9), ("valid", "valid", 7), ("start_s", "start s", 8),
           ("peak_rss_gb", "peak RSS GB", 11), ("note", "note", 0)]


def format_table(rows: list[dict]) -> str:
    def cell(row, key):
        value = row.get(key)
        if key == "valid" and value is not None:
            return f"{value}/{row.get('n')}"
        if isinstance(value, float):
            return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"
        return "" if value is None else str(value)

    lines = ["  ".join(title.ljust(width) for _, title, width in COLUMNS).rstrip()]
    lines.append("  ".join("-" * max(width, len(title)) for _, title, width in COLUMNS))
    for row in rows:
        if not row.get("ok", True):
            lines.append(f"{row['config'].ljust(30)}  FAILED: {row.get('error', '')[:120]}")
            continue
        lines.append("  ".join(cell(row, key).ljust(width) for key, _, width in COLUMNS).rstrip())
    return "\n".join(lines)


# ---------------------------------------------------------------- measuring inside a child

class PeakRSS:
    """Samples the RSS of this process and all its descendants (vLLM's engine core, workers)."""

    def __init__(self, interval: float = 0.05):
        import psutil

        self._process = psutil.Process()
        self._psutil = psutil
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> int:
        total = 0
        for proc in [self._process, *self._process.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except (self._psutil.NoSuchProcess, self._psutil.AccessDenied):
                continue
        self.peak = max(self.peak, total)
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> PeakRSS:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def _gb(n: int) -> float:
    return round(n / 2**30, 2)


def bench_sentences(count: int) -> list:
    """The first `count` sentences of the demo notes (the same for every configuration)."""
    import itertools

    from factory.data.corpus import iter_notes, iter_sentences

    return list(itertools.islice(iter_sentences(iter_notes(DEMO_DIR / "notes")), count))


def label_context(spec: dict, out: Path, engine_factory, engine: str = "vllm"):
    """A label stage's context on the bench's own engine, built where every stage context is built
    (factory/api.stage_context): the same run folder, model and sampling rules as `bin/generate label`."""
    from factory import api
    from factory.core.specs import WriterEngine

    settings = WriterEngine(model=Path(spec["model"]), engine=engine, max_tokens=spec["max_tokens"], seed=0)
    return api.stage_context(settings, folder=out, engine_factory=engine_factory)


def _device() -> dict:
    info = {"platform": platform.machine(), "cpus": len(os.sched_getaffinity(0))}
    try:
        import torch

        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            return {**info, "device": "cuda", "gpu": props.name, "gpus": torch.cuda.device_count(),
                    "gpu_memory_gb": _gb(props.total_memory)}
    except ImportError:
        pass
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return {**info, "device": "cpu", "cpu": model}


def _weight_bytes(model_path: str) -> int:
    return sum(p.stat().st_size for p in Path(model_path).glob("*.safetensors"))


def _throughput(config: str, results, seconds: float, schema=None, start_s=None, **extra) -> dict:
    """One table row from engine results (Result or RawOutput objects)."""
    import jsonschema

    tokens = sum(r.completion_tokens for r in results)
    if schema is None:
        valid = sum(1 for r in results if getattr(r, "ok", False))
    else:  # free generation: count outputs that happen to be schema-valid JSON anyway
        validator = jsonschema.Draft202012Validator(schema)
        valid = 0
        for r in results:
            try:
                valid += validator.is_valid(json.loads(r.text))
            except ValueError:
                pass
    return {"config": config, "n": len(results), "seconds": round(seconds, 2),
            "sentences_per_s": round(len(results) / seconds, 2), "output_tokens_per_s": round(tokens / seconds, 1),
            "valid": valid, "output_tokens": tokens, "start_s": start_s, **extra}


def child_engine(spec: dict) -> list[dict]:
    """One engine: start-up, batched, one-at-a-time, unconstrained and resume measurements."""
    from factory.core.offline import force_offline

    force_offline()
    from factory.engines import load_engine
    from factory.engines.base import EngineConfig, Request, Sampling
    from factory.stages.label import Labeler
    from factory.data.taxonomy import load_taxonomy

    name, label = spec["engine"], spec["label"]
    taxonomy = load_taxonomy()
    labeler = Labeler(taxonomy)
    sentences = bench_sentences(spec["sentences"])
    requests = [Request(labeler.chat(s.text), seed=i) for i, s in enumerate(sentences)]
    sampling = Sampling(temperature=0.0, max_tokens=spec["max_tokens"])
    config = EngineConfig(model_path=spec["model"], structured_backend=spec.get("backend", "xgrammar"),
                          enforce_eager=spec.get("eager", False), batch_size=spec["batch_size"],
                          tensor_parallel_size=spec.get("tensor_parallel_size", 1))
    compile_cache_warm = any((CACHE_DIR / "vllm").rglob("*")) if (CACHE_DIR / "vllm").is_dir() else False
    rows = []
    with PeakRSS() as rss:
        started = time.perf_counter()
        engine = load_engine(name, config)
        start_s = round(time.perf_counter() - started, 1)
        engine.generate(requests[:1], labeler.schema, sampling)  # warm-up (first grammar compile, caches)
        device = _device()
        note = {"vllm": "eager" if config.enforce_eager else ("compiled" if compile_cache_warm else "compiled, cold cache")}.get(name, "")
        started = time.perf_counter()
        results = engine.generate(requests, labeler.schema, sampling)
        rows.append(_throughput(f"{label} batched", results, time.perf_counter() - started, start_s=start_s,
                                note=f"{note} batch {config.batch_size}".strip()))
        if spec.get("single"):
            latencies, singles = [], []
            for request in requests[: spec["single"]]:
                t = time.perf_counter()
                singles.extend(engine.generate([request], labeler.schema, sampling))
                latencies.append(time.perf_counter() - t)
            rows.append(_throughput(f"{label} single", singles, sum(latencies),
                                    note=f"median latency {statistics.median(latencies):.2f} s"))
        if spec.get("unconstrained"):
            started = time.perf_counter()
            raws = engine.generate_unconstrained(requests, sampling)
            rows.append(_throughput(f"{name} unconstrained batched", raws, time.perf_counter() - started,
                                    schema=labeler.schema, note="no schema; valid = happens to be valid JSON"))
        if spec.get("rerun"):
            rows.append(_rerun(engine, sentences, taxonomy, spec, sampling))
    for row in rows:
        row["peak_rss_gb"] = _gb(rss.peak)
    engine.close()
    bound = bandwidth_bound(spec.get("bandwidth_gbs"), _weight_bytes(spec["model"]))
    for row in rows:
        row["device"] = device
        if bound and row["config"].endswith("single"):
            row["bandwidth_bound_tokens_per_s"] = round(bound, 1)
            row["fraction_of_bound"] = round(row["output_tokens_per_s"] / bound, 3)
            row["note"] += f"; {row['fraction_of_bound']:.0%} of the {bound:.0f} tok/s bandwidth bound"
    return rows


def _rerun(engine, sentences, taxonomy, spec: dict, sampling) -> dict:
    """run_label into a fresh folder, then again into the same folder: the rerun must call no LLM."""
    from factory.stages.label import run_label

    out = Path(tempfile.mkdtemp(prefix="rerun-", dir=spec["work"]))
    ctx = label_context(spec, out, lambda: engine, engine.name)
    first = run_label(sentences, taxonomy, ctx)
    ctx.run.close()  # the run only: the engine is the caller's, still measured after this

    def no_engine():
        raise AssertionError("the rerun started an engine")

    started = time.perf_counter()
    with label_context(spec, out, no_engine, engine.name) as ctx:
        again = run_label(sentences, taxonomy, ctx)
    seconds = time.perf_counter() - started
    return {"config": "rerun of run_label (resume)", "n": len(sentences), "seconds": round(seconds, 3),
            "sentences_per_s": round(len(sentences) / seconds, 1), "valid": None,
            "note": f"{again.skipped} skipped, {again.requests} LLM calls (first pass wrote {first.rows} rows)"}


def child_label_path(spec: dict) -> list[dict]:
    """The label path (stage runner + engine stream, commits and lineage included) against bare
    `vllm.LLM.chat` on the same rendered prompts, schema and sampling, with one warm engine, alternating
    the two so neither gets a warmer cache: what the runner costs over the engine itself."""
    from factory.core.offline import force_offline

    force_offline()
    from dataclasses import replace

    import jsonschema

    from factory.data.taxonomy import load_taxonomy
    from factory.engines import load_engine
    from factory.engines.base import EngineConfig, Request, check_output
    from factory.stages.context import request_seed
    from factory.stages.label import LabelTask, run_label

    taxonomy = load_taxonomy()
    sentences = bench_sentences(spec["sentences"])
    config = EngineConfig(model_path=spec["model"], enforce_eager=True, batch_size=spec["batch_size"])
    engine = load_engine("vllm", config)
    task = LabelTask(taxonomy, sentences)

    def context():
        return label_context(spec, Path(tempfile.mkdtemp(prefix="path-", dir=spec["work"])), lambda: engine)

    # the label path's own prompts, seeds and sampling, so both sides decode exactly the same requests
    ctx = context()
    identity, sampling = task.identity(ctx), task.sampling(ctx)  # with the logprobs the label stage asks for
    ctx.run.close()
    requests = [Request(task.strategy.chat(s.text), request_seed(0, task.key(s.text, identity))) for s in sentences]
    # Warm-up on the whole batch, not a few requests: the first full batch also pays for first-touching the KV
    # cache and the grammar's token masks (twice measured: the first bare run of 96 took 1.3-2.4x the others).
    engine.generate_raw(requests, task.schema, sampling)
    validator = jsonschema.Draft202012Validator(task.schema)
    retry_sampling = replace(sampling, max_tokens=2 * sampling.max_tokens)
    bare_s, retry_s, path_s, rows_written, retried = [], [], [], 0, 0
    for _ in range(spec.get("rounds", 2)):
        started = time.perf_counter()
        outputs = engine.generate_raw(requests, task.schema, sampling)
        bare_s.append(time.perf_counter() - started)
        # what the label path does on top: the outputs that fail validation, once more with twice the budget
        failed = [i for i, out in enumerate(outputs) if check_output(out, validator)[1] is not None]
        started = time.perf_counter()
        if failed:
            engine.generate_raw([requests[i] for i in failed], task.schema, retry_sampling)
        retry_s.append(bare_s[-1] + time.perf_counter() - started)
        retried = len(failed)
        ctx = context()
        started = time.perf_counter()
        stats = run_label(sentences, taxonomy, ctx)
        path_s.append(time.perf_counter() - started)
        ctx.run.close()  # the run only: the engine is this function's, closed below
        rows_written = stats.rows + stats.failed
    engine.close()
    n = len(sentences)
    # The fastest of the alternating runs: other work on the machine only ever slows a run down, and on a
    # shared 2-core box one disturbed run of two moved the median (and the ratio) by half.
    bare, with_retry, path = min(bare_s), min(retry_s), min(path_s)
    return [
        {"config": "bare vLLM, same prompts", "n": n, "seconds": round(bare, 2), "sentences_per_s": round(n / bare, 2),
         "note": f"LLM.chat, eager, batch {config.batch_size}; fastest of {len(bare_s)}: {[round(x, 1) for x in bare_s]}"},
        {"config": "bare vLLM + the one retry", "n": n, "seconds": round(with_retry, 2),
         "sentences_per_s": round(n / with_retry, 2),
         "note": f"then LLM.chat on the {retried} invalid outputs with twice the budget, as the label path retries"},
        {"config": "label path (stage runner)", "n": n, "seconds": round(path, 2), "sentences_per_s": round(n / path, 2),
         "note": f"run_label into a new run folder ({rows_written} rows + failures); fastest of {len(path_s)}: "
                 f"{[round(x, 1) for x in path_s]}"},
    ]


def child_memory(spec: dict) -> list[dict]:
    """Peak RSS while the label path streams a `spec['sentences']`-sentence notes table into silver."""
    from factory.core.offline import force_offline

    force_offline()
    import polars as pl

    from factory.data.corpus import iter_notes, iter_sentences
    from factory.data.taxonomy import load_taxonomy
    from factory.engines import load_engine
    from factory.engines.base import EngineConfig
    from factory.stages.label import run_label

    work = Path(tempfile.mkdtemp(prefix=f"memory-{spec['sentences']}-", dir=spec["work"]))
    notes = work / "notes.parquet"
    pl.DataFrame({"text": synthetic_notes(spec["sentences"])}).write_parquet(notes)
    taxonomy = load_taxonomy()
    engine_name = spec["memory_engine"]
    config = EngineConfig(model_path=spec["model"], enforce_eager=True, batch_size=spec["batch_size"])
    ctx = label_context(spec, work / "run", lambda: load_engine(TRIVIAL if engine_name == "trivial" else engine_name, config),
                        engine_name)
    with ctx, PeakRSS() as rss:
        baseline = rss.sample()
        started = time.perf_counter()
        stats = run_label(iter_sentences(iter_notes(notes)), taxonomy, ctx)
        seconds = time.perf_counter() - started
    return [{"config": f"memory scan {spec['sentences']} sentences", "n": stats.rows + stats.failed,
             "seconds": round(seconds, 1), "sentences_per_s": round((stats.rows + stats.failed) / seconds, 1),
             "valid": stats.rows, "peak_rss_gb": _gb(rss.peak), "baseline_rss_gb": _gb(baseline),
             "growth_mb": round((rss.peak - baseline) / 2**20, 1),
             "maxrss_self_gb": _gb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024),
             "note": f"{engine_name} engine: pipeline only; +{(rss.peak - baseline) / 2**20:.0f} MB over start"}]


SPLIT_SENTENCE = "Patient number {} reports forgetting appointments and needs reminders from her son. "


def one_line_note(megabytes: float) -> str:
    """One line of `megabytes` MB of distinct sentences (the shape that once split in quadratic time)."""
    return "".join(SPLIT_SENTENCE.format(i) for i in range(int(megabytes * 1_000_000) // len(SPLIT_SENTENCE)))


def child_corpus(spec: dict) -> list[dict]:
    """Seconds of the notes reader's CPU work, no LLM: split one-line notes of each size in `spec['split_mb']`
    (side by side, so their ratio is measured under one load), a line without spaces, and the cheap
    validation pass over a table broken at row 50,001."""
    from factory.core.errors import FactoryError
    from factory.data.corpus import Note, split_sentences, validate_notes

    rows = []
    for megabytes in spec["split_mb"]:
        text = one_line_note(megabytes)
        started = time.perf_counter()
        found = sum(1 for _ in split_sentences(Note("one-line", text)))
        seconds = time.perf_counter() - started
        rows.append({"config": f"corpus split {megabytes:g} MB one line", "n": found, "seconds": round(seconds, 2),
                     "sentences_per_s": round(found / seconds, 1), "valid": found if found == text.count(". ") else 0,
                     "split_mb": megabytes, "note": f"{len(text) / 1e6 / seconds:.2f} MB/s"})
    blob = "x" * int(spec["blob_mb"] * 1_000_000)
    started = time.perf_counter()
    pieces = sum(1 for _ in split_sentences(Note("blob", blob)))
    seconds = time.perf_counter() - started
    rows.append({"config": f"corpus split {spec['blob_mb']:g} MB no spaces", "n": pieces, "seconds": round(seconds, 2),
                 "note": f"{len(blob) / 1e6 / seconds:.2f} MB/s, cut into pieces"})
    work = Path(tempfile.mkdtemp(prefix="corpus-", dir=spec["work"]))
    table = work / "notes.jsonl"
    table.write_text("".join(json.dumps({"text": f"Note {i}: she forgets her keys."}) + "\n" for i in range(50_000))
                     + '{"text": "broken\n', encoding="utf-8")
    started = time.perf_counter()
    try:
        validate_notes(table)
        found_it = False
    except FactoryError as exc:
        found_it = "line 50001" in str(exc)
    seconds = time.perf_counter() - started
    rows.append({"config": "corpus check 50001-row jsonl", "n": 50_001, "seconds": round(seconds, 2),
                 "valid": 50_001 if found_it else 0, "note": "broken last row found in the cheap pass (no splitting)"})
    return rows


def child_sigterm(spec: dict) -> list[dict]:
    """Seconds from SIGTERM to exit of `bin/generate label` with vLLM, sent once its first shard is committed."""
    import signal

    import polars as pl

    work = Path(tempfile.mkdtemp(prefix="sigterm-", dir=spec["work"]))
    notes, out = work / "notes.parquet", work / "run"
    pl.DataFrame({"text": synthetic_notes(spec["sentences"])}).write_parquet(notes)
    entry = spec.get("entry") or str(PROJECT_ROOT / "bin" / "generate")  # tests pass a model-free entry point
    command = [sys.executable, entry, "label", "--notes", str(notes), "--out", str(out), "--shard-size", "1",
               "--enforce-eager", "--max-tokens", str(spec["max_tokens"]),
               *(["--model", spec["model"]] if spec.get("model") else []), *(["--engine", spec["engine"]] if spec.get("engine") else [])]
    config = "vllm sigterm stop"
    with (work / "stderr").open("w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
    try:
        deadline = time.monotonic() + spec.get("timeout", 900)
        while process.poll() is None and time.monotonic() < deadline and not list(out.glob("silver/part-*.parquet")):
            time.sleep(0.05)
        if process.poll() is not None or time.monotonic() >= deadline:
            return [{"config": config, "ok": False, "error": "the run ended (or timed out) before its first shard"}]
        started = time.perf_counter()
        os.kill(process.pid, signal.SIGTERM)
        code = process.wait(timeout=120)
        seconds = time.perf_counter() - started
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # anything of it still running: the bench goes on without it
        except (ProcessLookupError, PermissionError):
            pass
    shards = sorted(out.glob("silver/part-*.parquet"))
    kept = pl.read_parquet(shards).height if shards else 0
    return [{"config": config, "n": kept, "seconds": round(seconds, 2), "exit_code": code,
             "note": f"SIGTERM to exit (code {code}); {kept} committed rows kept"}]


# ---------------------------------------------------------------- the parent: plan, run, report

def plan(args, cuda: bool = False) -> list[dict]:
    """The configurations one bench run measures, each a child process."""
    # On CPU transformers gets the first few of the same sentences (see below); on a GPU all of them.
    transformers_n = args.transformers_sentences or (args.sentences if cuda else CPU_TRANSFORMERS_SENTENCES)
    common = {"model": args.model, "sentences": args.sentences, "max_tokens": args.max_tokens,
              "bandwidth_gbs": args.bandwidth_gbs, "tensor_parallel_size": args.tensor_parallel_size}
    vllm = {**common, "kind": "engine", "engine": "vllm", "batch_size": 64}
    specs = [
        # the runner against the bare engine on every demo sentence (issue: >= 0.95 of the bare engine)
        {**vllm, "kind": "path", "label": "vllm label path vs bare", "sentences": args.path_sentences},
        {**vllm, "label": "vllm xgrammar", "single": args.single, "unconstrained": True, "rerun": True},
        {**vllm, "label": "vllm xgrammar eager", "eager": True},
        *({**vllm, "label": f"vllm {b}", "backend": b} for b in ("outlines", "guidance")),
        # The first --transformers-sentences of the same sentences: in plain PyTorch the ~1k-token label
        # prompt's bf16 prefill takes tens of seconds per batch on CPU, so 48 would blow the time budget.
        {**common, "kind": "engine", "engine": "transformers", "label": "transformers", "batch_size": 16,
         "sentences": min(args.sentences, transformers_n),
         "single": min(args.single, max(1, transformers_n // 4))},
        *({**common, "kind": "memory", "sentences": n, "memory_engine": args.memory_engine, "batch_size": 64}
          for n in args.memory_sizes),
        # SIGTERM once the first shard is committed: how long the stop takes (the kill test checks what it leaves)
        {**vllm, "kind": "sigterm", "label": "vllm sigterm stop", "sentences": args.sentences},
        # no model: the notes reader's own CPU work, each size in one child so their ratio shares one load
        {**common, "kind": "corpus", "label": "corpus split", "sentences": None, "split_mb": args.split_mb,
         "blob_mb": args.blob_mb},
    ]
    return [s for s in specs if not any(skip in s.get("label", "memory") for skip in args.skip)]


def _run_child(spec: dict, work: Path, timeout: int) -> list[dict]:
    spec = {**spec, "work": str(work)}
    result = work / f"result-{time.monotonic_ns()}.json"
    command = [sys.executable, str(PROJECT_ROOT / "bin" / "bench"), "--child", json.dumps(spec), "--result", str(result)]
    label = spec.get("label") or f"memory scan {spec['sentences']} sentences"
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return [{"config": label, "ok": False, "error": f"timed out after {timeout} s"}]
    if done.returncode != 0 or not result.is_file():
        tail = (done.stderr or "").strip().splitlines()[-3:]
        return [{"config": label, "ok": False, "error": " | ".join(tail) or f"exit {done.returncode}"}]
    return json.loads(result.read_text())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bin/bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="A catalogue name (`bin/generate models`) or a local HF model folder "
                        "(default: the catalogue's default LLM).")
    parser.add_argument("--sentences", type=int, default=48, help="Sentences labelled per configuration.")
    parser.add_argument("--single", type=int, default=8, help="Of those, labelled one prompt at a time.")
    parser.add_argument("--path-sentences", type=int, default=320,
                        help="Sentences of the label path vs bare vLLM comparison (default: the demo's 320).")
    parser.add_argument("--transformers-sentences", type=int, default=None,
                        help="Of those, labelled by transformers + Outlines (batched and one at a time) "
                             f"[default: all on a CUDA GPU, {CPU_TRANSFORMERS_SENTENCES} on CPU, where it is slow].")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--memory-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1000, 5000, 20000],
                        help="Corpus sizes (sentences) of the memory scan, comma-separated.")
    parser.add_argument("--split-mb", type=lambda s: [float(x) for x in s.split(",")], default=[2.0, 4.0],
                        help="Sizes (MB) of the one-line notes the corpus configuration splits, comma-separated.")
    parser.add_argument("--blob-mb", type=float, default=3.0,
                        help="Size (MB) of the line without spaces or punctuation the corpus configuration splits.")
    parser.add_argument("--memory-engine", choices=["trivial", "vllm"], default="trivial",
                        help="Engine of the memory scan (trivial: model-free, measures the pipeline only).")
    parser.add_argument("--bandwidth-gbs", type=float, default=None,
                        help="GPU memory bandwidth in GB/s: report tokens/s against the bandwidth bound.")
    parser.add_argument("--tensor-parallel-size", type=int, default=1, help="vLLM: GPUs per engine.")
    parser.add_argument("--skip", action="append", default=[],
                        help="Skip configurations whose name contains this (repeatable: transformers, guidance, memory...).")
    parser.add_argument("--timeout", type=int, default=900, help="Seconds allowed per configuration.")
    parser.add_argument("--json", type=Path, default=None, help="Also write the JSON here (default: data/bench/).")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        child = {"engine": child_engine, "path": child_label_path, "memory": child_memory,
                 "corpus": child_corpus, "sigterm": child_sigterm}[spec["kind"]]
        rows = child(spec)
        args.result.write_text(json.dumps(rows))
        return 0
    from factory.core.offline import force_offline

    force_offline()
    from factory.engines.model_ref import resolve_model

    args.model = str(resolve_model(Path(args.model) if args.model else None).path)
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    started = time.perf_counter()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(dir=BENCH_DIR, prefix=".work-") as work:
        for spec in plan(args, cuda=_device()["device"] == "cuda"):
            print(f"[bench] {spec.get('label') or 'memory scan'} {spec['sentences'] or ''} ...", file=sys.stderr, flush=True)
            rows.extend(_run_child(spec, Path(work), args.timeout))
    device = next((r["device"] for r in rows if "device" in r), None) or _device()
    report = {
        "command": "bin/bench " + " ".join(sys.argv[1:] if argv is None else argv),
        "model": args.model, "device": device, "load_average_at_start": [round(x, 2) for x in load],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()], "total_seconds": round(time.perf_counter() - started),
        "memory_engine": args.memory_engine, "rows": rows, "ratios": ratios(rows),
    }
    path = args.json or BENCH_DIR / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2))
    print(format_table(rows))
    print()
    for key, value in report["ratios"].items():
        print(f"{key}: {value if value is not None else 'n/a'}")
    where = (device or {}).get("gpu") or (device or {}).get("cpu", "")
    print(f"\ndevice: {where} ({(device or {}).get('cpus')} CPUs); load average {report['load_average_at_start']} -> "
          f"{report['load_average_at_end']}; total {report['total_seconds']} s")
    if args.memory_engine == "trivial":
        print("memory scan: model-free trivial engine, so it measures the streaming label pipeline, not the LLM")
    print(json.dumps(report))
    print(f"JSON: {path}", file=sys.stderr)
    return 0 if all(r.get("ok", True) for r in rows) else 1

"""The stage runner: resume of run folders written before it existed, commits on size or time, the
manifest through an interruption, and units finished in the order they were taken."""

import json
import shutil
import time
from pathlib import Path

import polars as pl
import pytest

from factory.data.corpus import iter_notes, iter_sentences
from factory.data.run_folder import Run
from factory.engines.base import Sampling
from factory.engines.model_ref import ModelRef
from factory.engines.trivial import TrivialEngine
from factory.stages.context import StageContext
from factory.stages.label import run_label
from factory.stages.synthesize import run_synthesize
from tests.conftest import FakeEngine, json_output

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


class NoEngine(TrivialEngine):
    def _generate_raw(self, requests, schema, sampling):
        raise AssertionError("a resumed run must not call the LLM")


def _context(run: Path, sampling: Sampling) -> StageContext:
    # the model reference and sampling the fixture was made with (tests/fixtures/pre_redesign_run/manifest.json)
    model = ModelRef(path=Path("/models/pre-redesign"), hash="ab" * 32, embedded=False)
    return StageContext(run=Run.open(run), model=model, engine_name="trivial", sampling=sampling, seed=0,
                        engine_factory=NoEngine)


def test_a_run_folder_written_before_the_runner_resumes_with_no_llm_call(tmp_path, taxonomy):
    """Built by the stage loops the runner replaced (label and synthesize, trivial engine); its row ids and
    request keys are the ones the runner computes, so nothing is asked again."""
    run = tmp_path / "old"
    shutil.copytree(FIXTURES / "pre_redesign_run", run)
    before = {p.name: p.read_bytes() for p in (run / "silver").iterdir()}
    sentences = list(iter_sentences(iter_notes(FIXTURES / "pre_redesign_notes")))
    ctx = _context(run, Sampling(temperature=0.0, top_p=1.0, max_tokens=128))
    labelled = run_label(sentences, taxonomy, ctx)
    assert (labelled.rows, labelled.requests, labelled.skipped) == (0, 0, len(sentences))
    ctx.sampling = Sampling(temperature=0.8, top_p=0.95, max_tokens=512)
    written = run_synthesize(taxonomy, ctx, per_category=3, per_request=3)
    assert (written.rows, written.requests) == (0, 0)
    assert {p.name: p.read_bytes() for p in (run / "silver").iterdir()} == before
    assert json.loads((run / "manifest.json").read_text())["stages"]["silver"]["state"] == "complete"


def _slow_labeller(request, sampling, call):
    time.sleep(0.02)
    return json_output({"evidence": "", "labels": ["none"]})


def test_rows_are_committed_on_time_as_well_as_on_size(taxonomy, make_context):
    """A window of 256 sentences with one commit per 1,000 rows would commit once at the end; with a
    commit interval, shards appear as the work goes (a kill loses at most one interval of work)."""
    from factory.data.corpus import Sentence

    ctx = make_context(FakeEngine(_slow_labeller))
    ctx.commit_rows, ctx.commit_seconds = 1000, 0.0
    sentences = [Sentence("n", i, 0, 10, f"Sentence number {i} is here.") for i in range(40)]

    class Small(FakeEngine):
        stream_window = 8

    ctx.engine_factory = lambda: Small(_slow_labeller)
    stats = run_label(sentences, taxonomy, ctx)
    shards = sorted((ctx.run.out / "silver").glob("part-*.parquet"))
    assert stats.rows == 40 and len(shards) >= 5  # one commit per poll of 8 at least, not one at the end


def test_an_interrupted_stage_keeps_finished_rows_and_says_so_in_the_manifest(taxonomy, make_context):
    from factory.data.corpus import Sentence

    calls = []

    def interrupt_on_the_second_window(request, sampling, call):
        calls.append(call)
        if call == 2:
            raise KeyboardInterrupt
        return json_output({"evidence": "", "labels": ["none"]})

    class Windowed(FakeEngine):
        stream_window = 4

    ctx = make_context(Windowed(interrupt_on_the_second_window))
    sentences = [Sentence("n", i, 0, 10, f"Sentence number {i} is here.") for i in range(12)]
    with pytest.raises(KeyboardInterrupt):
        run_label(sentences, taxonomy, ctx)
    silver = pl.read_parquet(ctx.run.out / "silver")
    assert silver.height == 4  # the first window's rows were committed, not lost
    stage = json.loads((ctx.run.out / "manifest.json").read_text())["stages"]["silver"]
    assert stage["state"] == "interrupted" and stage["stopped_by"] == "KeyboardInterrupt"
    ctx.close()
    ctx.engine_factory = lambda: Windowed(lambda *a: json_output({"evidence": "", "labels": ["none"]}))
    resumed = run_label(sentences, taxonomy, ctx)
    assert (resumed.skipped, resumed.rows) == (4, 8)


def test_units_finish_in_the_order_they_were_taken(taxonomy, make_context):
    """Rows land in input order even when later outputs come back first (a stream yields by completion)."""
    from factory.data.corpus import Sentence
    from factory.engines.base import BatchStream

    class Reversed(BatchStream):
        def poll(self):
            return list(reversed(super().poll()))

    class Engine(FakeEngine):
        def open_stream(self, schema, sampling):
            return Reversed(self, schema, sampling)

    ctx = make_context(Engine(lambda *a: json_output({"evidence": "", "labels": ["none"]})))
    sentences = [Sentence("n", i, 0, 10, f"Sentence number {i} is here.") for i in range(10)]
    run_label(sentences, taxonomy, ctx)
    assert pl.read_parquet(ctx.run.out / "silver")["sentence_index"].to_list() == list(range(10))


def test_a_new_llm_stage_declares_its_call_and_gets_identity_keys_and_lineage(taxonomy, make_context):
    """A stage written against `Task` alone: no hash, identity or lineage code, and the runner's rows and
    manifest carry all three, derived from its one `LLMCall`."""
    import polars as pl

    from factory.data.store import LINEAGE_SCHEMA
    from factory.engines.base import Request
    from factory.stages.call import LLMCall, answer
    from factory.stages.prompts import PromptPair
    from factory.stages.runner import LLMTask, Unit, run_stage
    from factory.stages.verify import check_schema

    class Echo(LLMTask):
        name, stage, title, key_column = "echo", "silver_echo", "echo", "echo_key"
        row_schema = {"echo_key": pl.String, "verdict": pl.String, **LINEAGE_SCHEMA}

        def __init__(self):
            self.call = LLMCall(PromptPair("check"), check_schema(), taxonomy)

        def units(self, ctx, done):
            identity = self.identity(ctx)
            for i, text in enumerate(["one sentence.", "another sentence."]):
                chat = self.call.chat({"categories": taxonomy.categories, "none_category": taxonomy.none},
                                      {"sentence": text, "labels": [], "purpose": "silver"})
                yield Unit(self.unit_key(identity, text=text), text, [Request(chat, seed=i)])

        def rows(self, unit, results, lineage):
            return [{"echo_key": unit.key, "verdict": answer(results[0])["verdict"],
                     **lineage(unit.requests[0], results[0])}], []

    ctx = make_context(FakeEngine(lambda *a: json_output({"reason": "fine", "verdict": "accept"})))
    task = Echo()
    stats = run_stage(task, ctx)
    rows = pl.read_parquet(ctx.run.out / "silver_echo").to_dicts()
    assert stats.rows == 2 and [r["seed"] for r in rows] == [0, 1]
    prompt_hash, schema_hash, taxonomy_hash = task.call.hashes
    assert {(r["prompt_hash"], r["schema_hash"], r["taxonomy_hash"]) for r in rows} == {task.call.hashes}
    assert prompt_hash == task.call.prompts.hash and taxonomy_hash == taxonomy.fingerprint and len(schema_hash) == 64
    assert rows[0]["model_hash"] == ctx.model.hash and rows[0]["engine"] == "fake" and rows[0]["run_id"] == ctx.run.run_id
    manifest = json.loads((ctx.run.out / "manifest.json").read_text())["stages"]["silver_echo"]
    assert manifest["identity"] == {"model_hash": ctx.model.hash, "prompt_hash": prompt_hash, "schema_hash": schema_hash,
                                    "taxonomy_hash": taxonomy_hash, "sampling": ctx.sampling.to_json(), "seed": 0}


def test_task_is_an_abstract_contract_and_a_task_without_a_call_names_its_own_identity(make_context):
    from factory.stages.runner import Task

    class Incomplete(Task):
        name, stage, title, key_column, row_schema = "x", "x", "x", "k", {}

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()

    class NoCall(Incomplete):
        def units(self, ctx, done):
            return iter(())

        def rows(self, unit, results, lineage):
            return [], []

    with pytest.raises(TypeError, match="asks no LLM: it must override identity"):
        NoCall().identity(make_context(FakeEngine(lambda *a: json_output({}))))

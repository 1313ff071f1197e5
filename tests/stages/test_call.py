"""What keys a stage's rows: the identity each LLM stage binds in the manifest and the keys of its units.

A run folder resumes only while these stay byte for byte what earlier versions wrote: the identity is
compared with the manifest's, and a unit whose key is already committed is never asked again. The fields
are spelled out here, and the hashes recomputed from their sources (the prompt files, the schema, the
taxonomy), so a change to how a stage assembles its identity or keys fails here, not in a user's run.
"""

import hashlib
import json

import polars as pl

from factory.core.paths import PROMPTS_DIR
from factory.data.store import content_key, schema_hash
from factory.data.taxonomy import label_schema, synthesis_schema
from factory.engines.base import Sampling
from factory.stages.consistency import ConsistencyTask
from factory.stages.label import LabelTask
from factory.stages.strategies import PerCategoryStrategy, answer_schema
from factory.stages.synthesize import SynthesizeTask
from factory.stages.verify import CheckTask, check_schema
from tests.conftest import FakeEngine, json_output
from tests.quality_helpers import make_run, release

MODEL_HASH = "f" * 64
GREEDY = '{"max_tokens": 64, "temperature": 0.0, "top_p": 1.0}'


def _prompt_hash(task: str) -> str:
    return hashlib.sha256((PROMPTS_DIR / f"{task}_system.j2").read_bytes() +
                          (PROMPTS_DIR / f"{task}_user.j2").read_bytes()).hexdigest()


def _identity(prompts: str, schema: dict, taxonomy, sampling: str = GREEDY, seed: int = 0) -> dict:
    return {"model_hash": MODEL_HASH, "prompt_hash": _prompt_hash(prompts), "schema_hash": schema_hash(schema),
            "taxonomy_hash": taxonomy.fingerprint, "sampling": sampling, "seed": seed}


def test_content_keys_are_byte_for_byte_those_of_earlier_runs():
    """The key function itself, on fixed fields (independent of the prompt files)."""
    identity = {"model_hash": "m", "prompt_hash": "p", "schema_hash": "s", "taxonomy_hash": "t", "sampling": GREEDY,
                "seed": 0}
    assert content_key(task="label", text="She keeps forgetting her keys.", **identity) == \
        "1614712419c8450777183d1bc0d69622"
    assert content_key(request_key="0123", item_index=2) == "445419f19e2c0df199ec7a52381ab9f5"


def _first_unit(task, ctx):
    return next(u for u in task.units(ctx, set()) if hasattr(u, "key"))


def test_label_identity_and_row_key(taxonomy, make_context):
    from factory.data.corpus import Sentence

    ctx = make_context(FakeEngine(lambda *a: json_output({})))
    sentence = Sentence("a", 0, 0, 30, "She keeps forgetting her keys.")
    task = LabelTask(taxonomy, [sentence])
    identity = _identity("label", label_schema(taxonomy), taxonomy)
    assert task.identity(ctx) == identity
    assert _first_unit(task, ctx).key == content_key(task="label", text=sentence.text, **identity)

    per_category = LabelTask(taxonomy, [sentence], PerCategoryStrategy(taxonomy))
    identity = {**_identity("percategory", answer_schema(), taxonomy), "strategy": "per-category"}
    assert per_category.identity(ctx) == identity
    assert _first_unit(per_category, ctx).key == content_key(task="label:per-category", text=sentence.text, **identity)


def test_check_identity_and_row_key(notes_dir, taxonomy, make_context, tmp_path):
    run = make_run(notes_dir, taxonomy, make_context, tmp_path / "run", bronze=False)
    ctx = make_context(FakeEngine(lambda *a: json_output({})), out=run)
    task = CheckTask.of_run(run, "silver", taxonomy)
    identity = _identity("check", check_schema(), taxonomy)
    assert task.identity(ctx) == identity
    judged = pl.read_parquet(run / "silver").to_dicts()[0]
    unit = _first_unit(task, ctx)
    assert unit.item["row_id"] == judged["row_id"]
    assert unit.key == content_key(task="check", row_id=judged["row_id"], text=judged["text"],
                                   labels=list(judged["labels"]), **identity)
    release(ctx)


def test_consistency_identity_and_row_key(notes_dir, taxonomy, make_context, tmp_path):
    run = make_run(notes_dir, taxonomy, make_context, tmp_path / "run", bronze=False)
    ctx = make_context(FakeEngine(lambda *a: json_output({})), out=run, sampling=Sampling(temperature=0.7, max_tokens=64))
    task = ConsistencyTask(run, taxonomy, samples=3)
    sampling = '{"max_tokens": 64, "temperature": 0.7, "top_p": 1.0}'
    identity = {**_identity("label", label_schema(taxonomy), taxonomy, sampling), "samples": 3}
    assert task.identity(ctx) == identity
    judged = pl.read_parquet(run / "silver").to_dicts()[0]
    assert _first_unit(task, ctx).key == content_key(task="consistency", text=judged["text"],
                                                     labels=list(judged["labels"]), **identity)
    release(ctx)


def test_synthesize_identity_request_key_and_row_id(taxonomy, make_context):
    ctx = make_context(FakeEngine(lambda *a: json_output({})), seed=3)
    task = SynthesizeTask(taxonomy, per_category=2, per_request=2)
    call_identity = _identity("synthesize", synthesis_schema(taxonomy, 2), taxonomy, seed=3)
    assert task.identity(ctx) == {**call_identity, "per_request": 2}
    unit = _first_unit(task, ctx)
    planned = unit.item
    assert (planned.category.id, planned.index) == (taxonomy.categories[0].id, 0)
    assert unit.key == content_key(task="synthesize", category=planned.category.id, index=0,
                                   attributes=planned.attributes, example=planned.example, n=2,
                                   **call_identity)  # the call's identity: per_request is in the key as n
    sentence = "Her memory has been getting worse over the past year."
    [row], _ = task.rows(unit, [_sentences_result(sentence)], lambda request, result, **kw: {})
    assert row["row_id"] == content_key(request_key=unit.key, item_index=0) and row["request_key"] == unit.key


def _sentences_result(sentence: str):
    from factory.engines.base import Result

    return Result({"sentences": [sentence]}, json.dumps({"sentences": [sentence]}), "stop", 10, 10, 1)

"""Small run folders for the quality-control tests: silver and bronze made by the fake engine."""

from __future__ import annotations

from factory.data.corpus import iter_notes, iter_sentences
from factory.stages.label import run_label
from factory.stages.synthesize import run_synthesize
from tests.conftest import FakeEngine, json_output


def keyword_labeller(request, sampling, call):
    sentence = request.chat[-1]["content"]
    if "forgetting" in sentence:
        return json_output({"evidence": "keeps forgetting", "labels": ["impaired_cognition"]})
    if "donepezil" in sentence:
        return json_output({"evidence": "donepezil", "labels": ["treatment_and_care"]})
    if "pills" in sentence:
        return json_output({"evidence": "manages her pills", "labels": ["requiring_assistance"]})
    return json_output({"evidence": "", "labels": ["none"]})


def sentence_writer(request, sampling, call):
    sentences = [f"Generated sentence number {i} for request seed {request.seed}." for i in range(2)]
    return json_output({"sentences": sentences})


def release(ctx) -> None:
    """Drop a context's run-folder lock, so the next context in this process can open the folder."""
    ctx.run._lock.close()


def make_run(notes_dir, taxonomy, make_context, out, bronze: bool = True):
    """A run folder with silver from the notes and (optionally) 2 bronze sentences per category."""
    ctx = make_context(FakeEngine(keyword_labeller), out=out)
    run_label(list(iter_sentences(iter_notes(notes_dir))), taxonomy, ctx)
    ctx.run.record_stage("silver", {"rows": 0})
    release(ctx)
    if bronze:
        ctx = make_context(FakeEngine(sentence_writer), out=out)
        run_synthesize(taxonomy, ctx, per_category=2, per_request=2)
        release(ctx)
    return out

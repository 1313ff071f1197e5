"""Gold rows and engine outputs the labelling-strategy tests share."""

import json
import math

from factory.data.rows import Rows
from factory.engines.base import RawOutput
from tests.conftest import toy_records


def gold_rows(records=None) -> Rows:
    records = records or toy_records(per_category=4, n_none=6)
    return Rows([r["id"] for r in records], ["gold"] * len(records), [r["text"] for r in records],
                [r["labels"] for r in records])


def yes_no_output(word: str, p_yes: float | None) -> RawOutput:
    """A constrained yes/no answer, with vLLM-style top-k log-probabilities at the answer token."""
    logprobs = None
    if p_yes is not None:
        logprobs = (('{"', -0.01, {'{"': -0.01}), ("answer", -0.01, {"answer": -0.01}), ('":"', -0.01, {'":"': -0.01}),
                    (word, math.log(p_yes if word == "yes" else 1 - p_yes),
                     {"yes": math.log(p_yes), "no": math.log(1 - p_yes) if p_yes < 1 else -30.0, "Maybe": math.log(0.001)}),
                    ('"}', -0.01, {'"}': -0.01}))
    text = f'{{"answer":"{word}"}}'
    return RawOutput(text, "stop", 80, 5, logprobs)


def checklist_output(taxonomy, p_true: dict[str, float], with_logprobs: bool = True) -> RawOutput:
    """A constrained checklist answer, with vLLM-style top-k log-probabilities at each boolean token."""
    answer = {cid: p_true.get(cid, 0.0) > 0.5 for cid in taxonomy.category_ids}
    logprobs = []
    for cid in taxonomy.category_ids:
        p = min(max(p_true.get(cid, 0.02), 1e-6), 1 - 1e-6)
        logprobs += [(f'"{cid}":', -0.01, {f'"{cid}":': -0.01}),
                     ("true" if answer[cid] else "false", math.log(p if answer[cid] else 1 - p),
                      {"true": math.log(p), "false": math.log(1 - p), "null": math.log(1e-4)}),
                     (",", -0.01, {",": -0.01})]
    return RawOutput(json.dumps(answer), "stop", 300, 60, tuple(logprobs) if with_logprobs else None)

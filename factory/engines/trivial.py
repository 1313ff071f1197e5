"""A model-free engine: a valid label output derived from the sentence's hash, instantly.

For bin/bench's memory scan (where the pipeline, not the LLM, is measured) and for cheap tests of the
scale-out paths. It is deterministic per request, so two paths that send the same requests must write
the same rows. It only answers the label schema; never use it as a labeller.
"""

from __future__ import annotations

import hashlib
import json

from factory.engines.base import Engine, EngineConfig, RawOutput, Request, Sampling


class TrivialEngine(Engine):
    name = "trivial"

    def __init__(self, config: EngineConfig | None = None):
        self.config = config

    def _generate_raw(self, requests: list[Request], schema: dict, sampling: Sampling) -> list[RawOutput]:
        categories = schema["properties"]["labels"]["anyOf"][0]["items"]["enum"]
        raws = []
        for request in requests:
            sentence = request.chat[-1]["content"]
            digest = int(hashlib.sha256(f"{request.seed}:{sentence}".encode()).hexdigest()[:8], 16)
            labels = ["none"] if digest % 3 == 0 else [categories[digest % len(categories)]]
            text = json.dumps({"evidence": sentence.split()[-1][:40] if sentence.split() else "", "labels": labels},
                              separators=(",", ":"))
            raws.append(RawOutput(text=text, finish_reason="stop", prompt_tokens=len(sentence) // 4,
                                  completion_tokens=len(text) // 4))
        return raws

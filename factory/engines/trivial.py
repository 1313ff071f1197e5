"""A model-free engine: a valid label or synthesis output derived from the request's hash, instantly.

For bin/bench's memory scan (where the pipeline, not the LLM, is measured) and for cheap tests of the
scale-out paths. It is deterministic per request, so two paths that send the same requests must write
the same rows. It answers the label and synthesis schemas only; never use it as a labeller or writer.
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
        raws = []
        for request in requests:
            prompt = request.chat[-1]["content"]
            digest = int(hashlib.sha256(f"{request.seed}:{prompt}".encode()).hexdigest()[:8], 16)
            answer = self._sentences(schema, digest) if "sentences" in schema["properties"] else self._labels(schema, prompt, digest)
            text = json.dumps(answer, separators=(",", ":"))
            raws.append(RawOutput(text=text, finish_reason="stop", prompt_tokens=len(prompt) // 4,
                                  completion_tokens=len(text) // 4))
        return raws

    @staticmethod
    def _labels(schema: dict, sentence: str, digest: int) -> dict:
        categories = schema["properties"]["labels"]["anyOf"][0]["items"]["enum"]
        labels = ["none"] if digest % 3 == 0 else [categories[digest % len(categories)]]
        return {"evidence": sentence.split()[-1][:40] if sentence.split() else "", "labels": labels}

    @staticmethod
    def _sentences(schema: dict, digest: int) -> dict:
        count = schema["properties"]["sentences"]["maxItems"]
        return {"sentences": [f"Generated sentence {digest:08x} number {i}." for i in range(count)]}

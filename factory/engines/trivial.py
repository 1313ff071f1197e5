"""A model-free engine: a valid label or synthesis output derived from the request's hash, instantly.

For bin/bench's memory scan (where the pipeline, not the LLM, is measured) and for cheap tests of the
scale-out paths. It is deterministic per request, so two paths that send the same requests must write
the same rows. It answers the label and synthesis schemas with plausible shapes and any other schema of the factory
(verdicts, yes/no answers) with a valid instance chosen by the hash; asked for log-probabilities, it
returns made-up but deterministic ones. Never use it as a labeller or writer.
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
            properties = schema["properties"]
            if "sentences" in properties:
                answer = self._sentences(schema, digest)
            elif "labels" in properties:
                answer = self._labels(schema, prompt, digest)
            else:
                answer = {name: self._value(spec, digest + i) for i, name in enumerate(schema.get("required", properties))
                          if (spec := properties[name])}
            text = json.dumps(answer, separators=(",", ":"))
            logprobs = self._logprobs(text, digest, sampling.logprobs) if sampling.logprobs else None
            raws.append(RawOutput(text=text, finish_reason="stop", prompt_tokens=len(prompt) // 4,
                                  completion_tokens=len(text) // 4, logprobs=logprobs))
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

    @staticmethod
    def _value(spec: dict, digest: int):
        if "enum" in spec:
            return spec["enum"][digest % len(spec["enum"])]
        text = f"reason {digest % 1000}"
        return text[: spec.get("maxLength", len(text))].ljust(spec.get("minLength", 0), "x")

    @staticmethod
    def _logprobs(text: str, digest: int, top: int) -> tuple:
        """One entry per 4 characters of output; the first token's alternatives weigh yes against no."""
        tokens = [text[i:i + 4] for i in range(0, len(text), 4)]
        p_first = -((digest % 7) + 1) / 10
        out = []
        for index, token in enumerate(tokens):
            chosen = p_first if index == 0 else -0.05
            alternatives = {token: chosen, "yes" if "no" in token else "no": chosen - 1.0}
            out.append((token, chosen, dict(list(alternatives.items())[:top])))
        return tuple(out)

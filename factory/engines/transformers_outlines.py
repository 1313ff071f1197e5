"""Reference / fallback backend: transformers + Outlines (outlines_core logits processor), batched.

One process, no compile step, about 1 s to load: the backend for machines where vLLM cannot run.
Outlines returns text only, so token counts come from the tokenizer and a `length` finish is inferred
from the token budget (an output that used the whole budget is treated as truncated).
"""

from __future__ import annotations

import json
import re

from factory.engines.base import Engine, EngineConfig, RawOutput, Request, Sampling
from factory.core.errors import FactoryError


def pick_device(torch, requested: str) -> str:
    """The torch device for the model: the first GPU when CUDA is visible and nothing else was asked for.
    Outlines moves each batch's inputs to the model's device."""
    cuda = torch.cuda.is_available()
    if requested == "auto":
        return "cuda:0" if cuda else "cpu"
    if re.fullmatch(r"cuda(:\d+)?", requested):
        if not cuda:
            raise FactoryError(f"device {requested} asked for, but torch sees no CUDA GPU (torch {torch.__version__})")
        index = int(requested.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise FactoryError(f"device {requested} asked for, but only {torch.cuda.device_count()} CUDA GPU(s) are visible")
        return f"cuda:{index}"
    if requested != "cpu":
        raise FactoryError(f"unknown device {requested!r}: use auto, cpu, cuda or cuda:N")
    return "cpu"


class TransformersEngine(Engine):
    name = "transformers"

    def __init__(self, config: EngineConfig):
        try:
            import outlines
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise FactoryError(f"transformers/Outlines are not installed ({exc}); run `make setup`") from None
        self.config = config
        self._torch = torch
        self._outlines = outlines
        dtype = getattr(torch, config.dtype) if config.dtype != "auto" else "auto"
        self._tokenizer = AutoTokenizer.from_pretrained(config.model_path)
        self.device = pick_device(torch, config.device)
        hf_model = AutoModelForCausalLM.from_pretrained(config.model_path, dtype=dtype).to(self.device).eval()
        self._model = outlines.from_transformers(hf_model, self._tokenizer)
        self._generators: dict[str, object] = {}

    def _generator(self, schema: dict):
        key = json.dumps(schema, sort_keys=True)
        if key not in self._generators:
            from outlines.types import JsonSchema

            # No free whitespace between tokens, as on the vLLM backend.
            self._generators[key] = self._outlines.Generator(self._model, JsonSchema(key, whitespace_pattern=""))
        return self._generators[key]

    def _count_prompt_tokens(self, chat: list[dict[str, str]]) -> int:
        ids = self._tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True)
        # a BatchEncoding is a Mapping but not a dict: len() of it would count its keys
        return len(ids["input_ids"] if hasattr(ids, "keys") else ids)

    def _generate_raw(self, requests: list[Request], schema: dict, sampling: Sampling) -> list[RawOutput]:
        from outlines.inputs import Chat

        generator = self._generator(schema)
        kwargs: dict = {"max_new_tokens": sampling.max_tokens}
        if sampling.temperature > 0:
            kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p)
        else:
            kwargs.update(do_sample=False)
        raws: list[RawOutput] = []
        size = max(1, self.config.batch_size)
        for start in range(0, len(requests), size):
            batch = requests[start : start + size]
            self._torch.manual_seed(batch[0].seed)  # transformers samples per batch, not per request
            texts = generator.batch([Chat(r.chat) for r in batch], **kwargs)
            for request, text in zip(batch, texts, strict=True):
                text = text[0] if isinstance(text, list) else text
                completion_tokens = len(self._tokenizer(text, add_special_tokens=False)["input_ids"])
                raws.append(
                    RawOutput(
                        text=text,
                        finish_reason="length" if completion_tokens >= sampling.max_tokens else "stop",
                        prompt_tokens=self._count_prompt_tokens(request.chat),
                        completion_tokens=completion_tokens,
                    )
                )
        return raws

    def close(self) -> None:
        self._generators.clear()
        self._model = None

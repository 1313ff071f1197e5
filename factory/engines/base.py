"""The one engine interface: a batch of chats + a JSON schema + sampling settings -> parsed results.

Backends implement only `_generate_raw` (text, finish reason, token counts). Parsing, validation and
the retry policy live here, so every backend fails the same way: an output that stops on `length` or
does not validate is retried once with a larger token budget, then recorded as failed with its reason
— never patched into valid JSON.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import jsonschema

Chat = list[dict[str, str]]


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 256
    logprobs: int | None = None  # top-k token log-probabilities to return, where the backend can

    def to_json(self) -> str:
        # Unset logprobs stays out of the identity, so runs made before the field existed still resume.
        fields = {k: v for k, v in asdict(self).items() if not (k == "logprobs" and v is None)}
        return json.dumps(fields, sort_keys=True)


@dataclass(frozen=True)
class Request:
    chat: Chat
    seed: int


@dataclass(frozen=True)
class RawOutput:
    text: str
    finish_reason: str  # "stop" or "length"
    prompt_tokens: int
    completion_tokens: int
    # Optional, per generated token: (token text, its log-probability, {top-k token text: log-probability}).
    # Backends that cannot report it leave None.
    logprobs: tuple[tuple[str, float, dict[str, float]], ...] | None = None


@dataclass
class Result:
    parsed: dict[str, Any] | None
    raw: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    attempts: int
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    logprobs: tuple[tuple[str, float, dict[str, float]], ...] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def logprob_confidence(results: list[Result]) -> float | None:
    """The LLM's own confidence in its answers: the mean over valid results of exp(mean token log-probability),
    a number in (0, 1]; None when the engine gave no log-probabilities (the label stage and self-consistency
    both record it, so a run has a confidence signal whether or not consistency ran)."""
    per_result = [math.exp(sum(lp for _, lp, _ in result.logprobs) / len(result.logprobs))
                  for result in results if result.ok and result.logprobs]
    return sum(per_result) / len(per_result) if per_result else None


def retry_budgets(sampling: Sampling, factor: int) -> list[Sampling]:
    """The one retry policy: the first attempt, then one more with `factor` times the token budget."""
    return [sampling, replace(sampling, max_tokens=sampling.max_tokens * factor)]


def to_result(raw: RawOutput, attempt: int, validator) -> Result:
    parsed, error = check_output(raw, validator)
    return Result(parsed=parsed, raw=raw.text, finish_reason=raw.finish_reason, prompt_tokens=raw.prompt_tokens,
                  completion_tokens=raw.completion_tokens, attempts=attempt, error=error, logprobs=raw.logprobs)


def check_output(raw: RawOutput, validator: jsonschema.protocols.Validator) -> tuple[dict | None, str | None]:
    """Return (parsed, None) for a complete, schema-valid output, else (None, reason)."""
    if raw.finish_reason == "length":
        return None, f"output truncated at {raw.completion_tokens} tokens (finish_reason=length)"
    try:
        parsed = json.loads(raw.text)
    except json.JSONDecodeError as exc:
        return None, f"output is not JSON: {exc.msg} at char {exc.pos}"
    errors = sorted(validator.iter_errors(parsed), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].path) or "(root)"
        return None, f"schema violation at {where}: {errors[0].message[:200]}"
    return parsed, None


class Engine(ABC):
    """A loaded model that answers chats under a JSON-schema constraint."""

    name: str = "engine"
    retry_token_factor: int = 2

    @abstractmethod
    def _generate_raw(self, requests: list[Request], schema: dict, sampling: Sampling) -> list[RawOutput]:
        """Generate one constrained output per request, in order."""

    def generate(self, requests: list[Request], schema: dict, sampling: Sampling) -> list[Result]:
        validator = jsonschema.Draft202012Validator(schema)
        results: list[Result | None] = [None] * len(requests)
        pending = list(range(len(requests)))
        for attempt, budget in enumerate(retry_budgets(sampling, self.retry_token_factor), start=1):
            if not pending:
                break
            raws = self._generate_raw([requests[i] for i in pending], schema, budget)
            still_failing = []
            for index, raw in zip(pending, raws, strict=True):
                results[index] = to_result(raw, attempt, validator)
                if results[index].error is not None:
                    still_failing.append(index)
            pending = still_failing
        return [r for r in results if r is not None]

    def open_stream(self, schema: dict, sampling: Sampling) -> EngineStream:
        """A stream the stage runner keeps full: requests go in as they are ready, results come out as they
        finish. This default collects what was submitted and generates it as one batch at each poll; a
        backend that can add requests to a running batch (vLLM) overrides it."""
        return BatchStream(self, schema, sampling)

    # Requests a runner keeps submitted ahead of the results it has: enough to fill a batch several times over.
    stream_window = 256

    def generate_unconstrained(self, requests: list[Request], sampling: Sampling) -> list[RawOutput]:
        """Free generation, no schema and no validation: only for measuring what the constraint costs."""
        if not self.supports_unconstrained:
            raise NotImplementedError(f"{self.name} generates under a schema only")
        return self._generate_raw(requests, None, sampling)

    supports_unconstrained = False

    def workers_used(self) -> list[str]:
        """Scale-out engines: the replicas that did work (recorded in the manifest); [] for one engine."""
        return []

    def close(self) -> None:
        """Release the model (processes, memory). Safe to call twice."""

    def stop_now(self) -> None:
        """Release the model at once on an interrupt (Ctrl-C, SIGTERM): work in flight is dropped, not finished,
        and processes are killed rather than waited for; a service manager kills a command that takes more
        than a few seconds to stop. Committed rows are on disk already. Safe after close()."""
        self.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class EngineConfig:
    """What a backend needs to load a model; non-identity knobs (batch size, memory) live here too."""

    model_path: str
    seed: int = 0
    max_model_len: int = 2048
    structured_backend: str = "xgrammar"  # vLLM: xgrammar | outlines | guidance
    enforce_eager: bool = False
    batch_size: int = 64
    dtype: str = "bfloat16"
    tensor_parallel_size: int = 1
    device: str = "auto"  # transformers backend: auto (CUDA when visible, else CPU) | cpu | cuda | cuda:N
    # vLLM reuses the computed prompt prefix across requests. A prefix computed alone and one reused can
    # differ in the last bf16 bit, enough to tip a near-tie: off, every output is independent of what ran
    # before it on the same engine (the scale-out equality tests turn it off).
    prefix_caching: bool = True


class EngineStream:
    """Requests in, validated results out, in completion order. `submit` never blocks; `poll` advances
    generation and returns the (tag, Result) pairs that finished (after their retry, if one was needed)."""

    def submit(self, tag: object, request: Request) -> None:
        raise NotImplementedError

    def poll(self) -> list[tuple[object, Result]]:
        raise NotImplementedError

    @property
    def in_flight(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        """Drop what is still in flight (an interrupted stage)."""


class BatchStream(EngineStream):
    """The stream of a batch-only engine: each poll generates everything submitted since the last one."""

    def __init__(self, engine: Engine, schema: dict, sampling: Sampling):
        self.engine, self.schema, self.sampling = engine, schema, sampling
        self._queue: list[tuple[object, Request]] = []

    def submit(self, tag: object, request: Request) -> None:
        self._queue.append((tag, request))

    def poll(self) -> list[tuple[object, Result]]:
        queue, self._queue = self._queue, []
        if not queue:
            return []
        results = self.engine.generate([request for _, request in queue], self.schema, self.sampling)
        return [(tag, result) for (tag, _), result in zip(queue, results, strict=True)]

    @property
    def in_flight(self) -> int:
        return len(self._queue)

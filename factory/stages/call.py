"""One kind of LLM call a stage makes: its prompt pair, the JSON schema its outputs are constrained to, and
the taxonomy both are rendered from. The stage runner derives from it what keys a stage's rows (the
identity bound in the manifest) and the lineage columns of every row, so no stage hashes its prompt,
schema or taxonomy itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from factory.data.store import schema_hash
from factory.data.taxonomy import Taxonomy
from factory.engines.base import Result
from factory.stages.context import StageContext
from factory.stages.prompts import PromptPair


@dataclass(frozen=True, eq=False)
class LLMCall:
    """`prompts` and `schema` are None for a labelling strategy that asks no LLM (the embedding prior): its
    rows still record the taxonomy they were labelled against, with empty prompt and schema hashes."""

    prompts: PromptPair | None
    schema: dict | None
    taxonomy: Taxonomy

    @cached_property
    def hashes(self) -> tuple[str, str, str]:
        """Prompt, schema and taxonomy hash: part of the identity and recorded on every row."""
        return (self.prompts.hash if self.prompts is not None else "",
                schema_hash(self.schema) if self.schema is not None else "",
                self.taxonomy.fingerprint)

    @property
    def schema_hash(self) -> str:
        return self.hashes[1]

    @property
    def constraint(self) -> dict:
        """The schema an engine constrains this call's outputs to (a call that makes requests has one)."""
        if self.schema is None:
            raise TypeError("a call with no schema makes no requests")
        return self.schema

    def identity(self, ctx: StageContext) -> dict:
        return ctx.identity(*self.hashes)

    def lineage(self, ctx: StageContext, seed: int, result: Result | None) -> dict:
        return ctx.lineage(*self.hashes, seed, result)

    def chat(self, system_context: dict, user_context: dict) -> list[dict[str, str]]:
        if self.prompts is None:
            raise TypeError("a call with no prompt pair renders no chat")
        return self.prompts.render(system_context, user_context)


def answer(result: Result) -> dict[str, Any]:
    """The parsed output of a valid result: the engine has checked it against the call's schema."""
    if result.parsed is None:
        raise ValueError(f"a failed result has no answer: {result.error}")
    return result.parsed

"""Engines: narrow adapters behind one interface (factory.engines.base.Engine)."""

from __future__ import annotations

from factory.engines.base import Engine, EngineConfig
from factory.core.errors import FactoryError

ENGINES = ("vllm", "transformers")


def load_engine(name: str, config: EngineConfig) -> Engine:
    """Import a backend only when asked for: vLLM alone takes ~9 s to import. `module:callable` names a
    test or benchmark engine (e.g. factory.engines.trivial:TrivialEngine), called with the config."""
    if ":" in name:
        import importlib

        module, _, attr = name.partition(":")
        return getattr(importlib.import_module(module), attr)(config)
    if name == "vllm":
        from factory.engines.vllm_offline import VLLMEngine

        return VLLMEngine(config)
    if name == "transformers":
        from factory.engines.transformers_outlines import TransformersEngine

        return TransformersEngine(config)
    raise FactoryError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")

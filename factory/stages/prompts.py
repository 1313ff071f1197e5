"""Render the prompt templates in prompts/ with the taxonomy into chats."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import jinja2

from factory.core.errors import FactoryError
from factory.core.paths import PROMPTS_DIR


@dataclass(frozen=True)
class PromptPair:
    """A system and a user template for one task; its hash is part of every row's lineage."""

    task: str
    directory: Path = PROMPTS_DIR

    def _path(self, role: str) -> Path:
        return self.directory / f"{self.task}_{role}.j2"

    @cached_property
    def _templates(self) -> dict[str, jinja2.Template]:
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)
        templates = {}
        for role in ("system", "user"):
            path = self._path(role)
            try:
                templates[role] = env.from_string(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise FactoryError(f"prompt template not found: {path}") from None
            except jinja2.TemplateSyntaxError as exc:
                raise FactoryError(f"prompt template {path} line {exc.lineno}: {exc.message}") from None
        return templates

    @cached_property
    def hash(self) -> str:
        digest = hashlib.sha256()
        for role in ("system", "user"):
            digest.update(self._path(role).read_bytes())
        return digest.hexdigest()

    def render(self, system_context: dict, user_context: dict) -> list[dict[str, str]]:
        try:
            return [
                {"role": "system", "content": self._templates["system"].render(**system_context).strip()},
                {"role": "user", "content": self._templates["user"].render(**user_context).strip()},
            ]
        except jinja2.UndefinedError as exc:
            raise FactoryError(f"prompt template for {self.task!r}: {exc.message}") from None

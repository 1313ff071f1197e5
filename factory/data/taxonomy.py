"""Load and validate the taxonomy file; derive the JSON schemas every LLM task is constrained to.

The taxonomy is the single source of truth: prompts, schemas, classifiers and reports are generated from
it, so a hospital swaps in its own guideline with `--taxonomy PATH`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from factory.core.errors import FactoryError
from factory.core.paths import DEFAULT_TAXONOMY

NONE_ID = "none"
_ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

# Bounds that keep a small model from looping until max_tokens (measured: unbounded arrays loop).
MAX_LABELS = 4
MAX_EVIDENCE_CHARS = 160
MIN_SENTENCE_CHARS = 10
MAX_SENTENCE_CHARS = 300


@dataclass(frozen=True)
class Category:
    id: str
    name: str
    definition: str
    examples: tuple[str, ...] = ()
    choice_label: str = ""  # what the model writes in constrained label choices (default: the id)

    @property
    def choice(self) -> str:
        return self.choice_label or self.id


@dataclass(frozen=True)
class Taxonomy:
    name: str
    version: str
    categories: tuple[Category, ...]
    none: Category
    generation_attributes: dict[str, list[str]] = field(default_factory=dict)
    none_attributes: dict[str, list[str]] = field(default_factory=dict)
    none_weight: float = 1.0  # synthesis writes per_category x none_weight 'none' sentences
    path: Path | None = None
    fingerprint: str = ""  # sha256 of the canonical file content: definitions change prompts, so outputs

    @property
    def category_ids(self) -> list[str]:
        """The positive categories, in file order (excludes 'none')."""
        return [c.id for c in self.categories]

    @property
    def all_ids(self) -> list[str]:
        return self.category_ids + [self.none.id]

    def get(self, category_id: str) -> Category:
        for category in (*self.categories, self.none):
            if category.id == category_id:
                return category
        raise FactoryError(f"unknown category id {category_id!r}; known: {', '.join(self.all_ids)}")

    @property
    def choices(self) -> list[str]:
        """The constrained-choice strings of the positive categories, in file order."""
        return [c.choice for c in self.categories]

    def ids_from_choices(self, choices: list[str]) -> list[str]:
        """Category ids for the choice strings a model wrote (an unknown string passes through unchanged,
        so normalise_labels names it)."""
        by_choice = {c.choice: c.id for c in (*self.categories, self.none)}
        return [by_choice.get(choice, choice) for choice in choices]

    def labels_from_choices(self, choices: list[str]) -> list[str]:
        """The normalised label set (ids) of a label list a model wrote as choice strings."""
        return self.normalise_labels(self.ids_from_choices(choices))

    def attributes_for(self, category_id: str) -> dict[str, list[str]]:
        return self.none_attributes if category_id == self.none.id else self.generation_attributes

    def normalise_labels(self, labels: list[str]) -> list[str]:
        """Deduplicate, order as in the taxonomy, and apply the 'none is exclusive' rule."""
        unknown = sorted(set(labels) - set(self.all_ids))
        if unknown:
            raise FactoryError(f"labels not in the taxonomy: {', '.join(unknown)}")
        positives = [cid for cid in self.category_ids if cid in labels]
        return positives or [self.none.id]


def _category(raw: object, where: str) -> Category:
    if not isinstance(raw, dict):
        raise FactoryError(f"{where}: expected an object with id, name, definition")
    cid = raw.get("id")
    if not isinstance(cid, str) or not _ID_PATTERN.match(cid):
        raise FactoryError(f"{where}: id {cid!r} must be lower_snake_case (a-z, 0-9, _)")
    definition = raw.get("definition")
    if not isinstance(definition, str) or not definition.strip():
        raise FactoryError(f"{where} ({cid}): definition must be a non-empty string")
    name = _text_field(raw, "name", where, cid)
    examples = raw.get("examples", [])
    if not isinstance(examples, list) or not all(isinstance(e, str) and e.strip() for e in examples):
        raise FactoryError(f"{where} ({cid}): examples must be a list of non-empty strings")
    choice = raw.get("choice", cid)
    if not isinstance(choice, str) or not _ID_PATTERN.match(choice):
        raise FactoryError(f"{where} ({cid}): choice {choice!r} must be lower_snake_case (a-z, 0-9, _)")
    return Category(cid, str(name), definition.strip(), tuple(examples), "" if choice == cid else choice)


def _text_field(raw: dict, key: str, where: str, default: str) -> str:
    """A name-like field: text (or a number, as a version often is); an object or list there is a mistake
    that would otherwise be printed into every prompt and report."""
    value = raw.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, str) or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return str(value)
    kind = {dict: "an object", list: "a list", bool: "true/false"}.get(type(value), type(value).__name__)
    raise FactoryError(f"{where}: {key} must be a string, got {kind}")


def _attributes(raw: object, where: str) -> dict[str, list[str]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(
        isinstance(v, list) and v and all(isinstance(x, str) for x in v) for v in raw.values()
    ):
        raise FactoryError(f"{where} must map attribute names to non-empty lists of strings")
    return {str(k): list(v) for k, v in raw.items()}


def parse_taxonomy(data: object, path: Path | None = None) -> Taxonomy:
    where = str(path) if path else "taxonomy"
    if not isinstance(data, dict):
        raise FactoryError(f"{where}: top level must be a JSON object")
    raw_categories = data.get("categories")
    if not isinstance(raw_categories, list) or not raw_categories:
        raise FactoryError(f"{where}: 'categories' must be a non-empty list")
    categories = tuple(_category(c, f"{where}: categories[{i}]") for i, c in enumerate(raw_categories))
    none = _category(data.get("none") or {}, f"{where}: none")
    ids = [c.id for c in categories] + [none.id]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise FactoryError(f"{where}: duplicate category ids: {', '.join(duplicates)}")
    choices = [c.choice for c in (*categories, none)]
    clashes = sorted({c for c in choices if choices.count(c) > 1})
    if clashes:
        raise FactoryError(f"{where}: choice strings must be unique: {', '.join(clashes)}")
    none_weight = data.get("none_weight", 1)
    if isinstance(none_weight, bool) or not isinstance(none_weight, (int, float)) or not 0 < none_weight <= 100:
        raise FactoryError(f"{where}: none_weight must be a number above 0 (at most 100), got {none_weight!r}")
    return Taxonomy(
        name=_text_field(data, "name", where, "taxonomy"),
        version=_text_field(data, "version", where, "0"),
        categories=categories,
        none=none,
        generation_attributes=_attributes(data.get("generation_attributes"), f"{where}: generation_attributes"),
        none_attributes=_attributes(data.get("none_attributes"), f"{where}: none_attributes"),
        none_weight=float(none_weight),
        path=path,
        fingerprint=hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest(),
    )


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    path = Path(path) if path else DEFAULT_TAXONOMY
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM (Windows editors) is not an error
    except FileNotFoundError:
        raise FactoryError(f"taxonomy file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FactoryError(f"cannot read taxonomy file {path}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FactoryError(f"taxonomy file {path} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    return parse_taxonomy(data, path)


def label_schema(taxonomy: Taxonomy) -> dict:
    """Data-to-label output: a quoted evidence span, then the label set ('none' alone, or categories)."""
    return {
        "title": "SentenceLabels",
        "type": "object",
        "properties": {
            "evidence": {"type": "string", "maxLength": MAX_EVIDENCE_CHARS},
            "labels": {
                "anyOf": [
                    {
                        "type": "array",
                        "items": {"type": "string", "enum": taxonomy.choices},
                        "minItems": 1,
                        "maxItems": MAX_LABELS,
                    },
                    {
                        "type": "array",
                        "items": {"type": "string", "enum": [taxonomy.none.choice]},
                        "minItems": 1,
                        "maxItems": 1,
                    },
                ]
            },
        },
        "required": ["evidence", "labels"],
        "additionalProperties": False,
    }


def synthesis_schema(taxonomy: Taxonomy, sentences_per_request: int) -> dict:
    """Label-to-data output: a bounded list of bounded sentences for one category."""
    return {
        "title": "GeneratedSentences",
        "type": "object",
        "properties": {
            "sentences": {
                "type": "array",
                "items": {"type": "string", "minLength": MIN_SENTENCE_CHARS, "maxLength": MAX_SENTENCE_CHARS},
                "minItems": 1,
                "maxItems": sentences_per_request,
            }
        },
        "required": ["sentences"],
        "additionalProperties": False,
    }


def shared_leading_tokens(choices: list[str], tokenize) -> dict[str, list[str]]:
    """Choice strings grouped by a first token they share under `tokenize` (a model's tokenizer). Under a
    constraint the model commits to that token first, and which choice it can then finish is decided by
    the constraint, not by the model: each choice should start with a token of its own."""
    groups: dict[str, list[str]] = {}
    for choice in choices:
        tokens = tokenize(choice)
        if tokens:
            groups.setdefault(tokens[0], []).append(choice)
    return {token: members for token, members in groups.items() if len(members) > 1}

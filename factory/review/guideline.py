"""The guideline beside the decision panel: the rules the labeller was given, as its prompt states them.

The rules are read from the rendered label system prompt (prompts/label_system.j2, through the `Labeler`
that every labelling strategy and self-consistency use), so the page shows what the LLM was told, and a
changed prompt changes the page. The category definitions come from the taxonomy (the page has them from
`/api/config`). REVIEW_RULES adds what a reviewer must hold the labels to that the prompt only implies.
"""

from __future__ import annotations

from factory.data.taxonomy import Taxonomy

REVIEW_RULES = ("A symptom that is denied, absent or ruled out is none.",)


def prompt_rules(system_prompt: str) -> list[str]:
    """The `- ` lines of the prompt's "Rules:" block (up to the next blank line)."""
    rules, inside = [], False
    for line in system_prompt.splitlines():
        if line.strip() == "Rules:":
            inside = True
        elif inside and line.startswith("- "):
            rules.append(line[2:].strip())
        elif inside:
            break
    return rules


_CACHE: dict[str, tuple[str, ...]] = {}


def _rules_of(taxonomy: Taxonomy) -> tuple[str, ...]:
    from factory.stages.strategies import Labeler

    if taxonomy.fingerprint not in _CACHE:
        _CACHE[taxonomy.fingerprint] = tuple(prompt_rules(Labeler(taxonomy).chat("")[0]["content"]))
    return _CACHE[taxonomy.fingerprint]


def guideline_rules(taxonomy: Taxonomy) -> list[dict]:
    """[{text, source}] with source "prompt" (what the labeller was told) or "review" (added for reviewers)."""
    rules = [{"text": text, "source": "prompt"} for text in _rules_of(taxonomy)]
    return rules + [{"text": text, "source": "review"} for text in REVIEW_RULES]

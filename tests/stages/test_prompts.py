"""Prompt pairs: a system and a user template rendered into a chat, a hash over both files (part of every
row's lineage), and one clear error for a missing file, a syntax error or a missing variable."""

from __future__ import annotations

import hashlib

import pytest

from factory.core.errors import FactoryError
from factory.core.paths import PROMPTS_DIR
from factory.stages.prompts import PromptPair


def _pair(folder, system: str, user: str, task: str = "t") -> PromptPair:
    (folder / f"{task}_system.j2").write_text(system, encoding="utf-8")
    (folder / f"{task}_user.j2").write_text(user, encoding="utf-8")
    return PromptPair(task, folder)


def test_a_pair_renders_into_a_system_then_user_chat(tmp_path):
    pair = _pair(tmp_path, "You label {{ n }} categories.\n\n", "Sentence: {{ s }}\n")
    assert pair.render({"n": 3}, {"s": "She forgets."}) == [
        {"role": "system", "content": "You label 3 categories."},  # surrounding whitespace stripped
        {"role": "user", "content": "Sentence: She forgets."}]


def test_nothing_is_escaped_a_prompt_is_not_html(tmp_path):
    pair = _pair(tmp_path, "x", "{{ s }}")
    assert pair.render({}, {"s": "<b>Tom & Jerry's</b>"})[1]["content"] == "<b>Tom & Jerry's</b>"


def test_the_hash_is_over_both_files_and_changes_with_either(tmp_path):
    pair = _pair(tmp_path, "system", "user")
    expected = hashlib.sha256(b"system" + b"user").hexdigest()
    assert pair.hash == expected
    assert _pair(tmp_path, "system", "user 2", task="u").hash != expected
    assert _pair(tmp_path, "system 2", "user", task="v").hash != expected


@pytest.mark.parametrize("system, user, message", [
    ("{{ missing }}", "x", "prompt template for 't': 'missing' is undefined"),
    ("{% if x %}", "x", r"prompt template .*t_system.j2 line 1: "),
])
def test_a_broken_template_is_one_error(tmp_path, system, user, message):
    with pytest.raises(FactoryError, match=message):
        _pair(tmp_path, system, user).render({}, {})


def test_a_missing_template_names_the_file(tmp_path):
    (tmp_path / "t_system.j2").write_text("x")
    with pytest.raises(FactoryError, match=f"prompt template not found: {tmp_path / 't_user.j2'}"):
        PromptPair("t", tmp_path).render({}, {})


def test_the_projects_check_prompt_renders_with_the_taxonomy(taxonomy):
    pair = PromptPair("check")
    assert pair.directory == PROMPTS_DIR
    category = taxonomy.categories[0]
    system, user = pair.render({"categories": taxonomy.categories, "none_category": taxonomy.none},
                               {"sentence": "She forgets names.", "labels": [category], "purpose": "bronze"})
    assert system["role"] == "system" and category.name in system["content"]
    assert "She forgets names." in user["content"] and "written to illustrate" in user["content"]

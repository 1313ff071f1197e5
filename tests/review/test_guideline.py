"""The guideline beside the decision panel: the label prompt's own rules, read from the rendered prompt, then
the rules added for reviewers."""

from factory.review.guideline import REVIEW_RULES, guideline_rules, prompt_rules


def test_the_rules_block_is_read_up_to_the_next_blank_line():
    prompt = "You label.\n\nRules:\n- One.\n-  Two  \n\nExamples:\n- not a rule\n"
    assert prompt_rules(prompt) == ["One.", "Two"]
    assert prompt_rules("no rules here\n- a list item") == []
    assert prompt_rules("Rules:\n- Last line rule") == ["Last line rule"]


def test_the_page_shows_what_the_labeller_was_told_then_the_review_rules(taxonomy):
    rules = guideline_rules(taxonomy)
    prompt = [r["text"] for r in rules if r["source"] == "prompt"]
    assert [r["text"] for r in rules if r["source"] == "review"] == list(REVIEW_RULES)
    assert rules[-len(REVIEW_RULES):] == [{"text": t, "source": "review"} for t in REVIEW_RULES]
    assert "Label only what the sentence itself states." in prompt
    # the prompt's template variables are filled in: the page shows the taxonomy's own "none" choice
    none_rule = next(t for t in prompt if t.startswith("Use "))
    assert f'"{taxonomy.none.choice}" alone' in none_rule and "{{" not in " ".join(prompt)

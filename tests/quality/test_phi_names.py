"""The name and place lexicon the PHI rules read: its shape (lower-case words, places with their spaces),
ordinary English words among the names marked ambiguous, and what the rules make of each list."""

from __future__ import annotations

import re

import pytest

from factory.quality.phi import rule_hits
from factory.quality.phi_names import ALL_NAMES, AMBIGUOUS, GIVEN_NAMES, PLACES, SURNAMES

# Ordinary English words that are also names: each must be in AMBIGUOUS, or the rules would flag the word in
# "Rose Bengal staining", "Will repeat the MoCA", "May benefit from therapy".
ENGLISH_WORDS = ("rose grace will mark may june april hope faith joy walker hill young brown white green black king "
                 "page stone wood bell carter park lane ward price reed fox cook hunt long short small rich frank dean "
                 "earl guy jack ray sue art pat dawn summer ivy iris pearl ruby amber holly robin daisy violet lily "
                 "penny sandy chase hunter mason baker parker turner porter fisher gardner day love major").split()


def test_the_lists_are_lower_case_words_and_places_keep_their_spaces():
    for word in GIVEN_NAMES | SURNAMES | AMBIGUOUS:
        assert re.fullmatch(r"[a-z]+(?:-[a-z]+)?", word), word
    assert len(GIVEN_NAMES) > 500 and len(SURNAMES) > 300 and ALL_NAMES == GIVEN_NAMES | SURNAMES
    assert {"jamaica plain", "new york city", "st. louis", "port-au-prince", "accra"} <= PLACES
    assert not [place for place in PLACES if "_" in place or place != place.strip()]


@pytest.mark.parametrize("word", ENGLISH_WORDS)
def test_an_english_word_that_is_a_name_is_ambiguous(word):
    assert word not in ALL_NAMES or word in AMBIGUOUS


def test_the_rules_use_each_list():
    def kinds(text: str) -> set[str]:
        return {h.type for h in rule_hits(text)}

    assert kinds("Svetlana repeats the same story every visit.") == {"name"}  # an unambiguous given name alone
    assert kinds("Her neighbor Joy brought her home.") == {"name"}  # an ambiguous one after a kinship word
    assert kinds("She grew up in Accra before moving.") == {"location"}  # a place
    assert kinds("Will repeat the MoCA in six months.") == set()  # an ambiguous name needs context
    assert kinds("May benefit from occupational therapy.") == set()

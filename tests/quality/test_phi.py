"""PHI scanner: catch rate on planted identifiers, false positives on clinical look-alikes, verbatim overlap.

Run with `pytest -s tests/test_phi.py` to see the per-type numbers.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from factory.quality.phi import PhiScanner, ShingleIndex, default_scanner, rule_hits

# (type, planted string, sentence containing it). Each planted string counts as caught when any hit
# overlaps it, whatever type the hit has (as in a redaction review).
PLANTED = [
    ("person", "Eleanor Whitaker", "Eleanor Whitaker reports that she misplaces her glasses several times a day."),
    ("person", "Dr. Patel", "She was referred by Dr. Patel for worsening short-term memory."),
    ("person", "Harold", "Her husband Harold says she repeats the same questions every evening."),
    ("person", "Margaret O'Connor", "Margaret O'Connor could not recall the three words after five minutes."),
    ("person", "Mr. Gonzalez", "Mr. Gonzalez got lost driving home from the grocery store last week."),
    ("person", "Linda", "His daughter Linda now manages all of his bills and medications."),
    ("date", "03/14/2021", "Cognitive decline was first noted on 03/14/2021 during a routine visit."),
    ("date", "March 3rd", "On March 3rd she left the stove on and burned a pan."),
    ("date", "April 12, 2022", "MRI brain from April 12, 2022 showed bilateral hippocampal atrophy."),
    ("date", "2021-07-09", "Donepezil was started on 2021-07-09 and titrated to 10 mg."),
    ("date", "07/04/1931", "DOB 07/04/1931, presents with progressive forgetfulness."),
    ("date", "12 January 2023", "Neuropsychological testing on 12 January 2023 confirmed amnestic deficits."),
    ("age_over_89", "92-year-old", "This 92-year-old woman has had two years of gradual memory loss."),
    ("age_over_89", "94 y/o", "94 y/o male with word-finding difficulty and getting lost."),
    ("age_over_89", "age 97", "At age 97 she still lives alone but forgets meals."),
    ("age_over_89", "91 years old", "The patient is 91 years old and needs help with bathing."),
    ("phone", "(617) 555-0142", "Her son can be reached at (617) 555-0142 for collateral history."),
    ("phone", "555-867-5309", "Call the caregiver at 555-867-5309 if confusion worsens."),
    ("phone", "617.555.0199", "Fax records to 617.555.0199 before the memory clinic visit."),
    ("email", "susan.whitaker@gmail.com", "The daughter emailed susan.whitaker@gmail.com with a list of his medications."),
    ("email", "jdoe42@yahoo.com", "Send the caregiver handout to jdoe42@yahoo.com after the visit."),
    ("street_address", "77 Elm Street", "She was found wandering two blocks from her home at 77 Elm Street."),
    ("street_address", "1420 Maple Ave", "He lives alone at 1420 Maple Ave, Apt 3B, and forgets to lock the door."),
    ("zip", "02114", "The family moved her to Boston, MA 02114 to be closer to them."),
    ("mrn", "00123456", "MRN 00123456: MoCA declined from 24 to 19 over one year."),
    ("mrn", "A77120934", "Medical record number A77120934 was reviewed for prior cognitive screens."),
    ("ssn", "531-72-4409", "SSN 531-72-4409 was verified at registration before neuropsych testing."),
    ("mbi", "1EG4-TE5-MK72", "Medicare MBI 1EG4-TE5-MK72 covers the amyloid PET scan."),
    ("account", "4471-2290-88", "Account number 4471-2290-88 was billed for the cognitive assessment."),
    ("url", "https://portal.northshore-health.org/records", "Results are posted at https://portal.northshore-health.org/records for the family."),
    ("url", "www.caringbridge.org/visit/ewhitaker", "Updates on her decline are shared on www.caringbridge.org/visit/ewhitaker by her son."),
    ("facility", "St. Mary's Medical Center", "She was admitted to St. Mary's Medical Center after a nighttime fall."),
    ("facility", "Massachusetts General Hospital", "He was evaluated at Massachusetts General Hospital for rapid cognitive decline."),
    ("facility", "Sunrise Senior Living", "She moved to Sunrise Senior Living because she could no longer cook safely."),
    ("location", "Springfield", "He drove to Springfield instead of the pharmacy and could not find his way back."),
]

CLEAN = [
    "MMSE 24/30 with deficits in delayed recall and orientation.",
    "MoCA 19/30, losing points on clock drawing and word recall.",
    "BP 132/84, HR 72, afebrile.",
    "B12 420 pg/mL and TSH within normal limits.",
    "Started donepezil 5 mg nightly, to increase to 10 mg in 4 weeks.",
    "Findings are most consistent with Alzheimer's disease.",
    "Visual hallucinations and parkinsonism raise concern for Lewy body dementia.",
    "This 67-year-old man reports misplacing items daily.",
    "CDR 1 with impairment in memory and community affairs.",
    "She scored 3/5 on recall after a short delay.",
    "She has had 2 falls in the past 3 months.",
    "Hemoglobin A1c 6.1 and lipids unremarkable.",
    "MRI shows Fazekas grade 2 white matter changes.",
    "Timed Up and Go was 14 seconds with a cautious gait.",
    "Memantine 10 mg twice daily was added in May for agitation.",
    "Her daughter reports she gets lost in familiar places every few weeks.",
    "Trails B took 180 seconds with two errors.",
    "He was seen in the Memory Clinic for follow-up.",
    "Parkinson's disease was diagnosed 5 years ago.",
    "Sleep is poor, with 3 to 4 awakenings per night.",
]


def _overlaps(hit, start, end) -> bool:
    return hit.start < end and start < hit.end


@pytest.fixture(scope="module")
def scanner() -> PhiScanner:
    return default_scanner()


def test_planted_phi_catch_rate(scanner):
    assert len(PLANTED) >= 30
    assert len({kind for kind, _, _ in PLANTED}) >= 12
    results = scanner.scan([sentence for _, _, sentence in PLANTED])
    per_type = defaultdict(lambda: [0, 0])
    missed = []
    for (kind, planted, sentence), hits in zip(PLANTED, results, strict=True):
        start = sentence.index(planted)
        caught = any(_overlaps(h, start, start + len(planted)) for h in hits)
        per_type[kind][0] += caught
        per_type[kind][1] += 1
        if not caught:
            missed.append((kind, planted, [h.reason() for h in hits]))
    caught_total = sum(c for c, _ in per_type.values())
    print(f"\nPHI scanner ({scanner.method})")
    print(f"planted PHI caught: {caught_total}/{len(PLANTED)} = {caught_total / len(PLANTED):.0%}")
    for kind, (c, n) in sorted(per_type.items()):
        print(f"  {kind:15s} {c}/{n}")
    for kind, planted, hits in missed:
        print(f"  MISSED {kind}: {planted!r} (hits: {hits})")
    assert caught_total / len(PLANTED) >= 0.90, missed


def test_clean_lookalikes_are_not_flagged(scanner):
    assert len(CLEAN) >= 15
    results = scanner.scan(CLEAN)
    flagged = [(sentence, [h.reason() for h in hits]) for sentence, hits in zip(CLEAN, results, strict=True) if hits]
    print(f"\nclean clinical sentences flagged: {len(flagged)}/{len(CLEAN)}")
    for sentence, reasons in flagged:
        print(f"  FALSE POSITIVE: {sentence!r}: {reasons}")
    assert len(flagged) <= 1, flagged


@pytest.mark.parametrize("text, kind", [
    ("This 92-year-old woman forgets names.", "age_over_89"),
    ("94 y/o with word-finding pauses.", "age_over_89"),
    ("At age 97 she lives alone.", "age_over_89"),
    ("A 93yoF with falls.", "age_over_89"),
    ("Seen on 11/02/2020 for memory loss.", "date"),
    ("Follow-up on March 3rd.", "date"),
    ("SSN 531-72-4409 on file.", "ssn"),
    ("MBI 1EG4-TE5-MK72 on file.", "mbi"),
    ("MRN: 00123456 on file.", "id_number"),
    ("Reach her at jane@example.org today.", "email"),
    ("She lives at 12 Oak Lane now.", "street_address"),
    ("Admitted to St. Mary's Medical Center overnight.", "facility"),
])
def test_rules_name_the_right_type(text, kind):
    assert kind in {h.type for h in rule_hits(text)}


@pytest.mark.parametrize("text", [
    "A 67-year-old with mild cognitive impairment.",
    "An 89-year-old woman with slow decline.",
    "Symptoms for 3 months, worse in the evenings.",
    "MMSE 24/30 today, 26/30 in the past year.",
    "Blood pressure 132/84 seated.",
    "Recalled 3/5 words.",
    "She may 2 times a week forget her pills.",
    "Donepezil 5 mg daily since last spring.",
])
def test_rules_leave_lookalikes_alone(text):
    assert rule_hits(text) == []


def test_hits_carry_span_and_text(scanner):
    sentence = "Call 555-867-5309 tonight."
    hits = scanner.scan_one(sentence)
    assert [(h.type, h.text) for h in hits] == [("phone", "555-867-5309")]
    assert sentence[hits[0].start:hits[0].end] == "555-867-5309"
    assert hits[0].reason() == "phone: 555-867-5309"


REFERENCE = [
    "Patient is a pleasant woman who lives with her husband in a two story house near the lake.",
    "She reports that she has trouble remembering recent conversations.",
    "No acute distress.",
]


def test_verbatim_overlap_finds_a_copied_span():
    index = ShingleIndex(n=8).add(REFERENCE)
    copied = "who lives with her husband in a two story house"  # 10 words from the first reference sentence
    bronze = f"The caregiver noted that the patient {copied} keeps losing her keys."
    hits = index.hits(bronze)
    assert [h.type for h in hits] == ["verbatim_overlap"]
    assert hits[0].text == copied  # the whole copied run, as one hit
    assert bronze[hits[0].start:hits[0].end] == copied


def test_verbatim_overlap_ignores_short_common_phrases():
    index = ShingleIndex(n=8).add(REFERENCE)
    assert index.hits("She reports that she has forgotten to pay the electric bill twice.") == []  # 5 shared words
    assert index.hits("No acute distress was noted, but she could not name the president.") == []


def test_verbatim_overlap_is_case_and_punctuation_insensitive_and_configurable():
    index = ShingleIndex(n=5).add(REFERENCE)
    assert index.hits("she REPORTS that she has, trouble sleeping") != []
    assert ShingleIndex(n=12).add(REFERENCE).hits("She reports that she has trouble remembering recent calls.") == []


def test_shingle_index_scales(capsys):
    # 100k reference sentences must index quickly and compactly (the CLI handles ~1M the same way).
    import time

    import random

    rng = random.Random(0)
    words = [f"w{i}" for i in range(20_000)]
    rows = [[rng.randrange(20_000) for _ in range(14)] for _ in range(100_000)]
    texts = (" ".join(words[t] for t in row) for row in rows)
    started = time.perf_counter()
    index = ShingleIndex(n=8).add(texts)
    seconds = time.perf_counter() - started
    print(f"\nshingle index: 100000 sentences, {index.size} n-grams, {index.size * 8 / 1e6:.1f} MB, {seconds:.1f} s")
    assert index.sentences == 100_000
    assert 500_000 < index.size <= 100_000 * 7 and index.size * 8 < 10e6
    probe = " ".join(words[t] for t in rows[12345])
    assert [h.text for h in index.hits(f"Noted: {probe}.")] == [probe]
    assert index.hits(" ".join(words[t] for t in rows[12345][:7])) == []


def test_scanner_with_overlap_index(scanner):
    with_overlap = PhiScanner(use_ner=True, overlap=ShingleIndex(n=8).add(REFERENCE))
    hits = with_overlap.scan_one("Patient is a pleasant woman who lives with her husband in town.")
    assert "verbatim_overlap" in {h.type for h in hits}
    assert "verbatim overlap" in with_overlap.method


def test_demo_gold_sentences_are_not_flagged(scanner):
    # 344 expert-style clinical sentences shipped with the demo (no PHI): a realistic false-positive check.
    import polars as pl

    from tests.conftest import ROOT

    texts = pl.read_ndjson(ROOT / "data" / "demo" / "gold.jsonl").get_column("text").to_list()
    flagged = [(t, [h.reason() for h in hits]) for t, hits in zip(texts, scanner.scan(texts), strict=True) if hits]
    print(f"\ndemo gold sentences flagged: {len(flagged)}/{len(texts)} {flagged}")
    assert len(texts) > 300 and len(flagged) <= 3, flagged


def test_sentence_initial_names_are_still_caught(scanner):
    for sentence, name in [("Harold says she repeats herself.", "Harold"),
                           ("Eleanor Whitaker forgets appointments.", "Eleanor Whitaker")]:
        hits = scanner.scan_one(sentence)
        assert any(h.start == 0 for h in hits), (sentence, hits)
    hits = scanner.scan_one("Husband says she repeats herself.")
    assert hits == []

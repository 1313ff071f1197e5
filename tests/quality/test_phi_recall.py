"""PHI gate recall on the planted evaluation files, and one targeted check per kind of identifier.

tests/fixtures/phi_planted.jsonl is the set the rules were developed on; tests/fixtures/phi_heldout.jsonl
was written after them (batch "heldout-2" after the last rule change). phi_fresh_a.jsonl and phi_fresh_b.jsonl
hold identifiers in formats the first sets lacked (other scripts, initials, intersections, partial and
spelled-out numbers, ...): set a was written before the format rules (factory/quality/phi_formats.py) and
they were fixed on it; set b was written after them, measured once, and then rules were fixed on it too;
set c was written after those fixes and measured once (one fix followed). Set d was written by someone who
never saw the rules, with three kinds the other sets lack (BIOMETRIC, PHOTO, UNIQUE_ID); its first look,
measured before the rules were fixed on it, was 54 of 60 sentences quarantined (90%), 64 of 72 identifiers
and 3 of 40 clean sentences flagged (7.5%). Print the tables with
`.venv/bin/python -m factory.quality.phi_eval tests/fixtures/phi_*.jsonl`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from factory.quality.phi import HIPAA_KIND, PhiHit, default_scanner, rule_hits
from factory.quality.phi_eval import RECALL_FILE, PhiEvaluation, evaluate, load_planted, recall_document, recall_markdown

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PLANTED = FIXTURES / "phi_planted.jsonl"
HELDOUT = FIXTURES / "phi_heldout.jsonl"
FRESH_A = FIXTURES / "phi_fresh_a.jsonl"
FRESH_B = FIXTURES / "phi_fresh_b.jsonl"
FRESH_C = FIXTURES / "phi_fresh_c.jsonl"
FRESH_D = FIXTURES / "phi_fresh_d.jsonl"
FRESH_E = FIXTURES / "phi_fresh_e.jsonl"
"""Set e: written blind, by someone who never saw the rules, before the fixes made on it. First look: 58 of 60
sentences quarantined (96.7%), 77 of 88 identifiers (87.5%, counted then as any overlap), 0 of 40 clean flagged.
The misses (spaced SSN, dictated date, PO box / rural-route towns, "the X neighborhood", "June (daughter)", a
short link, a spaced claim number, a Spanish honorific name, an ordinal street with "#B") were then fixed with
general rules (tests/quality/test_phi_formats.py, "added after the first look at phi_fresh_e.jsonl")."""
FRESH_F = FIXTURES / "phi_fresh_f.jsonl"
"""Set f: written blind, by someone who never saw the rules, before the fixes made on it. First look: 52 of 60
sentences quarantined (86.7%), 75 of 110 identifiers (68.2%), 2 of 40 clean flagged (5.0%: "Rowan ward" and
"Pabrinex" read as names). The misses (all-caps names on a handover list, a signature line, title + initial +
surname; ages as "94F", "M/91", "92y 4m", "in her 95th year", "b. 1929", in Spanish words; Roman-numeral months,
day ranges, Mon-yyyy, a dictated "march third", a Japanese era date; spelled-out, grid, county-road, mobile-home
and landmark addresses; UK, Canadian and German postcodes and the town after one; a lower-case dictated town;
slashed and masked SSNs and one spoken after "ends in"; a phone with a slash after the area code, French digit
pairs, an e-mail spoken as "name at yahoo"; an IBAN; group and member numbers; a short device number; a plate in
the NATO alphabet) were then fixed with general rules, and the two false positives with filters (a word before
"ward"/"unit" is a ward, a word before a dose a drug): tests/quality/test_phi_formats.py, "phi_fresh_f.jsonl"."""
FRESH_G = FIXTURES / "phi_fresh_g.jsonl"
"""Set g: written blind, by someone who never saw the rules, before the fixes made on set f; first look measured
after those fixes and before any change for g: 56 of 60 sentences quarantined (93.3%), 89 of 111 identifiers
(80.2%), 3 of 40 clean flagged (7.5%: "Rowan Ward" read as a name, a reference range "197-771" as an id,
"Centiloid" as a name). The misses (a care home and a housing estate and the town after it, a town after "Daughter
from"; French "14 bis rue", a Japanese chōme address, an Irish Eircode; "Mon 13-May", "Xmas '22", a masked date
05/XX/1931, a two-digit-year DOB; a dictated lower-case name after "son" and its spelling K-O-W-A-L-S-K-I, "E.Farrow"
glued to punctuation, "née X", a Portuguese name with particles; "aet. 95", a French age in words; a site_S_subject
study id, a telecare unit number, a Scottish CHI number, a licence in spaced groups) were then fixed with general
rules, and the three false positives with filters (a capitalised word before "Ward"/"Unit" names a ward, a range
after "ref"/"range" is a reference range, a word between a clinical word and a number is a scale):
tests/quality/test_phi_formats.py, "phi_fresh_g.jsonl"."""
FRESH_H = FIXTURES / "phi_fresh_h.jsonl"
"""Set h: written blind, by someone who never saw the rules and was asked for a realistic audit-style sample rather
than unseen formats, before the fixes made on set g; first look measured after those fixes and before any change
for h: 60 of 60 sentences quarantined (100%), 106 of 113 identifiers (93.8%), 1 of 40 clean flagged (2.5%: "Ward
4B" read as a name). The misses (a care home "X Court" after "at", a home-care agency, a memory centre; a
double-barrelled surname after "Dtr"; a lower-case given name after "daughter"; month/day dates without a year
after "called" and before "@ 1430", and after "done") were then fixed with general rules, and the false positive
with a filter (a ward's number after "Ward"/"Unit"): tests/quality/test_phi_formats.py, "phi_fresh_h.jsonl"."""
SETS = [PLANTED, HELDOUT, FRESH_A, FRESH_B, FRESH_C, FRESH_D, FRESH_E, FRESH_F, FRESH_G, FRESH_H]  # the order of docs/phi_recall.json
IDS = ["planted", "heldout", "fresh-a", "fresh-b", "fresh-c", "fresh-d", "fresh-e", "fresh-f", "fresh-g", "fresh-h"]
KINDS = {"NAME", "DATE", "AGE_OVER_89", "SSN", "DEVICE_ID", "VEHICLE_ID", "ZIP", "PHONE", "FAX", "EMAIL", "MRN",
         "ADDRESS", "URL", "IP", "LOCATION", "HEALTH_PLAN", "ACCOUNT"}


@pytest.fixture(scope="module")
def scanner():
    return default_scanner()  # loads the spaCy model once for the module


@pytest.fixture(scope="module")
def evaluations(scanner) -> dict[Path, PhiEvaluation]:
    return {path: evaluate(path, scanner) for path in SETS}  # each set scanned once for the module


@pytest.mark.parametrize("path, sentences, clean", [(PLANTED, 150, 80), (HELDOUT, 60, 30)])
def test_fixture_sizes_and_kinds(path, sentences, clean):
    records = load_planted(path)
    with_ids = [r for r in records if r["identifiers"]]
    assert len(with_ids) >= sentences and len(records) - len(with_ids) >= clean
    kinds = {i["kind"] for r in with_ids for i in r["identifiers"]}
    assert KINDS - {"FAX", "ACCOUNT", "HEALTH_PLAN"} <= kinds, KINDS - kinds


# Formats each fresh set must hold (the `format` field of an identifier): the misses of the blind set.
FRESH_FORMATS = {"initials", "intersection", "partial", "masked", "spelled"}


@pytest.mark.parametrize("path, sentences, clean, scripts", [(FRESH_A, 80, 50, 5), (FRESH_B, 60, 40, 5), (FRESH_C, 35, 20, 2)],
                         ids=["fresh-a", "fresh-b", "fresh-c"])
def test_fresh_sets_cover_new_formats(path, sentences, clean, scripts):
    records = load_planted(path)
    with_ids = [r for r in records if r["identifiers"]]
    assert len(with_ids) >= sentences and len(records) - len(with_ids) >= clean
    identifiers = [i for r in with_ids for i in r["identifiers"]]
    assert all(i.get("format") for i in identifiers)  # every planted identifier says which format it tries
    formats = {i["format"] for i in identifiers}
    assert FRESH_FORMATS <= formats, FRESH_FORMATS - formats
    assert sum(f.endswith("-script") for f in formats) >= scripts  # names in non-Latin scripts
    assert len({i["kind"] for i in identifiers}) >= 15


def test_fresh_set_d_has_the_new_kinds():
    records = load_planted(FRESH_D)
    with_ids = [r for r in records if r["identifiers"]]
    assert len(with_ids) >= 60 and len(records) - len(with_ids) >= 40
    kinds = {i["kind"] for r in with_ids for i in r["identifiers"]}
    assert {"BIOMETRIC", "PHOTO", "UNIQUE_ID", "LICENSE"} <= kinds and len(kinds) >= 20, kinds


def test_the_sets_share_no_sentence():
    seen: dict[str, str] = {}
    for path in SETS:
        for record in load_planted(path):
            assert record["text"] not in seen, (record["text"], seen.get(record["text"]), path.name)
            seen[record["text"]] = path.name


@pytest.mark.parametrize("path", SETS, ids=IDS)
def test_recall_and_false_positive_rate(evaluations, path):
    result = evaluations[path]
    print("\n" + result.report(misses=True))  # the per-kind table, misses and false positives
    assert set(result.per_kind) == {i["kind"] for r in load_planted(path) for i in r["identifiers"]}
    assert result.recall >= 0.95, result.misses
    assert result.sentence_recall >= 0.95, result.misses  # sentences the gate quarantines
    assert result.false_positive_rate <= 0.05, result.false_positives


def test_the_data_card_figures_are_the_measured_ones(evaluations):
    """docs/phi_recall.json (which `export` puts in the data card) and the README table match the scanner
    as it is: rerun `python -m factory.quality.phi_eval tests/fixtures/phi_planted.jsonl
    tests/fixtures/phi_heldout.jsonl tests/fixtures/phi_fresh_a.jsonl tests/fixtures/phi_fresh_b.jsonl
    tests/fixtures/phi_fresh_c.jsonl tests/fixtures/phi_fresh_d.jsonl tests/fixtures/phi_fresh_e.jsonl
    tests/fixtures/phi_fresh_f.jsonl tests/fixtures/phi_fresh_g.jsonl tests/fixtures/phi_fresh_h.jsonl
    --save docs/phi_recall.json` after
    changing the scanner or a set, and
    paste the table it prints with --table into the README."""
    measured = recall_document([evaluations[path] for path in SETS])
    stored = json.loads(RECALL_FILE.read_text(encoding="utf-8"))
    assert stored["sets"] == measured["sets"]
    readme = (FIXTURES.parents[1] / "README.md").read_text(encoding="utf-8")
    table = [line for line in recall_markdown(measured) if line.startswith("|")]
    assert all(line in readme for line in table), [line for line in table if line not in readme]


def _types(text: str, scanner=None) -> set[str]:
    hits = scanner.scan_one(text) if scanner else rule_hits(text)
    return {h.type for h in hits}


def _caught(scanner, text: str, identifier: str) -> list[PhiHit]:
    start = text.index(identifier)
    return [h for h in scanner.scan_one(text) if h.start < start + len(identifier) and start < h.end]


@pytest.mark.parametrize("text, identifier", [
    ("Rose forgets her keys most days.", "Rose"),                        # common word opening the sentence
    ("Grace was confused about the date.", "Grace"),
    ("Her neighbor Joy brought her home.", "Joy"),                       # after a kinship/role word
    ("The son, raymond, manages her bills.", "raymond"),                 # lower case
    ("collateral from john smith by phone.", "john smith"),
    ("Chukwuemeka Obi could not copy the cube.", "Chukwuemeka Obi"),     # non-English names
    ("Svetlana repeats the same story every visit.", "Svetlana"),
    ("Will Brennan got lost downtown.", "Will Brennan"),
])
def test_names(scanner, text, identifier):
    hits = _caught(scanner, text, identifier)
    assert hits and any(h.hipaa == "NAME" for h in hits), scanner.scan_one(text)


@pytest.mark.parametrize("text, identifier, kind", [
    ("Pacemaker serial number PJN734021H checked.", "PJN734021H", "device_id"),
    ("Hearing aid S/N 2219-AX-04418 lost.", "2219-AX-04418", "device_id"),
    ("Watch MAC 00:1A:2B:3C:4D:5E paired.", "00:1A:2B:3C:4D:5E", "device_id"),
    ("Car with license plate 7XYZ123 found.", "7XYZ123", "vehicle_id"),
    ("Sedan with plate number ABC-1234 stopped.", "ABC-1234", "vehicle_id"),
    ("VIN 1HGCM82633A004352 on file.", "1HGCM82633A004352", "vehicle_id"),
    ("Confused since Christmas Day 2019.", "Christmas Day 2019", "date"),
    ("Worse after Thanksgiving 2020.", "Thanksgiving 2020", "date"),
    ("Decline began in the spring of 2019.", "spring of 2019", "date"),
    ("CSF drawn 14-Mar-2021.", "14-Mar-2021", "date"),
    ("At ninety-three she lives alone.", "ninety-three", "age_over_89"),
    ("She turned 96 in May.", "96", "age_over_89"),
    ("SS# 078 05 1120 verified.", "078 05 1120", "ssn"),
    ("Moved to Springfield 01103 last year.", "01103", "zip"),
    ("Login from 192.168.14.22 overnight.", "192.168.14.22", "ip_address"),
    ("Contact r.patel at outlook dot com today.", "r.patel at outlook dot com", "email"),
    ("Lives at 31 Rue des Lilas with her son.", "31 Rue des Lilas", "street_address"),
    ("She grew up in Accra before moving.", "Accra", "location"),
])
def test_rules_find_each_new_kind(text, identifier, kind):
    start = text.index(identifier)
    hits = [h for h in rule_hits(text) if h.start < start + len(identifier) and start < h.end]
    assert kind in {h.type for h in hits}, rule_hits(text)


@pytest.mark.parametrize("text", [
    "MoCA 19/30 with deficits in recall.",
    "Donepezil 5 mg nightly.",
    "Grace period for the refill ends Friday.",
    "Findings consistent with Alzheimer's disease.",
    "Parkinson's disease diagnosed 5 years ago.",
    "Dementia with Lewy bodies is likely.",
    "Rose Bengal staining was not done.",
    "Will repeat the MoCA in six months.",
    "May benefit from occupational therapy.",
    "Serial 7s: 3 of 5 correct.",
    "She needed ninety seconds for the clock drawing.",
    "Hope is to keep her at home.",
    "She takes St. John's wort daily.",
    "Charles Bonnet syndrome was considered.",
    "Platelets 212, WBC 6.4.",
])
def test_clinical_lookalikes_pass(scanner, text):
    assert scanner.scan_one(text) == []


def test_every_finding_names_a_hipaa_kind(scanner):
    text = ("Rose Delgado, 94, seen 02/03/2023; SSN 531-72-4409; plate 2GHT811; serial number WK55310; "
            "call 978-555-0110; lives at 12 Oak Lane, Newton, MA 02459; IP 10.0.0.12.")
    hits = scanner.scan_one(text)
    kinds = {h.hipaa for h in hits}
    assert {"NAME", "AGE_OVER_89", "DATE", "SSN", "VEHICLE_ID", "DEVICE_ID", "PHONE", "ADDRESS", "ZIP", "IP"} <= kinds, kinds
    assert all(h.type in HIPAA_KIND for h in hits)

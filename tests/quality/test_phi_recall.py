"""PHI gate recall on the planted evaluation files, and one targeted check per kind of identifier.

tests/fixtures/phi_planted.jsonl is the set the rules were developed on; tests/fixtures/phi_heldout.jsonl
was written after them (batch "heldout-2" after the last rule change). Print the tables with
`.venv/bin/python -m factory.quality.phi_eval tests/fixtures/phi_planted.jsonl tests/fixtures/phi_heldout.jsonl`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from factory.quality.phi import HIPAA_KIND, PhiHit, default_scanner, rule_hits
from factory.quality.phi_eval import evaluate, load_planted

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PLANTED = FIXTURES / "phi_planted.jsonl"
HELDOUT = FIXTURES / "phi_heldout.jsonl"
KINDS = {"NAME", "DATE", "AGE_OVER_89", "SSN", "DEVICE_ID", "VEHICLE_ID", "ZIP", "PHONE", "FAX", "EMAIL", "MRN",
         "ADDRESS", "URL", "IP", "LOCATION", "HEALTH_PLAN", "ACCOUNT"}


@pytest.fixture(scope="module")
def scanner():
    return default_scanner()  # loads the spaCy model once for the module


@pytest.mark.parametrize("path, sentences, clean", [(PLANTED, 150, 80), (HELDOUT, 60, 30)])
def test_fixture_sizes_and_kinds(path, sentences, clean):
    records = load_planted(path)
    with_ids = [r for r in records if r["identifiers"]]
    assert len(with_ids) >= sentences and len(records) - len(with_ids) >= clean
    kinds = {i["kind"] for r in with_ids for i in r["identifiers"]}
    assert KINDS - {"FAX", "ACCOUNT", "HEALTH_PLAN"} <= kinds, KINDS - kinds


def test_heldout_is_a_different_file():
    planted = {r["text"] for r in load_planted(PLANTED)}
    heldout = {r["text"] for r in load_planted(HELDOUT)}
    assert not planted & heldout


@pytest.mark.parametrize("path", [PLANTED, HELDOUT], ids=["planted", "heldout"])
def test_recall_and_false_positive_rate(scanner, path):
    result = evaluate(path, scanner)
    print("\n" + result.report(misses=True))
    assert result.recall >= 0.95, result.misses
    assert result.false_positive_rate <= 0.05, result.false_positives


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

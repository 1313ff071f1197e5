"""PHI rules for identifier formats the base rules in phi.py did not see (issue 19 §3).

A blind planted set slipped past the gate with a street intersection, a name in a non-Latin script, the
last digits of a number, initials and a phone number spelled out in words. Each rule below is general:
a format plus the context that makes it an identifier, with the clinical look-alikes it must leave alone
named next to it. Rules:

- **other scripts**: any run of letters from a script other than Latin (Cyrillic, Greek, Arabic, Hebrew,
  Devanagari, Han, kana, Hangul, Thai, ...). Bronze is English; text in another script is a name, a place
  or a quotation, all worth a person's look. Greek letters used as symbols (Aβ42, α-synuclein) are not.
- **accented names**: two or more capitalised words in a row, one with a non-English Latin letter
  ("Sigríður Jónsdóttir", "Nguyễn Thị Hương"); titles before such a name ("Ms. Łucja").
- **initials**: dotted initials ("J.M.", "M. O.") unless a credential or a Latin abbreviation (R.N., p.r.n.),
  a title before one initial ("Dr. R.", "Dr F"), and undotted initials after "pt", "patient" or a kinship word.
- **intersections**: "corner of X and Y", two street names joined by and / & / at / meets, one with a
  street suffix, "X and Y streets", "at X/Y".
- **partial and masked numbers**: "ending in 4471", "last four of her SSN are 0932", "final digits 5582",
  "ends with 7Q2" next to an identifier noun; masked numbers (XXX-XX-1234, ****5678, "MRN …8821").
- **spelled-out digits**: seven or more digit words in a row ("six one seven, five five five ..."), or five
  after "zip"; never in a digit-span or counting test, nor a plain count ("one, two, three, four, ...")
  unless a label such as "SSN" comes before it.
- **more date, age, place, address, contact and code formats**: ordinal words ("the third of February"),
  weekday dates ("Tues 4/9", "Monday the 14th"), "Sept '22", month names in other languages, CJK dates;
  "she will be 101", "woman (92)", "his 100th"; "a village outside X", "commutes from X", "lives with her
  son in X", the town before a state and ZIP; rural-route boxes; e-mail and URLs with country domains,
  compressed IPv6, phone numbers with a trunk 0; slashed hospital numbers, UK-style plates, serial and
  labelled numbers written in spaced groups ("serial: HA 2210 77X", "card number 4412 883 119"); the
  town after a street address. The cases tests/quality/test_phi_formats.py marks "added after the first look
  at phi_fresh_b.jsonl" came from that set (issue 19: measured once, then fixed).
- **nicknames, event days, licences, "#" ids, photo files, study ids** (after the first look at
  phi_fresh_d.jsonl, a set written by someone who never saw the rules): a quoted nickname after "goes by",
  "known as", "is called"; "on the 14th" after an event verb when no noun follows ("on the 3rd step" is
  not a date); "license #RN 2381947" and a credential before a long number; an abbreviation or identifier
  word joined to digits by "#" (billing codes such as CPT# excepted); camera and image file names; a
  research subject's or participant's number.
- **more formats of each kind** (after the first look at phi_fresh_f.jsonl, also written blind; each rule sits
  with its kind): "/s/" signatures and an initial + surname before a credential, a surname after a title and
  initials; sex with age ("94F", "M/91"), "92y 4m", "in her 95th year", a birth year 90+ years ago, Spanish
  age words; Roman-numeral months, day ranges, "Apr-2023", lower-case "march third", Japanese era dates;
  house numbers in words, US grid and county-road addresses, mobile-home lots, landmarks on a road; UK,
  Canadian and European postcodes; slashed and French phone numbers, spoken e-mail; masked SSNs, spoken
  partial digits, IBANs, short device numbers after a device word, NATO-alphabet plates.
- **more formats of each kind** (after the first look at phi_fresh_g.jsonl, also written blind): an initial glued to
  a surname ("E.Farrow"), a name spelled letter by letter (K-O-W-A-L-S-K-I), a maiden name after "née", names with
  particles ("Maria da Conceição dos Santos"), kinship abbreviations in parentheses ("(dtr)"); "aet. 95", French
  ages in words; a weekday before "13-May", masked dates (05/XX/1931), a two-digit-year date after "DOB"; French
  street numbers with bis/ter, Japanese block addresses, Irish Eircodes; national health numbers after their label
  and a Scottish CHI number; spaced licence numbers, telecare unit numbers, site_S_subject study ids.
- **care homes named "X Court" and month/day dates without a year** (after the first look at phi_fresh_h.jsonl, a
  realistic sample written blind): "at Willow Court" (not a court of law); "called 3/5", "done 6/12 by", "3/5 @ 1430",
  never a UK duration ("over 6/12", "6/52 ago", "seen 1/7 post fall") nor a score or an acuity ("VA 6/12").

Each function takes a sentence and returns (type, start, end) spans; phi.rule_hits turns them into
findings and applies its clinical-word filters. The `regex` module is used for Unicode scripts and
letter classes (\\p{...}), which the standard `re` does not have.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

import regex

Span = tuple[str, int, int]
_I = regex.IGNORECASE

# ------------------------------------------------------------------------------------- other scripts

# A letter of any script but Latin; marks (Devanagari vowel signs, Arabic vowels) and the kana long-vowel
# mark and middle dot, which Unicode files under Common/Inherited, may follow inside a word.
_OTHER_LETTER = r"[[\p{L}]--[\p{Latin}\p{Common}\p{Inherited}]]"
_OTHER_WORD = rf"{_OTHER_LETTER}(?:{_OTHER_LETTER}|\p{{M}}|[ー・])*"
_OTHER_RUN = regex.compile(rf"(?V1){_OTHER_WORD}(?:[ \t]+{_OTHER_WORD})*")
_GREEK_ONLY = regex.compile(r"(?V1)[\p{Greek}\p{M}\s]+")


def _greek_symbol(sentence: str, start: int, end: int) -> bool:
    """Greek letters as scientific symbols: Aβ42, α-synuclein, TNF-α, Δ: short, or touching Latin/digits."""
    text = sentence[start:end]
    if not _GREEK_ONLY.fullmatch(text):
        return False
    letters = sum(ch.isalpha() for ch in text)
    before = sentence[start - 1:start]
    after = sentence[end:end + 1]
    touching = any(ch.isalnum() or ch == "-" for ch in before + after)
    return letters < 3 or touching


def other_script_spans(sentence: str) -> list[Span]:
    return [("other_script", m.start(), m.end()) for m in _OTHER_RUN.finditer(sentence)
            if not _greek_symbol(sentence, m.start(), m.end())]


# ------------------------------------------------------------------------------------- accented names

_CAP_WORD = r"\p{Lu}[\p{Ll}\p{M}'’]+(?:-\p{Lu}?[\p{Ll}\p{M}]+)*"
_CAP_RUN = regex.compile(rf"(?<![\p{{L}}\p{{M}}])(?:{_CAP_WORD}|\p{{Lu}}\.)(?:[ \t]+(?:{_CAP_WORD}|\p{{Lu}}\.)){{1,3}}"
                         rf"(?![\p{{L}}\p{{M}}])")
_TITLED = regex.compile(rf"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?[ \t]+({_CAP_WORD}(?:[ \t]+{_CAP_WORD})?)")


def _has_non_ascii_letter(text: str) -> bool:
    return any(ch.isalpha() and not ch.isascii() for ch in text)


# Names joined by lower-case particles: "Maria da Conceição dos Santos", "Pieter van der Berg", "Ana de la Cruz".
_PARTICLE = r"(?:da|das|do|dos|de|del|dela|della|delle|degli|di|du|van|von|der|den|ten|ter|la|le|bin|ibn|bint|al|el)"
_PARTICLE_NAME = regex.compile(rf"(?<![\p{{L}}\p{{M}}]){_CAP_WORD}(?:(?:[ \t]+{_PARTICLE}){{1,2}}[ \t]+{_CAP_WORD}"
                               rf"(?:[ \t]+{_CAP_WORD})?)+(?![\p{{L}}\p{{M}}])")


def accented_name_spans(sentence: str) -> list[Span]:
    """Capitalised words in a row with a letter English does not use ("Grünewald", "Łucja", "Hương"), and names
    joined by particles ("Maria da Conceição dos Santos")."""
    spans = [("name", m.start(), m.end()) for m in _CAP_RUN.finditer(sentence) if _has_non_ascii_letter(m.group(0))]
    spans += [("name", m.start(), m.end()) for m in _PARTICLE_NAME.finditer(sentence)]
    spans += [("name", m.start(), m.end(1)) for m in _TITLED.finditer(sentence) if _has_non_ascii_letter(m.group(1))]
    return spans


# ------------------------------------------------------------------------------------------- initials

# Capitals that are credentials, places, diagnoses or Latin abbreviations, not a person's initials.
_NOT_INITIALS = frozenset("""
RN MD DO PA NP PT OT ST SLP MS BS BA MA MSW LPN LVN CNA APRN PHD DDS DMD OD OS OU PO PR PRN NPO QHS HS QD
BID TID QID QOD AC PC SC SQ IM IV ID AM PM US UK USA EU UN DC NY LA VA AD BC CE ER ED GP ICU CT TB PD AF
MI DM OK TV NB PS RE CC DOB DNR DNI POA HCP ADL ENT ECG EKG EEG CSF HIV UTI COPD CHF CKD AKA BKA SW NA IQ
EMS IT HR BP RR ICD DSM NOS PET MRI MCI FTD DLB VAD PPA CBD PSP NPH CJD ALS HD TIA CVA SDH AMS OSA RLS
""".split())
# A single initial before these is a genus ("E. coli"), not a person.
_SPECIES = r"(?:coli|pylori|difficile|aureus|pneumoniae|albicans|faecalis|epidermidis|burgdorferi|gondii|jirovecii|influenzae)"
_PERSON_BEFORE = (r"(?:pt|patient|resident|client|caregiver|carer|husband|wife|spouse|partner|son|daughter|mother|"
                  r"father|sister|brother|niece|nephew|grandson|granddaughter|neighbou?r|friend|aide|proxy|guardian|"
                  r"initials?)")
_WRITER_BEFORE = r"(?:RN|NP|PA|MD|LPN|CNA|nurse|by|per|from|with)"
_DOTTED = regex.compile(r"(?<![\w.])(\p{Lu}\.[ \t]?\p{Lu}\.(?:[ \t]?\p{Lu}\.)?)(?!\w)")
# A title, one or more initials and the surname after them when there is one: "Dr. R.", "Mr K Venkatesh",
# "Mrs J. P. O'Neill-Burke".
_TITLE_INITIAL = regex.compile(r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?[ \t]+\p{Lu}(?:\.(?:[ \t]?\p{Lu}\.)*|(?!\w))"
                               r"(?:[ \t]+\p{Lu}(?:\.|(?!\w))[ \t]*)*(?:[ \t]*\p{Lu}[\p{Ll}'’]+(?:-\p{Lu}[\p{Ll}'’]+)?(?!\p{L}))?")
# Credentials after a name: "R. Delacorte-Whitby, LCSW"; before a number they make a licence (see licence_spans).
_CREDENTIAL = (r"(?:RN|LPN|LVN|APRN|CNP|NP|PA|MD|DO|DDS|DMD|RPh|PharmD|PT|DPT|OT|OTR|SLP|LCSW|LICSW|LMSW|LMFT|LPC|"
               r"CNA|CRNA|EMT|PsyD)")
_SURNAME = r"\p{Lu}[\p{Ll}'’]+(?:-\p{Lu}[\p{Ll}'’]+)?(?!\p{L})"
# A signature: "/s/ R. Delacorte-Whitby", "/s/ Jane Moore"; an initial and a surname before a credential:
# "R. Delacorte-Whitby, LCSW", "T Nguyen RN".
_SIGNED = regex.compile(rf"/s/[ \t]*((?:\p{{Lu}}\.?[ \t]+|{_SURNAME}[ \t]+){{0,3}}{_SURNAME})")
_INITIAL_SURNAME_CREDENTIAL = regex.compile(rf"(?<![\w.])(\p{{Lu}}\.?[ \t]+(?:\p{{Lu}}\.?[ \t]+)?{_SURNAME}),?[ \t]+"
                                            rf"{_CREDENTIAL}\b")
# "husband (T.B.)", "daughter, M.", "RN L.V.": dotted initials, one to three, after a person or a writer.
_CONTEXT_DOTTED = regex.compile(rf"(?i:\b(?:{_PERSON_BEFORE}|{_WRITER_BEFORE})\b)\.?[ \t]*[:,(]?[ \t]*"
                                rf"(\p{{Lu}}\.(?:[ \t]?\p{{Lu}}\.){{0,2}})(?![ \t]*{_SPECIES}\b)(?=[\s,;:)]|$)")
# "pt JM", "daughter (KL)": undotted initials only straight after a patient or kinship word.
_CONTEXT_UNDOTTED = regex.compile(rf"(?i:\b{_PERSON_BEFORE}\b)\.?[ \t]*[:,(]?[ \t]*(\p{{Lu}}{{2,3}})(?=[\s,;:.)]|$)")


# An initial glued to a surname, as typed in a hurry: "Contact:E.Farrow(dtr)", "per J.R.Okafor" (not "E.Coli").
_GLUED_INITIAL = regex.compile(rf"(?<![\w.])(?:\p{{Lu}}\.){{1,2}}{_SURNAME}(?<!(?i:{_SPECIES}))")
# A name spelled letter by letter: "K-O-W-A-L-S-K-I", "spelled S M Y T H E". Joined by hyphens, four letters or more
# will do; spaced or dotted letters need a spelling word before them. Never an abbreviation (C-O-P-D) or the
# alphabet in order (A-B-C-D, as in a trail test).
_SPELLED_HYPHENS = regex.compile(r"(?<![\w-])\p{Lu}(?:-\p{Lu}){3,}(?![\w-])")
_SPELLED_CUE = regex.compile(r"(?i:\bspel(?:led|t|ls|ling)(?:[ \t]+(?:it|as|out))?)[ \t]*[:,]?[ \t]*"
                             r"(\p{Lu}(?:[ \t.-]{1,2}\p{Lu}){2,})(?![\w])")


def _letters(text: str) -> str:
    return "".join(ch for ch in text if ch.isalpha())


def _spelled_name(text: str) -> bool:
    letters = _letters(text)
    alphabet = all(ord(b) - ord(a) == 1 for a, b in zip(letters, letters[1:]))
    return letters not in _NOT_INITIALS and not alphabet


def spelled_name_spans(sentence: str) -> list[Span]:
    spans = [("name", m.start(), m.end()) for m in _SPELLED_HYPHENS.finditer(sentence) if _spelled_name(m.group(0))]
    spans += [("name", m.start(1), m.end(1)) for m in _SPELLED_CUE.finditer(sentence) if _spelled_name(m.group(1))]
    return spans + [("name", m.start(), m.end()) for m in _GLUED_INITIAL.finditer(sentence)]


def initials_spans(sentence: str) -> list[Span]:
    spans = [("name", m.start(), m.end()) for m in _TITLE_INITIAL.finditer(sentence)]
    spans += [("name", m.start(1), m.end(1)) for p in (_SIGNED, _INITIAL_SURNAME_CREDENTIAL) for m in p.finditer(sentence)]
    for pattern in (_DOTTED, _CONTEXT_DOTTED, _CONTEXT_UNDOTTED):
        spans += [("name", m.start(1), m.end(1)) for m in pattern.finditer(sentence)
                  if pattern is _CONTEXT_DOTTED or _letters(m.group(1)) not in _NOT_INITIALS]
    return spans


# -------------------------------------------------------------------------------------- intersections

_SUFFIX = (r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Court|Ct|Way|Place|Pl|Terrace|Ter|"
           r"Circle|Cir|Highway|Hwy|Parkway|Pkwy|Square|Sq|Trail|Trl|Pike|Alley|Crescent)\.?")
_STREET_WORD = r"(?:\p{Lu}[\p{L}'’]*|\d{1,3}(?:st|nd|rd|th)|(?:First|Second|Third|Fourth|Fifth|Sixth|Seventh|Eighth|Ninth|Tenth))"
_STREET_NAME = rf"{_STREET_WORD}(?:[ \t]+{_STREET_WORD}){{0,2}}"
_ROUTE = r"(?:Route|Rte\.?|Highway|Hwy\.?|Interstate|State Route|US)[ \t]*\d{1,4}[A-Z]?|I-\d{1,3}"
_STREET = rf"(?:{_ROUTE}|{_STREET_NAME}(?:[ \t]+{_SUFFIX})?)"
_JOIN = r"[ \t]*(?:&|/|@|\band\b|\bat\b|\bmeets\b|\bcrosses\b|\bx\b)[ \t]*"
_CORNER = regex.compile(rf"(?i:\b(?:corner|intersection|junction|crossroads?|crossing)[ \t]+(?:of|at)[ \t]+)"
                        rf"(?:the[ \t]+)?{_STREET}{_JOIN}{_STREET}")
_SUFFIXED_CROSS = regex.compile(rf"(?:{_STREET_NAME}[ \t]+{_SUFFIX}|{_ROUTE}){_JOIN}{_STREET}")
_PLURAL_STREETS = regex.compile(rf"{_STREET_NAME}[ \t]+(?:and|&)[ \t]+{_STREET_NAME}[ \t]+"
                                r"(?i:streets|avenues|roads|sts\.?|aves\.?)\b")
_SLASH_CROSS = regex.compile(r"(?i:\b(?:at|on|near|to|by|from)[ \t]+)(\p{Lu}\p{Ll}{2,}[ \t]?/[ \t]?\p{Lu}\p{Ll}{2,})\b")


def intersection_spans(sentence: str) -> list[Span]:
    spans = []
    for pattern in (_CORNER, _SUFFIXED_CROSS, _PLURAL_STREETS):
        spans += [("street_address", m.start(), m.end()) for m in pattern.finditer(sentence)]
    spans += [("street_address", m.start(1), m.end(1)) for m in _SLASH_CROSS.finditer(sentence)]
    return spans


# ----------------------------------------------------------------------------- partial and masked numbers

_ID_NOUN = regex.compile(r"(?i)\b(?:number|no\.|num|card|visa|mastercard|amex|debit|credit|account|acct|mrn|chart|"
                         r"record|ssn|social|phone|cell|mobile|telephone|policy|member|subscriber|serial|device|plate|"
                         r"licen[cs]e|id|identifier|digits?|medicare|medicaid|insurance|vin|vehicle|registration|tag)\b|#")
_PARTIAL_CUE = regex.compile(r"(?i)\b(?:ending|ends|ended)(?:[ \t]+(?:in|with))?|\b(?:last|final|trailing)[ \t]+"
                             r"(?:(?:\d|one|two|three|four|five|six|seven)(?:[ \t]+digits?)?|digits?)\b")
_PARTIAL_DIGITS = regex.compile(r"(?<![\w.,/])((?=[A-Z]*\d[A-Z]*\d|\d{2})[0-9A-Z]{2,6}(?:-\d{2,4})?)(?![\d/.,]\d|\s*(?:%|mg|mcg|ml|kg|lbs?|units?|minutes?|"
                                r"min|hours?|days?|weeks?|months?|years?|points?|/))\b")
_MASKED = regex.compile(r"(?<![\w*•])(?:(?:[Xx*•#]{2,5}[-.]){1,4}\d{3,6}[A-Z]?|(?:[Xx*•]{4}[ \t]){2,3}\d{4}|"
                        r"[Xx*•]{3,}\d{3,6}[A-Z]?)(?![\w-])")


_ELLIPSIS_MASKED = regex.compile(r"(?:…|\.{3})[ \t]?(\d{3,6}[A-Z]?)\b")
# An SSN with its last digits masked: "412-77-xxxx", "412 77 ****", "412-XX-XXXX".
_MASKED_SSN = regex.compile(r"(?<![\w-])\d{3}([-. /])(?:\d{2}|[Xx*•#]{2})\1[Xx*•#]{4}(?![\w-])")
# Digits spoken after a "last four" cue: "ends in oh-four-one-seven", "last four are six two two nine".
_SPOKEN_PARTIAL = regex.compile(r"(?i)(?:double[ \t-]+)?(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)"
                                r"(?:[ \t,-]+(?:double[ \t-]+)?(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)){2,5}\b")


def _partial_span(sentence: str, cue: regex.Match) -> Span | None:
    """The digits after a "last four" / "ending in" cue, when an identifier noun is near (before or between)."""
    tail = sentence[cue.end():cue.end() + 60]
    digits = _PARTIAL_DIGITS.search(tail)
    spoken = _SPOKEN_PARTIAL.search(tail)
    if spoken and (not digits or spoken.start() < digits.start()) and not tail[:spoken.start()].strip(" \t:,-'\"(").strip():
        digits = spoken  # spoken digits straight after the cue
    if not digits or regex.search(r"[.;!?](?:\s|$)", tail[:digits.start()]):
        return None
    context = sentence[max(0, cue.start() - 40):cue.end()] + tail[:digits.start()]
    if not _ID_NOUN.search(context):
        return None
    group = 1 if digits.re is _PARTIAL_DIGITS else 0
    return ("id_number", cue.end() + digits.start(group), cue.end() + digits.end(group))


def partial_number_spans(sentence: str) -> list[Span]:
    spans = [span for cue in _PARTIAL_CUE.finditer(sentence) if (span := _partial_span(sentence, cue))]
    spans += [("id_number", m.start(), m.end()) for m in _MASKED.finditer(sentence)]
    spans += [("ssn", m.start(), m.end()) for m in _MASKED_SSN.finditer(sentence)]
    spans += [("id_number", m.start(1), m.end(1)) for m in _ELLIPSIS_MASKED.finditer(sentence)
              if _ID_NOUN.search(sentence[max(0, m.start() - 25):m.start()])]
    return spans


# ------------------------------------------------------------------------------------ spelled-out digits

_DIGIT_WORDS = "zero|oh|one|two|three|four|five|six|seven|eight|nine"
_DIGIT_TOKEN = rf"(?:(?:double|triple)[ \t-]+)?(?:{_DIGIT_WORDS})|\d{{1,4}}"
_DIGIT_RUN = regex.compile(rf"(?i)\b(?:{_DIGIT_TOKEN})(?:[ \t,.-]+(?:{_DIGIT_TOKEN}))+\b")
# A digit-span test reads digits aloud; serial sevens count down.
_DIGIT_TEST = regex.compile(r"(?i)\b(?:digits?|span|forward|backwards?|serial|recited?|repeated|count(?:s|ed|ing)?)\b")
_KIND_CONTEXT = [("fax", r"\bfax"), ("zip", r"\b(?:zip|postal|post ?code)"), ("ssn", r"\b(?:ssn|social)"),
                 ("id_number", r"\b(?:mrn|record|account|acct|member|policy|id)\b")]


def _digit_count(text: str) -> tuple[int, int]:
    """(digits spelled or written, digit words) in a run of digit tokens."""
    digits = words = 0
    for token in regex.findall(rf"(?i)(?:double|triple)[ \t-]+(?:{_DIGIT_WORDS})|{_DIGIT_WORDS}|\d+", text):
        low = token.lower()
        if low[0].isdigit():
            digits += len(low)
            continue
        words += 1
        digits += 3 if low.startswith("triple") else 2 if low.startswith("double") else 1
    return digits, words


def _spelled_kind(sentence: str, start: int) -> str | None:
    before = sentence[max(0, start - 40):start].lower()
    for kind, cue in _KIND_CONTEXT:
        if regex.search(cue, before):
            return kind
    return None


_DIGIT_VALUE = {w: i for i, w in enumerate("zero one two three four five six seven eight nine".split())} | {"oh": 0}


def _counting(text: str) -> bool:
    """One, two, three, ...: each word one more (or less) than the last is counting, unless a label before
    says it is a number ("SSN one two three, four five, ...")."""
    values = [_DIGIT_VALUE.get(w.lower()) for w in regex.findall(r"\p{L}+|\d+", text)]
    if None in values or len(values) < 4:
        return False
    steps = {b - a for a, b in zip(values, values[1:])}
    return steps in ({1}, {-1})


# Plates and codes read in the NATO alphabet, with digits: "eight kilo romeo lima two two one".
_NATO = (r"(?:alpha|alfa|bravo|charlie|delta|echo|foxtrot|golf|hotel|india|juliett?|kilo|lima|mike|november|oscar|"
         r"papa|quebec|romeo|sierra|tango|uniform|victor|whiske?y|x-?ray|yankee|zulu)")
_NATO_RUN = regex.compile(rf"(?i)\b(?:{_NATO}|{_DIGIT_WORDS}|\d{{1,4}})(?:[ \t,-]+(?:{_NATO}|{_DIGIT_WORDS}|\d{{1,4}}))+\b")
_VEHICLE_CUE = regex.compile(r"(?i)\b(?:plates?|tags?|registration|reg|licen[cs]e|car|vehicle|truck|van|sedan|suv)\b")


def _nato_spans(sentence: str) -> list[Span]:
    """Five tokens or more, two of them NATO letters and one a digit: a plate (after a vehicle word) or a code."""
    spans = []
    for m in _NATO_RUN.finditer(sentence):
        tokens = regex.findall(rf"(?i){_NATO}|{_DIGIT_WORDS}|\d+", m.group(0))
        letters = sum(bool(regex.fullmatch(rf"(?i){_NATO}", t)) for t in tokens)
        if len(tokens) >= 5 and letters >= 2 and len(tokens) > letters:
            vehicle = _VEHICLE_CUE.search(sentence[max(0, m.start() - 40):m.start()])
            spans.append(("vehicle_id" if vehicle else "id_number", m.start(), m.end()))
    return spans


def spelled_digit_spans(sentence: str) -> list[Span]:
    if _DIGIT_TEST.search(sentence):
        return []
    spans = _nato_spans(sentence)
    for m in _DIGIT_RUN.finditer(sentence):
        digits, words = _digit_count(m.group(0))
        kind = _spelled_kind(sentence, m.start())
        if words >= 3 and (digits >= 7 or (kind and digits >= 5)) and (kind or not _counting(m.group(0))):
            spans.append((kind or "phone", m.start(), m.end()))
    return spans


# -------------------------------------------------------------------- dates, ages, places, contact, codes

_MONTHS = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
           r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?")
_YEAR = r"(?:19|20)\d{2}"
_UNIT_ORDINAL = r"(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth)"
_ORDINAL_WORD = (rf"(?:{_UNIT_ORDINAL}|tenth|eleventh|twelfth|thirteenth|"
                 r"fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|thirtieth|"
                 rf"(?:twenty|thirty)[ -]{_UNIT_ORDINAL})")
_WEEKDAY = r"(?:Mon|Tue|Tues|Wed|Thu|Thur|Thurs|Fri|Sat|Sun)(?:day|nesday|sday|urday)?\.?"
# Month names in German, French, Spanish, Italian and Portuguese, only with a day number before or a year after.
_FOREIGN_MONTH = (r"(?:januar|februar|märz|maerz|mai|juni|juli|oktober|dezember|janvier|février|fevrier|mars|avril|juin|"
                  r"juillet|août|aout|septembre|octobre|novembre|décembre|decembre|enero|febrero|marzo|abril|mayo|junio|"
                  r"julio|agosto|septiembre|setiembre|octubre|noviembre|diciembre|gennaio|febbraio|aprile|maggio|giugno|"
                  r"luglio|settembre|ottobre|dicembre|janeiro|fevereiro|março|marco|maio|junho|julho|setembro|outubro|"
                  r"dezembro)")
_AGE = r"(?:9\d|1[01]\d)"
_NOT_AGE_AFTER = (r"(?![ \t]*(?:%|mg|mcg|ml|kg|lbs?|/|percent|points?|feet|ft|yards|meters|metres|miles|steps|minutes|"
                  r"seconds|units|mm|bpm|beats|times|dollars|words|pieces))")
_TOWN = r"\p{Lu}\p{Ll}+(?:[ \t-]\p{Lu}\p{Ll}+)?"
_STATES = ("AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC "
           "ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC PR").split()
_CC_TLD = r"(?:de|uk|fr|ca|au|in|ch|nl|jp|cn|br|es|it|ru|mx|ie|nz|za|ng|ke|gh|se|no|dk|fi|pl|pt|be|at|il|kr|ph|pk|tr|gr|ar|co)"
# Month names in any case (dictation is often lower case), and number words.
_MONTH_FULL = (r"(?:january|february|march|april|may|june|july|august|september|october|november|december|"
               r"jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)")
_UNIT_WORD = r"(?:one|two|three|four|five|six|seven|eight|nine)"
_TEEN_WORD = r"(?:ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen)"
_TENS_WORD = r"(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)"
_DAY_NUM = r"(?:[12]\d|3[01]|0?[1-9])"
# Months in Roman numerals ("3.ix.1930", "12-XI-1928"), in one case.
_ROMAN_MONTH = r"(?:i|ii|iii|iv|v|vi|vii|viii|ix|x|xi|xii|I|II|III|IV|V|VI|VII|VIII|IX|X|XI|XII)"
# Japanese eras (Meiji 1868, Taishō 1912, Shōwa 1926, Heisei 1989, Reiwa 2019): "昭和6年3月2日", "Showa 6".
_JP_ERA = r"(?:明治|大正|昭和|平成|令和)"
_JP_ERA_LATIN = r"(?:Meiji|Taish[oō]|Sh[oō]wa|Heisei|Reiwa)"


def _years_up_to(last: int) -> str:
    """A pattern for the four-digit years 1800..last ("18\\d\\d|19[0-2]\\d|193[0-6]" for 1936)."""
    century, decade, unit = last // 100, last // 10 % 10, last % 10
    parts = [f"{c}\\d\\d" for c in range(18, century)]
    if decade:
        parts.append(f"{century}[0-{decade - 1}]\\d")
    parts.append(f"{century}{decade}[0-{unit}]")
    return "(?:" + "|".join(parts) + ")"


# A year of birth 90 or more years before this year is an age over 89 ("b. 1929", "born 1931"). The note's own
# year is unknowable here, so this year stands in for it: a note written years ago is judged as if written now,
# which can only flag more (a birth year of 1940 in a 2020 note is missed until 2030, never wrongly passed later).
_OLD_BIRTH_YEAR = _years_up_to(datetime.date.today().year - 90)
# Spoken ages in Spanish and Portuguese: "noventa y cuatro", "noventa e dois", "cien años".
_SPANISH_UNIT = r"(?:uno|una|um|uma|dos|dois|duas|tres|tr[eê]s|cuatro|quatro|cinco|seis|siete|sete|ocho|oito|nueve|nove)"
# A house number in words: "twenty-two", "one forty", "nineteen oh five", "seven".
_NUMBER_WORD = rf"(?:{_TENS_WORD}(?:[ \t-]{_UNIT_WORD})?|{_TEEN_WORD}|{_UNIT_WORD}|hundred|oh[ \t-]{_UNIT_WORD})"
# Words that cannot name a street after a number word: "one hour drive", "two more ways", "three lane road".
_NOT_STREET_NAME = (rf"(?:{_SUFFIX}|the|a|an|of|and|or|to|in|on|at|by|for|from|with|more|less|other|different|long|short|"
                    r"hours?|minutes?|days?|weeks?|months?|years?|miles?|blocks?|doors?|houses?|steps?|times?|lanes?|"
                    r"way|down|up|along|across|over|off|away|back|each|per|car|bus|time|point|level|stage)")
_STREET_WORD_LOWER = rf"(?!{_NOT_STREET_NAME}\b)[\p{{L}}][\p{{L}}'’]+"
_DIRECTION = r"(?:[NSEW]\.?|North|South|East|West)"
PARK = (r"(?:MHP|MHC|Mobile[ \t]+Home[ \t]+(?:Park|Estates|Court|Community|Village)|Trailer[ \t]+(?:Park|Court)|"
         r"RV[ \t]+Park|Manufactured[ \t]+(?:Home[ \t]+)?Community)")
_EMAIL_HOST = (r"(?:gmail|googlemail|yahoo|ymail|hotmail|outlook|aol|icloud|comcast|verizon|att|sbcglobal|msn|live|"
               r"protonmail|proton|gmx|mail|earthlink|cox|charter|bellsouth)")

# Worn, implanted and home devices whose number is a device identifier.
_DEVICE_WORD = (r"(?:transmitter|bracelet|pendant|tracker|locator|beacon|pump|pacemaker|defibrillator|implant|"
                r"hearing[ \t]+aids?|processor|stimulator|sensor|monitor|receiver|cpap|bipap|concentrator|glucometer|"
                r"wheelchair|walker|scooter|watch|alarm|device|telecare|lifeline|careline)s?")

# (type, pattern, flags, group): group 0 = the whole match is the identifier.
_PATTERNS: list[tuple[str, str, int, int]] = [
    # --- dates
    ("date", rf"\b(?i:(?:the[ \t]+)?{_ORDINAL_WORD}[ \t]+(?:day[ \t]+)?of)[ \t]+{_MONTHS}(?:,?[ \t]+{_YEAR})?\b", 0, 0),
    # "March the fourth", "June second, 2020", "on May first" (not "May first be seen": a verb)
    ("date", rf"\b{_MONTHS}[ \t]+(?i:the[ \t]+{_ORDINAL_WORD})\b(?:,?[ \t]+{_YEAR}\b)?", 0, 0),
    ("date", rf"\b{_MONTHS}[ \t]+(?i:{_ORDINAL_WORD}),?[ \t]+{_YEAR}\b", 0, 0),
    ("date", rf"\b{_MONTHS}[ \t]+the[ \t]+\d{{1,2}}(?:st|nd|rd|th)\b", 0, 0),
    ("date", rf"(?i:\b(?:on|since|until|till|by|before|after|from|of|dated)[ \t]+)({_MONTHS}[ \t]+(?i:{_ORDINAL_WORD}))\b", 0, 1),
    ("date", rf"\b{_WEEKDAY},?[ \t]+(\d{{1,2}}/\d{{1,2}})(?![/\d])", 0, 1),
    ("date", rf"\b{_WEEKDAY},?[ \t]+(?:the[ \t]+)?(?:\d{{1,2}}(?:st|nd|rd|th)|(?i:{_ORDINAL_WORD}))\b", 0, 0),
    ("date", r"(?i:\b(?:on|since|until|till|by|before|after)[ \t]+the[ \t]+)(\d{1,2}(?:st|nd|rd|th))\b"
             r"(?=[ \t]*(?:[,.;:)]|$)|[ \t]+(?:at|when|of[ \t]+(?:this|last|next|that)[ \t]+month)\b)", 0, 1),
    ("date", rf"\b{_MONTHS}[ \t]*['’]\d{{2}}\b", 0, 0),
    ("date", r"\b(?i:spring|summer|fall|autumn|winter)[ \t]+(?:of[ \t]+)?['’]\d{2}\b", 0, 0),
    ("date", rf"\b\d{{1,2}}\.?[ \t]+(?:de[ \t]+)?(?i:{_FOREIGN_MONTH})(?:[ \t]+(?:de[ \t]+)?{_YEAR})?(?![\p{{L}}])", 0, 0),
    ("date", rf"\b(?i:{_FOREIGN_MONTH})[ \t]+(?:de[ \t]+)?{_YEAR}\b", 0, 0),
    ("date", r"\d{2,4}[ \t]?年[ \t]?\d{1,2}[ \t]?月(?:[ \t]?\d{1,2}[ \t]?日)?|\d{1,2}[ \t]?月[ \t]?\d{1,2}[ \t]?日", 0, 0),
    ("date", rf"{_JP_ERA}[ \t]?(?:\d{{1,2}}|元)[ \t]?年(?:[ \t]?\d{{1,2}}[ \t]?月(?:[ \t]?\d{{1,2}}[ \t]?日)?)?", 0, 0),
    ("date", rf"\b{_JP_ERA_LATIN}[ \t]+\d{{1,2}}\b(?:[ \t]*[./-][ \t]*\d{{1,2}}(?:[ \t]*[./-][ \t]*\d{{1,2}})?)?", 0, 0),
    # Roman-numeral months: "3.ix.1930", "12-XI-28"; a space between only before a four-digit year ("2 x 10" is a dose)
    ("date", rf"\b{_DAY_NUM}(?:[./-]{_ROMAN_MONTH}[./-](?:{_YEAR}|\d{{2}})|[ \t]+{_ROMAN_MONTH}[ \t]+{_YEAR})\b", 0, 0),
    # day ranges: "12–14 Feb 2024", "3-5th of March", "Feb 12–14, 2024"
    ("date", rf"\b{_DAY_NUM}(?:st|nd|rd|th)?[ \t]*[–—-][ \t]*{_DAY_NUM}(?:st|nd|rd|th)?[ \t]+(?:of[ \t]+)?{_MONTHS}"
             rf"(?:,?[ \t]+{_YEAR})?\b", 0, 0),
    ("date", rf"\b{_MONTHS}[ \t]+{_DAY_NUM}(?:st|nd|rd|th)?[ \t]*[–—-][ \t]*{_DAY_NUM}(?:st|nd|rd|th)?\b(?:,?[ \t]+{_YEAR}\b)?", 0, 0),
    # month and year joined by a dash or slash, in any case: "Apr-2023", "SEP/2019", "Mar-23"
    ("date", rf"(?<![\w-])(?i:{_MONTHS})[-/](?:{_YEAR}|\d{{2}})(?![\w/-])", 0, 0),
    # dictated, lower-case: "march third", "on june 2nd", "may the first" ("may first be seen" is a verb)
    ("date", rf"(?i)\b(?!may\b){_MONTH_FULL}\.?[ \t]+(?:the[ \t]+)?(?:{_ORDINAL_WORD}|\d{{1,2}}(?:st|nd|rd|th))\b", 0, 0),
    ("date", rf"(?i)\bmay[ \t]+the[ \t]+(?:{_ORDINAL_WORD}|\d{{1,2}}(?:st|nd|rd|th))\b", 0, 0),
    # a day and a capitalised month joined by a dash, without a year, a weekday before it or not: "Mon 13-May", "2-Sept"
    ("date", rf"(?:\b{_WEEKDAY},?[ \t]+)?(?<![\w./-]){_DAY_NUM}[-/][ \t]?{_MONTHS}(?![\w-])", 0, 0),
    # masked dates, the day or month hidden and the year kept: "05/XX/1931", "XX/xx/1928", "1931-05-XX"
    ("date", rf"(?<![\w/.-])(?:(?:\d{{1,2}}|[Xx*#]{{2}})([/.-])[Xx*#]{{2}}|[Xx*#]{{2}}([/.-])\d{{1,2}})(?:\1|\2){_YEAR}(?![\w/])|"
             rf"(?<![\w/.-]){_YEAR}([/.-])(?:\d{{1,2}}|[Xx*#]{{2}})\3[Xx*#]{{2}}(?![\w/])", 0, 0),
    # after a birth-date word, a date with a two-digit year in either order: "DOB 31/12/30", "born 3.4.29"
    ("date", rf"(?i:\b(?:DOB|D\.O\.B\.?|born|b\.|date[ \t]+of[ \t]+birth|birth[ \t]?date)[ \t]*[:#-]?[ \t]*)"
             rf"({_DAY_NUM}([/.-]){_DAY_NUM}\2\d{{2}})(?![\w/.-]?\d)", 0, 1),
    # --- ages over 89
    ("age_over_89", rf"(?i:\b(?:she|he|patient|pt|who|they)[ \t]+(?:will|would|shall)[ \t]+(?:soon[ \t]+)?(?:have[ \t]+)?"
                    rf"(?:be|been|turn)[ \t]+)({_AGE})\b{_NOT_AGE_AFTER}", 0, 1),
    ("age_over_89", rf"(?i:\b(?:man|woman|male|female|gentleman|lady|patient|pt|widow|widower|resident|veteran|"
                    rf"mother|father|grandmother|grandfather|husband|wife))[ \t]*\([ \t]*({_AGE})[ \t]*\)", 0, 1),
    ("age_over_89", rf"(?i:\b(?:turns?|turned|turning|reach\w*|aged?|is|was|now|nearly|almost)[ \t]+)"
                    rf"((?i:a[ \t]+hundred(?:[ \t]+and[ \t]+\w+)?))\b{_NOT_AGE_AFTER}", 0, 1),
    ("age_over_89", rf"(?i:\b(?:celebrat\w+|turn\w*|reach\w*|mark\w*|approach\w*)[ \t]+(?:his|her|their)[ \t]+)"
                    rf"({_AGE}(?:st|nd|rd|th))\b", 0, 1),
    # sex and age together: "M/91", "91/F", "94F", "92 M" (not a temperature: "T 101F", "fever up to 102 F")
    ("age_over_89", rf"(?<![\w/.])[MF][ \t]?/[ \t]?{_AGE}(?![\w/.])|(?<![\w/.])\b{_AGE}[ \t]?/[ \t]?[MF](?![\w/])", 0, 0),
    ("age_over_89", rf"(?<!(?i:\b(?:t|temp\w*|fever\w*|febrile|pyrexi\w*|tmax|oral|axillary|rectal|degrees?)\b)[^.;!?]{{0,40}})"
                    rf"(?<![\w/.,$°-]){_AGE}[ \t]?[MF]\b(?![/.]\w)", 0, 0),
    # years and months: "92y 4m", "91 yrs 2 mo", "93y"
    ("age_over_89", rf"(?<![\w.,/]){_AGE}(?:[ \t]?y(?:rs?|ears?)?[ \t,]*\d{{1,2}}[ \t]?m(?:o|os|ths?|onths?)?\b|y(?![\w/]))", 0, 0),
    # "in her 95th year", "in his ninety-second year", "in her hundredth year"
    ("age_over_89", rf"(?i)\bin[ \t]+(?:his|her|their|the)[ \t]+(?:{_AGE}(?:st|nd|rd|th)|ninetieth|hundredth|"
                    rf"ninety[ \t-]{_UNIT_ORDINAL}|(?:one[ \t]+)?hundred[ \t]+(?:and[ \t]+)?{_UNIT_ORDINAL})[ \t]+year\b", 0, 0),
    # a year of birth 90 or more years ago: "b. 1929", "born 1931", "YOB 1930"
    ("age_over_89", rf"(?i:\b(?:b\.|born(?:[ \t]+in)?|yob|year[ \t]+of[ \t]+birth)[ \t]*:?[ \t]*)({_OLD_BIRTH_YEAR})\b(?![/.-]\d)", 0, 1),
    # Latin "aet." (aged) before an age: "aet. 95", "aetat 101"
    ("age_over_89", rf"(?i:\baet(?:at)?\.?)[ \t]*{_AGE}\b{_NOT_AGE_AFTER}", 0, 0),
    # French (and Belgian, Swiss) ages in words: "quatre-vingt-douze", "quatre-vingt-dix-sept", "nonante-trois", "cent ans"
    ("age_over_89", rf"(?i)(?:\bquatre[ \t-]vingts?[ \t-](?:dix(?:[ \t-](?:sept|huit|neuf))?|(?:et[ \t-])?onze|douze|treize|"
                    rf"quatorze|quinze|seize)|\bnonante(?:[ \t-](?:et[ \t-]un|deux|trois|quatre|cinq|six|sept|huit|neuf))?)\b"
                    rf"(?![ \t]+(?:minutes|secondes|euros|pour|fois|jours|mg|%))|\bcent(?:[ \t-]\w+)?[ \t]+ans\b", 0, 0),
    # Spanish and Portuguese: "noventa y cuatro", "noventa e dois", "cien años"
    ("age_over_89", rf"(?i)\bnoventa(?:[ \t]+[ye][ \t]+{_SPANISH_UNIT})?\b(?![ \t]+(?:minutos|segundos|pesos|d[oó]lares|por))|"
                    rf"\b(?:cien|ciento[ \t]+\w+|cem|cento[ \t]+e[ \t]+\w+)[ \t]+a(?:ñ|n)os\b", 0, 0),
    # --- places: "a village outside X", "commutes from X", "lives with her son in X", the town before a state + ZIP
    ("location", rf"(?i:\b(?:village|town|city|suburb|hamlet|municipality|province|district|outskirts|island)[ \t]+"
                 rf"(?:of|near|outside(?:[ \t]+of)?|in|called)[ \t]+)({_TOWN})", 0, 1),
    ("location", rf"(?i:\b(?:commut\w+|settled|retired|summers|winters|vacation\w*|relocat\w+)[ \t]+(?:back[ \t]+)?"
                 rf"(?:in|to|from|near|at)[ \t]+)({_TOWN})", 0, 1),
    ("location", rf"(?i:\b(?:lives?|lived|living|resides?|resided|stays?|stayed)[ \t]+with[ \t]+(?:her|his|their|a|an|the)"
                 rf"[ \t]+[\w-]+[ \t]+(?:in|near|outside)[ \t]+)({_TOWN})", 0, 1),
    ("location", rf"\b({_TOWN}),[ \t]+(?:{'|'.join(_STATES)})\.?,?[ \t]+\d{{5}}\b", 0, 1),
    # postcodes: a five-digit code before a town after a comma or a country letter ("…, 80331 München",
    # "F-75011 Paris"); UK ("LS6 3HN", "SW1A 1AA") and Canadian ("H2X 1Y4") postcodes, written with their space
    ("zip", rf"(?<=,)[ \t]*(\d{{5}})(?=[ \t]+{_TOWN}\b)", 0, 1),
    ("zip", rf"(?<=\b[A-Z]{{1,2}}-)\d{{4,5}}(?=[ \t]+{_TOWN}\b)", 0, 0),
    ("location", rf"(?:(?<=,)[ \t]*\d{{5}}|(?<=\b[A-Z]{{1,2}}-)\d{{4,5}})[ \t]+({_TOWN})\b", 0, 1),
    ("zip", r"\b[A-Z]{1,2}\d[A-Z\d]?[ \t]\d[ABD-HJLNP-UW-Z]{2}\b", 0, 0),
    ("zip", r"\b[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z][ \t-]\d[ABCEGHJ-NPRSTV-Z]\d\b", 0, 0),
    # Irish Eircodes: a routing key (a letter and two digits, or D6W), a space, four letters and digits with both ("A65 F4E2")
    ("zip", r"\b(?:[AC-FHKNPRTV-Y]\d{2}|D6W)[ \t](?=[0-9AC-FHKNPRTV-Y]{0,3}[AC-FHKNPRTV-Y])(?=[0-9AC-FHKNPRTV-Y]{0,3}\d)"
            r"[0-9AC-FHKNPRTV-Y]{4}\b", 0, 0),
    # --- addresses: French (and Portuguese) street numbers with bis/ter and a street type in either case: "14 bis rue
    # Victor-Hugo", "3ter, avenue des Lilas", "22 B chemin du Moulin"
    ("street_address", rf"\b\d{{1,4}}(?:[ \t]?(?:bis|ter|quater|[A-H]))?,?[ \t]+(?:rue|avenue|boulevard|bd|all[ée]e|impasse|chemin|"
                       rf"quai|place|cours|rua|travessa|Rue|Avenue|Boulevard|All[ée]e|Impasse|Chemin|Quai|Place|Cours|Rua|Travessa)"
                       rf"[ \t]+(?:(?:de|des|du|de[ \t]+la|la|le|les|da|do|dos|das)[ \t]+|d['’])?\p{{Lu}}[\p{{L}}'’-]*"
                       rf"(?:[ \t]+\p{{Lu}}[\p{{L}}'’-]*){{0,2}}", 0, 0),
    # Japanese block addresses (chōme-banchi-gō) before a district: "2-14-7 Kichijōji-Honchō", "at 1-3-12 Nishi-Shinjuku",
    # "4-chōme 5-6"; the district has a macron or a Japanese ending, or an address word comes before
    ("street_address", rf"(?:(?<=(?i:\b(?:at|address(?:[ \t]+is)?|to|from)[ \t]+))|(?=[\d-]+[ \t,]+\p{{Lu}}[\p{{L}}-]*"
                       rf"(?:[ōūāŌŪ]|(?i:ch[oō]|machi|mura|ku|shi|cho)\b)))(?<![\w/.-])\d{{1,2}}-\d{{1,3}}-\d{{1,3}}(?:[ \t]+|,[ \t]*)"
                       rf"\p{{Lu}}[\p{{L}}'’]+(?:-\p{{Lu}}?[\p{{L}}'’]+)*", 0, 0),
    ("street_address", r"\b\d{1,2}[ \t-]?ch[oō]me[ \t,-]*\d{1,3}(?:-\d{1,3})?\b", _I, 0),
    # --- addresses: rural routes
    ("street_address", r"\b(?:RR|R\.R\.|Rural Route|HC|Star Route)[ \t]*#?[ \t]*\d+,?[ \t]+Box[ \t]+\d+\b", 0, 0),
    # a house number in words, as dictated: "lives at twenty-two harmon road", "at One Forty Elm Street"
    ("street_address", rf"(?i:\b(?:at|on|to|from|address(?:[ \t]+is)?)[ \t]+)((?i:{_NUMBER_WORD}(?:[ \t-]{_NUMBER_WORD}){{0,3}})"
                       rf"[ \t]+(?i:{_STREET_WORD_LOWER}(?:[ \t]+{_STREET_WORD_LOWER})?)[ \t]+(?i:{_SUFFIX}))\b", 0, 1),
    # US grid addresses: "1450 E 300 S", "220 North 1300 West"; rural fire numbers on county roads: "N4721 County Rd Q",
    # "W12010 State Hwy 21", "3150 County Road 12"
    ("street_address", rf"\b\d{{1,5}}[ \t]+{_DIRECTION}[ \t]+\d{{1,5}}[ \t]+{_DIRECTION}(?![\w-])", 0, 0),
    ("street_address", r"\b(?:[NSEW][ \t]?\d{3,6}|\d{1,6})[ \t]+(?:County|State|Co\.?|Township|Twp\.?)[ \t]+"
                       r"(?:Road|Rd|Highway|Hwy|Route|Rte|Trunk|Line)\.?[ \t]+(?:[A-Z]{1,2}|\d{1,4}[A-Z]?)\b", 0, 0),
    ("street_address", rf"\b[NSEW][ \t]?\d{{3,6}}[ \t]+(?:{_ROUTE}|{_STREET_NAME}[ \t]+{_SUFFIX}|(?:Road|Rd|Highway|Hwy)"
                       r"[ \t]+[A-Z0-9]{1,4}\b)", 0, 0),
    # mobile-home lots: "Lot 37, Sunny Acres MHP", "Space 12 at Pine Hollow Mobile Home Park"; the park alone is a place
    ("street_address", rf"\b(?:Lot|Space|Site|Pad|Trailer)[ \t]*#?[ \t]*\d{{1,4}}[A-Z]?,?[ \t]+(?:(?:at|in)[ \t]+)?"
                       rf"(?:the[ \t]+)?(?:\p{{Lu}}[\p{{L}}'’-]*[ \t]+){{1,4}}{PARK}\b", 0, 0),
    ("location", rf"\b(?:\p{{Lu}}[\p{{L}}'’-]*[ \t]+){{1,4}}{PARK}\b", 0, 0),
    # a landmark on a road: "behind the Cumberland Farms on Route 9", "across from the old mill off Pine St"
    ("street_address", rf"(?i:\b(?:behind|next[ \t]+to|across[ \t]+(?:the[ \t]+(?:street|road)[ \t]+)?from|opposite|beside|"
                       rf"past|near|by)[ \t]+the[ \t]+)(?:[\p{{L}}'’&-]+[ \t]+){{1,3}}(?i:on|off|along)[ \t]+"
                       rf"(?:{_ROUTE}|{_STREET_NAME}[ \t]+{_SUFFIX})", 0, 0),
    # --- contact: e-mail and URLs with country domains, compressed IPv6, phone numbers with a trunk 0
    ("email", rf"\b[\w.+-]+[ \t]*(?:\(at\)|\[at\]|[ \t]+at[ \t]+)[ \t]*[\w-]+[ \t]*(?:\(dot\)|\[dot\]|[ \t]+dot[ \t]+)[ \t]*"
              rf"{_CC_TLD}\b", _I, 0),
    ("url", rf"\b(?:[a-z0-9-]{{2,}}\.)+{_CC_TLD}/[^\s<>\"']*[^\s<>\"'.,;:)]", _I, 0),
    ("ip_address", r"(?<![\w:])(?=[0-9a-f:]*::)(?:[0-9a-f]{1,4}:{1,2}){2,7}[0-9a-f]{1,4}(?![\w:])", _I, 0),
    ("phone", r"(?<![\w.,/+-])0\d{2,4}[ \t.-]?\d{3,4}[ \t.-]?\d{3,4}(?![\w/-]|[.,]\d)", 0, 0),
    # a slash after the area code: "617/555-0143", "(617)/555 0143"; French digit pairs: "06 12 34 56 78"
    ("phone", r"(?<![\w/.-])\(?\d{3}\)?[ \t]?/[ \t]?\d{3}[ \t.-]\d{4}(?![\w/])", 0, 0),
    ("phone", r"(?<![\w.,/+-])0[1-9](?:[ \t.-]\d{2}){4}(?![\w/-]|[.,]\d)", 0, 0),
    # e-mail spoken without its domain ending: "bettyjean52 at yahoo"; the user name holds a digit, a dot or an
    # underscore, or an e-mail word comes before ("my email is betty at gmail")
    ("email", rf"(?i)\b[\w+-]*[\d._][\w.+-]*[ \t]+at[ \t]+{_EMAIL_HOST}\b(?:[ \t]+dot[ \t]+\w+)?", 0, 0),
    ("email", rf"(?i:\be-?mail\b[^.;!?]{{0,30}}?)\b([\w.+-]+[ \t]+at[ \t]+{_EMAIL_HOST}\b(?:[ \t]+dot[ \t]+\w+)?)", 0, 1),
    ("device_id", r"(?i:\b(?:serial(?:[ \t]+(?:number|no\.?|#))?|s/n|device[ \t]+(?:id|number)|asset[ \t]+tag))[ \t]*[:#]?[ \t]*"
                  r"((?=[A-Z0-9 -]*\d)[A-Z0-9]{1,6}(?:[ -][A-Z0-9]{1,6}){1,4})\b", 0, 1),
    ("id_number", r"(?i:\b(?:number|no\.|num|#|id))[ \t]*[:#]?[ \t]*((?=(?:\D{0,2}\d){6})\d{2,6}(?:[ \t-]\d{2,6}){1,4})\b"
                  r"(?![ \t]*(?:%|mg|mcg|ml|kg|units|/))", 0, 1),
    ("location", rf"\b\d{{1,6}}[A-Z]?[ \t]+(?:\p{{Lu}}[\p{{L}}'’.-]*[ \t]+){{1,3}}{_SUFFIX},[ \t]+({_TOWN})\b", 0, 1),
    # --- codes: slashed hospital numbers, registrations and UK-style plates
    ("id_number", r"(?i:\b(?:hospital|unit|reference|ref|case|file|patient|health)[ \t]+(?:number|no\.?|#))[ \t]*[:#]?[ \t]*"
                  r"((?=[A-Z0-9/-]*\d)[A-Z0-9]{1,6}(?:[/-][A-Z0-9]{1,8}){1,4})\b", 0, 1),
    ("vehicle_id", r"(?i:\breg(?:istration)?\.?(?:[ \t]+(?:no\.?|number|plate))?)[ \t]*[:#]?[ \t]*"
                   r"((?=[A-Z0-9 -]*[A-Z])(?=[A-Z0-9 -]*\d)[A-Z0-9]{2,4}[ -]?[A-Z0-9]{2,4})\b", 0, 1),
    ("vehicle_id", r"\b[A-Z]{2}\d{2}[ \t]?[A-Z]{3}\b", 0, 0),
    # IBANs: a country code, two check digits and groups of four ("GB94 BARC 2004 1573 9182 46")
    ("id_number", r"(?<![\w-])[A-Z]{2}\d{2}(?=(?:[ \t]?[A-Z0-9]){8})(?=(?:[A-Z \t]*\d){6})(?:[ \t]?[A-Z0-9]{4}){3,7}"
                  r"(?:[ \t]?[A-Z0-9]{1,3})?(?![\w-])", 0, 0),
    # a short number after a device word and "#" or "no.": "transmitter #7218", "pump no. 0412", "hearing aid #A221"
    ("device_id", rf"(?i:\b{_DEVICE_WORD})[ \t]*(?:#|(?i:no\.|number|id)[ \t]*#?)[ \t]*"
                  r"([A-Z]{0,3}\d{3,}[A-Z]?)\b", 0, 1),
    # ... also its unit and a number in spaced groups: "pendant unit no. LL 55 0912 37", "telecare base unit # TC 4410 82"
    ("device_id", rf"(?i:\b{_DEVICE_WORD}"
                  r"(?:[ \t]+(?:base[ \t]+)?(?:unit|box|hub|serial)))[ \t]*(?:#|(?i:no\.|number|id)[ \t]*#?)[ \t]*"
                  r"((?=(?:[A-Z \t-]*\d){3})(?:[A-Z]{1,3}[ \t-]?)?\d[\dA-Z]{0,6}(?:[ \t-]\d[\dA-Z]{0,6}){0,4})\b", 0, 1),
    # national health numbers after their label, spaced or not: CHI "120631 4472", NHS "943 476 5919", IHI, H&C, PHN, OHIP
    ("id_number", r"\b(?:CHI|NHS|HCN|H&C|IHI|PHN|OHIP|RAMQ|PPSN?|NIR|Medicare)(?:[ \t]+(?i:number|no\.?|num|#|id))?[ \t]*[:#]?"
                  r"[ \t]*(?:(?i:is|of)[ \t]+)?((?=(?:[ \t-]?\d){8})\d{2,6}(?:[ \t-]\d{2,6}){0,3}(?:-?[A-Z]{1,2}\b)?)\b", 0, 1),
    # a Scottish CHI number without its label: ten digits, the first six a birth date (ddmmyy), often spaced 6 + 4
    ("id_number", r"(?<![\w/.,-])(?:0[1-9]|[12]\d|3[01])(?:0[1-9]|1[0-2])\d{2}[ \t-]\d{4}(?![\w/-]|[.,]\d)", 0, 0),
]
_COMPILED = [(kind, regex.compile(pattern, flags), group) for kind, pattern, flags, group in _PATTERNS]


def _compiled_spans(compiled: list, sentence: str) -> list[Span]:
    """Spans of (kind, pattern, group) rules; a group that did not take part falls back to the whole match."""
    spans = []
    for kind, pattern, group in compiled:
        for m in pattern.finditer(sentence):
            g = group if m.group(group) is not None else 0
            if m.end(g) > m.start(g):
                spans.append((kind, m.start(g), m.end(g)))
    return spans


def pattern_spans(sentence: str) -> list[Span]:
    return _compiled_spans(_COMPILED, sentence)


# ------------------------------------------------ nicknames, day-of-month dates, licences, codes and files
# Added after the first look at phi_fresh_d.jsonl (written by someone who never saw the rules).

# A nickname comes after a cue and is usually quoted: 'goes by "Dot"', "known as 'Bud'", "nicknamed Sonny".
# Quoted, any cue will do; unquoted, only the cues that cannot introduce a thing ("called the pharmacy").
_NICK = r"\p{Lu}\p{Ll}+(?:-\p{Lu}?\p{Ll}+)?(?:[ \t]+\p{Lu}\p{Ll}+)?"
_NICK_CUE = (r"\b(?:go(?:es)?|went|going)[ \t]+by|\ba\.?k\.?a\.?|\bnick-?named|"
             r"\bprefers?[ \t]+(?:to[ \t]+be[ \t]+called|the[ \t]+name)|\banswers[ \t]+to")
# "called" needs a person before or after it: 'is called "Dot"', 'called her "Dot"'; 'staff called "Code Blue"' is an alarm.
_QUOTED_NICK = regex.compile(rf"(?i:{_NICK_CUE}|\bknown[ \t]+(?:to[ \t]+\w+[ \t]+)?as|\b(?:is|was|be|being|gets|got)[ \t]+called|"
                             rf"\bcall(?:s|ed)?[ \t]+(?:her|him|me)(?:self)?)"
                             rf"[ \t]*[:,]?[ \t]*"
                             rf"[\"“'‘]({_NICK})[\"”'’]")
_BARE_NICK = regex.compile(rf"(?i:{_NICK_CUE})[ \t]*[:,]?[ \t]*({_NICK})\b")


# A maiden name after its cue: "(née Dufresne)", "nee O'Hara", "geb. Müller", "maiden name Kowalczyk".
_MAIDEN = regex.compile(rf"(?i:\bn[ée]e|\bgeb\.|\bgeborene|\bmaiden[ \t]+name(?:[ \t]+(?:is|was))?)[ \t]*:?[ \t]+"
                        rf"(\p{{Lu}}[\p{{L}}\p{{M}}'’]+(?:[ \t-]\p{{Lu}}[\p{{L}}\p{{M}}'’]+)?)")


def nickname_spans(sentence: str) -> list[Span]:
    return [("name", m.start(1), m.end(1)) for pattern in (_QUOTED_NICK, _BARE_NICK, _MAIDEN) for m in pattern.finditer(sentence)]


# "fell on the 14th and was evaluated": a day of the month after a verb of something that happened. The
# ordinal must not be followed by a noun ("on the 3rd step", "on the 2nd trial"): only punctuation, a
# conjunction, a preposition or a pronoun may follow it.
_EVENT_VERB = (r"(?:fell|falls?|admitted|discharged|seen|died|passed|presented|evaluated|found|wandered|called|visited|"
               r"started|stopped|began|happened|occurred|arrived|returned|hospitali[sz]ed|transferred|scheduled|booked|"
               r"moved|injured|collapsed|operated|came|went|left|got[ \t]+lost)")
_AFTER_DAY = (r"(?=[ \t]*(?:[,;)]|\.(?:\s|$)|$)|[ \t]+(?i:and|but|or|when|while|at|around|after|before|during|with|"
              r"without|then|so|she|he|they|in|overnight)\b)")
_EVENT_DAY = regex.compile(rf"(?i:\b{_EVENT_VERB}\b)[^.;:!?]{{0,60}}?(?i:\bon[ \t]+the[ \t]+)"
                           rf"((?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th))\b{_AFTER_DAY}")


def event_day_spans(sentence: str) -> list[Span]:
    return [("date", m.start(1), m.end(1)) for m in _EVENT_DAY.finditer(sentence)]


# Licences: "license #RN 2381947" (letters, a space, digits), and a credential before a long number, which
# is that person's licence ("RN 2381947", "MD#0448211"). Five digits at least: "PT 3x/week" is a plan. After
# "licence", digits in spaced groups are one number ("license D4417 82290 51934").
_LICENCE = regex.compile(r"(?i:\blicen[cs]e[ds]?(?:[ \t]+(?:number|no\.?|num|id))?)[ \t]*[:#]?[ \t]*(?:(?i:is|of)[ \t]+)?"
                         r"((?:[A-Z]{1,5}[ \t#-]?)?\d[\d-]{3,}[A-Z]?(?:[ \t]\d{3,6}){0,4})\b")
_CREDENTIAL_NUMBER = regex.compile(rf"(?<![\w-]){_CREDENTIAL}[ \t]*[#:-]?[ \t]*\d{{5,9}}\b")


def licence_spans(sentence: str) -> list[Span]:
    spans = [("license", m.start(1), m.end(1)) for m in _LICENCE.finditer(sentence)]
    return spans + [("license", m.start(), m.end()) for m in _CREDENTIAL_NUMBER.finditer(sentence)]


# "<identifier word>#<digits>": an abbreviation or an identifier word joined to a number by "#" ("FP#558120",
# "badge #44120"); a biometric word nearby ("fingerprint", "retinal scan") makes it a biometric identifier.
# Billing and terminology codes written the same way ("CPT#99483", "ICD#") are codes, not a person's number.
_BILLING_ABBREVIATIONS = frozenset("CPT HCPCS ICD DRG NDC LOINC SNOMED RVU".split())
_HASH_ID = regex.compile(r"(?<![\w#])(\p{Lu}{1,6})[ \t]?#[ \t]?\d[\d-]{3,}\b|"
                         r"(?i:\b(?:fingerprint|finger[ \t-]print|biometric|retinal?|iris|palm|voice[ \t-]?print|facial|"
                         r"enrol(?:l)?ment|template|badge|token|fob|wristband|bracelet|patient|resident|member|client)"
                         r"(?:[ \t]+(?:id|number|no\.?|scan|print|template))?)[ \t]*#[ \t]*\w*\d[\w-]{2,}")
_BIOMETRIC_CUE = regex.compile(r"(?i)\b(?:fingerprint|finger[ \t-]print|biometric|retina|retinal|iris|palm|voice[ \t-]?print|"
                               r"facial|face[ \t]+scan|template)\b")


def hash_id_spans(sentence: str) -> list[Span]:
    spans = []
    for m in _HASH_ID.finditer(sentence):
        if m.group(1) and m.group(1) in _BILLING_ABBREVIATIONS:
            continue
        biometric = _BIOMETRIC_CUE.search(sentence[max(0, m.start() - 40):m.end()])
        spans.append(("biometric" if biometric else "id_number", m.start(), m.end()))
    return spans


# Photographs are identifiers (full-face and comparable images): camera and scan file names ("IMG_20240311_0932.jpg",
# "PXL_20231005.heic", "DSC_0042"), and any image file name holding a run of three or more digits.
_IMAGE_EXT = r"(?:jpe?g|png|heic|heif|gif|tiff?|bmp|webp|dng|raw|dcm|mp4|mov|avi)"
_IMAGE_FILE = regex.compile(rf"(?<![\w./-])(?=[\w-]*\d{{3}})[\w-]+\.(?i:{_IMAGE_EXT})\b|"
                            r"(?<![\w./-])(?:IMG|DSC|DSCN|DSCF|PXL|MVIMG|VID|PANO|SAM|PICT?)[_-]?\d{3,}[\w-]*")


def image_file_spans(sentence: str) -> list[Span]:
    return [("photo", m.start(), m.end()) for m in _IMAGE_FILE.finditer(sentence)]


# A research subject's number is a unique identifier: "as subject 117-0452", "participant no. 20-3318",
# "study ID 4471". Four digits at least, and not a count ("subject 1 of 12") or a quantity after it.
_STUDY_ID = regex.compile(r"(?i:\b(?:subject|participant|enrol(?:l)?ee|study[ \t]+(?:id|number|no\.?|code)|"
                          r"screening[ \t]+(?:id|number|no\.?)|randomi[sz]ation[ \t]+(?:id|number|no\.?))"
                          r"(?:[ \t]+(?:id|number|no\.?|code))?)[ \t]*[:#]?[ \t]*"
                          r"((?=(?:[A-Z-]*\d){4})[A-Z0-9]+(?:[-/][A-Z0-9]+)*)\b"
                          r"(?![ \t]*(?i:%|years?|yrs?|mg|kg|patients|subjects|participants))")


# Study subject ids written site_S_subject, as ADNI and other consortia do ("941_S_7120", "023_S_0058"), with or
# without a cue.
_SITE_SUBJECT = regex.compile(r"(?<![\w-])\d{2,4}_[A-Z]{1,2}_\d{3,6}(?![\w-])")


def study_id_spans(sentence: str) -> list[Span]:
    spans = [("unique_id", m.start(1), m.end(1)) for m in _STUDY_ID.finditer(sentence)]
    return spans + [("unique_id", m.start(), m.end()) for m in _SITE_SUBJECT.finditer(sentence)]


# ----------------------------------------------- added after the first look at phi_fresh_e.jsonl (written blind)
# Dictated dates with lower-case month names and spelled-out years, the town between a street address or PO box
# and a state + ZIP written without commas, "the X neighborhood", a name before a kinship word in parentheses,
# short links without a scheme, claim and account numbers in spaced groups, and names after Spanish honorifics.

_TWO_DIGITS = rf"(?:{_TENS_WORD}(?:[ \t-]{_UNIT_WORD})?|{_TEEN_WORD}|(?:oh|o)[ \t-]{_UNIT_WORD})"
# "nineteen eighty", "twenty twenty four", "nineteen thirty-one", "two thousand and five", "nineteen hundred"
_SPELLED_YEAR = (rf"(?:(?:nineteen|eighteen|twenty)[ \t-](?:hundred|{_TWO_DIGITS})|"
                 rf"two[ \t]+thousand(?:[ \t]+(?:and[ \t]+)?(?:{_TWO_DIGITS}|{_UNIT_WORD}))?)")
_KIN = (r"(?:son|daughter|wife|husband|mother|father|mom|mum|dad|sister|brother|niece|nephew|grandson|granddaughter|"
        r"cousin|aunt|uncle|friend|neighbou?r|partner|spouse|caregiver|carer|guardian|proxy|stepson|stepdaughter|"
        r"(?:son|daughter|brother|sister|mother|father)-in-law|grandmother|grandfather|aide|roommate|fianc[eé]e?|"
        r"dtr|dau|gdtr|gdau|gson|husb|hsb|bro|sis|nok|s/o|d/o|w/o)")
_NAME_WORD = r"\p{Lu}(?:[\p{Ll}\p{M}'’-]+|[ªº]\.?|\.)"

_DICTATION_AND_POSTAL_PATTERNS: list[tuple[str, str, int, int]] = [
    # "the fourteenth of february twenty twenty four": an ordinal word, "of", a month in any case, a year
    ("date", rf"(?i)\b(?:the[ \t]+)?{_ORDINAL_WORD}[ \t]+(?:day[ \t]+)?of[ \t]+{_MONTH_FULL}\b\.?"
             rf"(?:,?[ \t]+(?:{_YEAR}\b|{_SPELLED_YEAR}\b))?", 0, 0),
    # "february twenty twenty four", "August the twelfth, nineteen thirty-one": a month and a spelled-out year
    ("date", rf"(?i)\b{_MONTH_FULL}\.?(?:[ \t]+(?:the[ \t]+)?{_ORDINAL_WORD})?,?[ \t]+{_SPELLED_YEAR}\b", 0, 0),
    # "the first Tuesday of March 2021"
    ("date", rf"\b(?i:(?:the[ \t]+)?(?:first|second|third|fourth|fifth|last))[ \t]+{_WEEKDAY}[ \t]+(?i:of|in)[ \t]+"
             rf"{_MONTHS}(?:,?[ \t]+{_YEAR})?\b", 0, 0),
    # ISO date and time: "2024-11-05T09:30"
    ("date", rf"\b{_YEAR}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])T\d{{2}}:\d{{2}}(?::\d{{2}})?\b", 0, 0),
    # the town between a comma (after a street or PO box) or a preposition and a state + ZIP: "…, Wheelock VT 05851"
    ("location", rf"(?:(?<=,)|(?<=^)|(?i:\b(?:in|to|at|from|near)))[ \t]*({_TOWN})[ \t]+(?:{'|'.join(_STATES)})\.?,?"
                 rf"[ \t]+\d{{5}}(?:-\d{{4}})?\b", 0, 1),
    # "the Frogtown neighborhood", "the Garden District", "the neighbourhood of Frogtown"
    ("location", rf"\b(?i:the)[ \t]+({_TOWN})[ \t]+(?i:neighbou?rhood|district|village|barrio|borough)\b", 0, 1),
    ("location", rf"(?i:\b(?:neighbou?rhood|barrio|borough|parish)[ \t]+(?:of|called)[ \t]+)({_TOWN})", 0, 1),
    # PO boxes and rural routes with a letter after the box number: "RR 2 Box 71B", "PO Box 12A"
    ("street_address", r"\b(?:RR|R\.R\.|Rural[ \t]+Route|HC|Star[ \t]+Route)[ \t]*#?[ \t]*\d+,?[ \t]+Box[ \t]+\d+[A-Z]?\b|"
                       r"\b(?i:P\.?[ \t]?O\.?[ \t]+Box|Post[ \t]+Office[ \t]+Box)[ \t]+\d+[A-Z]?\b", 0, 0),
    # a capitalised word before a kinship word in parentheses is a name, even a month or a common word: "June (daughter)"
    ("name", rf"(?<![\p{{L}}])({_NAME_WORD}(?:[ \t]+{_NAME_WORD})?)[ \t]*\([ \t]*(?i:(?:his|her|their|pt['’]?s|"
             rf"the[ \t]+patient['’]s|patient['’]s)[ \t]+)?(?i:{_KIN})[ \t]*\)", 0, 1),
    # short links and hosts without a scheme: two dots or more ("photos.app.goo.gl/Xq7b"), or a short-link TLD ("bit.ly/x")
    ("url", r"\b(?=[a-z0-9-]*[a-z])[a-z0-9-]+(?:\.[a-z0-9-]{2,}){2,}/[a-z0-9][^\s<>\"']*[^\s<>\"'.,;:)]", _I, 0),
    ("url", r"\b[a-z0-9-]+\.(?:ly|gl|co|me|to|be|gd|link|app|page|ai|tv|cc|io|sh|im)/[a-z0-9][^\s<>\"']*[^\s<>\"'.,;:)]",
     _I, 0),
    # claim, case, account and plan numbers with letters, dashes and spaced digit groups: "claim number C-28 447 019"
    ("id_number", r"(?i:\b(?:claim|case|file|docket|appeal|reference|ref|acct|account|plan|policy|member|subscriber|"
                  r"group|certificate)(?:[ \t]+(?:number|no\.?|num|#|id))?)[ \t]*[:#]?[ \t]*(?:(?i:is|of)[ \t]+)?"
                  r"((?=(?:[A-Z -]{0,4}\d){5})[A-Z]{0,3}-?\d{1,6}(?:[ \t-]\d{2,6}){1,4})\b", 0, 1),
    # names after Spanish (and other) honorifics, with ordinal abbreviations and accents: "Sra. Inés Mª Castañeda"
    ("name", rf"\b(?:Sra|Srta|Sr|Dña|Doña|Don|Dra|Mme|Mlle|Frau|Herr)\.?[ \t]+({_NAME_WORD}(?:[ \t]+{_NAME_WORD}){{0,3}})", 0, 1),
]
_DICTATION_AND_POSTAL_COMPILED = [(kind, regex.compile(pattern, flags), group) for kind, pattern, flags, group in _DICTATION_AND_POSTAL_PATTERNS]


def dictation_and_postal_spans(sentence: str) -> list[Span]:
    return _compiled_spans(_DICTATION_AND_POSTAL_COMPILED, sentence)


# ------------------------------------------------ added after the first look at phi_fresh_h.jsonl (written blind)
# A care home named "X Court" after "at", "to", "from" or "in" ("settled well at Willow Court"), not a court of law;
# a month/day without a year after a verb of contact or care ("called 3/5", "done 6/12 by Dr. Weiss") or before a
# clock time ("3/5 @ 1430", "3/5 at 14:30"). UK notes write durations the same way (6/12 months, 6/52 weeks, 2/7
# days): such a number is never a date after "for", "over", "in", "x", "within", nor before "ago", "hx", "later".

_LEGAL_COURT = (r"(?:Crown|County|Family|Probate|Magistrates['’]?|Supreme|District|Superior|Federal|Juvenile|Circuit|"
                r"Housing|Claims|Appeals?|Drug|Health|Treatment|Municipal|City|State|Civil|Criminal|Coroners?['’]?s?|"
                r"Traffic|Tennis|Food|High|Youth|Sheriff|Tax|Land|Small|Mental|Veterans|Court|Basketball|Squash)")
_CARE_COURT = regex.compile(rf"(?i:\b(?:at|to|from|in|into))[ \t]+((?!{_LEGAL_COURT}\b)\p{{Lu}}\p{{Ll}}+"
                            rf"(?:[ \t]+(?!{_LEGAL_COURT}\b)\p{{Lu}}\p{{Ll}}+)?[ \t]+Court)\b(?![ \t]*(?:of|order|date|hearing)\b)")
_MONTH_DAY = r"(?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01])"
_CONTACT_VERB = (r"(?:called|phoned|rang|telephoned|e-?mailed|faxed|texted|messaged|contacted|visited|reviewed|done|"
                 r"admitted|discharged|transferred|died|attended)")
_NOT_A_DAY_AFTER = (r"(?:ago|hx|history|h/o|later|earlier|prior|previously|before|after|post|since|duration|course|old|"
                    r"of|on|off|correct|words|items|recall|trials|tasks|objects|points|score|scored)")
_CLOCK = r"(?:@|at)[ \t]*(?:[01]?\d|2[0-3]):?[0-5]\d(?:[ \t]*(?:h|hrs?|hours|am|pm))?\b"
# after the verb: only punctuation, the end, "by", "at"/"@" or "with" may follow ("done 6/12 by", "called 3/5 @ 1430")
_VERB_MONTH_DAY = regex.compile(rf"(?i:\b{_CONTACT_VERB})[ \t]+(?i:on[ \t]+)?({_MONTH_DAY})(?![\d/.])"
                                rf"(?=[ \t]*(?:[,;)@]|\.(?:\s|$)|$)|[ \t]+(?i:by|at|with|re|per)\b)")
# before a clock, only where a date can stand: at the start, after a comma, a semicolon, "on" or a weekday ("Pain
# 3/10 at 08:00" and "Orientation 4/5 at 10:30" are scores)
_MONTH_DAY_CLOCK = regex.compile(rf"(?:^|[;,(]|(?i:\bon)|\b{_WEEKDAY}\.?)[ \t]*({_MONTH_DAY})(?![\d/.])[ \t]*{_CLOCK}")
_DURATION_BEFORE = regex.compile(r"(?i:\b(?:for|over|in|x|within|past|last|next|every|about|around|approx|approximately|"
                                 r"each|per|q)[ \t]*|~[ \t]*)$")
# A scale, acuity or score just before the number makes it a fraction ("VA 6/12", "Snellen 6/9").
_FRACTION_CONTEXT = regex.compile(r"(?i:\b(?:acuity|VA|vision|visual|snellen|eye|eyes|score[sd]?|scale|MMSE|MoCA|ratio))\b")


def care_court_and_month_day_spans(sentence: str) -> list[Span]:
    spans = [("facility", m.start(1), m.end(1)) for m in _CARE_COURT.finditer(sentence)]
    if _FRACTION_CONTEXT.search(sentence):
        return spans
    for pattern in (_VERB_MONTH_DAY, _MONTH_DAY_CLOCK):
        for m in pattern.finditer(sentence):
            before, after = sentence[:m.start(1)], sentence[m.end(1):]
            if _DURATION_BEFORE.search(before) or regex.match(rf"[ \t]*(?i:{_NOT_A_DAY_AFTER})\b", after):
                continue
            if pattern is _MONTH_DAY_CLOCK and regex.search(r"\d/\d", before):
                continue  # a list of scores with their times: "Pain 3/10 at 08:00, 1/10 at 12:00"
            spans.append(("date", m.start(1), m.end(1)))
    return spans


RULES: list[Callable[[str], list[Span]]] = [
    other_script_spans, accented_name_spans, initials_spans, spelled_name_spans, intersection_spans, partial_number_spans,
    spelled_digit_spans, pattern_spans, nickname_spans, event_day_spans, licence_spans, hash_id_spans,
    image_file_spans, study_id_spans, dictation_and_postal_spans, care_court_and_month_day_spans,
]


def format_spans(sentence: str) -> list[Span]:
    """Every span the format rules find in one sentence."""
    return [span for rule in RULES for span in rule(sentence)]

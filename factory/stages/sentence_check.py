"""Sentence sanity check for bronze: is a generated row a clinical sentence at all?

A small model asked for sentences also writes list fragments ("1] 5,2,3,7,10,..."), attribute lines
echoed from the prompt ("severity: severe"), bare instructions ("Provide assistance"), JSON debris, runs
of another language, or the category definition copied back. This module rejects such rows cheaply and
explainably, with regexes and small word lists only (no model, no third-party import), before they reach
bronze or a judge.

Use::

    from factory.stages.sentence_check import sentence_problem

    problem = sentence_problem(text, definitions)   # None for a usable sentence, else a reason code

`definitions` is every text the sentence must not copy or nearly copy: the taxonomy's category
definitions (including the "none" definition) and, if wanted, the prompt's example sentence and its
attribute values. The reason codes, in the order they are tried (the first that applies is returned),
are the first items of `REASONS` (`REASON_CODES`). `sentence_problems(texts, definitions)` checks many
rows; `strip_item_marker(text)` removes a leading "1. " or "- " for callers that would rather keep a
numbered item than reject it as "list".

The check is deliberately lenient with real note style: numbers and units ("MoCA today was 19/30.",
"BP 132/84 on lisinopril."), abbreviations, section-prefixed sentences with a real clause
("Assessment: probable Alzheimer's disease, moderate stage.") and verbless exam fragments ("Lungs clear
to auscultation bilaterally.") all pass. There is no "no verb" test for that reason: clinical notes are
full of verbless sentences. It judges form, not content: whether the sentence shows its category is the
verify stage's question.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from difflib import SequenceMatcher

# (code, what it means). The order is the order of the checks.
REASONS: tuple[tuple[str, str], ...] = (
    ("empty", "no text, or only whitespace and punctuation"),
    ("markup", "JSON, code or markup debris: braces, quoted keys, code fences, HTML tags, snake_case ids"),
    ("prompt_debris", "text echoing the request instead of a note sentence: 'Here are', 'Sentence 1:', "
                      "'category:', 'Write 5 sentences', a bare instruction such as 'Provide assistance'"),
    ("numbers", "mostly numbers: a run of four or more bare numbers, or more numbers than words"),
    ("list", "a list rather than a sentence: a leading bullet or item number (strip it first with "
             "`strip_item_marker` to keep the row), items numbered in sequence, several lines, or five or "
             "more short comma-separated items with no sentence end"),
    ("key_value", "a 'key: value' fragment: a bare key ('HPI:'), a generation or metadata key "
                  "('severity: severe', 'setting: nursing home'), a lower-case key with a short value, or "
                  "several 'key: value' pairs. Note style such as 'Dx: mild cognitive impairment.' passes"),
    ("repetition", "the same word or phrase repeated over and over"),
    ("not_english", "mostly non-Latin script or accented letters, several function words of another "
                    "language, or unpronounceable letter runs"),
    ("heading", "a section heading in capitals with no sentence ('ASSESSMENT AND PLAN')"),
    ("too_few_words", "fewer than two tokens (a word plus a number such as 'MoCA 16/30.' is enough)"),
    ("truncated", "ends mid-sentence: on a comma, colon, dash or ellipsis, or on 'and', 'the', 'of' ..."),
    ("copies_definition", "a copy or near-copy of a category definition (or other prompt text passed in "
                          "`definitions`): a long shared word run, or most of its word pairs taken from it"),
)
REASON_CODES: tuple[str, ...] = tuple(code for code, _ in REASONS)

MIN_TOKENS = 2  # words and numbers

_WORD = re.compile(r"[^\W\d_](?:[^\W_]|['’\-](?=[^\W_]))*")  # a word: starts with a letter
_NORM_WORD = re.compile(r"[a-z0-9]+")

# --- markup -----------------------------------------------------------------------------------------
_MARKUP = [
    re.compile(r"[{}]"),
    re.compile(r"```|`[^`]+`"),
    re.compile(r"\[\s*[\"']|[\"']\s*\]"),          # ["...  or  ..."]
    re.compile(r"[\"']\s*:\s*[\"'\[{\d]"),          # "key": "value"
    re.compile(r"[\"'][A-Za-z_ ]{1,30}[\"']\s*:"),  # "key":
    re.compile(r"</?[A-Za-z][A-Za-z0-9]*\s*/?>"),   # <s>, </p>, <br/>
    re.compile(r"<\|[^|]*\|>"),                     # <|im_end|>
    re.compile(r"\\[nt\"]"),                        # escaped newline / tab / quote
    re.compile(r"\b[a-z]+_[a-z0-9_]+\b"),           # snake_case ids (category ids, JSON keys)
    re.compile(r"^\s*#{1,6}\s"),                    # markdown heading
    re.compile(r"\*\*"),                            # markdown bold
]

# --- prompt debris ----------------------------------------------------------------------------------
_DEBRIS_START = re.compile(
    r"^\W*(?:"
    r"(?:sentences?|examples?|outputs?|answers?|responses?|categor(?:y|ies)|labels?|inputs?|definitions?"
    r"|task|instructions?|assistant|user|system)\s*#?\s*\d*\s*[:=]"
    r"|here\s+(?:is|are)\s+(?:\d+|some|a few|several|the|an?|your|my)\b"
    r"|(?:sure|certainly|okay|of course|absolutely)\s*[,!.]"         # not "Okay to discharge home."
    r"|as an ai\b"
    r"|i(?:'m| am)\s+(?:sorry|an ai|happy|glad|unable)\b"
    r"|i\s+(?:can't|cannot|won't)\s+(?:help|provide|write|generate|assist)\b"
    r"|below\s+(?:is|are)\b"
    r"|the following\s+(?:is|are)\b"
    r"|let me\b"
    r")",
    re.IGNORECASE,
)
_DEBRIS_ANYWHERE = re.compile(
    r"\bsentence\s*#?\s*\d+\s*[:.)\]-]"                                  # "Sentence 2:"
    r"|\bexample\s*#?\s*\d+\s*[:.)\]-]"
    r"|\b(?:write|writes|writing|generate|generates|generating|create|provide|give|list|produce)\b"
    r"(?:\W+\w+){0,4}?\W+(?:sentences|examples)\b"    # "Write 5 different sentences" (not "write a sentence")
    r"|\b(?:this|the|each|every|that|a|given)\s+category\b"
    r"|\bcategor(?:y|ies)\s*[:\"'=]"
    r"|\bexample of the style\b|\bstand alone\b|\bde-?identified\b"
    r"|\bclinical notes? that are\b|\bnot related to alzheimer"
    r"|\bjson\b|\blanguage model\b|\bas an ai\b|\bprompt\s*:|\b(?:assistant|user|system)\s*:"
    r"|\b(?:i hope this helps|let me know if)\b",
    re.IGNORECASE,
)
# Instruction verbs that start a bare order copied from a prompt; only for very short rows.
_INSTRUCTION_VERBS = frozenset(
    "write generate provide create list describe output produce respond answer explain summarize "
    "rewrite classify label identify".split()
)
_INSTRUCTION_MAX_WORDS = 3

# --- numbers and lists ------------------------------------------------------------------------------
_TOKEN_SPLIT = re.compile(r"[\s,;]+")
_BULLET_START = re.compile(r"^\s*(?:[-*•·▪–—]\s+|\(?\d{1,2}\s*[.)\]:](?:\s+|(?=[A-Za-z]))|\(?[a-hA-H]\)\s+)")
_NUMBERED_ITEM = re.compile(r"(?:^|\s)\(?(\d{1,2})[.)\]]\s+(?=[A-Za-z])")
_LIST_ITEM_MAX_WORDS = 2
_LIST_MIN_ITEMS = 5

# --- key: value -------------------------------------------------------------------------------------
_KEY = r"[A-Za-z](?:[A-Za-z0-9/&'()\- ]{0,30}?[A-Za-z)])?"  # ends on a letter: not "at 10:30"
_KV_PAIR = re.compile(r"(?:^|[,;|\n]\s*)(" + _KEY + r")\s*:\s*(?=\S)")
_KV_START = re.compile(r"^\s*(" + _KEY + r")\s*:\s*(.*)$", re.DOTALL)
_KV_MAX_KEY_WORDS = 3
_KV_MAX_VALUE_WORDS = 3
# Keys of the generation prompt's attribute lines and of metadata, never a note's section label.
_META_KEYS = frozenset(
    "severity setting speaker assertion topic note section note_section section style tone attribute "
    "attributes category label labels type id name age gender sex date time source format".split()
)

# --- language ---------------------------------------------------------------------------------------
# Function words of other languages that are not also English words or common clinical abbreviations
# (so no "de", "la", "les" (LES), "des" (DES), "est" (est.), "para", "di" (DI), "se", "el", "die", ...).
_FOREIGN_WORDS = frozenset(
    # Spanish / Portuguese
    "las que una uno por pero como muy también está están tiene paciente dolor "
    "não uma com ele ela são "
    # French
    "avec dans pour une sont nous vous ils elle été être très "
    # German
    "und der ist mit nicht ein eine einen sind wird auf zu ich sie wir auch oder aber "
    # Italian / Dutch
    "che sono della questo het een niet zijn".split()
)
_ENGLISH_FUNCTION_WORDS = frozenset(
    "a an the and or but of to in on at for with from by as is are was were be been being has have had "
    "do does did not no nor this that these those it its he she his her him they them their we our you "
    "your i my me who which what when where while if than then there here so also very per after before "
    "over under since until into about without within during due daily".split()
)
_VOWELS = set("aeiouy")

# --- truncation -------------------------------------------------------------------------------------
_DANGLING_WORDS = frozenset("a an the and or of but because than whether nor".split())
_DANGLING_END = re.compile(r"(?:[,:;(/\-–—]|\.\.\.|…)\s*$")

# --- copies -----------------------------------------------------------------------------------------
_COPY_MIN_RUN = 6           # a shared run of this many words is a copy whatever the sentence's length
_COPY_SHORT_RUN = 4         # ... and a run of at least this many words that covers most of a short row
_COPY_SHORT_SHARE = 0.75
_COPY_BIGRAM_SHARE = 0.7    # share of the row's word pairs found in one definition
_COPY_BIGRAM_MIN_WORDS = 8


def sentence_problem(text: str, definitions: Iterable[str] = ()) -> str | None:
    """Why `text` is not a usable clinical sentence, as a reason code from `REASON_CODES`, or None.

    `definitions`: texts the sentence must not copy (category definitions; optionally the prompt's
    example and attribute values). The checks run in the order of `REASONS`; the first that applies is
    returned. Pure and cheap: no I/O, no model, a few regexes per row.
    """
    text = unicodedata.normalize("NFC", text or "").strip()
    words = _WORD.findall(text)
    if not words and not any(ch.isdigit() for ch in text):
        return "empty"
    for check in (_markup, _prompt_debris, _numbers, _list, _key_value, _repetition, _not_english):
        code = check(text, words)
        if code:
            return code
    if _heading(text, words):
        return "heading"
    if len(words) + _count_numbers(text) < MIN_TOKENS:
        return "too_few_words"
    if _truncated(text, words):
        return "truncated"
    if _copies_any(text, definitions):
        return "copies_definition"
    return None


def strip_item_marker(text: str) -> str:
    """`text` without one leading bullet or item number ("1. ", "- ", "b) "), for callers that would
    rather keep a numbered plan item than reject it as "list"."""
    return _BULLET_START.sub("", text, count=1).strip()


def sentence_problems(texts: Iterable[str], definitions: Iterable[str] = ()) -> list[str | None]:
    """`sentence_problem` for many rows with the same definitions."""
    definitions = list(definitions)
    return [sentence_problem(text, definitions) for text in texts]


# ---------------------------------------------------------------------------------------------------


def _markup(text: str, words: list[str]) -> str | None:
    return "markup" if any(p.search(text) for p in _MARKUP) else None


def _prompt_debris(text: str, words: list[str]) -> str | None:
    if _DEBRIS_START.search(text) or _DEBRIS_ANYWHERE.search(text):
        return "prompt_debris"
    if words and words[0].lower() in _INSTRUCTION_VERBS and len(words) <= _INSTRUCTION_MAX_WORDS:
        return "prompt_debris"
    return None


def _is_number(token: str) -> bool:
    token = token.strip("()[]{}.:+-–—~<>≈=%'\"")
    return bool(token) and any(ch.isdigit() for ch in token) and not any(ch.isalpha() for ch in token)


def _count_numbers(text: str) -> int:
    return sum(1 for t in _TOKEN_SPLIT.split(text) if _is_number(t))


def _numbers(text: str, words: list[str]) -> str | None:
    tokens = [t for t in _TOKEN_SPLIT.split(text) if t and any(ch.isalnum() for ch in t)]
    numeric = [_is_number(t) for t in tokens]
    run = longest = 0
    for is_number in numeric:
        run = run + 1 if is_number else 0
        longest = max(longest, run)
    count = sum(numeric)
    if longest >= 4 or (count and count > len(words)):
        return "numbers"
    return None


def _list(text: str, words: list[str]) -> str | None:
    if _BULLET_START.search(text) or "\n" in text.strip() or " | " in text:
        return "list"
    numbers = [int(n) for n in _NUMBERED_ITEM.findall(text)]
    if any(b == a + 1 for a, b in zip(numbers, numbers[1:])):  # "1. ... 2. ..." (not "HR 72. RR 16.")
        return "list"
    if text.rstrip()[-1:] in (".", "!", "?"):
        return None
    items = [item.strip() for item in re.split(r"[,;]", text) if item.strip()]
    # "memory loss, confusion, agitation, wandering, falls": short items and no sentence end.
    if len(items) >= _LIST_MIN_ITEMS and all(len(_WORD.findall(item)) <= _LIST_ITEM_MAX_WORDS for item in items):
        return "list"
    return None


def _key_value(text: str, words: list[str]) -> str | None:
    keys = [k for k in _KV_PAIR.findall(text) if len(k.split()) <= _KV_MAX_KEY_WORDS]
    if len(keys) >= 2:
        return "key_value"
    match = _KV_START.match(text)
    if not match or len(match.group(1).split()) > _KV_MAX_KEY_WORDS:
        return None
    key, value = match.group(1).strip(), match.group(2)
    value_words = [t for t in _TOKEN_SPLIT.split(value) if any(ch.isalnum() for ch in t)]
    if not value_words or key.lower().replace(" ", "_") in _META_KEYS:
        return "key_value"
    if key[0].islower() and len(value_words) <= _KV_MAX_VALUE_WORDS:
        return "key_value"
    return None


def _heading(text: str, words: list[str]) -> bool:
    """All capitals, no digits, no sentence end, two real words: 'GERIATRICS CONSULT', not 'BP 132/84.'"""
    return (not any(ch.islower() or ch.isdigit() for ch in text)
            and not text.endswith((".", "!", "?"))
            and sum(1 for w in words if len(w) >= 3) >= 2)


def _repetition(text: str, words: list[str]) -> str | None:
    lowered = [w.lower() for w in words]
    run = 1
    for previous, current in zip(lowered, lowered[1:]):
        run = run + 1 if current == previous else 1
        if run >= 3:
            return "repetition"
    if len(lowered) < 6:
        return None
    content = Counter(w for w in lowered if w not in _ENGLISH_FUNCTION_WORDS)
    if content and (top := content.most_common(1)[0][1]) >= 4 and top / len(lowered) > 0.3:
        return "repetition"
    trigrams = Counter(zip(lowered, lowered[1:], lowered[2:]))
    if trigrams and trigrams.most_common(1)[0][1] >= 3:
        return "repetition"
    return None


def _not_english(text: str, words: list[str]) -> str | None:
    letters = [ch for ch in text if ch.isalpha()]
    if letters:
        non_latin = sum(1 for ch in letters if not _is_latin(ch))
        accented = sum(1 for ch in letters if _is_latin(ch) and not ch.isascii())
        if non_latin / len(letters) > 0.2 or (accented >= 3 and accented / len(letters) > 0.03):
            return "not_english"
    lowered = [w.lower() for w in words]
    foreign = sum(1 for w in words if w.lower() in _FOREIGN_WORDS and not (w.isupper() and len(w) > 1))
    english = sum(1 for w in lowered if w in _ENGLISH_FUNCTION_WORDS)
    if foreign >= 2 and foreign >= english:
        return "not_english"
    # Unpronounceable runs ("xkcd qwrtz bzzt"): lower-case words of 4+ letters without a vowel.
    long_lower = [w for w in words if len(w) >= 4 and w.islower() and w.isascii()]
    if long_lower:
        voweless = sum(1 for w in long_lower if not (_VOWELS & set(w)))
        if voweless >= 2 and voweless / len(long_lower) > 0.4:
            return "not_english"
    return None


def _is_latin(ch: str) -> bool:
    if ch.isascii():
        return True
    try:
        return unicodedata.name(ch).startswith("LATIN")
    except ValueError:
        return False


def _truncated(text: str, words: list[str]) -> bool:
    if _DANGLING_END.search(text):
        return True
    stripped = text.rstrip()
    return stripped[-1:].isalpha() and words[-1].lower() in _DANGLING_WORDS


def _norm_words(text: str) -> list[str]:
    return _NORM_WORD.findall(text.lower().replace("'s", "").replace("’s", ""))


def _copies_any(text: str, definitions: Iterable[str]) -> bool:
    row = _norm_words(text)
    if not row:
        return False
    row_pairs = list(zip(row, row[1:]))
    for definition in definitions:
        source = _norm_words(definition)
        if not source:
            continue
        match = SequenceMatcher(None, row, source, autojunk=False).find_longest_match(0, len(row), 0, len(source))
        if match.size >= _COPY_MIN_RUN:
            return True
        short_run = min(_COPY_SHORT_RUN, max(len(source), 2))  # a 3-word attribute value copied whole
        if match.size >= short_run and match.size >= _COPY_SHORT_SHARE * len(row):
            return True
        if len(row) >= _COPY_BIGRAM_MIN_WORDS and row_pairs:
            source_pairs = set(zip(source, source[1:]))
            shared = sum(1 for pair in row_pairs if pair in source_pairs)
            if shared / len(row_pairs) >= _COPY_BIGRAM_SHARE:
                return True
    return False

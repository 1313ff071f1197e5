"""Recall and false-positive rate of the PHI scanner on a planted evaluation file.

The file is JSON Lines, one sentence per line:

    {"id": "...", "text": "...", "identifiers": [{"text": "Rose", "kind": "NAME"}, ...]}

A line with an empty `identifiers` list is a clean clinical look-alike. An identifier counts as caught
when any finding of the scanner overlaps its span, whatever type the finding has (as in a redaction
review) and the findings over it cover all of its digits and at least half of its letters and digits (a hit on
"Calle" alone does not catch "Calle 8 #214"; until set e the rule was any overlap); a clean sentence counts as a
false positive when the scanner reports anything in it. A sentence counts as quarantined when the scanner finds
anything in it (the gate's view).

    .venv/bin/python -m factory.quality.phi_eval tests/fixtures/phi_planted.jsonl [--rules-only] [--misses] [--batch B]

`--table` ends with one table of all the files (the README's); `--save docs/phi_recall.json` also writes the measured figures (per set: caught / planted per HIPAA kind,
clean sentences flagged) for the data card `export` writes; tests/quality/test_phi_recall.py fails when that
file no longer matches what the scanner measures, so the card's figures cannot go stale.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

from factory.core.paths import PROJECT_ROOT
from factory.data.store import atomic_write_json

from factory.quality.phi import PhiHit, PhiScanner, default_scanner


@dataclass
class KindRecall:
    kind: str
    caught: int = 0
    total: int = 0

    @property
    def recall(self) -> float:
        return self.caught / self.total if self.total else 1.0


@dataclass
class PhiEvaluation:
    path: str
    method: str
    identifier_sentences: int = 0
    quarantined_sentences: int = 0  # sentences with identifiers in which the scanner found anything (the gate's view)
    clean_sentences: int = 0
    per_kind: dict[str, KindRecall] = field(default_factory=dict)
    false_positives: list[tuple[str, list[str]]] = field(default_factory=list)  # (sentence, reasons)
    misses: list[tuple[str, str, str, list[str]]] = field(default_factory=list)  # (kind, identifier, sentence, reasons)

    @property
    def caught(self) -> int:
        return sum(k.caught for k in self.per_kind.values())

    @property
    def identifiers(self) -> int:
        return sum(k.total for k in self.per_kind.values())

    @property
    def recall(self) -> float:
        return self.caught / self.identifiers if self.identifiers else 1.0

    @property
    def sentence_recall(self) -> float:
        """Share of sentences with identifiers that the gate quarantines (any finding in them)."""
        return self.quarantined_sentences / self.identifier_sentences if self.identifier_sentences else 1.0

    @property
    def false_positive_rate(self) -> float:
        return len(self.false_positives) / self.clean_sentences if self.clean_sentences else 0.0

    def table(self) -> str:
        """Markdown: per-kind recall, the overall recall and the clean false-positive rate."""
        lines = ["| kind | caught / planted | recall |", "|---|---:|---:|"]
        for kind in sorted(self.per_kind):
            k = self.per_kind[kind]
            lines.append(f"| {kind} | {k.caught} / {k.total} | {k.recall:.0%} |")
        lines.append(f"| **all identifiers** | **{self.caught} / {self.identifiers}** | **{self.recall:.1%}** |")
        lines.append(f"| clean look-alikes flagged (false positives) | {len(self.false_positives)} / "
                     f"{self.clean_sentences} | {self.false_positive_rate:.1%} |")
        return "\n".join(lines)

    def report(self, misses: bool = False) -> str:
        out = [f"{self.path}: {self.identifier_sentences} sentences with {self.identifiers} identifiers, "
               f"{self.clean_sentences} clean look-alikes", f"method: {self.method}", "", self.table(),
               f"sentences with identifiers quarantined: {self.quarantined_sentences} / {self.identifier_sentences} "
               f"({self.sentence_recall:.1%})"]
        if misses:
            out.append("")
            out += [f"MISSED {kind}: {ident!r} in {sentence!r} (found: {reasons})"
                    for kind, ident, sentence, reasons in self.misses]
            out += [f"FALSE POSITIVE: {sentence!r}: {reasons}" for sentence, reasons in self.false_positives]
        return "\n".join(out)


def load_planted(path: str | Path, batch: str | None = None) -> list[dict]:
    records = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        record = json.loads(line)
        for ident in record["identifiers"]:
            if ident["text"] not in record["text"]:
                raise ValueError(f"{path}:{number}: identifier {ident['text']!r} is not in the sentence")
        if batch is None or record.get("batch") == batch:
            records.append(record)
    return records


def _spans(text: str, identifiers: list[dict]) -> list[tuple[str, str, int, int]]:
    """(kind, identifier, start, end) for each identifier: its first occurrence not already used."""
    used: set[int] = set()
    spans = []
    for ident in identifiers:
        start = text.find(ident["text"])
        while start in used:
            start = text.find(ident["text"], start + 1)
        used.add(start)
        spans.append((ident["kind"], ident["text"], start, start + len(ident["text"])))
    return spans


def _overlaps(hit: PhiHit, start: int, end: int) -> bool:
    return hit.start < end and start < hit.end


def _covered(text: str, hits: list[PhiHit], start: int, end: int) -> bool:
    """An identifier is caught when the findings over it cover every one of its digits and at least half of its
    letters and digits: a finding on "Calle" alone does not catch "Calle 8 #214" (the house number would
    survive a redaction), while "Mrs. Rose Hill" found as "Rose Hill" is caught."""
    inside = set()
    for hit in hits:
        if _overlaps(hit, start, end):
            inside.update(range(max(start, hit.start), min(end, hit.end)))
    if not inside:
        return False
    alnum = [i for i in range(start, end) if text[i].isalnum()]
    digits = [i for i in alnum if text[i].isdigit()]
    if any(i not in inside for i in digits):
        return False
    return 2 * sum(i in inside for i in alnum) >= len(alnum)


def evaluate(path: str | Path, scanner: PhiScanner | None = None, batch: str | None = None) -> PhiEvaluation:
    """Scan every sentence of a planted file; per-kind recall of its identifiers, false positives on clean lines."""
    scanner = scanner if scanner is not None else default_scanner()
    records = load_planted(path, batch)
    results = scanner.scan([r["text"] for r in records])
    evaluation = PhiEvaluation(path=str(path), method=scanner.method)
    for record, hits in zip(records, results, strict=True):
        reasons = [h.reason() for h in hits]
        if not record["identifiers"]:
            evaluation.clean_sentences += 1
            if hits:
                evaluation.false_positives.append((record["text"], reasons))
            continue
        evaluation.identifier_sentences += 1
        evaluation.quarantined_sentences += bool(hits)
        for kind, ident, start, end in _spans(record["text"], record["identifiers"]):
            row = evaluation.per_kind.setdefault(kind, KindRecall(kind))
            row.total += 1
            if _covered(record["text"], hits, start, end):
                row.caught += 1
            else:
                evaluation.misses.append((kind, ident, record["text"], reasons))
    return evaluation


RECALL_FILE = PROJECT_ROOT / "docs" / "phi_recall.json"  # the data card's figures (export reads it)

# What each of the project's planted sets is, for the data card (tests/fixtures/<set>.jsonl).
SET_NOTES = {
    "phi_planted": "the set the rules were developed on",
    "phi_heldout": "written after the first rules; its first batch was measured blind, then rules were fixed",
    "phi_fresh_a": "new formats (other scripts, initials, intersections, partial and spelled-out numbers), "
                   "written before the format rules; measured once (39 of 86, 0 of 50 clean flagged), then the "
                   "format rules were written on it",
    "phi_fresh_b": "new formats, written after the format rules; measured once (60 of 70, 5 of 40 clean flagged), "
                   "then rules were fixed on it",
    "phi_fresh_c": "new formats, written after the fixes made on set b; measured once (38 of 39, 1 of 22 clean "
                   "flagged), then the one miss (a partial VIN) was fixed",
    "phi_fresh_d": "written by someone who never saw the rules, with three new kinds (BIOMETRIC, PHOTO, UNIQUE_ID); "
                   "measured once (64 of 72 identifiers, 54 of 60 sentences quarantined, 3 of 40 clean flagged), "
                   "then rules were fixed on it",
    "phi_fresh_e": "written blind by someone who never saw the rules; measured once (58 of 60 sentences "
                   "quarantined, 77 of 88 identifiers, 0 of 40 clean flagged), then rules were fixed on it",
    "phi_fresh_f": "written blind by someone who never saw the rules; measured once (52 of 60 sentences "
                   "quarantined, 75 of 110 identifiers, 2 of 40 clean flagged), then rules were fixed on it",
    "phi_fresh_g": "written blind by someone who never saw the rules, before the fixes made on set f; measured once "
                   "after them (56 of 60 sentences quarantined, 89 of 111 identifiers, 3 of 40 clean flagged), then "
                   "rules were fixed on it",
    "phi_fresh_h": "written blind by someone who never saw the rules, as a realistic audit-style sample, before the "
                   "fixes made on set g; measured once after them (60 of 60 sentences quarantined, 106 of 113 "
                   "identifiers, 1 of 40 clean flagged), then rules were fixed on it",
}


def recall_record(evaluation: PhiEvaluation) -> dict:
    """The figures of one evaluation as plain data: what docs/phi_recall.json keeps per planted set."""
    return {
        "set": Path(evaluation.path).stem,
        "sentences_with_identifiers": evaluation.identifier_sentences,
        "note": SET_NOTES.get(Path(evaluation.path).stem, ""),
        "per_kind": {kind: {"caught": k.caught, "planted": k.total} for kind, k in sorted(evaluation.per_kind.items())},
        "caught": evaluation.caught,
        "identifiers": evaluation.identifiers,
        "clean_sentences": evaluation.clean_sentences,
        "clean_flagged": len(evaluation.false_positives),
    }


def recall_document(evaluations: list[PhiEvaluation]) -> dict:
    paths = " ".join(_relative(e.path) for e in evaluations)
    return {
        "measured_by": f"python -m factory.quality.phi_eval {paths} --save docs/phi_recall.json",
        "method": evaluations[0].method if evaluations else "",
        "sets": [recall_record(e) for e in evaluations],
    }


def recall_markdown(document: dict) -> list[str]:
    """A table of caught / planted per HIPAA kind, one column per set, then what each set is."""
    sets = document.get("sets", [])
    totals: dict[str, int] = {}
    for record in sets:
        for kind, row in record["per_kind"].items():
            totals[kind] = totals.get(kind, 0) + row["planted"]
    lines = ["| kind | " + " | ".join(f"`{r['set']}`" for r in sets) + " |", "|---|" + "---:|" * len(sets)]
    for kind in sorted(totals, key=lambda k: (-totals[k], k)):
        cells = [_cell(r["per_kind"].get(kind)) for r in sets]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines.append("| **all identifiers** | " + " | ".join(
        f"**{r['caught']} / {r['identifiers']} ({_percent(r['caught'], r['identifiers'])})**" for r in sets) + " |")
    lines.append("| clean look-alikes flagged | " + " | ".join(
        f"{r['clean_flagged']} / {r['clean_sentences']} ({_percent(r['clean_flagged'], r['clean_sentences'])})"
        for r in sets) + " |")
    lines.append("")
    lines += [f"- `{r['set']}`: {r['note']}." for r in sets if r.get("note")]
    return lines


def _cell(row: dict | None) -> str:
    return f"{row['caught']} / {row['planted']}" if row else "—"


def _percent(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "—"


def _relative(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m factory.quality.phi_eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help="planted JSONL file(s)")
    parser.add_argument("--rules-only", action="store_true", help="scan without the NER layer")
    parser.add_argument("--batch", default=None, help="only the lines whose `batch` field has this value")
    parser.add_argument("--misses", action="store_true", help="list every missed identifier and false positive")
    parser.add_argument("--save", type=Path, default=None, metavar="JSON",
                        help="also write the figures as JSON (docs/phi_recall.json feeds the export's data card)")
    parser.add_argument("--table", action="store_true",
                        help="end with one table of all the files, one column each (as in the README and data card)")
    args = parser.parse_args(argv)
    scanner = default_scanner(use_ner=not args.rules_only)
    evaluations = []
    for i, path in enumerate(args.paths):
        if i:
            print()
        evaluations.append(evaluate(path, scanner, args.batch))
        print(evaluations[-1].report(misses=args.misses))
    document = recall_document(evaluations)
    if args.table:
        print("\n" + "\n".join(recall_markdown(document)))
    if args.save is not None:
        atomic_write_json(args.save, document)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

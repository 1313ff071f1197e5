"""Recall and false-positive rate of the PHI scanner on a planted evaluation file.

The file is JSON Lines, one sentence per line:

    {"id": "...", "text": "...", "identifiers": [{"text": "Rose", "kind": "NAME"}, ...]}

A line with an empty `identifiers` list is a clean clinical look-alike. An identifier counts as caught
when any finding of the scanner overlaps its span, whatever type the finding has (as in a redaction
review); a clean sentence counts as a false positive when the scanner reports anything in it.

    .venv/bin/python -m factory.quality.phi_eval tests/fixtures/phi_planted.jsonl [--rules-only] [--misses] [--batch B]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

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
               f"{self.clean_sentences} clean look-alikes", f"method: {self.method}", "", self.table()]
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
        for kind, ident, start, end in _spans(record["text"], record["identifiers"]):
            row = evaluation.per_kind.setdefault(kind, KindRecall(kind))
            row.total += 1
            if any(_overlaps(h, start, end) for h in hits):
                row.caught += 1
            else:
                evaluation.misses.append((kind, ident, record["text"], reasons))
    return evaluation


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m factory.quality.phi_eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help="planted JSONL file(s)")
    parser.add_argument("--rules-only", action="store_true", help="scan without the NER layer")
    parser.add_argument("--batch", default=None, help="only the lines whose `batch` field has this value")
    parser.add_argument("--misses", action="store_true", help="list every missed identifier and false positive")
    args = parser.parse_args(argv)
    scanner = default_scanner(use_ner=not args.rules_only)
    for i, path in enumerate(args.paths):
        if i:
            print()
        print(evaluate(path, scanner, args.batch).report(misses=args.misses))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

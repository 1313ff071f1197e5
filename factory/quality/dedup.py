"""Bronze dedup, as the commands and the quality report import it; the stage itself (the verdicts and the
task the runner runs) is factory/stages/dedup.py."""

from factory.stages.dedup import (DEDUP_SCHEMA, DEFAULT_THRESHOLD, Reference, current_duplicates, dedup_summary,
                                  find_duplicates, run_dedup)

__all__ = ["DEDUP_SCHEMA", "DEFAULT_THRESHOLD", "Reference", "current_duplicates", "dedup_summary", "find_duplicates",
           "run_dedup"]

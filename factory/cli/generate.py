"""`label` and `synthesize`: the two directions of data generation (silver and bronze)."""

from __future__ import annotations

from factory import api
from factory.cli.options import command, report_stage
from factory.core.specs import LabelSpec, SynthesizeSpec


@command(LabelSpec)
def label(spec: LabelSpec) -> None:
    api.label(spec, report_stage)


@command(SynthesizeSpec)
def synthesize(spec: SynthesizeSpec) -> None:
    api.synthesize(spec, report_stage)

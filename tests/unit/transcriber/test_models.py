"""Model resolution: bundled assembly (checksum, reuse, races, repair) and the lookup order."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from services.common.errors import ModelNotFound
from services.transcriber import models
from services.transcriber.models import ModelChecksumError, resolve_model

BASE_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
BASE_DIR_NAME = f"base-{BASE_SHA256[:12]}"
REPO_ROOT = Path(__file__).resolve().parents[3]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def fake_model_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "model.bin").touch()
    return path


@pytest.fixture(scope="module")
def built_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One assembled base directory, copied by tests that need a pre-existing final dir."""
    return resolve_model("base", cache_dir=tmp_path_factory.mktemp("built")).path


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


# --- bundled ------------------------------------------------------------------------------------


def test_bundled_names() -> None:
    assert models.bundled_model_names() == ("base",)


def test_base_assembles_verified_then_is_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"

    first = resolve_model("base", cache_dir=cache)

    assert first == models.ResolvedModel("base", cache / BASE_DIR_NAME, "bundled")
    assert sha256_of(first.path / "model.bin") == BASE_SHA256
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        assert (first.path / name).stat().st_size > 0
    assert (first.path / models.MARKER).read_text().strip() == BASE_SHA256
    assert [p.name for p in cache.iterdir()] == [BASE_DIR_NAME]

    before = (first.path / "model.bin").stat()

    def no_assembly(*args: object) -> Path:
        raise AssertionError("reuse must not re-assemble")

    monkeypatch.setattr(models, "_assemble", no_assembly)
    started = time.perf_counter()
    second = resolve_model("base", cache_dir=cache)
    elapsed = time.perf_counter() - started

    assert second == first
    after = (second.path / "model.bin").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert elapsed < 0.5


_CHILD = """
import sys, time
from pathlib import Path
from services.transcriber.models import resolve_model
cache, ready, go = (Path(a) for a in sys.argv[1:4])
ready.touch()
while not go.exists():
    time.sleep(0.002)
print(resolve_model("base", cache_dir=cache).path)
"""


def test_two_processes_at_once_share_one_directory(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    go = tmp_path / "go"
    readies = [tmp_path / f"ready{i}" for i in range(2)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(cache), str(ready), str(go)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for ready in readies
    ]
    try:
        deadline = time.monotonic() + 20
        while not all(r.exists() for r in readies) and time.monotonic() < deadline:
            time.sleep(0.005)
        go.touch()  # release both at once, after their imports
        results = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            p.kill()

    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
    paths = {out.strip() for out, _ in results}
    assert paths == {str(cache / BASE_DIR_NAME)}
    assert sha256_of(cache / BASE_DIR_NAME / "model.bin") == BASE_SHA256
    assert [p.name for p in cache.iterdir()] == [BASE_DIR_NAME]  # no temp dirs left


def test_losing_the_publish_race_keeps_the_winner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, built_base: Path
) -> None:
    cache = tmp_path / "cache"
    final = cache / BASE_DIR_NAME
    real_rename = os.rename

    rival_inodes: list[int] = []

    def rename_after_a_rival(src: str | Path, dst: str | Path) -> None:
        if Path(dst) == final and not final.exists():
            shutil.copytree(built_base, final)  # another process publishes first
            rival_inodes.append((final / "model.bin").stat().st_ino)
        real_rename(src, dst)

    monkeypatch.setattr(models.os, "rename", rename_after_a_rival)

    resolved = resolve_model("base", cache_dir=cache)

    assert resolved.path == final
    assert rival_inodes, "the rival never published"
    assert (final / "model.bin").stat().st_ino == rival_inodes[0]  # the winner's copy is kept
    assert [p.name for p in cache.iterdir()] == [BASE_DIR_NAME]  # our temp copy was discarded
    assert (final / models.MARKER).exists()


@pytest.mark.parametrize("damage", ["truncate model.bin", "remove marker"])
def test_broken_final_dir_is_rebuilt(tmp_path: Path, built_base: Path, damage: str) -> None:
    cache = tmp_path / "cache"
    final = cache / BASE_DIR_NAME
    shutil.copytree(built_base, final)
    if damage == "truncate model.bin":
        os.truncate(final / "model.bin", 1000)
    else:
        (final / models.MARKER).unlink()

    resolved = resolve_model("base", cache_dir=cache)

    assert resolved.path == final
    assert sha256_of(final / "model.bin") == BASE_SHA256
    assert (final / models.MARKER).exists()
    assert [p.name for p in cache.iterdir()] == [BASE_DIR_NAME]  # broken copy removed


def test_checksum_mismatch_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "0" * 64
    monkeypatch.setitem(
        models._BUNDLED, "base", dataclasses.replace(models._BUNDLED["base"], sha256=wrong)
    )
    cache = tmp_path / "cache"

    with pytest.raises(ModelChecksumError) as info:
        resolve_model("base", cache_dir=cache)

    assert f"expected {wrong}" in info.value.message
    assert f"got {BASE_SHA256}" in info.value.message
    assert info.value.code == grpc.StatusCode.INTERNAL
    assert list(cache.iterdir()) == []  # neither a final nor a temp dir


def test_bundled_wins_over_models_dir(tmp_path: Path, built_base: Path) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(built_base, cache / BASE_DIR_NAME)
    models_dir = tmp_path / "models"
    fake_model_dir(models_dir / "base")

    resolved = resolve_model("base", cache_dir=cache, models_dir=models_dir)

    assert resolved.source == "bundled"


def test_bundled_wheels_missing_falls_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = dataclasses.replace(
        models._BUNDLED["base"], parts=(("no_such_sayit_wheel", "data/model.bin.part1"),)
    )
    monkeypatch.setitem(models._BUNDLED, "base", spec)
    models_dir = tmp_path / "models"
    cache = tmp_path / "cache"

    with pytest.raises(ModelNotFound, match="no_such_sayit_wheel"):
        resolve_model("base", cache_dir=cache, models_dir=models_dir, hf_cache_dir=tmp_path / "hf")

    fake_model_dir(models_dir / "base")
    resolved = resolve_model("base", cache_dir=cache, models_dir=models_dir)
    assert resolved == models.ResolvedModel("base", models_dir / "base", "models_dir")


# --- paths --------------------------------------------------------------------------------------


def test_directory_path_with_model_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = fake_model_dir(tmp_path / "my-model")
    cache = tmp_path / "cache"

    assert resolve_model(str(model), cache_dir=cache) == models.ResolvedModel(
        "my-model", model, "path"
    )
    monkeypatch.chdir(tmp_path)
    assert resolve_model("./my-model", cache_dir=cache).path == model
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_model("~/my-model", cache_dir=cache).path == model


@pytest.mark.parametrize("make_dir", [True, False])
def test_directory_path_without_model_bin(tmp_path: Path, make_dir: bool) -> None:
    target = tmp_path / "empty"
    if make_dir:
        target.mkdir()

    with pytest.raises(ModelNotFound) as info:
        resolve_model(str(target), cache_dir=tmp_path / "cache")

    assert str(target) in info.value.message
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_name_with_slash_is_a_path_not_a_repo_id(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="model path 'Systran/faster-whisper-small'"):
        resolve_model("Systran/faster-whisper-small", cache_dir=tmp_path / "cache")


# --- models_dir and the Hugging Face cache --------------------------------------------------------


@pytest.mark.parametrize("dirname", ["small", "faster-whisper-small"])
def test_models_dir_lookup(tmp_path: Path, dirname: str) -> None:
    models_dir = tmp_path / "models"
    model = fake_model_dir(models_dir / dirname)

    resolved = resolve_model(
        "small", cache_dir=tmp_path / "cache", models_dir=models_dir, hf_cache_dir=tmp_path / "hf"
    )

    assert resolved == models.ResolvedModel("small", model, "models_dir")


def test_models_dir_plain_name_first(tmp_path: Path) -> None:
    models_dir = tmp_path / "models"
    plain = fake_model_dir(models_dir / "small")
    fake_model_dir(models_dir / "faster-whisper-small")

    assert resolve_model("small", cache_dir=tmp_path, models_dir=models_dir).path == plain


def test_hf_cache_snapshot_is_found(tmp_path: Path) -> None:
    hf = tmp_path / "hf"
    repo = hf / "models--Systran--faster-whisper-small"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    snapshot = fake_model_dir(repo / "snapshots" / "0123abcd")

    resolved = resolve_model(
        "small", cache_dir=tmp_path / "cache", models_dir=tmp_path / "models", hf_cache_dir=hf
    )

    assert resolved == models.ResolvedModel("small", snapshot, "hf_cache")


def test_missing_size_lists_every_place_looked(tmp_path: Path) -> None:
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    hf = tmp_path / "hf"
    hf.mkdir()

    with pytest.raises(ModelNotFound) as info:
        resolve_model(
            "medium", cache_dir=tmp_path / "cache", models_dir=models_dir, hf_cache_dir=hf
        )

    message = info.value.message
    for expected in (
        "'medium'",
        str(models_dir / "medium"),
        str(models_dir / "faster-whisper-medium"),
        "Systran/faster-whisper-medium",
        str(hf),
        "SAYIT_MODELS_DIR",
    ):
        assert expected in message
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_unknown_name_says_so(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound) as info:
        resolve_model("enormous", cache_dir=tmp_path / "cache", hf_cache_dir=tmp_path / "hf")

    assert "not a known Hugging Face model name" in info.value.message
    assert "no models directory given" in info.value.message


def test_empty_name(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="empty"):
        resolve_model(" ", cache_dir=tmp_path)


def test_module_does_not_import_faster_whisper() -> None:
    code = (
        "import sys, services.transcriber.models\n"
        "assert 'faster_whisper' not in sys.modules\n"
        "assert 'huggingface_hub' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)

"""devsupport.arm64root: the parts of `make arm64-check` that are plain logic."""

from __future__ import annotations

from pathlib import Path

from devsupport.arm64root import (
    Arm64Root,
    Mount,
    host_pip_conf,
    installed_wheels,
    packages_without_wheel,
)


def test_pip_conf_carries_indexes_and_timeouts_but_not_host_paths() -> None:
    listed = "\n".join(
        [
            "global.cert='/etc/ssl/certs/ca-certificates.crt'",
            "global.constraint='/etc/xdg/pip/constraints.txt'",
            "global.extra-index-url='file:///opt/pypi/simple https://mirror.example/simple'",
            "global.find-links='/opt/wheels'",
            "global.index-url='https://pypi.example/simple'",
            ":env:.index-url='https://env.example/simple'",
            ":env:.default-timeout='180'",
            ":env:.find-links='/opt/wheels'",
        ]
    )
    assert host_pip_conf(listed) == (
        "[global]\n"
        "index-url = https://env.example/simple\n"  # the environment wins, as in pip
        "extra-index-url = https://mirror.example/simple\n"
        "timeout = 180\n"
    )


def test_pip_conf_of_a_plain_host_is_empty() -> None:
    assert host_pip_conf("global.extra-index-url='file:///opt/pypi/simple'\n") == "[global]\n"


def test_pip_error_names_the_package_without_a_wheel() -> None:
    output = (
        "ERROR: Could not find a version that satisfies the requirement onnxruntime<2,>=1.14 "
        "(from faster-whisper) (from versions: none)\n"
        "ERROR: No matching distribution found for onnxruntime<2,>=1.14\n"
    )
    assert packages_without_wheel(output) == ["onnxruntime"]
    assert packages_without_wheel("Successfully installed sayit-0.1.0") == []


def test_installed_wheels_reads_names_versions_and_tags(tmp_path: Path) -> None:
    info = tmp_path / "ctranslate2-4.6.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ctranslate2\nVersion: 4.6.0\n\nx")
    (info / "WHEEL").write_text(
        "Wheel-Version: 1.0\nTag: cp311-cp311-manylinux_2_17_aarch64\n"
        "Tag: cp311-cp311-manylinux2014_aarch64\n"
    )
    [wheel] = installed_wheels(tmp_path)
    assert (wheel.name, wheel.version) == ("ctranslate2", "4.6.0")
    assert wheel.tags == ("cp311-cp311-manylinux_2_17_aarch64", "cp311-cp311-manylinux2014_aarch64")


def test_commands_mount_privately_and_the_model_read_only() -> None:
    root = Arm64Root(Path("/cache/arm64 root"))
    argv = root.command(["python", "-m", "x"], [Mount(Path("/host/model"), "/opt/model")])
    # unshare: the mounts live in a namespace that ends with the process
    assert argv[:5] == ["unshare", "--mount", "--propagation", "private", "--"]
    script = argv[7]
    assert "mount --bind /host/model '/cache/arm64 root/opt/model'" in script
    assert "mount -o remount,bind,ro '/cache/arm64 root/opt/model'" in script
    assert script.endswith("exec chroot '/cache/arm64 root' \"$@\"")
    assert argv[8:] == ["sh", "python", "-m", "x"]

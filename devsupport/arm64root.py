"""An arm64 Debian root on this x86-64 machine, run under qemu-user-static (`make arm64-check`).

The root is made once with debootstrap (Debian bookworm, the base of the production image) and
reused: a root whose build did not finish is never used (it is built beside and renamed into
place). SayIt goes into a venv inside it with `pip install --only-binary=:all:`, so a dependency
without an aarch64 wheel fails the install instead of being compiled.

Processes in the root run as `unshare --mount` + `chroot`: /proc, /dev and the read-only model
directory are mounted in a private mount namespace that dies with the process, so nothing stays
mounted inside the root and deleting it can never reach the host's files.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

HOST_PACKAGES = ("debootstrap", "qemu-user-static", "binfmt-support")
SUITE = "bookworm"
# pip verifies with the host's CA bundle (HOST_CA), which holds any CA the host's network needs.
BASE_PACKAGES = ("python3", "python3-venv")
BINFMT = Path("/proc/sys/fs/binfmt_misc")

VENV = "/opt/sayit/venv"
SRC = "/opt/sayit/src"
# The host's CA bundle and pip settings, copied in at every run (`configure`).
HOST_CA = "/etc/sayit-host/ca-certificates.crt"
# What the installed sources hashed to: the same hash, no new `pip install`.
INSTALLED_STAMP = "/opt/sayit/installed.sha256"
BASE_STAMP = ".sayit-arm64-base"

# The sources `pip install .` needs (deploy/Dockerfile copies the same).
SOURCES = ("pyproject.toml", "README.md", "gen", "services")

# Host pip settings worth carrying in: where packages come from and how to reach it. Local
# paths (find-links, file:// indexes) are the host's x86-64 wheels and do not exist in the root;
# the host's constraints cap torch, which SayIt does not use.
_PIP_KEYS = ("index-url", "extra-index-url", "trusted-host", "proxy", "timeout", "retries")
_PIP_ALIASES = {"default-timeout": "timeout"}


class RootError(RuntimeError):
    """The arm64 root cannot be made or used; the message says what to do."""


@dataclass(frozen=True)
class Mount:
    """A host directory visible read-only at `target` inside the root."""

    source: Path
    target: str


def run(argv: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), check=True, text=True, **kwargs)  # type: ignore[call-overload]


# --- the host -------------------------------------------------------------------------------------


def missing_host_packages() -> list[str]:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n", *HOST_PACKAGES],
        capture_output=True,
        text=True,
    ).stdout
    installed = {line.split()[0] for line in out.splitlines() if line.split()[1:2] == ["ii"]}
    return [p for p in HOST_PACKAGES if p not in installed]


def prepare_host() -> list[str]:
    """Install the host packages and register qemu for aarch64 binaries; what was done."""
    done = []
    missing = missing_host_packages()
    if missing:
        if os.geteuid() != 0:
            raise RootError(f"as root: apt-get install {' '.join(missing)}")
        run(["apt-get", "install", "-y", "-q", *missing], stdout=subprocess.DEVNULL)
        done.append(f"apt-get install {' '.join(missing)}")
    if not (BINFMT / "register").exists():
        # No systemd here to mount it; binfmt registrations are the kernel's, for every process.
        run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)])
        done.append(f"mounted {BINFMT}")
    entry = BINFMT / "qemu-aarch64"
    if not entry.exists() or not entry.read_text().startswith("enabled"):
        run(["update-binfmts", "--enable", "qemu-aarch64"])
        done.append("update-binfmts --enable qemu-aarch64")
    # F (fix binary): the kernel holds the interpreter open, so the root needs no copy of qemu.
    if "F" not in _binfmt_flags(entry.read_text()):
        raise RootError(f"{entry} lacks the F flag; reinstall qemu-user-static")
    return done


def _binfmt_flags(entry: str) -> str:
    for line in entry.splitlines():
        if line.startswith("flags:"):
            return line.split(":", 1)[1].strip()
    return ""


def host_pip_conf(config_list: str) -> str:
    """A pip.conf for the root from `pip config list` on the host (values as pip prints them:
    `global.index-url='https://...'`, `:env:.timeout='60'`); env values win, as in pip."""
    found: dict[str, dict[str, str]] = {}
    for line in config_list.splitlines():
        m = re.fullmatch(r"([^.]*)\.([\w-]+)='(.*)'", line.strip())
        if not m:
            continue
        where, key, value = m.groups()
        key = _PIP_ALIASES.get(key, key)
        if key not in _PIP_KEYS:
            continue
        if key.endswith("index-url"):
            value = " ".join(u for u in value.split() if not u.startswith("file:"))
            if not value:
                continue
        found.setdefault(key, {})[where] = value
    lines = ["[global]"]
    for key in _PIP_KEYS:
        if key in found:
            values = found[key]
            lines.append(f"{key} = {values.get(':env:', next(iter(values.values())))}")
    return "\n".join(lines) + "\n"


# --- the root -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arm64Root:
    path: Path

    def exists(self) -> bool:
        return (self.path / BASE_STAMP).is_file()

    def build(self, mirror: str) -> None:
        """debootstrap a new root beside the final path, then rename it into place."""
        building = self.path.with_name(self.path.name + ".building")
        shutil.rmtree(building, ignore_errors=True)  # a build cut off earlier; never mounted
        building.parent.mkdir(parents=True, exist_ok=True)
        run(
            [
                "debootstrap",
                "--arch=arm64",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                SUITE,
                str(building),
                mirror,
            ],
            stdout=subprocess.DEVNULL,
        )
        (building / BASE_STAMP).write_text(f"{SUITE} {mirror}\n")
        shutil.rmtree(self.path, ignore_errors=True)  # a root without its stamp: unfinished
        building.rename(self.path)

    def configure(self, ca_bundle: Path, pip_conf: str) -> None:
        """The host's CA bundle, name resolution and pip settings (copied at every run, so a
        reused root follows the host)."""
        ca = self.file(HOST_CA)
        ca.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ca_bundle, ca)
        for name in ("resolv.conf", "hosts"):
            target = self.path / "etc" / name
            target.unlink(missing_ok=True)  # may be a dangling symlink into /run
            shutil.copyfile(Path("/etc") / name, target)
        self.file("/etc/pip.conf").write_text(pip_conf)

    def file(self, inside: str) -> Path:
        return self.path / inside.lstrip("/")

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """A clean environment: none of the host's (its PIP_* point at x86-64 wheels)."""
        return {
            "PATH": f"{VENV}/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "HOME": "/root",
            "LANG": "C.UTF-8",
            "PIP_CERT": HOST_CA,
            "SSL_CERT_FILE": HOST_CA,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            **(extra or {}),
        }

    def command(self, argv: Sequence[str], mounts: Sequence[Mount] = ()) -> list[str]:
        """argv run inside the root (as root), with /proc, /dev and `mounts`."""
        root = shlex.quote(str(self.path))
        # No /sys: with the host's, onnxruntime's cpuinfo (Silero VAD) crashed the emulated
        # transcriber (SIGSEGV); without, it warns "cpuinfo_initialize failed" and runs on.
        steps = [f"mount -t proc proc {root}/proc", f"mount --rbind /dev {root}/dev"]
        for m in mounts:
            target = shlex.quote(f"{self.path}/{m.target.lstrip('/')}")
            steps += [
                f"mkdir -p {target}",
                f"mount --bind {shlex.quote(str(m.source))} {target}",
                f"mount -o remount,bind,ro {target}",
            ]
        steps.append(f'exec chroot {root} "$@"')
        script = " && ".join(steps)
        unshare = ["unshare", "--mount", "--propagation", "private", "--"]
        return [*unshare, "sh", "-c", script, "sh", *argv]

    def check_runs(self) -> str:
        """`uname -m` inside the root (aarch64 when qemu is registered)."""
        out = run(self.command(["uname", "-m"]), capture_output=True, env=self.env()).stdout
        return str(out).strip()

    # --- SayIt in the root

    def ensure_venv(self) -> bool:
        if self.file(f"{VENV}/bin/python").exists():
            return False
        run(self.command(["python3", "-m", "venv", VENV]), env=self.env())
        return True

    def python_version(self) -> str:
        lib = sorted(self.file(f"{VENV}/lib").glob("python3.*"))
        if not lib:
            raise RootError(f"no Python in {self.file(VENV)}")
        return lib[-1].name

    def site_packages(self) -> Path:
        return self.file(f"{VENV}/lib/{self.python_version()}/site-packages")

    def install(self, repo: Path, log: Path) -> bool:
        """`pip install --only-binary=:all: .` of the repository's sources, pip's output in
        `log`; False when the same sources are installed already. Raises NoWheel or RootError."""
        digest = sources_digest(repo)
        stamp = self.file(INSTALLED_STAMP)
        if stamp.is_file() and stamp.read_text().strip() == digest:
            return False
        src = self.file(SRC)
        shutil.rmtree(src, ignore_errors=True)
        src.mkdir(parents=True)
        for name in SOURCES:
            source = repo / name
            if source.is_dir():
                shutil.copytree(source, src / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, src / name)
        # --force-reinstall would fetch every dependency again; the project itself is rebuilt
        # from the new sources and replaces the installed copy even at the same version.
        argv = ["pip", "install", "--only-binary=:all:", "--progress-bar", "off", SRC]
        with log.open("w") as out:
            proc = subprocess.run(
                self.command(argv), env=self.env(), stdout=out, stderr=subprocess.STDOUT
            )
        output = log.read_text(errors="replace")
        if proc.returncode != 0:
            missing = packages_without_wheel(output)
            if missing:
                raise NoWheel(missing, output)
            raise RootError(f"pip install in the arm64 root failed:\n{output[-4000:]}")
        stamp.write_text(digest + "\n")
        return True


class NoWheel(RootError):
    def __init__(self, packages: list[str], output: str) -> None:
        self.packages = packages
        super().__init__(
            "no aarch64 wheel (pip would have to build from source): "
            f"{', '.join(packages)}\n{output[-3000:]}"
        )


def packages_without_wheel(pip_output: str) -> list[str]:
    """The requirements pip found no installable wheel for (`--only-binary=:all:`)."""
    found = re.findall(
        r"Could not find a version that satisfies the requirement ([A-Za-z0-9._-]+)", pip_output
    )
    return list(dict.fromkeys(found))


def sources_digest(repo: Path) -> str:
    digest = hashlib.sha256()
    for name in SOURCES:
        base = repo / name
        files = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else [base]
        for path in files:
            if "__pycache__" in path.parts:
                continue
            digest.update(str(path.relative_to(repo)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class InstalledWheel:
    name: str
    version: str
    tags: tuple[str, ...]  # the wheel's tags, e.g. cp311-cp311-manylinux_2_17_aarch64


def installed_wheels(site_packages: Path) -> list[InstalledWheel]:
    """Every distribution in a site-packages with the tags of the wheel it came from."""
    out = []
    for info in sorted(site_packages.glob("*.dist-info")):
        meta = _headers(info / "METADATA")
        wheel = _headers(info / "WHEEL", many=True)
        out.append(
            InstalledWheel(
                meta.get("Name", [info.name])[0],
                meta.get("Version", ["?"])[0],
                tuple(wheel.get("Tag", [])),
            )
        )
    return sorted(out, key=lambda w: w.name.lower())


def _headers(path: Path, many: bool = False) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return fields
    for line in text.split("\n\n", 1)[0].splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            fields.setdefault(key, []).append(value.strip())
    return fields

"""`make arm64-check`: install and run SayIt on arm64 under emulation, and compare its transcripts
with x86-64 (docs/arm64.md).

1. Makes or reuses an arm64 Debian root (devsupport.arm64root) and `pip install`s SayIt in it
   from aarch64 wheels only; prints every installed distribution with its wheel's tag.
2. Starts the real transcriber in the root and the same transcriber on the host, on the same
   model directory, and sends both the same clips from ../shared/eval over gRPC from the host.
3. Prints both texts, their differences (characters for Korean, words for English) and the
   emulated real-time factor; fails when a clip differs by more than MAX_EDITS units.
4. Starts the scheduler, gateway and queue worker in the root too (deploy/ may schedule any of
   them on arm64 nodes) against a private Redis: health SERVING, the worker registered in RQ.

Everything runs as deployed: mutual TLS with service identities on every internal hop (a PKI in
.run/arm64-check/pki, mounted read-only into the root), API keys on the gateway, and each
service logging in to Redis as its own ACL user.
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from rq import Worker
from rq.worker import BaseWorker

from devsupport import dev_keys, evalset, topology
from devsupport.arm64root import (
    VENV,
    Arm64Root,
    InstalledWheel,
    Mount,
    RootError,
    host_pip_conf,
    installed_wheels,
    prepare_host,
)
from devsupport.mesh import RedisServer
from devsupport.processes import ServiceProcess, free_port
from devsupport.transcript_diff import MAX_EDITS, TextDiff, compare
from sayit.common.v1 import audio_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.transcriber.v1 import transcriber_service_pb2 as pb
from sayit.transcriber.v1 import transcriber_service_pb2_grpc as pb_grpc
from services.common import pki
from services.common.tls import ClientTLS
from services.jobs.queue import QUEUES
from services.transcriber.config import ModelSettings
from services.transcriber.models import resolve_model

REPO = Path(__file__).resolve().parent.parent
RUN = REPO / ".run" / "arm64-check"
CLIPS = ("ko_pv_leopard_test", "en_pv_cheetah_test")
MIRROR = "http://deb.debian.org/debian"
# The host's model directory is mounted read-only under this, by its own name.
MODELS_IN_ROOT = "/opt/sayit/models"
# Under qemu a Python service takes tens of seconds to import, and the model as long to load.
START_TIMEOUT = 900.0

# Internal hops are mutual TLS as in every deployment; the PKI's directory has the same path
# inside the root (a read-only mount), so the same SAYIT_TLS_* serve both sides. The host calls
# the transcribers as the scheduler does (they accept only the scheduler and the workers).
SERVICE_ENV: dict[str, str] = {"SAYIT_LOG_FORMAT": "json"}


@functools.cache
def mesh_pki() -> pki.Pki:
    return pki.ensure(RUN / "pki")


def pki_mount() -> Mount:
    return Mount(mesh_pki().directory, str(mesh_pki().directory))


def client_tls() -> ClientTLS:
    return mesh_pki().client_tls("scheduler")


def transcriber_env(addr: str, model_dir: str) -> dict[str, str]:
    """Both transcribers' settings: the two differ only in address and where the model is."""
    return {
        **SERVICE_ENV,
        **topology.tls_env(mesh_pki(), topology.TRANSCRIBER),
        "SAYIT_TRANSCRIBER_ADDR": addr,
        "SAYIT_MODEL": model_dir,
        "SAYIT_TRANSCRIBER_SLOTS": "1",
        "SAYIT_CPU_THREADS": "2",
        "SAYIT_TRANSCRIBER_METRICS_ADDR": "",
    }


@dataclass
class RootProcess(ServiceProcess):
    """`python -m <module>` inside the arm64 root."""

    root: Arm64Root | None = None
    mounts: Sequence[Mount] = field(default_factory=tuple)

    def start(self) -> RootProcess:
        assert self.root is not None
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.root.command([f"{VENV}/bin/python", "-m", self.module], self.mounts),
                env=self.root.env(self.env),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self


# --- output ---------------------------------------------------------------------------------------


def say(text: str = "") -> None:
    print(text, flush=True)


def minutes(seconds: float) -> str:
    return (
        f"{int(seconds // 60)} min {seconds % 60:02.0f} s" if seconds >= 60 else f"{seconds:.0f} s"
    )


def wheel_table(wheels: list[InstalledWheel], host_versions: Mapping[str, str]) -> list[str]:
    lines = []
    for w in wheels:
        tag = ", ".join(w.tags) or "(no WHEEL file)"
        host = host_versions.get(w.name.lower().replace("_", "-"))
        note = "" if host in (None, w.version) else f"   (x86-64 .venv has {host})"
        lines.append(f"    {w.name:<28} {w.version:<12} {tag}{note}")
    return lines


def published_wheel(wheel: InstalledWheel) -> bool:
    """A manylinux aarch64 or pure-Python wheel; a wheel pip built here would be tagged plain
    `linux_aarch64` (SayIt itself is built here, pure Python)."""
    return any(
        t.endswith("-none-any") or ("manylinux" in t and t.endswith("aarch64")) for t in wheel.tags
    )


def host_versions() -> dict[str, str]:
    from importlib import metadata

    return {
        d.metadata["Name"].lower().replace("_", "-"): d.version for d in metadata.distributions()
    }


# --- the steps ------------------------------------------------------------------------------------


def prepare_root(root: Arm64Root, mirror: str, rebuild: bool) -> list[InstalledWheel]:
    for done in prepare_host():
        say(f"  host: {done}")
    if rebuild or not root.exists():
        say(f"  debootstrap --arch=arm64 {root.path} (Debian bookworm; several minutes) ...")
        started = time.monotonic()
        root.build(mirror)
        say(f"  root made in {minutes(time.monotonic() - started)}")
    else:
        say(f"  reusing the arm64 root {root.path} (--rebuild for a new one)")
    pip_config = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True
    ).stdout
    conf = host_pip_conf(pip_config)
    root.configure(Path(ca_bundle()), conf)
    carried = ", ".join(line for line in conf.splitlines()[1:]) or "PyPI, no other settings"
    say(f"  host CA bundle copied in; pip settings carried over: {carried}")
    arch = root.check_runs()
    if arch != "aarch64":
        raise RootError(f"`uname -m` in the root says {arch!r}, not aarch64")
    say(f"  `uname -m` in the root: {arch} (qemu-aarch64-static through binfmt_misc)")
    if root.ensure_venv():
        say(f"  venv made at {VENV}")
    started = time.monotonic()
    say(f"  pip install --only-binary=:all: . (in the root; output in {RUN / 'arm64-pip.log'}) ...")
    if not root.install(REPO, RUN / "arm64-pip.log"):
        say("  SayIt is installed from these sources already")
    else:
        say(f"  installed in {minutes(time.monotonic() - started)}")
    return installed_wheels(root.site_packages())


def ca_bundle() -> str:
    for candidate in (os.environ.get("PIP_CERT"), os.environ.get("SSL_CERT_FILE")):
        if candidate and Path(candidate).is_file():
            return candidate
    return "/etc/ssl/certs/ca-certificates.crt"


@dataclass
class Result:
    clip: evalset.Clip
    transcript: tpb.Transcript
    wall_seconds: float


def transcribe(addr: str, clip: evalset.Clip) -> Result:
    """One clip through a transcriber's TranscribeStream, as the scheduler calls it."""
    request = pb.TranscribeStreamRequest(
        audio=audio_pb2.Audio(content=clip.read(), filename=clip.path.name),
        config=tpb.TranscriptionConfig(language_code=clip.language),
        audio_duration_seconds=clip.duration_seconds,
    )
    # Emulation runs some 30x slower than real time; leave room for a loaded machine.
    deadline = max(600.0, 150 * clip.duration_seconds)
    started = time.monotonic()
    with _channel(addr) as channel:
        stream = pb_grpc.TranscriberServiceStub(channel).TranscribeStream(request, timeout=deadline)
        last = [r for r in stream][-1]
    if not last.HasField("transcript"):
        raise RuntimeError(f"{addr}: the stream for {clip.id} ended without a transcript")
    return Result(clip, last.transcript, time.monotonic() - started)


def _channel(addr: str) -> grpc.Channel:
    return grpc.secure_channel(addr, client_tls().credentials())


def model_info(addr: str) -> pb.GetInfoResponse:
    with _channel(addr) as channel:
        return pb_grpc.TranscriberServiceStub(channel).GetInfo(pb.GetInfoRequest(), timeout=60)


def report_clip(x86: Result, arm: Result, max_edits: int) -> TextDiff:
    clip = x86.clip
    diff = compare(x86.transcript.text, arm.transcript.text, clip.language)
    say(f"\n  {clip.id} ({clip.language}, {clip.duration_seconds:.1f} s)")
    say(f"    reference: {clip.reference}")
    say(f"    x86-64   : {x86.transcript.text.strip()}")
    say(f"    arm64    : {arm.transcript.text.strip()}")
    problem = diff.problem(max_edits)
    raw_same = x86.transcript.text.strip() == arm.transcript.text.strip()
    what = f"{diff.edits} of {len(diff.baseline_units)} {diff.unit_name} differ"
    if diff.edits:
        what += ": " + "; ".join(diff.changes())
    elif not raw_same:
        what += " (the raw texts differ only in case, spaces or punctuation)"
    else:
        what += " (identical texts)"
    say(f"    difference (x86-64 -> arm64): {what}")
    say(f"    verdict: {'FAIL, ' + problem if problem else f'OK (at most {max_edits})'}")
    audio = clip.duration_seconds
    say(
        f"    EMULATED real-time factor (qemu-user on x86-64; NOT a measure of ARM speed): "
        f"{arm.transcript.processing_seconds / audio:.1f} "
        f"({arm.transcript.processing_seconds:.0f} s for {audio:.1f} s of audio); "
        f"x86-64 native: {x86.transcript.processing_seconds / audio:.2f}"
    )
    return diff


def check_other_services(root: Arm64Root, redis: RedisServer, transcriber: str) -> list[str]:
    """Scheduler, gateway and queue worker in the root; what failed (empty: all started)."""
    scheduler_addr = f"127.0.0.1:{free_port()}"
    gateway_addr = f"127.0.0.1:{free_port()}"
    worker_metrics = f"127.0.0.1:{free_port()}"
    keys = dev_keys.ensure(RUN / "keys")
    mounts = (pki_mount(), Mount(keys.keys_file.parent, str(keys.keys_file.parent)))

    def env(module: str) -> dict[str, str]:
        return {
            **SERVICE_ENV,
            **topology.tls_env(mesh_pki(), module),
            "SAYIT_REDIS_URL": redis.url_for(topology.REDIS_USERS[module]),
        }

    procs = {
        "scheduler": RootProcess(
            "services.scheduler",
            {
                **env(topology.SCHEDULER),
                "SAYIT_SCHEDULER_ADDR": scheduler_addr,
                "SAYIT_TRANSCRIBER_ADDR": transcriber,
                "SAYIT_SCHEDULER_METRICS_ADDR": "",
            },
            RUN / "arm64-scheduler.log",
            addr=scheduler_addr,
            tls=client_tls(),
            root=root,
            mounts=mounts,
        ),
        "gateway": RootProcess(
            "services.gateway",
            {
                **env(topology.GATEWAY),
                "SAYIT_GATEWAY_ADDR": gateway_addr,
                "SAYIT_SCHEDULER_ADDR": scheduler_addr,
                "SAYIT_GATEWAY_METRICS_ADDR": "",
                "SAYIT_API_KEYS_FILE": str(keys.keys_file),
            },
            RUN / "arm64-gateway.log",
            addr=gateway_addr,
            tls=None,  # its public port is plaintext, as in `make up`
            root=root,
            mounts=mounts,
        ),
        "worker": RootProcess(
            "services.worker",
            {
                **env(topology.WORKER),
                "SAYIT_TRANSCRIBER_ADDR": transcriber,
                "SAYIT_WORKER_NAME": "arm64-worker",
                "SAYIT_WORKER_METRICS_ADDR": worker_metrics,
            },
            RUN / "arm64-worker.log",
            root=root,
            mounts=mounts,
        ),
    }
    failed = []
    started = time.monotonic()
    for proc in procs.values():
        proc.start()
    try:
        for name in ("scheduler", "gateway"):
            try:
                procs[name].wait_serving(START_TIMEOUT)
                say(f"    {name:<10} SERVING on {procs[name].addr} (python -m services.{name})")
            except (RuntimeError, TimeoutError) as error:
                failed.append(name)
                say(f"    {name:<10} FAILED: {error}")
        worker = procs["worker"]
        registered = _wait_worker(worker, redis.url, started + START_TIMEOUT)
        if registered is None:
            failed.append("worker")
            say(f"    worker     FAILED to register with RQ:\n{worker.log_tail()}")
        else:
            alive = _metrics_answer(worker_metrics)
            say(
                f"    worker     registered in RQ as {registered.name} (pid {registered.pid}), "
                f"queues {', '.join(q.name for q in registered.queues)}; /metrics on "
                f"{worker_metrics} (its liveness probe in deploy/) "
                + ("answers" if alive else "does NOT answer")
            )
            if not alive:
                failed.append("worker metrics")
        say(f"    (all three up {minutes(time.monotonic() - started)} after starting them)")
    finally:
        for proc in procs.values():
            proc.stop(timeout=60)
    return failed


def _wait_worker(proc: RootProcess, redis_url: str, deadline: float) -> BaseWorker | None:
    """The worker's RQ registration (it registers once its transcriber is SERVING)."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    while time.monotonic() < deadline and proc.alive():
        for worker in Worker.all(connection=client):
            # Its own registration, on the queues deploy/ gives every worker.
            mine = worker.name.startswith("arm64-worker.") and worker.pid == proc.pid
            if mine and {q.name for q in worker.queues} == set(QUEUES):
                return worker
        time.sleep(1.0)
    return None


def _metrics_answer(addr: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{addr}/metrics", timeout=10) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


# --- main -----------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root",
        type=Path,
        default=cache / "sayit" / "arm64-bookworm",
        help="the arm64 root, shared by every checkout (default: %(default)s)",
    )
    parser.add_argument("--rebuild", action="store_true", help="debootstrap a new root")
    parser.add_argument("--mirror", default=MIRROR, help="Debian mirror (default: %(default)s)")
    parser.add_argument(
        "--clips", default=",".join(CLIPS), help="clip ids from ../shared/eval (%(default)s)"
    )
    parser.add_argument(
        "--max-edits",
        type=int,
        default=MAX_EDITS,
        help="units (Korean characters, English words) a clip may differ by (%(default)s)",
    )
    parser.add_argument(
        "--transcriber-only",
        action="store_true",
        help="skip starting the scheduler, gateway and worker in the root",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if os.geteuid() != 0:
        say("arm64-check: needs root (debootstrap, binfmt_misc, mount and chroot)")
        return 2
    began = time.monotonic()
    root = Arm64Root(args.root.resolve())
    clips = [evalset.clip(c.strip()) for c in args.clips.split(",") if c.strip()]
    RUN.mkdir(parents=True, exist_ok=True)
    say("arm64-check 1/4: the arm64 root")
    fresh = args.rebuild or not root.exists()
    try:
        wheels = prepare_root(root, args.mirror, args.rebuild)
    except RootError as error:
        say(f"arm64-check: FAIL: {error}")
        return 1
    ready = time.monotonic() - began
    versions = host_versions()
    say(f"  {len(wheels)} distributions in the root, each from the wheel it names:")
    for line in wheel_table(wheels, versions):
        say(line)
    without = [w.name for w in wheels if not published_wheel(w)]
    if without:
        say(f"arm64-check: FAIL: not from a published aarch64 or pure-Python wheel: {without}")
        return 1

    model = ModelSettings.from_env(os.environ).model_files
    model_dir = resolve_model(model.name, cache_dir=model.cache_dir, models_dir=model.models_dir)
    say(f"\narm64-check 2/4: transcribers on model {model_dir.name} ({model_dir.path})")
    arm_addr, x86_addr = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    model_in_root = f"{MODELS_IN_ROOT}/{model_dir.path.name}"
    mounts = (Mount(model_dir.path, model_in_root), pki_mount())
    arm = RootProcess(
        "services.transcriber",
        transcriber_env(arm_addr, model_in_root),
        RUN / "arm64-transcriber.log",
        addr=arm_addr,
        tls=client_tls(),
        root=root,
        mounts=mounts,
    ).start()
    x86 = ServiceProcess(
        "services.transcriber",
        transcriber_env(x86_addr, str(model_dir.path)),
        RUN / "x86-transcriber.log",
        addr=x86_addr,
        tls=client_tls(),
    ).start()
    redis_server: RedisServer | None = None
    try:
        # The x86-64 side first, while the arm64 transcriber loads; then it is stopped, so the
        # emulated run has the machine to itself.
        x86.wait_serving(START_TIMEOUT)
        x86_results = [transcribe(x86_addr, clip) for clip in clips]
        x86.stop()
        waited = arm.wait_serving(START_TIMEOUT)
        info = model_info(arm_addr)
        say(
            f"  arm64 transcriber SERVING after {minutes(waited)}: model {info.model} from "
            f"{info.model_path} (the host's directory, mounted read-only), "
            f"{info.cpu_threads} threads"
        )
        say("\narm64-check 3/4: the same clips on both architectures")
        failures = []
        for x86_result in x86_results:
            arm_result = transcribe(arm_addr, x86_result.clip)
            diff = report_clip(x86_result, arm_result, args.max_edits)
            if diff.problem(args.max_edits):
                failures.append(x86_result.clip.id)

        say("\narm64-check 4/4: the other services deploy/ may run on arm64")
        if args.transcriber_only:
            say("    skipped (--transcriber-only)")
        else:
            redis_server = RedisServer(RUN / "redis").start()
            failures += check_other_services(root, redis_server, arm_addr)
    except (RuntimeError, TimeoutError, grpc.RpcError) as error:
        say(f"arm64-check: FAIL: {error}")
        return 1
    finally:
        x86.stop()
        arm.stop(timeout=60)
        if redis_server is not None:
            redis_server.stop()
    total = time.monotonic() - began
    how = "a new root" if fresh else "the reused root"
    say(
        f"\narm64-check: {'FAIL: ' + ', '.join(failures) if failures else 'PASS'} "
        f"in {minutes(total)} with {how} (root ready after {minutes(ready)}); logs in {RUN}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

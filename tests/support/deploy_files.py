"""The deploy files as tests read them: the manifests, the Compose file, and what the code
expects of them (which settings each program reads, its config loader, ports, variables)."""

from __future__ import annotations

import functools
import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from devsupport.processes import ROOT
from services.common.healthcheck import HealthcheckSettings
from services.common.settings import Settings
from services.gateway.config import DEFAULT_ADDR as GATEWAY_DEFAULT
from services.gateway.config import GatewaySettings
from services.gateway.config import load_config as gateway_config
from services.http_edge.config import DEFAULT_ADDR as HTTP_EDGE_DEFAULT
from services.http_edge.config import HttpEdgeSettings
from services.scheduler.config import DEFAULT_ADDR as SCHEDULER_DEFAULT
from services.scheduler.config import SchedulerSettings
from services.scheduler.config import load_config as scheduler_config
from services.transcriber.config import DEFAULT_ADDR as TRANSCRIBER_DEFAULT
from services.transcriber.config import TranscriberSettings
from services.transcriber.config import load_config as transcriber_config
from services.worker.config import WorkerSettings
from services.worker.config import load_config as worker_config
from tests.support.tls import Authority, Pair

DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
IMAGE = "sayit"
KUBERNETES_VERSION = "1.29"
# What the programs in the image read: the services, the HTTP edge and the health-check CLI.
SETTINGS = (
    GatewaySettings,
    SchedulerSettings,
    TranscriberSettings,
    WorkerSettings,
    HttpEdgeSettings,
    HealthcheckSettings,
)
SETTINGS_OF: dict[str, type[Settings]] = {
    "services.gateway": GatewaySettings,
    "services.scheduler": SchedulerSettings,
    "services.transcriber": TranscriberSettings,
    "services.worker": WorkerSettings,
    "services.http_edge": HttpEdgeSettings,
}
# Variables of issue 17 that the deploy files set before every branch of it is merged
# (docs/plan: pki, keys, closed). Accepted only while no settings class reads them; once one
# does, the usual checks (which program reads it) apply.
PLANNED = {
    "SAYIT_TLS_ALLOWED_PEERS",
    "SAYIT_INTERNAL_TLS",
    "SAYIT_AUTH",
    "SAYIT_API_KEYS_RELOAD_SECONDS",
    "SAYIT_QUOTA_FAIL_OPEN",
    "SAYIT_API_KEY",  # the CLI's and the Python client's key (compose.yaml's usage line)
}


def planned_not_yet_read() -> set[str]:
    return PLANNED - {name for settings in SETTINGS for name in settings.env_names()}


CONFIG_LOADERS = {
    "services.gateway": gateway_config,
    "services.scheduler": scheduler_config,
    "services.transcriber": transcriber_config,
    "services.worker": worker_config,
    "services.http_edge": HttpEdgeSettings.from_env,
}
# The HTTP edge: an HTTP server (probes are GETs of /healthz and /readyz), metrics on a port of
# their own like every service, no identity certificate (it calls the gateway's public port as
# any caller), no Redis.
HTTP_EDGE = "services.http_edge"
HTTP_LISTEN_VARIABLES = {HTTP_EDGE: "SAYIT_HTTP_ADDR"}
HTTP_DEFAULT_PORTS = {HTTP_EDGE: int(HTTP_EDGE_DEFAULT.rsplit(":", 1)[1])}
DEFAULT_PORTS = {
    "services.gateway": int(GATEWAY_DEFAULT.rsplit(":", 1)[1]),
    "services.scheduler": int(SCHEDULER_DEFAULT.rsplit(":", 1)[1]),
    "services.transcriber": int(TRANSCRIBER_DEFAULT.rsplit(":", 1)[1]),
}
LISTEN_VARIABLES = {
    "services.gateway": "SAYIT_GATEWAY_ADDR",
    "services.scheduler": "SAYIT_SCHEDULER_ADDR",
    "services.transcriber": "SAYIT_TRANSCRIBER_ADDR",
}
METRICS_VARIABLES = {
    "services.gateway": "SAYIT_GATEWAY_METRICS_ADDR",
    "services.scheduler": "SAYIT_SCHEDULER_METRICS_ADDR",
    "services.transcriber": "SAYIT_TRANSCRIBER_METRICS_ADDR",
    "services.worker": "SAYIT_WORKER_METRICS_ADDR",
    HTTP_EDGE: "SAYIT_HTTP_METRICS_ADDR",
}


# --- loading ------------------------------------------------------------------------------------


def manifests() -> list[dict[str, Any]]:
    """Every manifest, parsed once per test run (shared: do not modify them)."""
    return list(_manifests())


@functools.cache
def _manifests() -> tuple[dict[str, Any], ...]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return tuple(docs)


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in manifests() if d["kind"] == kind]


def named(kind: str, name: str) -> dict[str, Any]:
    return next(d for d in of_kind(kind) if d["metadata"]["name"] == name)


def workloads() -> list[dict[str, Any]]:
    return of_kind("Deployment") + of_kind("StatefulSet")


def sayit_containers() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for workload in workloads():
        for container in workload["spec"]["template"]["spec"]["containers"]:
            if container["image"] == IMAGE:
                yield workload, container


def module_of(command: list[str]) -> str:
    assert command[:2] == ["python", "-m"] and len(command) == 3, command
    return command[2]


def module_exists(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


CONFIG_MAP = named("ConfigMap", "sayit-config")["data"]


def container_env(container: dict[str, Any]) -> dict[str, str]:
    """The container's environment; a value from a Secret is a stand-in of its kind."""
    env = dict(CONFIG_MAP) if container.get("envFrom") else {}
    for item in container.get("env", []):
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        if ref is not None:
            env[item["name"]] = secret_stand_in(ref["name"], ref["key"])
        else:
            env[item["name"]] = item.get("value", "pod-name-from-the-downward-api")
    return env


# Secrets made outside Git (docs/operations.md), by name: the keys the manifests may use.
REDIS_USERS_SECRET = "sayit-redis-users"
OUT_OF_BAND_SECRETS = {
    "sayit-api-keys": {"api-keys"},
    REDIS_USERS_SECRET: {
        "users.acl",
        "gateway.url",
        "scheduler.url",
        "worker.url",
        "worker.password",
        "admin.password",
    },
}
# Each program's Redis ACL user (services/common/redis_acl.py); transcribers use no Redis.
REDIS_USER_OF = {
    "services.gateway": "gateway",
    "services.scheduler": "scheduler",
    "services.worker": "worker",
}
# The certificate identity each program serves or calls with (services/common/pki.py).
IDENTITY_OF = {
    "services.gateway": "gateway",
    "services.scheduler": "scheduler",
    "services.transcriber": "transcriber",
    "services.worker": "worker",
}
SPIFFE = "spiffe://sayit/"
CERT_MANAGER_KEYS = {"tls.crt", "tls.key", "ca.crt"}


def secret_stand_in(secret: str, key: str) -> str:
    if secret == REDIS_USERS_SECRET and key.endswith(".url"):
        user = key.removesuffix(".url")
        return f"redis://{user}:stand-in-password@redis:6379/0"
    return "stand-in-secret"


def certificates() -> dict[str, dict[str, Any]]:
    """cert-manager Certificates by the Secret they fill."""
    return {c["spec"]["secretName"]: c for c in of_kind("Certificate")}


def secret_keys(name: str) -> set[str]:
    """The keys a Secret the manifests use will have (None-safe: empty when unknown)."""
    if name in OUT_OF_BAND_SECRETS:
        return OUT_OF_BAND_SECRETS[name]
    if name in certificates():
        return CERT_MANAGER_KEYS
    found = [s for s in of_kind("Secret") if s["metadata"]["name"] == name]
    return {k for s in found for k in {**s.get("data", {}), **s.get("stringData", {})}}


def mounted_file(
    pod: dict[str, Any], container: dict[str, Any], path: str
) -> tuple[dict[str, Any], str] | None:
    """The volume and key (for a Secret) that `path` in `container` comes from, if mounted."""
    for mount in container.get("volumeMounts", []):
        prefix = mount["mountPath"].rstrip("/") + "/"
        if path.startswith(prefix) or path + "/" == prefix:
            volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
            return volume, path.removeprefix(prefix)
    return None


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def port(addr: str) -> int:
    return int(addr.rsplit(":", 1)[1])


def env_with_files(
    workload: dict[str, Any], container: dict[str, Any], root: Path
) -> dict[str, str]:
    """The container's environment with every mounted file it names made under `root` (test
    certificates for cert-manager Secrets, the Secret's text otherwise), for config loaders
    that read the files. A path in no mount fails here: the pod would not have it."""
    pod = workload["spec"]["template"]["spec"]
    env = container_env(container)
    authority = Authority(root / "ca", "sayit-test-ca")
    pairs: dict[str, Pair] = {}
    for name, value in env.items():
        if not value.startswith("/") or name == "SAYIT_MODELS_DIR":
            continue
        found = mounted_file(pod, container, value)
        assert found is not None, (container["name"], name, value)
        volume, key = found
        local = root / value.lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        if "secret" not in volume:
            local.mkdir(exist_ok=True)  # a directory the program writes to (emptyDir)
        elif volume["secret"]["secretName"] in certificates():
            assert key in CERT_MANAGER_KEYS, (container["name"], name, key)
            secret_name = volume["secret"]["secretName"]
            if secret_name not in pairs:
                pairs[secret_name] = authority.issue(secret_name, server=True)
            pair = pairs[secret_name]
            source = {"tls.crt": pair.cert, "tls.key": pair.key, "ca.crt": authority.pair.cert}
            local.write_bytes(source[key].read_bytes())
        else:
            assert key in secret_keys(volume["secret"]["secretName"]), (container["name"], key)
            local.write_text("stand-in\n")
        env[name] = str(local)
    return env


# --- Compose ------------------------------------------------------------------------------------

# `sh -c 'SAYIT_REDIS_URL="$(cat FILE)" exec python -m MODULE'`: the Redis URL (with its
# password) comes from a file of the service's identity volume.
_WRAPPED = re.compile(r'SAYIT_REDIS_URL="\$\$\(cat ([^)]+)\)" exec python -m ([\w.]+)')


def compose_module(command: list[str]) -> str:
    if command[:2] == ["sh", "-c"]:
        match = _WRAPPED.fullmatch(command[2])
        assert match, command
        return match.group(2)
    return module_of(command)


def compose_redis_url_file(command: list[str]) -> str | None:
    match = _WRAPPED.fullmatch(command[2]) if command[:2] == ["sh", "-c"] else None
    return match.group(1) if match else None


def compose_mounts(service: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """Mount path -> (volume, read only)."""
    mounts = {}
    for item in service.get("volumes", []):
        if isinstance(item, str):
            source, target, *mode = item.split(":")
            mounts[target] = (source, mode == ["ro"])
        else:
            assert item["type"] == "volume", item
            mounts[item["target"]] = (item["source"], bool(item.get("read_only")))
    return mounts


def compose_volume_of(service: dict[str, Any], path: str) -> tuple[str, str] | None:
    """The volume `path` is on in `service`, and the path inside that volume."""
    for target, (volume, _) in compose_mounts(service).items():
        if path.startswith(target.rstrip("/") + "/") or path == target:
            return volume, path.removeprefix(target).lstrip("/")
    return None


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    env = {k: str(v) for k, v in service.get("environment", {}).items()}
    url_file = compose_redis_url_file(service["command"])
    if url_file is not None:
        env["SAYIT_REDIS_URL"] = "redis://stand-in:stand-in-password@redis:6379/0"
    return env


def compose_env_with_files(service: dict[str, Any], root: Path) -> dict[str, str]:
    """compose_env with the files its paths name made under `root` (test certificates for
    identity volumes, a keys file, directories), for config loaders that read them."""
    env = compose_env(service)
    authority = Authority(root / "ca", "sayit-test-ca")
    pairs: dict[str, Pair] = {}
    for name, value in env.items():
        if not value.startswith("/"):
            continue
        found = compose_volume_of(service, value)
        assert found is not None, (name, value)
        volume, inside = found
        local = root / value.lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        if inside.endswith((".crt", ".key")):
            if volume not in pairs:
                pairs[volume] = authority.issue(volume, server=True)
            source = {"tls.crt": pairs[volume].cert, "tls.key": pairs[volume].key}
            local.write_bytes(source.get(inside, authority.pair.cert).read_bytes())
        elif inside.endswith(".toml"):
            local.write_text("")
        else:
            local.mkdir(exist_ok=True)
        env[name] = str(local)
    return env

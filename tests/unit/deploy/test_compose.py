"""deploy/compose.yaml: zero trust on one Docker host (issue 17): hardened containers, one
identity volume per service, Redis ACL users, keys on, and the setup script that makes them
(run here for real, with the paths moved to a temporary directory)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from services.gateway.keys import hash_key, load_keyring
from tests.support.deploy_files import (
    HTTP_EDGE,
    IDENTITY_OF,
    REDIS_USER_OF,
    compose,
    compose_env,
    compose_module,
    compose_mounts,
    compose_redis_url_file,
    compose_volume_of,
)

SAYIT_VOLUME_ROOT = "/var/lib/sayit"


def services() -> dict[str, dict[str, Any]]:
    return dict(compose()["services"])


def sayit_services() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services().items() if n not in ("redis", "setup")}


def test_every_container_is_hardened() -> None:
    for name, service in services().items():
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert "cap_add" not in service and not service.get("privileged"), name
        # The image's user (uid 10001) for SayIt; Redis as its own non-root user.
        user = str(service.get("user", "10001"))
        assert user.split(":")[0] not in ("0", "root"), name
        if name != "redis":
            assert service["tmpfs"] == ["/tmp"], name


def test_redis_runs_its_acl_users_protected() -> None:
    redis = services()["redis"]
    command = redis["command"]
    assert command[command.index("--protected-mode") + 1] == "yes"
    acl = command[command.index("--aclfile") + 1]
    assert compose_volume_of(redis, acl) == ("redis-acl", "users.acl")
    # In the SayIt group: the ACL files are group-readable only.
    assert redis["user"] == "999:10001"
    assert "--user admin" in redis["healthcheck"]["test"][1]
    assert "grep -qx PONG" in redis["healthcheck"]["test"][1]
    for name, service in services().items():
        for target, (volume, read_only) in compose_mounts(service).items():
            if volume == "redis-acl" and name != "setup":
                assert read_only, target


def test_each_service_mounts_only_its_own_identity() -> None:
    for name, service in sayit_services().items():
        module = compose_module(service["command"])
        env = compose_env(service)
        identities = {v for v, _ in compose_mounts(service).values() if v.startswith("identity-")}
        if module == HTTP_EDGE:
            # A caller of the gateway's plaintext public port: no identity, no TLS.
            assert not identities and not [v for v in env if v.startswith("SAYIT_TLS_")], name
            continue
        node = module == "services.worker.node"
        own = (
            {"identity-transcriber", "identity-worker"}
            if node
            else {f"identity-{IDENTITY_OF[module]}"}
        )
        assert identities == own, name
        assert all(ro for v, ro in compose_mounts(service).values() if v.startswith("identity-"))
        client = "identity-worker" if node else f"identity-{IDENTITY_OF[module]}"
        for variable in (
            "SAYIT_TLS_CA_FILE",
            "SAYIT_TLS_CLIENT_CERT_FILE",
            "SAYIT_TLS_CLIENT_KEY_FILE",
        ):
            assert compose_volume_of(service, env[variable])[0] == client, (name, variable)  # type: ignore[index]
        if module == "services.gateway":
            # The public port stays plaintext on 127.0.0.1, as in `make up`.
            assert "SAYIT_TLS_CERT_FILE" not in env
            assert all(p.startswith("127.0.0.1:") for p in service["ports"])
            continue
        server = "identity-transcriber" if node else f"identity-{IDENTITY_OF[module]}"
        for variable in ("SAYIT_TLS_CERT_FILE", "SAYIT_TLS_KEY_FILE", "SAYIT_TLS_CLIENT_CA_FILE"):
            assert compose_volume_of(service, env[variable])[0] == server, (name, variable)  # type: ignore[index]
        assert env.get("SAYIT_INTERNAL_TLS", "on") != "off"
    peers = {n: compose_env(s).get("SAYIT_TLS_ALLOWED_PEERS") for n, s in sayit_services().items()}
    assert peers == {
        "scheduler": "gateway",
        "gateway": None,
        "http-edge": None,
        "transcriber-direct": "scheduler",
        "queue-node": "worker",
    }


def test_each_service_uses_redis_as_its_own_user() -> None:
    for name, service in sayit_services().items():
        module = compose_module(service["command"])
        url_file = compose_redis_url_file(service["command"])
        user = REDIS_USER_OF.get("services.worker" if module == "services.worker.node" else module)
        if user is None:
            assert url_file is None and "SAYIT_REDIS_URL" not in compose_env(service), name
            continue
        assert url_file is not None, name
        assert compose_volume_of(service, url_file) == (f"identity-{user}", "redis.url"), name
    # The setup state (CA key, every password, the development key) is setup's alone.
    for name, service in services().items():
        volumes = {v for v, _ in compose_mounts(service).values()}
        assert ("setup-state" in volumes) == (name == "setup"), name


def test_the_gateway_requires_api_keys() -> None:
    text = (Path(__file__).parents[3] / "deploy" / "compose.yaml").read_text()
    assert not re.search(r"SAYIT_AUTH\W+off", text)
    gateway = services()["gateway"]
    keys = compose_env(gateway)["SAYIT_API_KEYS_FILE"]
    assert compose_volume_of(gateway, keys) == ("api-keys", "api-keys.toml")
    assert compose_mounts(gateway)["/etc/sayit/keys"] == ("api-keys", True)
    # Everything that reads setup's output waits for it.
    for name, service in services().items():
        if name != "setup" and any(
            v.startswith(("identity-", "redis-acl", "api-keys"))
            for v, _ in compose_mounts(service).values()
        ):
            waits = service["depends_on"]
            chain = {"redis", "scheduler", "setup"} & set(waits)
            assert chain, name


# --- the setup script, run -----------------------------------------------------------------------

MODULES = ("services.common.pki", "services.common.redis_acl")
MISSING = [m for m in MODULES if importlib.util.find_spec(m) is None]


def run_setup(root: Path) -> None:
    setup = services()["setup"]
    assert setup["command"][:2] == ["sh", "-euc"]
    # Compose turns $$ into $; the volumes' mount points move under `root`.
    script = setup["command"][2].replace("$$", "$").replace(SAYIT_VOLUME_ROOT, str(root))
    for target in compose_mounts(setup):
        (root / target.removeprefix(SAYIT_VOLUME_ROOT + "/")).mkdir(parents=True, exist_ok=True)
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    result = subprocess.run(
        ["sh", "-euc", script],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": path},
        cwd=Path(__file__).parents[3],
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(bool(MISSING), reason=f"not merged yet: {', '.join(MISSING)}")
def test_setup_makes_every_file_the_services_read_and_keeps_them(tmp_path: Path) -> None:
    run_setup(tmp_path)
    volumes = {
        v: tmp_path / t.removeprefix(SAYIT_VOLUME_ROOT + "/")
        for t, (v, _) in compose_mounts(services()["setup"]).items()
    }
    # Every file a service or Redis names is in the volume it mounts.
    for name, service in services().items():
        if name == "setup":
            continue
        paths = [v for v in compose_env(service).values() if v.startswith("/etc/")]
        paths += [compose_redis_url_file(service["command"]) or ""]
        if name == "redis":
            paths = [
                service["command"][service["command"].index("--aclfile") + 1],
                "/etc/redis/acl/admin.password",
            ]
        for path in filter(None, paths):
            found = compose_volume_of(service, path)
            assert found is not None, (name, path)
            volume, inside = found
            assert (volumes[volume] / inside).is_file(), (name, path)
    # Each identity is its service's: URI SAN spiffe://sayit/<service>, signed by the CA given.
    for identity in set(IDENTITY_OF.values()):
        directory = volumes[f"identity-{identity}"]
        cert = x509.load_pem_x509_certificate((directory / "tls.crt").read_bytes())
        ca = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
        cert.verify_directly_issued_by(ca)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [
            f"spiffe://sayit/{identity}"
        ]
        assert not any(p.name == "ca.key" for p in directory.iterdir())
    for user in REDIS_USER_OF.values():
        url = (volumes[f"identity-{user}"] / "redis.url").read_text()
        assert re.fullmatch(rf"redis://{user}:[\w-]+@redis:6379/0", url), url
    acl = (volumes["redis-acl"] / "users.acl").read_text()
    assert "user default off" in acl
    assert oct((volumes["redis-acl"] / "users.acl").stat().st_mode & 0o777) == "0o640"
    # Keys on: the keys file holds the development key's hash, never the key.
    key = (volumes["setup-state"] / "dev-api-key").read_text().strip()
    keys_file = volumes["api-keys"] / "api-keys.toml"
    assert key.startswith("sayit_") and key not in keys_file.read_text()
    ring = load_keyring(keys_file)
    assert hash_key(key) in ring.by_hash
    # Run again (every `up`): the same key, CA and passwords.
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    run_setup(tmp_path)
    for file, content in before.items():
        assert file.read_bytes() == content, file


DOCKER_COMPOSE = shutil.which("docker-compose")


@pytest.mark.skipif(DOCKER_COMPOSE is None, reason="docker-compose (Debian's, v1) is not installed")
def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    # `config` validates against the Compose schema and interpolates without a daemon. Version
    # 1 predates the top-level `name`, so it is left out of the copy it checks.
    assert DOCKER_COMPOSE
    source = Path(__file__).parents[3] / "deploy" / "compose.yaml"
    copy = tmp_path / "compose.yaml"
    copy.write_text(re.sub(r"(?m)^name: .*\n", "", source.read_text()))
    result = subprocess.run(
        [DOCKER_COMPOSE, "-f", str(copy), "--project-directory", str(source.parent), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "SAYIT_IMAGE": "sayit:test"},
    )
    assert result.returncode == 0, result.stderr
    assert not result.stderr.strip(), result.stderr  # e.g. an unset variable's warning
    rendered = yaml.safe_load(result.stdout)
    assert set(rendered["services"]) == set(services())

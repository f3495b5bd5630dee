"""The ACL rules and the files they are written to (services.common.redis_acl); a real Redis
enforcing them is tests/integration/test_redis_acl.py."""

from __future__ import annotations

import inspect
from fnmatch import fnmatchcase
from pathlib import Path

from services.common import redis_acl
from services.common.redact import hide_password
from services.jobs.schema import Keys

USERS = {user.name: user for user in redis_acl.USERS}


def allowed(user: str, key: str, prefix: str = "sayit") -> bool:
    return any(fnmatchcase(key, k.format(p=prefix)) for k in USERS[user].keys)


def every_job_key(prefix: str) -> dict[str, str]:
    """One key of each family services.jobs.schema.Keys names, by method."""
    keys = Keys(prefix)
    found = {}
    for name, method in inspect.getmembers(keys, inspect.ismethod):
        if not name.startswith("_"):
            arity = len(inspect.signature(method).parameters)
            found[name] = method(*["x1"] * arity)
    return found


def test_the_scheduler_may_touch_every_job_key_and_no_quota() -> None:
    for prefix in ("sayit", "other"):
        job_keys = every_job_key(prefix)
        assert len(job_keys) >= 12
        for method, key in job_keys.items():
            assert allowed("scheduler", key, prefix), (method, key)
            assert not allowed("gateway", key, prefix), (method, key)
        assert not allowed("scheduler", f"{prefix}:quota:acme:requests", prefix)


def test_the_worker_gets_its_chunks_and_rq_only() -> None:
    job_keys = every_job_key("sayit")
    mine = {"record", "events", "audio", "chunks", "chunk_audio", "stored_audio"}
    mine |= {"result_cache", "poison"}
    for method, key in job_keys.items():
        assert allowed("worker", key) == (method in mine), (method, key)
    assert allowed("worker", "rq:job:abc") and allowed("worker", "rq:queue:sayit-default")
    assert not allowed("worker", "sayit:quota:acme:audio:2026-01-01")


def test_only_the_scheduler_and_workers_reach_rq() -> None:
    """RQ's job hashes name the function a worker imports and calls."""
    assert [u for u in USERS if allowed(u, "rq:job:abc")] == ["scheduler", "worker", "admin"]
    assert not {"publish", "rpush", "lpush"} & set(USERS["gateway"].commands)
    assert not USERS["gateway"].channels


def test_no_service_gets_server_wide_commands() -> None:
    dangerous = {"config", "flushall", "flushdb", "keys", "shutdown", "acl", "eval", "debug"}
    dangerous |= {"script|flush", "client|kill", "monitor", "module", "replicaof", "save"}
    for name in ("gateway", "scheduler", "worker"):
        assert not dangerous & set(USERS[name].commands), name


def test_the_acl_file_holds_hashes_and_the_default_user_is_off(tmp_path: Path) -> None:
    passwords = redis_acl.ensure(tmp_path)
    text = (tmp_path / redis_acl.ACL_FILE).read_text()
    assert text.splitlines()[0].startswith("user default off")
    assert set(passwords) == {"gateway", "scheduler", "worker", "admin"}
    for password in passwords.values():
        assert len(password) >= 40 and password not in text
    assert len(set(passwords.values())) == 4


def test_passwords_are_private_and_reused(tmp_path: Path) -> None:
    first = redis_acl.ensure(tmp_path / "users")
    (tmp_path / "users" / "worker.password").unlink()
    second = redis_acl.ensure(tmp_path / "users")
    assert {k: v for k, v in second.items() if k != "worker"} == {
        k: v for k, v in first.items() if k != "worker"
    }
    assert second["worker"] != first["worker"]
    for path in (tmp_path / "users").iterdir():
        private = path.name != redis_acl.ACL_FILE  # hashes only: Redis's own user reads it
        assert path.stat().st_mode & 0o777 == (0o600 if private else 0o644), path


def test_the_command_line_writes_urls(tmp_path: Path) -> None:
    assert redis_acl.main([str(tmp_path), "--url", "redis:6379", "--prefix", "p"]) == 0
    password = (tmp_path / "gateway.password").read_text().strip()
    assert (tmp_path / "gateway.url").read_text() == f"redis://gateway:{password}@redis:6379/0"
    assert "~p:quota:*" in (tmp_path / redis_acl.ACL_FILE).read_text()


def test_urls_in_logs_hide_the_password() -> None:
    url = redis_acl.url("worker", "s3cret-Pass_word", "redis", 6379)
    assert hide_password(url) == "redis://worker:***@redis:6379/0"
    assert hide_password("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"

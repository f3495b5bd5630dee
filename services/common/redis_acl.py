"""Who may do what in Redis: one ACL user per service, each limited to the keys and commands its
code uses, in one place (docs/operations.md explains the rules; deploy/ renders them from here).

Write access to RQ's keys is code execution on the queue nodes: a worker imports and calls the
function path stored in an `rq:job:*` hash. So only the scheduler (which enqueues) and the workers
(which run and requeue) may touch `rq:*`; the public-facing gateway gets its quota keys only, and
a gateway taken over cannot reach a worker through Redis. Commands Redis runs inside a Lua script
are checked against the caller's user too, so EVALSHA does not widen anyone's rights.

`python -m services.common.redis_acl DIR` writes `users.acl` (for `redis-server --aclfile`;
password hashes only, 0644) and `<user>.password` (0600) per user into DIR, reusing passwords
already there; `--url HOST:PORT` also writes `<user>.url` (0600), the user's SAYIT_REDIS_URL.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

ACL_FILE = "users.acl"

# Sent on every connection by redis-py (client names show in CLIENT LIST) or by its health
# checks. AUTH and HELLO need no grant. CLIENT SETINFO is left out: Redis 7.0 does not know it
# (an ACL file naming it does not load), so SayIt's clients do not send it (redis_client).
_CONNECTION = ("ping", "select", "client|setname")
# redis-py's Script: EVALSHA, SCRIPT LOAD when Redis lost the script, SCRIPT EXISTS in pipelines.
_SCRIPTS = ("evalsha", "script|load", "script|exists")
_TRANSACTIONS = ("multi", "exec", "discard", "watch", "unwatch")
# The job model (services/jobs: store, chunks, claims, poison, listing and append_event.lua)
# and RQ's own commands (its queues, registries, job hashes, results and worker records).
_DATA = (
    "get", "set", "del", "unlink", "exists", "type", "expire", "persist", "ttl", "strlen",
    "hset", "hget", "hmget", "hgetall", "hdel", "hexists", "hincrby", "hincrbyfloat",
    "lpush", "rpush", "lpop", "lrem", "lrange", "llen", "lindex", "lpos", "lmove",
    "sadd", "srem", "smembers", "scard", "sismember",
    "zadd", "zrem", "zscore", "zcard", "zcount", "zrange", "zrangebyscore", "zrevrange",
    "zrevrangebyscore", "zremrangebyscore", "zremrangebyrank", "zpopmin",
    "xadd", "xrange", "xrevrange", "xlen",
)  # fmt: skip
# An RQ worker reads the server version (INFO server) and its own address (CLIENT INFO, or
# CLIENT LIST when that fails), blocks on its queues (BLMOVE / BLPOP) and takes stop-job and
# shutdown commands on its pub/sub channel `rq:pubsub:<worker name>`.
_RQ_WORKER = ("info", "client|info", "client|list", "blmove", "blpop", "subscribe", "unsubscribe")
# The scheduler's watch hub blocks on XREAD and wakes its reader with CLIENT UNBLOCK; admission
# sizes stored audio (MEMORY USAGE, INFO memory); cancel publishes RQ's stop-job command.
_SCHEDULER = ("xread", "client|id", "client|unblock", "memory|usage", "info", "publish")
# Bucket and daily-seconds script in services/gateway/quotas.py, and the quota read.
_QUOTAS = ("time", "hmget", "hset", "get", "incrbyfloat", "expire")


@dataclass(frozen=True)
class User:
    name: str
    keys: tuple[str, ...]  # glob patterns; "{p}" is SAYIT_REDIS_PREFIX
    commands: tuple[str, ...]  # allowed commands ("all" = every command)
    channels: tuple[str, ...] = ()  # pub/sub channel patterns

    def rule(self, prefix: str, password_hash: str) -> str:
        """The user's line of an ACL file."""
        keys = " ".join(f"~{k.format(p=prefix)}" for k in self.keys)
        channels = " ".join(f"&{c}" for c in self.channels) or "resetchannels"
        commands = (
            "+@all"
            if self.commands == ("all",)
            else " ".join(f"+{c}" for c in sorted(set(self.commands)))
        )
        return f"user {self.name} on #{password_hash} resetkeys {keys} {channels} -@all {commands}"


# Key patterns ("{p}" is SAYIT_REDIS_PREFIX). A worker touches the keys of the chunks it runs,
# the result cache and poison counts it writes, and RQ's; the scheduler every family of
# services/jobs/schema.py (idempotency, in-flight, tenant lists, heartbeats...) but the quotas.
_WORKER_KEYS = ("{p}:job:*", "{p}:audio-keys", "{p}:cache:*", "{p}:poison:*", "rq:*")
_SCHEDULER_KEYS = (
    *_WORKER_KEYS,
    *("{p}:inflight:*", "{p}:idem:*", "{p}:tenant:*", "{p}:active", "{p}:scheduler:*"),
)
_RQ_CHANNELS = ("rq:pubsub:*",)

USERS = (
    User("gateway", ("{p}:quota:*",), (*_CONNECTION, *_SCRIPTS, *_QUOTAS)),
    User(
        "scheduler",
        _SCHEDULER_KEYS,
        (*_CONNECTION, *_SCRIPTS, *_TRANSACTIONS, *_DATA, *_SCHEDULER),
        _RQ_CHANNELS,
    ),
    User(
        "worker",
        _WORKER_KEYS,
        (*_CONNECTION, *_SCRIPTS, *_TRANSACTIONS, *_DATA, *_RQ_WORKER),
        _RQ_CHANNELS,
    ),
    # Tests, bench and tools (make status, bench/crowd's INFO and CLIENT LIST): everything.
    User("admin", ("*",), ("all",), ("*",)),
)
NAMES = tuple(user.name for user in USERS)
# The default user is how a client without credentials connects: off, and without a password,
# so no connection is or becomes it (an unauthenticated one may only AUTH). Its rights stay all
# because Redis < 8 replays the append-only file as the default user and re-checks a
# MULTI/EXEC's commands against its rights: with none, every transaction would be dropped,
# silently, on restart (redis/redis#14541, valkey-io/valkey#3983).
DEFAULT_RULE = "user default off resetpass ~* &* +@all"


def acl_text(passwords: dict[str, str], prefix: str = "sayit") -> str:
    """An ACL file for `passwords` (user -> password); it holds their SHA-256 only."""
    lines = [DEFAULT_RULE]
    for user in USERS:
        digest = hashlib.sha256(passwords[user.name].encode()).hexdigest()
        lines.append(user.rule(prefix, digest))
    return "\n".join(lines) + "\n"


def password_path(directory: Path, user: str) -> Path:
    return directory / f"{user}.password"


def write_secret(path: Path, text: str, mode: int = 0o600) -> None:
    """Write `path` with `mode` (default: its owner's only), created owner-only so that it is
    never briefly readable by others, as write-then-chmod would leave it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, mode)  # an existing file keeps its old mode through O_CREAT


def ensure(directory: Path, prefix: str = "sayit") -> dict[str, str]:
    """Passwords of every user (new random ones for users without one in `directory`) and the
    ACL file for them, written into `directory`; user -> password."""
    directory.mkdir(parents=True, exist_ok=True)
    passwords = {}
    for name in NAMES:
        path = password_path(directory, name)
        if path.exists() and path.read_text().strip():
            passwords[name] = path.read_text().strip()
        else:
            passwords[name] = secrets.token_urlsafe(32)  # URL-safe: goes into redis:// as is
            write_secret(path, passwords[name] + "\n")
    # Readable by all: a Redis running as another user (a container's) must read it, and it
    # holds only SHA-256 hashes of 256-bit random passwords, which cannot be turned back.
    write_secret(directory / ACL_FILE, acl_text(passwords, prefix), mode=0o644)
    return passwords


def url(user: str, password: str, host: str = "127.0.0.1", port: int = 6379, db: int = 0) -> str:
    """A SAYIT_REDIS_URL for `user`."""
    return f"redis://{user}:{password}@{host}:{port}/{db}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.common.redis_acl")
    parser.add_argument("directory", type=Path)
    parser.add_argument("--prefix", default="sayit", help="SAYIT_REDIS_PREFIX of the services")
    parser.add_argument("--url", metavar="HOST:PORT", help="also write <user>.url files")
    args = parser.parse_args(argv)
    passwords = ensure(args.directory, args.prefix)
    if args.url:
        host, _, port = args.url.rpartition(":")
        for name, password in passwords.items():
            write_secret(args.directory / f"{name}.url", url(name, password, host, int(port)))
    print(f"Redis users {', '.join(NAMES)} in {args.directory / ACL_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

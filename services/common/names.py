"""Job ids and resource names ("jobs/{id}")."""

from __future__ import annotations

import uuid

from services.common.errors import InvalidArgument

JOB_NAME_PREFIX = "jobs/"


def new_job_id() -> str:
    return uuid.uuid4().hex


def is_job_id(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


def job_name(job_id: str) -> str:
    return JOB_NAME_PREFIX + job_id


def job_id_from_name(name: str, field: str = "name") -> str:
    """ "jobs/{id}" -> id; INVALID_ARGUMENT naming the field otherwise."""
    job_id = name[len(JOB_NAME_PREFIX) :] if name.startswith(JOB_NAME_PREFIX) else ""
    if not is_job_id(job_id):
        raise InvalidArgument(
            f"{field} must look like 'jobs/<32 lowercase hex characters>'; got {name[:80]!r}",
            field=field,
        )
    return job_id

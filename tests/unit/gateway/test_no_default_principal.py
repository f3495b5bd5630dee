"""services.gateway.auth.current() has no default: code reached without the edge interceptor
having admitted the call fails instead of serving it as a tenant with every right."""

from __future__ import annotations

import contextvars

import pytest

from services.gateway import auth
from services.gateway.keys import Principal


def test_no_principal_set_is_an_error_not_an_all_rights_tenant() -> None:
    with pytest.raises(RuntimeError, match="did not pass the gateway's interceptor"):
        contextvars.Context().run(auth.current)


def test_the_principal_set_for_a_call_is_the_one_read() -> None:
    principal = Principal("acme", "reader", frozenset({"GetJob"}))

    def admitted() -> Principal:
        auth.set_current(principal)
        return auth.current()

    assert contextvars.Context().run(admitted) is principal

"""The edge's OpenAPI document: the running edge serves the committed docs/openapi.json, and
schemathesis, generating requests from the served document for every operation in it, finds no
server error and no response outside the document (status, content type, headers, body schema).

Requests carry a valid key (`Authorization: Bearer`), so generated input reaches the gateway's
validation, not only the edge's authentication. Examples per operation are capped (positive and
negative data), so the whole run stays well under a minute."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from devsupport.http_edge import HttpEdge
from scripts import openapi

pytestmark = pytest.mark.model

# Per operation and generation mode: enough to reach each parameter's edge cases, few enough to
# keep the run short with a dozen operations.
EXAMPLES = 15
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Modes: valid requests (they reach the gateway) and invalid ones (the edge must refuse them
# with a documented 4xx, never a 5xx).
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)


def test_the_edge_serves_the_committed_document(http_edge: HttpEdge) -> None:
    served = httpx.get(f"{http_edge.base_url}/openapi.json", timeout=10).json()
    committed = json.loads(openapi.DOC.read_text())
    assert served == committed, "docs/openapi.json differs from the running edge: make openapi"
    # And the committed text is exactly what `make openapi` writes (stable formatting).
    assert openapi.render(served) == openapi.DOC.read_text()


def test_schemathesis_finds_no_server_error_and_no_undocumented_response(
    http_edge: HttpEdge, http_key: str
) -> None:
    schema = schemathesis.openapi.from_url(f"{http_edge.base_url}/openapi.json", timeout=10)
    operations = [result.ok() for result in schema.get_all_operations()]
    documented = json.loads(openapi.DOC.read_text())["paths"]
    assert len(operations) == sum(
        1 for item in documented.values() for method in item if method != "parameters"
    )
    auth = {"Authorization": f"Bearer {http_key}"}
    failures: dict[str, str] = {}
    calls: dict[str, int] = {}
    for operation in operations:
        label = operation.label
        calls[label] = 0
        for mode in MODES:
            try:
                _explore(operation.as_strategy(mode), http_edge.base_url, auth, calls, label)
            except (AssertionError, FailureGroup) as failure:  # failed checks, with a curl line
                failures[f"{label} ({mode.value})"] = str(failure)[:3000]
            except Unsatisfiable:
                # No invalid request exists for an operation without parameters or body.
                assert mode is schemathesis.GenerationMode.NEGATIVE, label
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
    # Every operation was really called (a strategy that generates nothing tests nothing).
    assert all(n > 0 for n in calls.values()), calls


def _explore(
    strategy: st.SearchStrategy[Any],
    base_url: str,
    headers: dict[str, str],
    calls: dict[str, int],
    label: str,
) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        # No shrinking: a failure is reported as found, with its curl command.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: schemathesis.Case) -> None:
        calls[label] += 1
        case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=60)

    run()

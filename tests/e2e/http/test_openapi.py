"""The edge's OpenAPI document: the running edge serves the committed docs/openapi.json, and
schemathesis, generating requests from the served document for every operation in it, finds no
server error and no response outside the document (status, content type, headers, body schema).

Requests carry a valid key (`Authorization: Bearer`), so generated input reaches the gateway's
validation, not only the edge's authentication; a few valid uploads carry real speech, so
success responses are checked too, not only errors. Examples per operation are capped (positive
and negative data), so the whole run stays well under a minute."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from devsupport import evalset
from devsupport.http_edge import HttpEdge
from scripts import openapi

pytestmark = pytest.mark.model

# Per operation and generation mode: enough to reach each parameter's edge cases, few enough to
# keep the run short with a dozen operations.
EXAMPLES = 8
# Per operation that uploads a `file`: requests with real speech (a 2.7 s Korean clip) in it.
SPEECH_CALLS = 1
SPEECH_CLIP = "ko_deeply_sub100102a00085"
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
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"an operation schemathesis cannot read: {result.err()}"
        operations.append(result.ok())
    documented = json.loads(openapi.DOC.read_text())["paths"]
    assert len(operations) == sum(
        1 for item in documented.values() for method in item if method != "parameters"
    )
    explorer = Explorer(http_edge.base_url, {"Authorization": f"Bearer {http_key}"})
    failures: dict[str, str] = {}
    for operation in operations:
        label = operation.label
        explorer.calls[label] = 0
        for mode in MODES:
            try:
                explorer.explore(label, operation.as_strategy(mode), mode)
            except (AssertionError, FailureGroup) as failure:  # failed checks, with a curl line
                failures[f"{label} ({mode.value})"] = str(failure)[:3000]
            except Unsatisfiable:
                # No invalid request exists for an operation without parameters or body.
                assert mode is schemathesis.GenerationMode.NEGATIVE, label
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
    # Every operation was really called (a strategy that generates nothing tests nothing).
    assert all(n > 0 for n in explorer.calls.values()), explorer.calls
    # An operation that took real speech answered it with a success at least once (its
    # minimal request), so its success responses were checked against the document too.
    for label, statuses in explorer.speech.items():
        assert any(200 <= s < 300 for s in statuses), (label, statuses)


@dataclass
class Explorer:
    """Runs generated requests of one operation at a time against the edge, with a key."""

    base_url: str
    headers: dict[str, str]
    calls: dict[str, int] = field(default_factory=dict)
    # Operation -> statuses of the requests whose `file` was real speech.
    speech: dict[str, list[int]] = field(default_factory=dict)
    audio: bytes = field(default_factory=lambda: evalset.clip(SPEECH_CLIP).read())

    def explore(
        self, label: str, strategy: st.SearchStrategy[Any], mode: schemathesis.GenerationMode
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
        @given(case=strategy, speech=st.booleans())
        def run(case: schemathesis.Case, speech: bool) -> None:
            self.calls[label] += 1
            real = self._with_speech(label, case, mode, speech)
            response = case.call_and_validate(
                base_url=self.base_url, headers=self.headers, checks=CHECKS, timeout=120
            )
            if real:
                self.speech[label].append(response.status_code)

        run()

    def _with_speech(
        self, label: str, case: schemathesis.Case, mode: schemathesis.GenerationMode, draw: bool
    ) -> bool:
        """Random bytes are never audio: in a few valid requests that upload a `file`, put real
        speech there (the first time with only `file` and `model` kept, so it can succeed)."""
        body = case.body
        if mode is not schemathesis.GenerationMode.POSITIVE or not isinstance(body, dict):
            return False
        if "file" not in body or not draw:
            return False
        sent = self.speech.setdefault(label, [])
        if len(sent) >= SPEECH_CALLS:
            return False
        if not sent:
            # Only what a minimal valid request has: generated query parameters and headers
            # (an Idempotency-Key of random text, say) could make it fail for good reasons.
            case.query = {}
            case.headers = {}
            kept = {k: v for k, v in body.items() if k == "model"}
            body.clear()
            body.update(kept, **({"model": "whisper-1"} if "model" in kept else {}))
        body["file"] = self.audio
        return True

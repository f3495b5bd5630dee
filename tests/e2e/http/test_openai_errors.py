"""The OpenAI routes' error answers on the edge mesh (keys, rights, per-tenant limits), as HTTP
statuses in OpenAI's error shape and as the openai SDK's exception classes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from devsupport import evalset
from devsupport.http_edge import HttpEdge
from tests.support.client_clips import SHORT_KO
from tests.support.edge import EdgeMesh

NOT_AUDIO = ("notes.wav", b"this is a text file, not audio\n" * 40)


def sdk(edge: HttpEdge, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=edge.base_url + "/v1", api_key=key, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def raw(http_edge_limits: HttpEdge) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=http_edge_limits.base_url, timeout=60) as client:
        yield client


def transcribe_form(raw: httpx.Client, key: str | None, **fields: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return raw.post(
        "/v1/audio/transcriptions",
        files={"file": NOT_AUDIO},
        data={"model": "whisper-1", **fields},
        headers=headers,
    )


def test_no_key_or_a_wrong_key_is_401(http_edge_limits: HttpEdge, raw: httpx.Client) -> None:
    reply = transcribe_form(raw, None)
    assert reply.status_code == 401
    error = reply.json()["error"]
    assert error["type"] == "authentication_error" and error["code"] == "unauthenticated"
    assert "key" in error["message"].lower()
    with pytest.raises(openai.AuthenticationError) as caught:
        sdk(http_edge_limits, "sk-not-a-sayit-key").audio.transcriptions.create(
            file=NOT_AUDIO, model="whisper-1"
        )
    assert caught.value.status_code == 401
    with pytest.raises(openai.AuthenticationError):
        sdk(http_edge_limits, "sk-not-a-sayit-key").models.list()


def test_a_read_only_key_is_403(http_edge_limits: HttpEdge, edge: EdgeMesh) -> None:
    with pytest.raises(openai.PermissionDeniedError) as caught:
        sdk(http_edge_limits, edge.keys["acme-reader"]).audio.transcriptions.create(
            file=NOT_AUDIO, model="whisper-1"
        )
    assert caught.value.status_code == 403
    assert caught.value.type == "permission_error"


def test_bad_requests_are_400_naming_the_parameter(
    http_edge_limits: HttpEdge, edge: EdgeMesh
) -> None:
    client = sdk(http_edge_limits, edge.keys["acme"])
    clip = evalset.clip(SHORT_KO)
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(
            file=(clip.path.name, clip.read()), model="whisper-1", language="xx"
        )
    assert caught.value.param == "language" and caught.value.code == "invalid_argument"
    assert "'xx'" in caught.value.message

    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(file=NOT_AUDIO, model="whisper-1")
    assert caught.value.param == "file"
    assert "decode" in caught.value.message or "audio" in caught.value.message

    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.translations.create(file=NOT_AUDIO, model="gpt-4o-transcribe")
    assert caught.value.param == "model" and caught.value.code == "model_not_found"
    assert "whisper-1" in caught.value.message

    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(
            file=NOT_AUDIO,
            model="whisper-1",
            response_format="diarized_json",  # not served by SayIt
        )
    assert caught.value.param == "response_format"

    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("gpt-4o-transcribe")
    assert caught.value.code == "model_not_found"


def test_over_the_rate_limit_is_429_with_retry_after(
    http_edge_limits: HttpEdge, edge: EdgeMesh, raw: httpx.Client
) -> None:
    # Tenant tiny: 0.5 requests/s, burst 2. Each request is refused before any audio work.
    key = edge.keys["tiny"]
    statuses = []
    for _ in range(6):
        reply = transcribe_form(raw, key)
        statuses.append(reply.status_code)
        if reply.status_code == 429:
            break
    assert statuses[-1] == 429, statuses
    assert set(statuses[:-1]) <= {400}
    assert 1 <= int(reply.headers["retry-after"]) <= 3
    assert int(reply.headers["retry-after-ms"]) > 0
    error = reply.json()["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "resource_exhausted"
    rate_limited = False
    for _ in range(3):
        try:
            sdk(http_edge_limits, key).audio.transcriptions.create(
                file=NOT_AUDIO, model="whisper-1"
            )
        except openai.RateLimitError as limit:
            assert limit.status_code == 429
            rate_limited = True
            break
        except openai.BadRequestError:
            continue  # a token came back in between
    assert rate_limited

"""Jobs over HTTP against the real mesh: a long Korean file uploaded as a multipart form and
followed to the end over server-sent events (with a disconnect and a Last-Event-ID resume), a
second one streamed raw by curl then cancelled, idempotency, listing in pages, and the errors.

Two real transcriptions at most (one runs to the end, one is cancelled), shared by the module's
tests."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from devsupport import audio, scoring
from devsupport.http_edge import HttpEdge

TERMINAL = {"completed", "failed", "cancelled"}
UNKNOWN_ID = "0" * 32


@dataclass
class Sse:
    id: str | None
    event: str
    data: Any

    @property
    def key(self) -> tuple[str | None, str, str]:
        return self.id, self.event, json.dumps(self.data, sort_keys=True)


@dataclass
class Stream:
    status: int
    headers: httpx.Headers
    events: list[Sse] = field(default_factory=list)
    comments: int = 0


def read_events(
    http: httpx.Client, path: str, *, headers: dict[str, str] | None = None, stop_after: int = 0
) -> Stream:
    """The events of `path` until the server ends the stream (or `stop_after` events, then the
    connection is dropped)."""
    with http.stream("GET", path, headers=headers, timeout=httpx.Timeout(10, read=120)) as reply:
        stream = Stream(reply.status_code, reply.headers)
        if reply.status_code != 200:
            reply.read()
            stream.events.append(Sse(None, "http-error", reply.json()))
            return stream
        fields: dict[str, str] = {}
        for line in reply.iter_lines():
            if line.startswith(":"):
                stream.comments += 1
            elif line:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
            elif fields:
                stream.events.append(
                    Sse(
                        fields.get("id"), fields.get("event", "message"), json.loads(fields["data"])
                    )
                )
                fields = {}
                if stop_after and len(stream.events) >= stop_after:
                    break  # leaving the `with` drops the connection mid-stream
    return stream


@pytest.fixture(scope="module")
def http(http_edge: HttpEdge, http_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=http_edge.base_url,
        headers={"Authorization": f"Bearer {http_key}"},
        timeout=60,
    ) as client:
        yield client


@dataclass
class Followed:
    created: httpx.Response
    reference: str
    seconds: float
    before: Stream  # the first event, then a disconnect
    after: Stream  # resumed with Last-Event-ID to the end


@pytest.fixture(scope="module")
def followed(http: httpx.Client) -> Followed:
    """A 45 s Korean file as a multipart upload, followed to its end over SSE: one event, a
    dropped connection, then the rest after Last-Event-ID."""
    content, reference, seconds = audio.korean_long(45.0)
    created = http.post(
        "/v1/jobs",
        files={"file": ("korean.wav", content, "audio/wav")},
        data={"language": "ko", "preset": "fast"},
    )
    assert created.status_code == 201, created.text
    path = f"/v1/jobs/{created.json()['id']}/events"
    before = read_events(http, path, stop_after=1)
    assert before.status == 200 and before.events and before.events[0].id is not None
    after = read_events(http, path, headers={"Last-Event-ID": before.events[-1].id})
    return Followed(created, reference, seconds, before, after)


def test_multipart_job_followed_to_the_end(http: httpx.Client, followed: Followed) -> None:
    job = followed.created.json()
    assert followed.created.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["name"] == f"jobs/{job['id']}" and job["object"] == "job"
    assert job["state"] in ("queued", "running")
    assert job["filename"] == "korean.wav"
    assert job["config"]["language"] == "ko" and job["config"]["preset"] == "fast"
    assert abs(job["audio_duration_seconds"] - followed.seconds) < 2.0

    events = followed.before.events + followed.after.events
    sequences = [int(e.id) for e in events if e.id is not None]
    assert len(sequences) == len(events)
    assert sequences == sorted(set(sequences)), "sequences must strictly increase"
    assert events[0].event == "accepted" and events[0].data["accepted"]["routing"] == "queued"
    assert [e.event for e in events if e.event in TERMINAL] == ["completed"]
    assert events[-1].event == "completed"
    for item in events:
        assert item.data["type"] == item.event and item.data["sequence"] == int(item.id or 0)
        assert item.data["name"] == job["name"] and item.event in item.data
    transcript = events[-1].data["completed"]["transcript"]
    assert transcript["language"] == "ko"
    rate = scoring.score(followed.reference, transcript["text"], "ko").rate
    assert rate < 0.2, transcript["text"]
    segments = [e.data["segment"]["text"] for e in events if e.event == "segment"]
    assert segments, "segments arrive as they are decoded"

    # The job as a resource: succeeded, with the same transcript.
    got = http.get(f"/v1/jobs/{job['id']}")
    assert got.status_code == 200
    assert got.json()["state"] == "succeeded" and got.json()["ended_at"] is not None
    assert got.json()["transcript"]["text"] == transcript["text"]
    assert got.json()["error"] is None


def test_resume_misses_and_repeats_nothing(http: httpx.Client, followed: Followed) -> None:
    job_id = followed.created.json()["id"]
    replay = read_events(http, f"/v1/jobs/{job_id}/events")
    union = followed.before.events + followed.after.events
    assert [e.key for e in union] == [e.key for e in replay.events]
    # ?after= resumes the same way; a bad Last-Event-ID is refused.
    middle = replay.events[len(replay.events) // 2]
    tail = read_events(http, f"/v1/jobs/{job_id}/events?after={middle.id}")
    assert [e.key for e in tail.events] == [
        e.key for e in replay.events if int(e.id or 0) > int(middle.id or 0)
    ]
    bad = read_events(http, f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "seven"})
    assert bad.status == 400 and bad.events[0].data["error"]["param"] == "Last-Event-ID"
    after_end = read_events(http, f"/v1/jobs/{job_id}/events?after={replay.events[-1].id}")
    assert after_end.status == 200 and after_end.events == []


def curl_upload(
    edge: HttpEdge, key: str, content: bytes, idempotency_key: str, tmp: Path
) -> tuple[int, dict[str, str], Any]:
    """`curl -T -`: the body read from stdin and sent chunked, as it is read."""
    headers_file, body_file = tmp / "headers.txt", tmp / "body.json"
    done = subprocess.run(
        [
            "curl", "-sS", "-X", "POST", "-T", "-",
            "-H", "Content-Type: audio/wav",
            "-H", f"Authorization: Bearer {key}",
            "-H", f"Idempotency-Key: {idempotency_key}",
            "-D", str(headers_file), "-o", str(body_file), "-w", "%{http_code}",
            f"{edge.base_url}/v1/jobs?language=ko&filename=raw.wav&word_timestamps=true",
        ],
        input=content,
        capture_output=True,
        timeout=120,
        check=True,
    )  # fmt: skip
    lines = headers_file.read_text().splitlines()
    request_headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines[1:] if ":" in line)
    }
    return int(done.stdout), request_headers, json.loads(body_file.read_text())


def test_raw_upload_by_curl_idempotency_and_cancel(
    http: httpx.Client,
    http_edge: HttpEdge,
    http_key: str,
    followed: Followed,
    tmp_path: Path,
) -> None:
    content, _, seconds = audio.korean_long(45.0, start=5)
    key = f"http-{uuid.uuid4().hex}"
    status, headers, job = curl_upload(http_edge, http_key, content, key, tmp_path)
    assert status == 201, job
    assert headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["filename"] == "raw.wav" and job["config"]["language"] == "ko"
    assert job["config"]["word_timestamps"] is True
    # The whole file arrived: the gateway measured all of its audio.
    assert abs(job["audio_duration_seconds"] - seconds) < 2.0

    # The same Idempotency-Key and request again (a raw body, as --data-binary sends it): the
    # same job. The key with another config is refused.
    raw = {"Content-Type": "application/octet-stream", "Idempotency-Key": key}
    again = http.post(
        "/v1/jobs?language=ko&filename=raw.wav&word_timestamps=true", content=content, headers=raw
    )
    assert again.status_code == 201, again.text
    assert again.json()["id"] == job["id"]
    other = http.post("/v1/jobs?language=ko&filename=raw.wav", content=content, headers=raw)
    assert other.status_code == 400
    assert other.json()["error"]["param"] == "Idempotency-Key"

    cancelled = http.post(f"/v1/jobs/{job['id']}:cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled"
    assert http.get(f"/v1/jobs/{job['id']}").json()["state"] == "cancelled"
    twice = http.post(f"/v1/jobs/{job['id']}:cancel")
    assert twice.status_code == 409
    assert twice.json()["error"]["code"] == "failed_precondition"
    assert "already ended" in twice.json()["error"]["message"]
    events = read_events(http, f"/v1/jobs/{job['id']}/events").events
    assert events[0].event == "accepted" and events[-1].event == "cancelled"
    assert "completed" not in [e.event for e in events]


def test_list_in_pages(http: httpx.Client, followed: Followed) -> None:
    job_id = followed.created.json()["id"]
    first = http.get("/v1/jobs?page_size=1")
    assert first.status_code == 200
    page = first.json()
    assert page["object"] == "list" and len(page["data"]) == 1
    seen = [page["data"][0]["id"]]
    # Newest first, one a page: the pages do not overlap. (A page may come back empty only as
    # the last one: a full page has a token, even when nothing follows.)
    for _ in range(3):
        if page["next_page_token"] is None:
            break
        page = http.get(f"/v1/jobs?page_size=1&page_token={page['next_page_token']}").json()
        assert len(page["data"]) == 1 or (not page["data"] and page["next_page_token"] is None)
        seen += [j["id"] for j in page["data"]]
    assert len(seen) == len(set(seen)) >= 2
    basic = {j["id"]: j for j in http.get("/v1/jobs?page_size=100").json()["data"]}
    assert job_id in basic
    assert basic[job_id]["state"] == "succeeded"
    assert basic[job_id]["transcript"]["text"] == ""  # view=basic leaves the text out
    full = {j["id"]: j for j in http.get("/v1/jobs?page_size=100&view=full").json()["data"]}
    assert full[job_id]["transcript"]["text"]
    assert full[job_id]["transcript"]["segments"]
    assert http.get("/v1/jobs?page_size=101").status_code == 400


def test_unknown_and_malformed_jobs(http: httpx.Client) -> None:
    for method, path in (
        ("GET", f"/v1/jobs/{UNKNOWN_ID}"),
        ("POST", f"/v1/jobs/{UNKNOWN_ID}:cancel"),
        ("GET", f"/v1/jobs/{UNKNOWN_ID}/events"),
    ):
        reply = http.request(method, path)
        assert reply.status_code == 404, (path, reply.text)
        assert reply.json()["error"]["type"] == "not_found_error"
    malformed = http.get("/v1/jobs/nope")
    assert malformed.status_code == 400
    assert malformed.json()["error"]["param"] == "id"
    assert "32 lowercase hex" in malformed.json()["error"]["message"]
    assert http.get("/v1/jobs/nope/events").status_code == 400


def test_a_key_is_required(http_edge: HttpEdge) -> None:
    with httpx.Client(base_url=http_edge.base_url, timeout=30) as anonymous:
        for reply in (
            anonymous.get("/v1/jobs"),
            anonymous.get(f"/v1/jobs/{UNKNOWN_ID}"),
            anonymous.get(f"/v1/jobs/{UNKNOWN_ID}/events"),
            anonymous.post("/v1/jobs", content=b"RIFF" + b"\0" * 4096),
            anonymous.post(f"/v1/jobs/{UNKNOWN_ID}:cancel"),
        ):
            assert reply.status_code == 401, reply.text
            assert reply.json()["error"]["type"] == "authentication_error"
        wrong = anonymous.get("/v1/jobs", headers={"Authorization": "Bearer sk-not-a-key"})
        assert wrong.status_code == 401

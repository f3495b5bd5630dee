"""The mesh's services log in to Redis as their own ACL users (services.common.redis_acl), and
their passwords stay out of the logs. Every other test in this package runs with these users:
devsupport.mesh.running fails a mesh whose services Redis refused anything (ACL LOG)."""

from __future__ import annotations

import pytest

from devsupport import evalset
from devsupport.mesh import Mesh
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from tests.support.speech import audio_request

pytestmark = [pytest.mark.model, pytest.mark.redis]


def test_each_service_uses_its_own_redis_user(
    speech: pb_grpc.SpeechServiceStub, mesh: Mesh
) -> None:
    clip = evalset.clip("ko_deeply_sub100111a00054").read()
    request = pb.TranscribeRequest(**audio_request(clip, "ko"))  # type: ignore[arg-type]
    assert speech.Transcribe(request, timeout=120).transcript.text
    admin = mesh.redis.client()
    me = admin.client_id()
    seen = {(c["name"], c["user"]) for c in admin.client_list() if int(c["id"]) != me}
    assert {user for _, user in seen} == {"gateway", "scheduler", "worker"}, seen
    for name, user in seen:
        if name.startswith(("sayit-gateway", "sayit-scheduler")):
            assert user == name.split("-")[1], seen
        if name.startswith(("worker-q", "sayit-worker")):
            assert user == "worker", seen
    for name in mesh.processes:
        log = mesh.logs(name)
        for password in mesh.redis.passwords.values():
            assert password not in log, name

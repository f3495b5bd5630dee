"""SayItClient: a blocking Python client for the public sayit.speech.v1.SpeechService."""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sayit.common.v1 import event_pb2, job_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from services.client.credentials import find_api_key
from services.client.errors import ClientError, from_rpc_error, translated
from services.client.inputs import AudioInput, load_audio, make_config
from services.client.live import (
    CHUNK_SECONDS,
    AudioFeed,
    LiveSession,
    file_chunks,
    streaming_config,
)
from services.client.outcomes import ENDED_STATES, is_terminal, transcript_of, transcript_of_job
from services.client.polling import poll_interval
from services.client.retry import RetryPolicy, service_config_json
from services.client.uploads import DEFAULT_UPLOAD_THRESHOLD_BYTES, is_large_file, upload_requests

DEFAULT_ADDR = "127.0.0.1:50051"
MIB = 1024 * 1024


class SayItClient:
    """A client for SayIt's public API (`sayit.speech.v1.SpeechService`).

    Reads, watches and `CreateJob` that fail with UNAVAILABLE are retried by gRPC, throttled,
    after the server's hinted delay or with exponential backoff; `Transcribe` is never repeated
    once sent (see `services.client.retry`). Failures raise `ClientError` (status code, the
    server's message and its retry hint); jobs that end without a transcript raise `JobError`.

    Use it as a context manager, or call `close()`::

        with SayItClient("127.0.0.1:50051") as client:
            print(client.transcribe("meeting.flac", language="ko").text)
    """

    def __init__(
        self,
        addr: str = DEFAULT_ADDR,
        *,
        api_key: str | None = None,
        tls: bool = False,
        root_certificates: bytes | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        wait_timeout: float = 600.0,
        stream_timeout: float = 6 * 3600.0,
        reattach_seconds: float = 60.0,
        connect_timeout: float = 10.0,
        max_message_bytes: int = 100 * MIB,
        upload_threshold_bytes: int = DEFAULT_UPLOAD_THRESHOLD_BYTES,
    ) -> None:
        """`addr`: the gateway (host:port). `api_key`: sent as `authorization: Bearer <key>`;
        None = `SAYIT_API_KEY`, else ./.run/dev-api-key (the key `make up` made); "" = no key.
        `tls`: use TLS (with `root_certificates` PEM bytes, else the system's roots).
        `timeout`: deadline of unary calls; `wait_timeout`: of `Transcribe` (which waits for
        short audio); `stream_timeout`: of event streams. `reattach_seconds`: how long `watch`
        keeps trying to get back to a gateway that went away (or keeps answering UNAVAILABLE).
        `connect_timeout`: how long `transcribe` waits for a connection before sending. Files
        (paths) over `upload_threshold_bytes` are streamed with `UploadJob` instead of sent in
        one message."""
        options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.keepalive_time_ms", 30_000),
            # Reconnect within seconds after a gateway restart (gRPC's default grows to 120 s).
            ("grpc.initial_reconnect_backoff_ms", 250),
            ("grpc.max_reconnect_backoff_ms", 2_000),
            ("grpc.enable_retries", 1),
            ("grpc.service_config", service_config_json(retry or RetryPolicy())),
            # Retries replay the request; let them buffer a whole audio upload.
            ("grpc.per_rpc_retry_buffer_size", max_message_bytes),
            ("grpc.retry_buffer_size", max_message_bytes),
        ]
        if tls:
            credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self._channel = grpc.secure_channel(addr, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(addr, options=options)
        self._stub = pb_grpc.SpeechServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        key = find_api_key(api_key, os.environ, Path.cwd())
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {key}"),) if key else ()
        )
        self.addr = addr
        self.timeout = timeout
        self.wait_timeout = wait_timeout
        self.stream_timeout = stream_timeout
        self.reattach_seconds = reattach_seconds
        self.connect_timeout = connect_timeout
        self.upload_threshold_bytes = upload_threshold_bytes

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> SayItClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _md(self, request_id: str | None) -> tuple[tuple[str, str], ...]:
        return (*self._metadata, ("x-request-id", request_id)) if request_id else self._metadata

    def _connect(self) -> None:
        """Wait for a connection before sending a call that is never retried, so a gateway that
        is restarting costs a wait, not an error. Nothing has been sent if this fails."""
        try:
            grpc.channel_ready_future(self._channel).result(timeout=self.connect_timeout)
        except grpc.FutureTimeoutError:
            raise ClientError(
                grpc.StatusCode.UNAVAILABLE,
                f"could not connect to the gateway at {self.addr} within "
                f"{self.connect_timeout:g} s; nothing was sent",
            ) from None

    # --- transcribing -----------------------------------------------------------------------

    def transcribe(
        self,
        audio: AudioInput,
        *,
        config: tpb.TranscriptionConfig | None = None,
        filename: str = "",
        request_id: str | None = None,
        poll: bool = False,
        **config_fields: Any,
    ) -> tpb.Transcript:
        """Transcribe `audio` (bytes or a file path) and return the transcript. Short audio is
        answered at once; long audio becomes a queued job, which this waits for (following its
        events, or with `poll=True` by polling `GetJob`). `config_fields` are `make_config`'s
        (language, model, word_timestamps, preset, task, initial_prompt, hotwords). A file
        over the upload threshold is uploaded as a job (`upload`), which this waits for."""
        if is_large_file(audio, self.upload_threshold_bytes):
            job = self.upload(
                audio,
                config=config or make_config(**config_fields),
                filename=filename,
                request_id=request_id,
            )
            return self.wait(job.name, poll=poll)
        request = pb.TranscribeRequest(
            audio=load_audio(audio, filename), config=config or make_config(**config_fields)
        )
        self._connect()
        with translated():
            reply = self._stub.Transcribe(
                request, timeout=self.wait_timeout, metadata=self._md(request_id)
            )
        if reply.WhichOneof("result") == "transcript":
            return reply.transcript
        return self.wait(reply.job_name, poll=poll)

    def submit(
        self,
        audio: AudioInput,
        *,
        config: tpb.TranscriptionConfig | None = None,
        filename: str = "",
        idempotency_key: str | None = None,
        request_id: str | None = None,
        **config_fields: Any,
    ) -> job_pb2.TranscriptionJob:
        """Queue `audio` as a job whatever its length (`CreateJob`) and return it at once.
        An idempotency key is generated if none is given, so a retried call returns the same
        job instead of starting another. A file over the upload threshold is streamed
        (`upload`)."""
        if is_large_file(audio, self.upload_threshold_bytes):
            return self.upload(
                audio,
                config=config or make_config(**config_fields),
                filename=filename,
                idempotency_key=idempotency_key,
                request_id=request_id,
            )
        request = pb.CreateJobRequest(
            audio=load_audio(audio, filename),
            config=config or make_config(**config_fields),
            idempotency_key=idempotency_key or uuid.uuid4().hex,
        )
        with translated():
            return self._stub.CreateJob(
                request, timeout=self.timeout, metadata=self._md(request_id)
            ).job

    def upload(
        self,
        audio: AudioInput,
        *,
        config: tpb.TranscriptionConfig | None = None,
        filename: str = "",
        idempotency_key: str | None = None,
        request_id: str | None = None,
        **config_fields: Any,
    ) -> job_pb2.TranscriptionJob:
        """Queue `audio` as a job by streaming it in chunks (`UploadJob`): for files of any size,
        neither this process nor the service holds the file whole. Returns the job at once.
        Like `submit`, with a generated idempotency key if none is given. The call's deadline
        is `stream_timeout` (a large file takes a while to send)."""
        requests = upload_requests(
            audio,
            config or make_config(**config_fields),
            filename=filename,
            idempotency_key=idempotency_key or uuid.uuid4().hex,
        )
        with translated():
            return self._stub.UploadJob(
                requests, timeout=self.stream_timeout, metadata=self._md(request_id)
            ).job

    def transcribe_with_progress(
        self,
        audio: AudioInput,
        *,
        config: tpb.TranscriptionConfig | None = None,
        filename: str = "",
        request_id: str | None = None,
        **config_fields: Any,
    ) -> Iterator[event_pb2.JobEvent]:
        """Submit `audio` and yield the job's events (accepted, progress, segments, then
        completed, failed or cancelled). If the connection drops after the job was accepted,
        this re-attaches like `watch`, so no event is lost or repeated. A file over the upload
        threshold is uploaded as a job (`upload`) and followed with `watch`."""
        if is_large_file(audio, self.upload_threshold_bytes):
            job = self.upload(
                audio,
                config=config or make_config(**config_fields),
                filename=filename,
                request_id=request_id,
            )
            yield from self.watch(job.name, request_id=request_id)
            return
        request = pb.TranscribeWithProgressRequest(
            audio=load_audio(audio, filename), config=config or make_config(**config_fields)
        )
        metadata = self._md(request_id)
        self._connect()
        call = self._stub.TranscribeWithProgress(
            request, timeout=self.stream_timeout, metadata=metadata
        )
        last: event_pb2.JobEvent | None = None
        try:
            # Read to the stream's end (the server closes it after the terminal event), so the
            # call ends OK rather than cancelled.
            for response in call:
                last = response.event
                yield last
            if last is not None and is_terminal(last):
                return
        except grpc.RpcError as error:
            if last is None or not _reattachable(error):
                raise from_rpc_error(error) from error
        except GeneratorExit:
            call.cancel()
            raise
        if last is None:
            return
        # The stream ended early: follow the job from where it stopped.
        yield from self.watch(last.name, last.sequence, request_id=request_id)

    # --- live recognition ----------------------------------------------------------------------

    def stream(
        self,
        chunks: Iterable[bytes],
        *,
        sample_rate_hertz: int = 16_000,
        encoding: str = "linear16",
        channels: int = 1,
        interim_results: bool = True,
        silence_seconds: float = 0.0,
        max_utterance_seconds: float = 0.0,
        speech_threshold: float = 0.0,
        config: tpb.TranscriptionConfig | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
        **config_fields: Any,
    ) -> LiveSession:
        """Live recognition (`StreamingRecognize`): send `chunks` (raw PCM as described by
        `sample_rate_hertz`, `encoding` "linear16" or "float32", interleaved `channels`; ~100 ms
        each) and iterate the returned session for its updates as they come: `SessionStarted`
        (the job's name), then per utterance `SpeechStarted`, interim `LiveResult`s (with
        `interim_results`), `SpeechEnded`, the final `LiveResult`. The chunks are consumed on a
        gRPC thread as fast as the service takes them (its flow control is the backpressure);
        when they end, the service flushes the last utterance and ends the call. `chunks` may
        block (a microphone, a pipe, `live.paced`). `silence_seconds`, `max_utterance_seconds`,
        `speech_threshold`: endpointing (0 = the service's default). `config_fields` are
        `make_config`'s (language, preset, word_timestamps, ...). Never retried (the audio is
        spent); failures raise ClientError when iterating::

            with SayItClient() as client:
                for update in client.stream(microphone(), language="ko"):
                    print(update)
        """
        first = streaming_config(
            config or make_config(**config_fields),
            sample_rate_hertz=sample_rate_hertz,
            encoding=encoding,
            channels=channels,
            interim_results=interim_results,
            silence_seconds=silence_seconds,
            max_utterance_seconds=max_utterance_seconds,
            speech_threshold=speech_threshold,
        )
        self._connect()
        feed = AudioFeed(first, chunks)
        call = self._stub.StreamingRecognize(
            iter(feed),
            timeout=self.stream_timeout if timeout is None else timeout,
            metadata=self._md(request_id),
        )
        feed.attach(call)
        return LiveSession(call, feed)

    def stream_file(
        self,
        path: str | os.PathLike[str],
        *,
        realtime: bool = True,
        chunk_seconds: float = CHUNK_SECONDS,
        stop: threading.Event | None = None,
        **options: Any,
    ) -> LiveSession:
        """`stream` an audio file (any format SayIt reads), decoded to 16 kHz mono LINEAR16 and
        sent in `chunk_seconds` chunks: at real-time pace (`realtime`, as a live source would),
        else as fast as flow control allows. Setting `stop` stops sending (the service then
        flushes the last utterance). `options` are `stream`'s."""
        chunks = file_chunks(path, realtime=realtime, chunk_seconds=chunk_seconds, stop=stop)
        return self.stream(chunks, **options)

    # --- following jobs -----------------------------------------------------------------------

    def events(
        self, name: str, after_sequence: int = 0, *, request_id: str | None = None
    ) -> Iterator[event_pb2.JobEvent]:
        """The job's events after `after_sequence`, on one stream (no re-attaching): ends after
        the job's terminal event. Raises ClientError if the stream fails."""
        call = self._stub.WatchJob(
            pb.WatchJobRequest(name=name, after_sequence=after_sequence),
            timeout=self.stream_timeout,
            metadata=self._md(request_id),
        )
        try:
            with translated():
                for response in call:
                    yield response.event
        except GeneratorExit:
            call.cancel()
            raise

    def watch(
        self, name: str, after_sequence: int = 0, *, request_id: str | None = None
    ) -> Iterator[event_pb2.JobEvent]:
        """The job's events after `after_sequence`, each exactly once and in order, until its
        terminal event, re-attaching from the last sequence seen when the stream fails with
        UNAVAILABLE: after the server's hinted delay, else with growing backoff. Gives up with
        ClientError(UNAVAILABLE) after `reattach_seconds` without an event."""
        last = after_sequence
        failures = 0
        stalled_since: float | None = None
        while True:
            try:
                # The server ends the stream after the terminal event (or at once when the job
                # ended at or before `last`).
                for event in self.events(name, last, request_id=request_id):
                    if event.sequence <= last:
                        continue  # already delivered before the re-attach
                    last = event.sequence
                    failures, stalled_since = 0, None
                    yield event
                return
            except ClientError as error:
                if error.code not in _REATTACH_CODES:
                    raise
                now = time.monotonic()
                stalled_since = stalled_since if stalled_since is not None else now
                if now - stalled_since >= self.reattach_seconds:
                    raise ClientError(
                        error.code,
                        f"gave up following {name} after {self.reattach_seconds:.0f} s of "
                        f"failures: {error.message}",
                        error.retry_after,
                    ) from error
                time.sleep(reattach_delay(failures, error.retry_after))
                failures += 1
                self._wait_for_gateway()

    def _wait_for_gateway(self) -> None:
        """Block until the channel is connected again (gRPC reconnects with its own backoff)."""
        try:
            grpc.channel_ready_future(self._channel).result(timeout=self.reattach_seconds)
        except grpc.FutureTimeoutError:
            raise ClientError(
                grpc.StatusCode.UNAVAILABLE,
                f"the gateway at {self.addr} has been unreachable for "
                f"{self.reattach_seconds:.0f} s",
            ) from None

    def wait(self, name: str, *, poll: bool = False) -> tpb.Transcript:
        """Wait until the job ends and return its transcript (JobError if it failed or was
        cancelled). Follows the job's events, or with `poll=True` polls `GetJob`."""
        if poll:
            *_, last = self.poll(name)
            return transcript_of_job(last)
        terminal = None
        for event in self.watch(name):
            if is_terminal(event):
                terminal = event
        if terminal is not None:
            return transcript_of(name, terminal)
        return transcript_of_job(self.get_job(name))

    def poll(
        self,
        name: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> Iterator[job_pb2.TranscriptionJob]:
        """The polling fallback, for callers that cannot hold a stream open: `GetJob` every 3 s
        for the first 30 s, then every 5 s. Yields the job whenever its state or progress
        changed, the last time when it has ended."""
        started = clock()
        previous: tuple[int, float] | None = None
        while True:
            job = self.get_job(name)
            seen = (job.state, round(job.progress.fraction, 4))
            if seen != previous:
                previous = seen
                yield job
            if job.state in ENDED_STATES:
                return
            sleep(poll_interval(clock() - started))

    # --- jobs ---------------------------------------------------------------------------------

    def get_job(self, name: str) -> job_pb2.TranscriptionJob:
        with translated():
            return self._stub.GetJob(
                pb.GetJobRequest(name=name), timeout=self.timeout, metadata=self._metadata
            ).job

    def cancel_job(self, name: str) -> job_pb2.TranscriptionJob:
        """Stop a queued or running job; FAILED_PRECONDITION if it has already ended."""
        with translated():
            return self._stub.CancelJob(
                pb.CancelJobRequest(name=name), timeout=self.timeout, metadata=self._metadata
            ).job

    def list_jobs(
        self, page_size: int = 20, page_token: str = "", *, full: bool = False
    ) -> tuple[list[job_pb2.TranscriptionJob], str]:
        """One page of the caller's jobs, newest first, and the next page's token ("" = last).
        Jobs come without their transcripts' text and segments unless `full` (JOB_VIEW_FULL,
        whose pages may hold fewer jobs than asked for, to stay within the message limit)."""
        view = job_pb2.JOB_VIEW_FULL if full else job_pb2.JOB_VIEW_BASIC
        with translated():
            reply = self._stub.ListJobs(
                pb.ListJobsRequest(page_size=page_size, page_token=page_token, view=view),
                timeout=self.timeout,
                metadata=self._metadata,
            )
        return list(reply.jobs), reply.next_page_token

    def iter_jobs(
        self, limit: int | None = None, *, full: bool = False
    ) -> Iterator[job_pb2.TranscriptionJob]:
        """The caller's jobs, newest first, across pages (at most `limit`); `full` as in
        `list_jobs`."""
        token, count = "", 0
        while True:
            size = min(100, limit - count) if limit else 100
            jobs, token = self.list_jobs(size, token, full=full)
            for job in jobs:
                yield job
                count += 1
                if limit is not None and count >= limit:
                    return
            if not token:
                return

    def health(self, service: str = "") -> str:
        """The gateway's health status name (SERVING, NOT_SERVING, ...) for `service` ("" =
        the whole server)."""
        with translated():
            reply = self._health.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=self.timeout
            )
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


# A dropped connection (gateway restarted, network blip) shows as UNAVAILABLE.
_REATTACH_CODES = (grpc.StatusCode.UNAVAILABLE,)


def _reattachable(error: grpc.RpcError) -> bool:
    return hasattr(error, "code") and error.code() in _REATTACH_CODES


REATTACH_BACKOFF_SECONDS = 0.5
REATTACH_MAX_BACKOFF_SECONDS = 10.0


def reattach_delay(failures: int, hint: float | None) -> float:
    """Seconds before re-attaching a watch after `failures` failures in a row: the server's
    hint when it gave one, else a random share of an exponentially growing backoff."""
    if hint is not None:
        return min(hint, REATTACH_MAX_BACKOFF_SECONDS)
    ceiling = min(REATTACH_BACKOFF_SECONDS * 2**failures, REATTACH_MAX_BACKOFF_SECONDS)
    return random.uniform(ceiling / 2, ceiling)

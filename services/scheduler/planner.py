"""Queued jobs: recorded with their audio, planned into chunks and put on the RQ queue.

Audio too short to cut is one chunk, the caller's own bytes, planned at submission. Longer audio
is read back from its stored parts into a temporary file, decoded once (as 16-bit PCM, to another
temporary file), cut into chunks at pauses, each chunk stored as a lossless FLAC under its own
key, the plan recorded, and one RQ job queued per chunk. Memory does not grow with the audio's
length.

Planning runs in the background (decoding hours of audio takes a while, and the caller gets
the job at once). It is safe to repeat: the plan is recorded once, and chunks already on the
queue are not queued again; so if the scheduler planning a job dies, the reconciler of any
scheduler plans it again. A Redis too full to take every chunk keeps none: those stored are
deleted and the job fails (RESOURCE_EXHAUSTED), never left half-stored.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, TypeVar

import grpc

from sayit.common.v1 import event_pb2, job_pb2
from services.common import logs
from services.common.audio import decode_pcm16_to_file
from services.common.errors import BadAudio, ResourceExhausted, Unavailable
from services.jobs import changes, records, schema
from services.jobs.errors import is_out_of_memory, store_full
from services.jobs.queue import JobQueue
from services.jobs.store import JobStore
from services.scheduler import chunking
from services.scheduler.chunking import ChunkPolicy

log = logs.get_logger("sayit.scheduler")
T = TypeVar("T")
# Planning that fails this often (not for bad audio: that fails at once) fails the job, so a
# file that breaks the planner is not decoded again every reconcile pass.
MAX_PLANNING_ATTEMPTS = 3


class Planner:
    def __init__(
        self,
        store: JobStore,
        job_queue: JobQueue,
        executor: Executor,
        policy: ChunkPolicy,
        *,
        audio_ttl_seconds: int,
        max_audio_seconds: float,
        concurrency: int = 2,
    ) -> None:
        self._store = store
        self._queue = job_queue
        self._executor = executor
        self.policy = policy
        self._audio_ttl = audio_ttl_seconds
        self._max_audio_seconds = max_audio_seconds
        # Decoding and cutting costs CPU and temporary disk space; bound how many at once.
        self._decoding = ThreadPoolExecutor(concurrency, thread_name_prefix="planning")
        self._slots = asyncio.Semaphore(concurrency)
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def is_long(self, duration: float) -> bool:
        return self.policy.chunk_count(duration) > 1

    def meta(self, request_id: str) -> dict[str, object]:
        """RQ job meta for a job's chunks: what the work horse and failure callback need."""
        return {
            "request_id": request_id,
            "prefix": self._store.keys.prefix,
            "ttl": self._store.ttl_seconds,
        }

    def running(self, job_id: str) -> bool:
        return job_id in self.tasks

    async def submit(
        self,
        job_id: str,
        record: Mapping[str, bytes | str | int | float],
        audio: bytes | None,
        duration: float,
        queue: str,
    ) -> None:
        """Record a new queued job with its audio (None: stored already, by an upload): audio
        too short to cut is its one chunk at once; longer audio is cut into chunks in the
        background."""
        single = record["chunks_total"] == 1
        record = {**record, "queue": queue}
        if single:
            record.update(planned=1, planned_ms=schema.now_ms())
        accepted = changes.event(
            job_id,
            accepted=event_pb2.JobAccepted(
                routing=job_pb2.ROUTING_QUEUED, audio_duration_seconds=duration
            ),
        )
        await self._store.create(
            job_id,
            record,
            accepted,
            audio=audio,
            audio_ttl_seconds=self._audio_ttl,
            single_chunk=single,
        )
        if single:
            await self.queue_chunks(job_id, queue, [duration])
        else:
            self.start(job_id, self.meta(str(record["request_id"])))

    async def queue_chunks(self, job_id: str, queue: str, durations: list[float]) -> None:
        """Put a planned job's chunks on the queue; if the queue cannot take them, the job
        fails and the caller hears UNAVAILABLE."""
        meta = self.meta(str(logs.current().get("request_id", "")))
        try:
            await self.enqueue(job_id, queue, durations, meta)
        except Exception as error:
            log.error("enqueue_failed", error=str(error))
            if is_out_of_memory(error):  # RQ's own client: its errors are raw redis-py ones
                # The audio goes first: that frees the memory the failure is written in.
                await self._store.delete_all_audio(job_id, len(durations))
                await self._store.fail(
                    job_id, grpc.StatusCode.RESOURCE_EXHAUSTED, "the job store was full"
                )
                raise store_full() from error
            await self._store.fail(job_id, grpc.StatusCode.UNAVAILABLE, "could not queue the job")
            raise Unavailable("the queue is unavailable; retry shortly") from error

    def start(self, job_id: str, meta: dict[str, object]) -> None:
        """Plan a job in the background (unless that is under way here already)."""
        if job_id in self.tasks:
            return
        task = asyncio.create_task(self._plan_safely(job_id, meta))
        self.tasks[job_id] = task
        task.add_done_callback(lambda _: self.tasks.pop(job_id, None))

    async def enqueue(
        self, job_id: str, queue: str, durations: list[float], meta: dict[str, object]
    ) -> None:
        """Queue each chunk of a planned job (those not queued yet)."""
        for index, seconds in enumerate(durations):
            await self._run(
                self._executor, self._queue.enqueue_chunk, job_id, index, queue, seconds, meta
            )

    async def _run(self, executor: Executor, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    async def _plan_safely(self, job_id: str, meta: dict[str, object]) -> None:
        logs.bind(job_id=job_id)
        try:
            await self._plan(job_id, meta)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # Redis down...: the reconciler plans it again later
            log.warning("planning_failed", error=str(error), exc_info=error)
            try:
                if await self._store.count_planning_failure(job_id) >= MAX_PLANNING_ATTEMPTS:
                    await self._fail(
                        job_id,
                        grpc.StatusCode.INTERNAL,
                        f"the audio could not be cut into chunks ({MAX_PLANNING_ATTEMPTS} "
                        "attempts)",
                    )
            except Exception as second:
                log.warning("planning_failure_not_recorded", error=str(second))

    async def _plan(self, job_id: str, meta: dict[str, object]) -> None:
        async with self._slots:
            record = await self._store.raw_record(job_id)
            if records.state_of(record) != schema.QUEUED or records.text(record, "planned") == "1":
                return
            parts = await self._store.audio_parts(job_id)
            if parts is None:
                await self._fail(
                    job_id, grpc.StatusCode.DATA_LOSS, "the audio expired before it was queued"
                )
                return
            started = time.monotonic()
            # The caller's file and its PCM live in unnamed temporary files, read a stretch at
            # a time: memory does not grow with the audio's length.
            with tempfile.TemporaryFile() as source, tempfile.TemporaryFile() as pcm_out:
                async for part in parts:
                    await self._run(self._decoding, source.write, part)
                try:
                    samples = await self._run(
                        self._decoding,
                        decode_pcm16_to_file,
                        source,
                        records.text(record, "filename"),
                        pcm_out,
                        self._max_audio_seconds,
                        records.number(record, "duration"),  # as admitted
                    )
                except BadAudio as error:
                    await self._fail(job_id, grpc.StatusCode.INVALID_ARGUMENT, error.message)
                    return
                pieces = await self._run(self._decoding, chunking.plan, samples, self.policy)
                try:
                    for piece in pieces:
                        flac = await self._run(self._decoding, chunking.chunk_audio, samples, piece)
                        await self._store.chunks.set_audio(
                            job_id, piece.index, flac, self._audio_ttl
                        )
                except ResourceExhausted:
                    await self._fail_store_full(job_id, len(pieces))
                    return
            plan = [(piece.offset, piece.duration) for piece in pieces]
            applied = await self._store.apply(job_id, changes.plan_change(plan))
            if not applied.applied:
                if applied.state in schema.TERMINAL:  # cancelled while being planned
                    await self._store.delete_all_audio(job_id, len(pieces))
                return
            await self.enqueue(
                job_id, records.text(record, "queue"), [p.duration for p in pieces], meta
            )
            await self._store.delete_audio(job_id)
            log.info(
                "job_planned",
                chunks=len(pieces),
                cuts=[round(p.offset, 2) for p in pieces[1:]],
                seconds=round(time.monotonic() - started, 2),
            )

    async def _fail_store_full(self, job_id: str, count: int) -> None:
        """Redis filled up while the chunks were stored: take back every chunk and the file
        (which frees the memory to record the failure), so no half-stored job is left."""
        log.warning("chunks_not_stored", reason="job store full", chunks=count)
        await self._store.delete_all_audio(job_id, count)
        await self._fail(
            job_id,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "the job store was full when the audio was cut into chunks; submit it again later",
        )

    async def _fail(self, job_id: str, code: grpc.StatusCode, message: str) -> None:
        await self._store.fail(job_id, code, message)
        log.info("job_failed", code=code.name, details=message)

    def close(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        self._decoding.shutdown(wait=False, cancel_futures=True)

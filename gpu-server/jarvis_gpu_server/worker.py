"""The engine runs in its own process; one runner thread feeds it from a bounded queue.

Why a process and not just a thread: PocketSphinx (and parts of the WhisperX pipeline)
hold the GIL for hundreds of milliseconds at a time, which would stall ``/health`` on
the event loop. The child process decodes the audio file itself, so only a path and the
small result cross the pipe.

``WorkQueue``: tasks waiting behind the running one, at most ``queue_size`` of them
(``QueueFull`` → HTTP 429). ``Runner``: a thread that starts the engine process, waits
for the model, then runs tasks one at a time (one transcription per GPU); when the child
dies it is restarted and the task in flight fails with a clear error.
"""

from __future__ import annotations

import collections
import logging
import math
import multiprocessing
import os
import signal
import threading
import time
import traceback
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable

from .engines import EngineSpec, EngineUnavailable, RequestError, TranscribeOptions, create_engine, join_text

log = logging.getLogger("jarvis_gpu_server.worker")


class TaskError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class EngineCrashed(Exception):
    pass


class LoadFailed(Exception):
    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class QueueFull(Exception):
    pass


# -- the child process ---------------------------------------------------------------------


def _child_main(conn: Any, spec: EngineSpec, log_level: str) -> None:
    from .audio import AudioError, decode_audio
    from .log import setup_logging

    setup_logging(log_level)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    started = time.perf_counter()
    try:
        engine = create_engine(spec)
        info = engine.load()
    except EngineUnavailable as exc:
        conn.send(("load_failed", str(exc), 2))
        return
    except BaseException as exc:  # noqa: BLE001 - report anything, the parent exits
        log.debug("load failed:\n%s", traceback.format_exc())
        conn.send(("load_failed", f"loading the {spec.engine} model {spec.model} failed: {type(exc).__name__}: {exc}", 1))
        return
    conn.send(("loaded", info.to_dict(), time.perf_counter() - started))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "stop":
            return
        _, path, options = message
        started = time.perf_counter()
        try:
            audio = decode_audio(path)
            decoded = time.perf_counter()
            result = engine.transcribe(audio, TranscribeOptions.from_dict(options))
            payload = {
                "text": join_text(result.segments),
                "language": result.language,
                "duration": round(audio.size / 16000, 3),
                "segments": [s.to_dict() for s in result.segments],
            }
            finished = time.perf_counter()
            timings = {"processing_time": round(finished - started, 3), "decode_time": round(decoded - started, 3)}
            reply: tuple = ("ok", payload, timings, engine.runtime_info())
        except (AudioError, RequestError) as exc:
            reply = ("error", exc.status, exc.code, exc.message)
        except Exception as exc:  # noqa: BLE001
            log.error("transcription failed:\n%s", traceback.format_exc())
            reply = ("error", 500, "transcription_failed", f"transcription failed: {type(exc).__name__}: {str(exc)[:300]}")
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


class EngineProcess:
    def __init__(self, spec: EngineSpec, log_level: str):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_child_main, args=(child, spec, log_level), name="jarvis-engine", daemon=True)
        self.process.start()
        child.close()  # so a dead child shows up as EOF here

    def wait_loaded(self) -> tuple[dict[str, Any], float]:
        try:
            message = self.conn.recv()
        except (EOFError, OSError):
            self.process.join(1)
            raise LoadFailed(f"the engine process exited while loading the model (exit code {self.process.exitcode})") from None
        if message[0] == "loaded":
            return message[1], message[2]
        raise LoadFailed(message[1], message[2])

    def run(self, path: str, options: dict[str, Any]) -> tuple[dict, dict, dict]:
        try:
            self.conn.send(("transcribe", path, options))
            reply = self.conn.recv()
        except (EOFError, OSError):
            self.process.join(1)
            raise EngineCrashed(f"exit code {self.process.exitcode}") from None
        if reply[0] == "ok":
            return reply[1], reply[2], reply[3]
        raise TaskError(reply[1], reply[2], reply[3])

    def stop(self, timeout: float = 5.0) -> None:
        try:
            self.conn.send(("stop",))
        except (OSError, ValueError):
            pass
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout)
        self.conn.close()


# -- queue and runner ----------------------------------------------------------------------


@dataclass
class Task:
    key: str
    path: str
    options: dict[str, Any]
    kind: str = "sync"  # sync | job
    future: Future | None = None
    on_start: Callable[["Task"], bool] | None = None  # False: skip (job deleted meanwhile)
    on_done: Callable[["Task", dict | None, TaskError | None], None] | None = None
    delete_input: bool = True
    enqueued_at: float = field(default_factory=time.monotonic)


class WorkQueue:
    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self._items: collections.deque[Task] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False

    @property
    def depth(self) -> int:
        return len(self._items)

    def has_room(self) -> bool:
        return len(self._items) < self.maxsize

    def put(self, task: Task, force: bool = False) -> None:
        with self._cond:
            if not force and len(self._items) >= self.maxsize:
                raise QueueFull()
            self._items.append(task)
            self._cond.notify()

    def get(self) -> Task | None:
        with self._cond:
            while not self._items and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            return self._items.popleft()

    def remove(self, key: str) -> Task | None:
        with self._cond:
            for task in self._items:
                if task.key == key:
                    self._items.remove(task)
                    return task
        return None

    def drain(self) -> list[Task]:
        with self._cond:
            items = list(self._items)
            self._items.clear()
            return items

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class Runner:
    """Owns the engine process; runs queued tasks one at a time."""

    def __init__(self, spec: EngineSpec, queue: WorkQueue, log_level: str = "info", metrics: Any = None,
                 on_ready: Callable[[], None] | None = None, on_fatal: Callable[[str, int], None] | None = None):
        self.spec = spec
        self.queue = queue
        self.log_level = log_level
        self.metrics = metrics
        self.on_ready = on_ready
        self.on_fatal = on_fatal
        self.state = "loading"  # loading | ready | failed | stopped
        self.info: dict[str, Any] = {
            "engine": spec.engine,
            "model": spec.model,
            "device": spec.device,
            "compute_type": None if spec.compute_type == "auto" else spec.compute_type,
            "batch_size": spec.batch_size if spec.engine == "whisperx" else None,
            "diarization_available": spec.engine == "whisperx" and bool(spec.hf_token),
            "languages": ["en"] if spec.engine == "pocketsphinx" else None,
        }
        self.load_seconds: float | None = None
        self.running: Task | None = None
        self.avg_seconds = 10.0
        self._process: EngineProcess | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="jarvis-runner", daemon=True)

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        self.state = "stopped"
        self.queue.close()
        if self._process is not None:
            self._process.stop()
        self._thread.join(10)

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: the queue ahead times the mean task time."""
        return max(1, min(3600, math.ceil(self.avg_seconds * (self.queue.depth + 1))))

    def _load(self) -> bool:
        self.state = "loading"
        started = time.perf_counter()
        self._process = EngineProcess(self.spec, self.log_level)
        try:
            info, _ = self._process.wait_loaded()
        except LoadFailed as exc:
            if self._stopping:
                return False
            self.state = "failed"
            log.error("%s", exc.message)
            if self.on_fatal:
                self.on_fatal(exc.message, exc.exit_code)
            return False
        self.load_seconds = time.perf_counter() - started
        self.info.update(info)
        if self.metrics:
            self.metrics.model_loaded(self.load_seconds)
        log.info("model loaded in %.1f s", self.load_seconds)
        self.state = "ready"
        if self.on_ready:
            self.on_ready()
        return True

    def _loop(self) -> None:
        while not self._stopping:
            if self._process is None and not self._load():
                return
            task = self.queue.get()
            if task is None:
                return
            self._run(task)

    def _run(self, task: Task) -> None:
        try:
            if task.future is not None and task.future.cancelled():
                return  # the client went away while it waited
            if task.on_start is not None and not task.on_start(task):
                return
            self.running = task
            started = time.perf_counter()
            error: TaskError | None = None
            result: dict | None = None
            try:
                payload, timings, runtime = self._process.run(task.path, task.options)  # type: ignore[union-attr]
                self.info.update(runtime)
                result = {
                    **payload,
                    "processing_time": timings["processing_time"],
                    "engine": self.info["engine"],
                    "model": self.info["model"],
                    "device": self.info["device"],
                }
            except TaskError as exc:
                error = exc
            except EngineCrashed as exc:
                if self._stopping:
                    error = TaskError(503, "shutting_down", "the server is shutting down")
                else:
                    log.error("the engine process died during a transcription (%s); restarting it", exc)
                    self._process = None
                    error = TaskError(500, "engine_crashed",
                                      "the engine process died during this transcription (out of memory?); it is being restarted")
            elapsed = time.perf_counter() - started
            self.avg_seconds = 0.7 * self.avg_seconds + 0.3 * elapsed
            if self.metrics:
                self.metrics.task_done(task.kind, result, error)
            if task.on_done is not None:
                try:
                    task.on_done(task, result, error)
                except Exception:  # noqa: BLE001
                    log.exception("finishing task %s failed", task.key)
            if task.future is not None and not task.future.done():
                if error is not None:
                    task.future.set_exception(error)
                else:
                    task.future.set_result(result)
        finally:
            self.running = None
            if task.delete_input:
                remove_quietly(task.path)


def remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not delete %s: %s", os.path.basename(path), exc)

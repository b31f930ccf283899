"""The HTTP API (DESIGN.md §5): FastAPI routes, auth, limits, jobs, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import shutil
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from . import __version__
from .config import Settings
from .engines import EngineSpec, TranscribeOptions
from .errors import ApiError, error_response, install as install_errors
from .formats import MEDIA_TYPES, render
from .jobs import JobStore
from .metrics import Metrics
from .upload import Upload, receive_upload
from .webhook import deliver, valid_url
from .worker import QueueFull, Runner, Task, TaskError, WorkQueue, remove_quietly

log = logging.getLogger("jarvis_gpu_server")

OPEN_PATHS = {"/health", "/livez"}
TRANSCRIBE_FORMATS = ("json", "text", "txt", "srt", "vtt", "tsv")
OPENAI_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}


class ServerState:
    def __init__(self, settings: Settings, spec: EngineSpec, url: str = ""):
        self.settings = settings
        self.url = url
        self.started = time.time()
        self.exit_code = 0
        self.uvicorn: Any = None
        self.tmp_dir = os.path.join(settings.data_dir, "tmp")
        os.makedirs(self.tmp_dir, exist_ok=True)
        self.metrics = Metrics()
        self.queue = WorkQueue(settings.queue_size)
        self.store = JobStore(settings.data_dir)
        self.runner = Runner(spec, self.queue, settings.log_level, self.metrics, on_ready=self._on_ready, on_fatal=self._on_fatal)
        self.webhooks = ThreadPoolExecutor(max_workers=2, thread_name_prefix="jarvis-webhook")
        self.stopping = threading.Event()
        self.metrics.bind(lambda: self.queue.depth, lambda: 1 if self.runner.running else 0,
                          {"engine": spec.engine, "model": spec.model})

    # -- lifecycle ----------------------------------------------------------------------

    def _on_ready(self) -> None:
        log.info("ready on %s", self.url or "(in process)")

    def _on_fatal(self, message: str, exit_code: int) -> None:
        self.exit_code = exit_code
        if self.uvicorn is not None:
            self.uvicorn.should_exit = True

    @contextlib.asynccontextmanager
    async def lifespan(self, app: FastAPI):
        self._clean_tmp()
        purged = self.store.purge(self.settings.job_retention_hours)
        if purged:
            log.info("deleted %d finished jobs older than %g hours", purged, self.settings.job_retention_hours)
        queued, notes = self.store.recover()
        for note in notes:
            log.info("%s", note)
        for row in queued:
            self.queue.put(self._job_task(row["id"], row["input_path"], json.loads(row["options"])), force=True)
        if queued:
            log.info("%d queued job(s) from before the restart will run once the model is loaded", len(queued))
        for path in self.store.orphan_inputs():
            remove_quietly(path)
        for job_id in self.store.pending_webhooks():
            self._send_webhook(job_id)
        self.runner.start()
        try:
            yield
        finally:
            self.stopping.set()
            self.runner.stop()
            self.webhooks.shutdown(wait=False, cancel_futures=True)
            self._clean_tmp()
            self.store.close()
            log.info("stopped")

    def _clean_tmp(self) -> None:
        for name in os.listdir(self.tmp_dir):
            path = os.path.join(self.tmp_dir, name)
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                remove_quietly(path)

    # -- checks ---------------------------------------------------------------------------

    def require_ready(self) -> None:
        if not self.runner.ready:
            raise ApiError(503, "model_loading", "the model is still loading; retry shortly (GET /health says when it is ready)",
                           {"Retry-After": "5"})

    def queue_full(self) -> ApiError:
        seconds = self.runner.retry_after()
        return ApiError(
            429, "queue_full",
            f"the transcription queue is full ({self.queue.maxsize} waiting behind the running one); retry in about {seconds} s",
            {"Retry-After": str(seconds)},
        )

    def require_room(self) -> None:
        if not self.queue.has_room():
            raise self.queue_full()

    # -- work -----------------------------------------------------------------------------

    async def transcribe(self, upload: Upload, options: TranscribeOptions) -> dict[str, Any]:
        future: Future = Future()
        task = Task(key=uuid.uuid4().hex, path=upload.path or "", options=options.to_dict(), kind="sync", future=future)
        try:
            self.queue.put(task)
        except QueueFull:
            raise self.queue_full() from None
        upload.path = None  # the runner deletes it now
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            if self.queue.remove(task.key) is not None:
                remove_quietly(task.path)
            raise
        except TaskError as exc:
            raise ApiError(exc.status, exc.code, exc.message) from None

    def _job_task(self, job_id: str, path: str, options: dict[str, Any]) -> Task:
        return Task(key=job_id, path=path, options=options, kind="job",
                    on_start=lambda t: self.store.mark_running(job_id), on_done=self._job_done)

    def _job_done(self, task: Task, result: dict | None, error: TaskError | None) -> None:
        if error is None and result is not None:
            found = self.store.mark_succeeded(task.key, result)
        else:
            found = self.store.mark_failed(task.key, error.code if error else "failed", error.message if error else "failed")
        if found:
            self._send_webhook(task.key)

    def _send_webhook(self, job_id: str) -> None:
        job = self.store.get(job_id)
        if not job or not job.get("webhook_url"):
            return

        def send() -> None:
            ok, err = deliver(job["webhook_url"], job, self.settings.signing_secret, f"job.{job['status']}", job_id,
                              stop=self.stopping)
            if ok is None:
                return  # stopping: still pending, sent again after the restart
            with contextlib.suppress(Exception):
                self.store.set_webhook(job_id, "delivered" if ok else "failed", err)

        try:
            self.webhooks.submit(send)
        except RuntimeError:  # shutting down; delivered after the restart
            pass


# -- form parsing -------------------------------------------------------------------------


def _bool(upload: Upload, name: str, default: bool | None) -> bool | None:
    raw = upload.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    if value == "auto":
        return None
    raise ApiError(400, "invalid_request", f"{name}: expected true, false or auto, got {raw!r}")


def _int(upload: Upload, name: str) -> int | None:
    raw = upload.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_request", f"{name}: expected an integer, got {raw!r}") from None
    if value < 1:
        raise ApiError(400, "invalid_request", f"{name}: expected 1 or more, got {value}")
    return value


def _language(raw: str | None, runner: Runner) -> str | None:
    if raw is None or raw.strip().lower() in ("", "auto"):
        return None
    language = raw.strip().lower()
    known = runner.info.get("languages")
    if known and language not in known and language not in ("en-us", "english"):
        raise ApiError(400, "unsupported_language",
                       f"the {runner.info['engine']} engine cannot transcribe language {raw!r}; it knows {', '.join(known)}")
    return language


def _format(upload: Upload, allowed: tuple[str, ...], default: str = "json") -> str:
    fmt = (upload.get("response_format") or default).strip().lower()
    if fmt not in allowed:
        raise ApiError(400, "invalid_request", f"response_format: expected one of {', '.join(allowed)}, got {fmt!r}")
    return fmt


def _check_file(upload: Upload) -> None:
    if upload.path is None:
        raise ApiError(400, "missing_file", "no audio: send the file in a multipart field named 'file'")
    if upload.size == 0:
        raise ApiError(422, "empty_audio", "the uploaded file is empty (0 bytes)")


def transcribe_options(upload: Upload, runner: Runner) -> TranscribeOptions:
    available = bool(runner.info.get("diarization_available"))
    diarize = _bool(upload, "enable_diarization", False)
    if diarize is None:  # auto: wherever this server can
        diarize = available
    if diarize and not available:
        if runner.info.get("engine") == "whisperx":
            raise ApiError(400, "hf_token_required",
                           "speaker diarization needs a Hugging Face token: start the server with --hf-token "
                           "(or HF_TOKEN / HUGGINGFACE_TOKEN) after accepting the pyannote/speaker-diarization-community-1 terms")
        raise ApiError(400, "diarization_unavailable",
                       f"the {runner.info.get('engine')} engine cannot diarize; use the whisperx engine with an HF token")
    min_speakers, max_speakers = _int(upload, "min_speakers"), _int(upload, "max_speakers")
    if min_speakers and max_speakers and min_speakers > max_speakers:
        raise ApiError(400, "invalid_request", "min_speakers is larger than max_speakers")
    return TranscribeOptions(
        language=_language(upload.get("language"), runner),
        diarize=bool(diarize),
        min_speakers=min_speakers,
        max_speakers=max_speakers,
        word_timestamps=bool(_bool(upload, "word_timestamps", True) is not False),
    )


def rendered(result: dict[str, Any], fmt: str) -> Response:
    if fmt == "json":
        return JSONResponse(result)
    return Response(render(result, fmt), media_type=MEDIA_TYPES[fmt])


def openai_verbose(result: dict[str, Any], granularities: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "task": "transcribe",
        "language": result.get("language") or "",
        "duration": result.get("duration"),
        "text": result.get("text", ""),
    }
    if not granularities or "segment" in granularities:
        out["segments"] = [
            {"id": i, "seek": 0, "start": s["start"], "end": s["end"], "text": s["text"], "tokens": [],
             "temperature": 0.0, "avg_logprob": 0.0, "compression_ratio": 0.0, "no_speech_prob": 0.0,
             **({"speaker": s["speaker"]} if s.get("speaker") else {})}
            for i, s in enumerate(result.get("segments", []))
        ]
    if "word" in granularities:
        out["words"] = [{"word": w["word"], "start": w["start"], "end": w["end"]}
                        for s in result.get("segments", []) for w in (s.get("words") or [])]
    return out


# -- the app ------------------------------------------------------------------------------


class Gateway:
    """Pure ASGI middleware: API key, request metrics, and a last-resort 500 that never
    carries a stack trace."""

    def __init__(self, app: Any, state: ServerState):
        self.app = app
        self.state = state
        key = state.settings.api_key
        self.key = key.encode("utf-8") if key else None

    def authorized(self, scope: dict) -> bool:
        supplied = None
        for name, value in scope.get("headers", []):
            if name == b"x-api-key":
                supplied = value.strip()
                break
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                supplied = value[7:].strip()
        return supplied is not None and hmac.compare_digest(supplied, self.key)  # type: ignore[arg-type]

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = {"code": 500, "started": False}

        async def watch(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["started"] = True
            await send(message)

        try:
            if self.key is not None and scope["path"] not in OPEN_PATHS and not self.authorized(scope):
                await error_response(
                    401, "unauthorized", "missing or wrong API key: send X-API-Key: KEY or Authorization: Bearer KEY",
                    {"WWW-Authenticate": "Bearer"},
                )(scope, receive, watch)
            else:
                await self.app(scope, receive, watch)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if not status["started"]:
                await error_response(500, "internal_error", "internal server error")(scope, receive, watch)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            metrics = self.state.metrics
            metrics.requests.labels(scope.get("method", ""), label, str(status["code"])).inc()
            if status["code"] >= 400:
                metrics.failures.labels(label, str(status["code"])).inc()


def create_app(settings: Settings, spec: EngineSpec, url: str = "") -> FastAPI:
    state = ServerState(settings, spec, url)
    app = FastAPI(title="jarvis-gpu-server", version=__version__, lifespan=state.lifespan)
    app.state.server = state
    install_errors(app)
    app.add_middleware(Gateway, state=state)
    runner = state.runner

    @app.get("/health")
    async def health() -> JSONResponse:
        info = runner.info
        body = {
            "status": "ok" if runner.ready else ("failed" if runner.state == "failed" else "loading"),
            "model_loaded": runner.ready,
            "engine": info["engine"],
            "model": info["model"],
            "device": info["device"],
        }
        return JSONResponse(body, status_code=200 if runner.ready else 503)

    @app.get("/livez")
    async def livez() -> JSONResponse:
        return JSONResponse({"status": "alive"})

    @app.get("/info")
    async def info() -> JSONResponse:
        i = runner.info
        return JSONResponse({
            "status": "ok" if runner.ready else runner.state,
            "model_loaded": runner.ready,
            "server_version": __version__,
            "engine": i["engine"],
            "model": i["model"],
            "device": i["device"],
            "compute_type": i.get("compute_type"),
            "batch_size": i.get("batch_size"),
            "gpu_name": i.get("gpu_name"),
            "vram_total_mb": i.get("vram_total_mb"),
            "vram_free_mb": i.get("vram_free_mb"),
            "cuda_version": i.get("cuda_version"),
            "diarization_available": bool(i.get("diarization_available")),
            "languages": i.get("languages"),
            "limits": {"max_upload_mb": settings.max_upload_mb, "queue_size": settings.queue_size},
            "queue_depth": state.queue.depth,
            "running": 1 if runner.running else 0,
            "uptime_s": round(time.time() - state.started, 3),
            "model_load_s": round(runner.load_seconds, 3) if runner.load_seconds is not None else None,
            "auth_required": settings.api_key is not None,
        })

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(state.metrics.render(), media_type=state.metrics.content_type)

    @app.post("/transcribe")
    async def transcribe(request: Request) -> Response:
        state.require_ready()
        state.require_room()
        upload = await receive_upload(request, state.tmp_dir, settings.max_upload_bytes)
        try:
            fmt = _format(upload, TRANSCRIBE_FORMATS)
            options = transcribe_options(upload, runner)
            _check_file(upload)
            result = await state.transcribe(upload, options)
        finally:
            upload.discard()
        return rendered(result, fmt)

    @app.post("/v1/audio/transcriptions")
    async def openai_transcriptions(request: Request) -> Response:
        state.require_ready()
        state.require_room()
        upload = await receive_upload(request, state.tmp_dir, settings.max_upload_bytes)
        try:
            fmt = _format(upload, OPENAI_FORMATS)
            granularities = [g.strip().lower() for g in
                             upload.getlist("timestamp_granularities[]") + upload.getlist("timestamp_granularities")]
            for g in granularities:
                if g not in ("word", "segment"):
                    raise ApiError(400, "invalid_request", f"timestamp_granularities: expected word or segment, got {g!r}")
            temperature = upload.get("temperature")
            if temperature not in (None, ""):
                try:
                    float(temperature)
                except ValueError:
                    raise ApiError(400, "invalid_request", f"temperature: expected a number, got {temperature!r}") from None
            options = TranscribeOptions(
                language=_language(upload.get("language"), runner),
                word_timestamps="word" in granularities,
                prompt=upload.get("prompt"),  # accepted; WhisperX takes prompts at load time only
            )
            _check_file(upload)
            result = await state.transcribe(upload, options)
        finally:
            upload.discard()
        if fmt == "json":
            return JSONResponse({"text": result["text"]})
        if fmt == "verbose_json":
            return JSONResponse(openai_verbose(result, granularities))
        return rendered(result, fmt)

    @app.post("/jobs", status_code=202)
    async def create_job(request: Request) -> Response:
        state.require_room()
        upload = await receive_upload(request, state.tmp_dir, settings.max_upload_bytes)
        job_id = None
        try:
            options = transcribe_options(upload, runner)
            webhook_url = (upload.get("webhook_url") or "").strip() or None
            if webhook_url and not valid_url(webhook_url):
                raise ApiError(400, "invalid_request", "webhook_url: expected an http:// or https:// URL")
            _check_file(upload)
            job_id = state.store.new_id()
            dest = state.store.input_path(job_id)
            os.replace(upload.path, dest)  # type: ignore[arg-type]
            upload.path = None
            job = state.store.create(job_id, upload.filename, options.to_dict(), dest, webhook_url)
            try:
                state.queue.put(state._job_task(job_id, dest, options.to_dict()))
            except QueueFull:
                state.store.delete(job_id)
                remove_quietly(dest)
                raise state.queue_full() from None
        finally:
            upload.discard()
        return JSONResponse(job, status_code=202, headers={"Location": f"/jobs/{job_id}"})

    @app.get("/jobs")
    async def list_jobs(status: str | None = None, limit: int = 100) -> JSONResponse:
        return JSONResponse({"jobs": state.store.list(status, max(1, min(limit, 1000)))})

    @app.get("/jobs/{job_id}")
    async def get_job(job_id: str) -> JSONResponse:
        job = state.store.get(job_id)
        if job is None:
            raise ApiError(404, "job_not_found", f"no job {job_id} (finished jobs are kept {settings.job_retention_hours:g} hours)")
        return JSONResponse(job)

    @app.get("/jobs/{job_id}/result")
    async def get_job_result(job_id: str, response_format: str = "json") -> Response:
        job = state.store.get(job_id)
        if job is None:
            raise ApiError(404, "job_not_found", f"no job {job_id}")
        if response_format not in TRANSCRIBE_FORMATS:
            raise ApiError(400, "invalid_request", f"response_format: expected one of {', '.join(TRANSCRIBE_FORMATS)}")
        if job["status"] != "succeeded":
            raise ApiError(409, "job_not_finished", f"job {job_id} is {job['status']}")
        return rendered(job["result"], response_format)

    @app.delete("/jobs/{job_id}")
    async def delete_job(job_id: str) -> JSONResponse:
        task = state.queue.remove(job_id)
        row = state.store.delete(job_id)
        if row is None:
            raise ApiError(404, "job_not_found", f"no job {job_id}")
        if task is not None:
            remove_quietly(task.path)
        elif row["status"] != "running" and row["input_path"]:
            remove_quietly(row["input_path"])
        return JSONResponse({"id": job_id, "deleted": True, "status": row["status"]})

    return app

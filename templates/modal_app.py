"""Modal app for the jarvis transcription server, rendered by `jarvis deploy modal`.

Safe to read and commit: it holds no secrets. The API key and the Hugging Face token live
in the Modal Secret named below (created from a 0600 dotenv file, never on argv).

- `web` serves the bundled server's FastAPI app (jarvis_gpu_server.app.create_app) with
  @modal.asgi_app(): /health, /info, /transcribe, /v1/audio/transcriptions, /metrics.
- The job routes (/jobs, /jobs/{id}, /jobs/{id}/result) are answered here with Modal's own
  mechanism instead of the server's on-disk job store: POST /jobs `spawn`s the
  transcription in a `Jobs` container and returns the FunctionCall id; a poll looks the
  call up with modal.FunctionCall.from_id(id), so it works whichever web container
  answers. Modal cuts web requests at 150 s: long files belong on /jobs.
- Model weights are cached on a modal.Volume mounted at /models.

Docs: https://modal.com/docs/guide/webhooks (asgi_app), https://modal.com/docs/guide/job-queue
(spawn, FunctionCall.from_id, get(timeout=0)), https://modal.com/docs/guide/volumes,
https://modal.com/docs/guide/secrets.
"""

import os
import time

import modal

APP_NAME = {{appName}}
GPU = {{gpu}}  # None: CPU containers (int8)
VOLUME_NAME = {{volumeName}}
SECRET_NAME = {{secretName}}
# The bundled server's sources, on the machine that runs `modal deploy`.
GPU_SERVER_DIR = {{gpuServerDir}}
MODELS_DIR = "/models"
JOB_TIMEOUT_S = {{jobTimeoutS}}
IDLE_TIMEOUT_S = {{idleTimeoutS}}

SERVER_ENV = {
    "JARVIS_GPU_HOST": "0.0.0.0",
    "JARVIS_GPU_ENGINE": {{engine}},
    "JARVIS_GPU_MODEL": {{model}},
    "JARVIS_GPU_DEVICE": {{device}},
    "JARVIS_GPU_COMPUTE_TYPE": {{computeType}},
    # Per container: jobs are Modal function calls here, not rows in the server's store.
    "JARVIS_GPU_DATA_DIR": "/tmp/jarvis-gpu-server",
    "HF_HOME": MODELS_DIR + "/huggingface",
    "TORCH_HOME": MODELS_DIR + "/torch",
}

image = (
    {{baseImage}}
    .add_local_dir(
        GPU_SERVER_DIR,
        "/opt/gpu-server",
        copy=True,
        ignore=[".venv", "build", "tests", "*.egg-info", "__pycache__"],
    )
    .run_commands({{pipInstall}})
    .env(SERVER_ENV)
)

app = modal.App(APP_NAME)
models = modal.Volume.from_name(VOLUME_NAME, create_if_missing=True)
secret = modal.Secret.from_name(SECRET_NAME)


def _settings_and_spec():
    from jarvis_gpu_server.__main__ import engine_spec
    from jarvis_gpu_server.config import load_settings

    settings = load_settings([])  # everything from JARVIS_GPU_* (image env + the Secret)
    return settings, engine_spec(settings)


@app.cls(
    image=image,
    gpu=GPU,
    volumes={MODELS_DIR: models},
    secrets=[secret],
    timeout=JOB_TIMEOUT_S,
    scaledown_window=IDLE_TIMEOUT_S,
)
class Jobs:
    """One transcription per call, on a container that keeps the model loaded."""

    @modal.enter()
    def load(self):
        from jarvis_gpu_server.engines import create_engine

        _, spec = _settings_and_spec()
        self.engine = create_engine(spec)
        self.info = self.engine.load()
        models.commit()  # keep downloaded weights for the next container

    @modal.method()
    def transcribe(self, audio: bytes, filename: str, options: dict) -> dict:
        import tempfile

        from jarvis_gpu_server.audio import AudioError, decode_audio
        from jarvis_gpu_server.engines import RequestError, TranscribeOptions, join_text

        started = time.perf_counter()
        suffix = os.path.splitext(filename or "")[1][:16]
        with tempfile.NamedTemporaryFile(suffix=suffix) as f:
            f.write(audio)
            f.flush()
            try:
                samples = decode_audio(f.name)
                result = self.engine.transcribe(samples, TranscribeOptions.from_dict(options))
            except (AudioError, RequestError) as exc:
                return {"error": {"code": exc.code, "message": exc.message, "status": exc.status}}
        # The same result shape as the server's own worker (jarvis_gpu_server/worker.py).
        return {
            "text": join_text(result.segments),
            "language": result.language,
            "duration": round(samples.size / 16000, 3),
            "segments": [s.to_dict() for s in result.segments],
            "processing_time": round(time.perf_counter() - started, 3),
            "engine": self.info.engine,
            "model": self.info.model,
            "device": self.info.device,
        }


def _error(status: int, code: str, message: str, headers: dict | None = None):
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def with_modal_jobs(server, settings, spec):
    """Route /jobs* to Modal-backed handlers and everything else (lifespan included) to the server."""
    import hmac

    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from jarvis_gpu_server.formats import render

    jobs = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    key = (settings.api_key or "").encode()
    can_diarize = spec.engine == "whisperx" and bool(settings.hf_token)

    def denied(request: Request):
        if not key:
            return None
        supplied = request.headers.get("x-api-key", "").strip()
        auth = request.headers.get("authorization", "")
        if not supplied and auth[:7].lower() == "bearer ":
            supplied = auth[7:].strip()
        if supplied and hmac.compare_digest(supplied.encode(), key):
            return None
        return _error(401, "unauthorized", "missing or wrong API key: send X-API-Key: KEY or Authorization: Bearer KEY",
                      {"WWW-Authenticate": "Bearer"})

    def flag(form, name: str, default):
        raw = (form.get(name) or "").strip().lower()
        if raw == "":
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        if raw == "auto":
            return None
        raise ValueError(f"{name}: expected true, false or auto, got {raw!r}")

    def count(form, name: str):
        raw = (form.get(name) or "").strip()
        if not raw:
            return None
        value = int(raw)
        if value < 1:
            raise ValueError(f"{name}: expected 1 or more, got {value}")
        return value

    async def view(job_id: str):
        """The job as the server's /jobs/{id} shows it, or None when Modal does not know it."""
        try:
            call = modal.FunctionCall.from_id(job_id)
            result = await call.get.aio(timeout=0)
        except modal.exception.OutputExpiredError:
            return None
        except (TimeoutError, modal.exception.TimeoutError):
            return {"id": job_id, "status": "running"}
        except (modal.exception.NotFoundError, modal.exception.InvalidError):
            return None
        except Exception as exc:  # the call itself failed (container crash, timeout)
            return {"id": job_id, "status": "failed",
                    "error": {"code": "transcription_failed", "message": f"{type(exc).__name__}: {str(exc)[:300]}"}}
        if "error" in result:
            return {"id": job_id, "status": "failed", "error": {k: result["error"][k] for k in ("code", "message")}}
        return {"id": job_id, "status": "succeeded", "result": result}

    @jobs.post("/jobs", status_code=202)
    async def submit(request: Request):
        if (refused := denied(request)) is not None:
            return refused
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            return _error(400, "missing_file", "no audio: send the file in a multipart field named 'file'")
        audio = await upload.read()
        if len(audio) > settings.max_upload_bytes:
            return _error(413, "file_too_large", f"the upload is larger than {settings.max_upload_mb:g} MiB")
        if not audio:
            return _error(422, "empty_audio", "the uploaded file is empty (0 bytes)")
        try:
            diarize = flag(form, "enable_diarization", False)
            options = {
                "language": None if (form.get("language") or "auto").strip().lower() == "auto" else form.get("language").strip().lower(),
                "diarize": can_diarize if diarize is None else bool(diarize),
                "min_speakers": count(form, "min_speakers"),
                "max_speakers": count(form, "max_speakers"),
                "word_timestamps": flag(form, "word_timestamps", True) is not False,
            }
        except ValueError as exc:
            return _error(400, "invalid_request", str(exc))
        if options["diarize"] and not can_diarize:
            return _error(400, "hf_token_required", "speaker diarization needs a Hugging Face token (HF_TOKEN) in the deployment")
        call = await Jobs().transcribe.spawn.aio(audio, upload.filename or "", options)
        job = {"id": call.object_id, "status": "queued", "created_at": _iso(time.time()), "filename": upload.filename,
               "options": options}
        return JSONResponse(job, status_code=202, headers={"Location": f"/jobs/{call.object_id}"})

    @jobs.get("/jobs")
    async def list_jobs(request: Request):
        if (refused := denied(request)) is not None:
            return refused
        return _error(501, "not_supported", "listing jobs is not possible on Modal; poll each job by its id")

    @jobs.get("/jobs/{job_id}")
    async def get_job(job_id: str, request: Request):
        if (refused := denied(request)) is not None:
            return refused
        job = await view(job_id)
        if job is None:
            return _error(404, "job_not_found", f"no job {job_id} (Modal keeps results for a limited time)")
        return JSONResponse(job)

    @jobs.get("/jobs/{job_id}/result")
    async def get_result(job_id: str, request: Request, response_format: str = "json"):
        from fastapi.responses import Response

        if (refused := denied(request)) is not None:
            return refused
        job = await view(job_id)
        if job is None:
            return _error(404, "job_not_found", f"no job {job_id}")
        if job["status"] != "succeeded":
            return _error(409, "job_not_finished", f"job {job_id} is {job['status']}")
        if response_format == "json":
            return JSONResponse(job["result"])
        try:
            return Response(render(job["result"], response_format), media_type="text/plain; charset=utf-8")
        except (KeyError, ValueError):
            return _error(400, "invalid_request", f"response_format: unknown format {response_format!r}")

    @jobs.delete("/jobs/{job_id}")
    async def delete_job(job_id: str, request: Request):
        if (refused := denied(request)) is not None:
            return refused
        try:
            await modal.FunctionCall.from_id(job_id).cancel.aio()
        except (modal.exception.NotFoundError, modal.exception.InvalidError):
            return _error(404, "job_not_found", f"no job {job_id}")
        return JSONResponse({"id": job_id, "deleted": True})

    async def dispatch(scope, receive, send):
        if scope["type"] == "http" and (scope["path"] == "/jobs" or scope["path"].startswith("/jobs/")):
            await jobs(scope, receive, send)
        else:
            await server(scope, receive, send)

    return dispatch


@app.function(
    image=image,
    gpu=GPU,
    volumes={MODELS_DIR: models},
    secrets=[secret],
    timeout=JOB_TIMEOUT_S,
    scaledown_window=IDLE_TIMEOUT_S,
)
@modal.concurrent(max_inputs=16)
@modal.asgi_app()
def web():
    from jarvis_gpu_server.app import create_app

    settings, spec = _settings_and_spec()
    return with_modal_jobs(create_app(settings, spec), settings, spec)

"""Prometheus metrics (prometheus-client), one registry per app."""

from __future__ import annotations

from typing import Any, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from . import __version__


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter("jarvis_http_requests", "HTTP requests", ["method", "route", "status"], registry=r)
        self.failures = Counter("jarvis_http_failures", "HTTP requests answered with an error", ["route", "code"], registry=r)
        self.transcriptions = Counter("jarvis_transcriptions", "Transcriptions finished", ["kind", "outcome"], registry=r)
        self.audio_seconds = Counter("jarvis_audio_seconds", "Seconds of audio transcribed", registry=r)
        self.processing_seconds = Counter("jarvis_processing_seconds", "Seconds the engine spent transcribing", registry=r)
        self.processing = Histogram(
            "jarvis_processing_duration_seconds", "Engine time per transcription", registry=r,
            buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
        )
        self.queue_depth = Gauge("jarvis_queue_depth", "Transcriptions waiting for the engine", registry=r)
        self.running = Gauge("jarvis_transcriptions_running", "Transcriptions running now", registry=r)
        self.model_load = Gauge("jarvis_model_load_seconds", "Seconds the last model load took", registry=r)
        self.loaded = Gauge("jarvis_model_loaded", "1 when the model is loaded and the server is ready", registry=r)
        self.info = Info("jarvis_server", "Server version and engine", registry=r)
        self.info.info({"version": __version__})

    def bind(self, queue_depth: Callable[[], int], running: Callable[[], int], info: dict[str, Any]) -> None:
        self.queue_depth.set_function(queue_depth)
        self.running.set_function(running)
        self.info.info({"version": __version__, **{k: str(v) for k, v in info.items()}})

    def model_loaded(self, seconds: float) -> None:
        self.model_load.set(seconds)
        self.loaded.set(1)

    def task_done(self, kind: str, result: dict | None, error: Any) -> None:
        self.transcriptions.labels(kind, "succeeded" if error is None else "failed").inc()
        if result is not None:
            self.audio_seconds.inc(float(result.get("duration") or 0))
            self.processing_seconds.inc(float(result.get("processing_time") or 0))
            self.processing.observe(float(result.get("processing_time") or 0))

    def render(self) -> bytes:
        return generate_latest(self.registry)

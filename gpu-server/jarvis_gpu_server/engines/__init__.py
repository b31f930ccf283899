"""Transcription engines behind one small interface.

An engine is created from an :class:`EngineSpec`, loads its model once (``load``), then
turns 16 kHz mono float32 audio into segments (``transcribe``). Engines run inside the
engine worker process (see ``worker.py``), never on the server's event loop.
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

SAMPLE_RATE = 16000


class EngineUnavailable(Exception):
    """The engine's package is missing or cannot run on this machine (exit 2 at start-up)."""


class RequestError(Exception):
    """A request the engine cannot serve as asked (HTTP 400)."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass
class Word:
    word: str
    start: float
    end: float
    score: float | None = None
    speaker: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"word": self.word, "start": self.start, "end": self.end}
        if self.score is not None:
            out["score"] = self.score
        if self.speaker is not None:
            out["speaker"] = self.speaker
        return out


@dataclass
class Segment:
    start: float
    end: float
    text: str
    speaker: str | None = None
    words: list[Word] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"start": self.start, "end": self.end, "text": self.text}
        if self.speaker is not None:
            out["speaker"] = self.speaker
        if self.words is not None:
            out["words"] = [w.to_dict() for w in self.words]
        return out


@dataclass
class TranscribeOptions:
    language: str | None = None  # None: detect
    diarize: bool = False
    min_speakers: int | None = None
    max_speakers: int | None = None
    word_timestamps: bool = True
    prompt: str | None = None
    temperature: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TranscribeOptions":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class EngineResult:
    segments: list[Segment]
    language: str | None


@dataclass
class EngineSpec:
    engine: str  # whisperx | pocketsphinx (resolved, never auto)
    model: str
    device: str = "auto"
    compute_type: str = "auto"
    batch_size: int = 16
    hf_token: str | None = field(default=None, repr=False)


@dataclass
class EngineInfo:
    """What the engine resolved at load time; reported by /health and /info."""

    engine: str
    model: str
    device: str
    compute_type: str | None
    batch_size: int | None
    diarization_available: bool
    languages: list[str] | None  # None: any language the model knows
    gpu_name: str | None = None
    vram_total_mb: int | None = None
    vram_free_mb: int | None = None
    cuda_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Engine(Protocol):
    name: str

    def load(self) -> EngineInfo: ...

    def transcribe(self, audio: Any, options: TranscribeOptions) -> EngineResult: ...

    def runtime_info(self) -> dict[str, Any]:
        """Fresh values (free VRAM) to merge into EngineInfo after each task."""
        ...


DEFAULT_MODELS = {"whisperx": "large-v3", "pocketsphinx": "en-us"}


def resolve_engine(requested: str) -> str:
    """``auto`` is whisperx when it is installed; never pocketsphinx silently."""
    if requested != "auto":
        return requested
    if importlib.util.find_spec("whisperx") is not None:
        return "whisperx"
    raise EngineUnavailable(
        "--engine auto needs WhisperX, which is not installed in this Python environment. "
        "Install it with: pip install 'jarvis-gpu-server[whisperx]' (from the gpu-server/ directory: "
        "pip install '.[whisperx]'), or pass --engine pocketsphinx for the CPU-only English engine "
        "(pip install '.[pocketsphinx]'; not accurate, meant for tests and machines without a GPU)."
    )


def check_installed(engine: str) -> None:
    module = {"whisperx": "whisperx", "pocketsphinx": "pocketsphinx"}[engine]
    if importlib.util.find_spec(module) is None:
        extra = engine
        raise EngineUnavailable(
            f"--engine {engine} needs the {module} package, which is not installed. "
            f"Install it with: pip install '.[{extra}]' in gpu-server/ (or pip install 'jarvis-gpu-server[{extra}]')."
        )


def create_engine(spec: EngineSpec) -> Engine:
    if spec.engine == "whisperx":
        from .whisperx_engine import WhisperXEngine

        return WhisperXEngine(spec)
    if spec.engine == "pocketsphinx":
        from .pocketsphinx_engine import PocketsphinxEngine

        return PocketsphinxEngine(spec)
    raise EngineUnavailable(f"unknown engine {spec.engine!r}")


def join_text(segments: list[Segment]) -> str:
    return " ".join(s.text.strip() for s in segments if s.text.strip())

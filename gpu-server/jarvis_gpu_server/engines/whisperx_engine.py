"""WhisperX: faster-whisper batched inference, wav2vec2 alignment, pyannote diarization.

Calls checked against m-bain/whisperX (3.8.x):
- ``whisperx.load_model(arch, device, device_index=0, compute_type=..., language=None, ...)``;
  without ``language`` the pipeline detects the language per file.
- ``FasterWhisperPipeline.transcribe(audio, batch_size=None, language=None, ...)`` returns
  ``{"segments": [{"start", "end", "text", "avg_logprob"}], "language": code}``.
- ``whisperx.load_align_model(language_code, device, model_name=None, ...)`` returns
  ``(model, metadata)`` and raises ValueError for languages without a default model.
- ``whisperx.align(segments, model, metadata, audio, device, interpolate_method="nearest",
  return_char_alignments=False, ...)`` returns ``{"segments": [... "words": [{"word",
  "start", "end", "score"}]], "word_segments": [...]}``; words it cannot align (numerals,
  symbols) come without ``start``/``end``/``score``.
- ``whisperx.diarize.DiarizationPipeline(model_name=None, token=None, device="cpu")`` since
  3.8 (pyannote-audio 4, ``pyannote/speaker-diarization-community-1``); 3.6/3.7 named the
  token ``use_auth_token``. Called as ``pipeline(audio, min_speakers=, max_speakers=)`` it
  returns a DataFrame for ``whisperx.assign_word_speakers(diarize_df, result)``, which adds
  ``speaker`` to segments and words.
"""

from __future__ import annotations

import inspect
import logging
import math
from typing import Any

from . import EngineInfo, EngineResult, EngineSpec, EngineUnavailable, RequestError, Segment, TranscribeOptions, Word

log = logging.getLogger("jarvis_gpu_server.engines.whisperx")


def _num(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) or math.isinf(out) else out


def _r(value: float) -> float:
    return round(value, 3)


def fill_word_times(raw_words: list[dict[str, Any]], seg_start: float, seg_end: float) -> list[Word]:
    """Map WhisperX words; words without times get times interpolated between their
    timed neighbours (or the segment bounds), split evenly within a run of such words."""
    items = []
    for w in raw_words:
        text = str(w.get("word", "")).strip()
        if not text:
            continue
        items.append((text, _num(w.get("start")), _num(w.get("end")), _num(w.get("score")), w.get("speaker")))
    out: list[Word] = []
    i = 0
    while i < len(items):
        text, start, end, score, speaker = items[i]
        if start is not None and end is not None:
            out.append(Word(text, _r(start), _r(end), _r(score) if score is not None else None, speaker))
            i += 1
            continue
        j = i
        while j < len(items) and (items[j][1] is None or items[j][2] is None):
            j += 1
        lo = out[-1].end if out else seg_start
        hi = items[j][1] if j < len(items) else seg_end
        if hi is None or hi < lo:
            hi = lo
        step = (hi - lo) / (j - i)
        for k in range(i, j):
            text_k, _, _, score_k, speaker_k = items[k]
            n = k - i
            out.append(Word(text_k, _r(lo + n * step), _r(lo + (n + 1) * step), _r(score_k) if score_k is not None else None, speaker_k))
        i = j
    return out


def map_segments(raw_segments: list[dict[str, Any]], keep_words: bool) -> list[Segment]:
    segments: list[Segment] = []
    for seg in raw_segments:
        text = str(seg.get("text", "")).strip()
        start = _num(seg.get("start")) or 0.0
        end = _num(seg.get("end"))
        end = start if end is None else end
        words = None
        if keep_words and seg.get("words") is not None:
            words = fill_word_times(list(seg["words"]), start, end)
        segments.append(Segment(start=_r(start), end=_r(end), text=text, speaker=seg.get("speaker"), words=words))
    return segments


class WhisperXEngine:
    name = "whisperx"

    def __init__(self, spec: EngineSpec):
        self.spec = spec
        self.whisperx: Any = None
        self.torch: Any = None
        self.model: Any = None
        self.device = "cpu"  # for align/diarize: "cuda", "cuda:1" or "cpu"
        self.device_index = 0
        self.compute_type = "int8"
        self._align: dict[str, tuple[Any, Any] | None] = {}
        self._diarizer: Any = None

    # -- loading --------------------------------------------------------------------------

    def _resolve_device(self) -> tuple[str, int]:
        requested = self.spec.device
        cuda = False
        try:
            import torch

            self.torch = torch
            cuda = bool(torch.cuda.is_available())
        except Exception as exc:  # torch missing or broken: CPU only
            log.warning("torch is not usable (%s); running on the CPU", exc)
        if requested == "auto":
            return ("cuda", 0) if cuda else ("cpu", 0)
        if requested.startswith("cuda"):
            if not cuda:
                raise EngineUnavailable(f"--device {requested}: torch sees no CUDA device (check the driver, or pass --device cpu)")
            index = int(requested.split(":", 1)[1]) if ":" in requested else 0
            return "cuda", index
        return "cpu", 0

    def gpu_info(self) -> dict[str, Any]:
        if self.torch is None or not self.device.startswith("cuda"):
            return {}
        info: dict[str, Any] = {}
        try:
            info["gpu_name"] = str(self.torch.cuda.get_device_name(self.device_index))
            free, total = self.torch.cuda.mem_get_info(self.device_index)
            info["vram_total_mb"] = int(total // (1024 * 1024))
            info["vram_free_mb"] = int(free // (1024 * 1024))
            info["cuda_version"] = getattr(getattr(self.torch, "version", None), "cuda", None)
        except Exception as exc:
            log.warning("could not read GPU details: %s", exc)
        return info

    def load(self) -> EngineInfo:
        try:
            import whisperx
        except Exception as exc:
            raise EngineUnavailable(
                f"whisperx could not be imported ({type(exc).__name__}: {exc}); install it with pip install '.[whisperx]' "
                "in gpu-server/, or pass --engine pocketsphinx"
            ) from exc
        self.whisperx = whisperx
        kind, self.device_index = self._resolve_device()
        self.device = f"cuda:{self.device_index}" if kind == "cuda" and self.device_index else kind
        ct = self.spec.compute_type
        self.compute_type = ("float16" if kind == "cuda" else "int8") if ct in (None, "", "auto") else ct
        gpu = self.gpu_info()
        if gpu.get("gpu_name"):
            log.info(
                "device %s %s (%s, %.1f GiB, CUDA %s)",
                self.device, self.compute_type, gpu["gpu_name"], gpu.get("vram_total_mb", 0) / 1024, gpu.get("cuda_version"),
            )
        else:
            log.info("device %s %s", self.device, self.compute_type)
        log.info("loading model %s (whisperx, %s %s)", self.spec.model, self.device, self.compute_type)
        self.model = whisperx.load_model(self.spec.model, kind, device_index=self.device_index, compute_type=self.compute_type)
        return EngineInfo(
            engine=self.name,
            model=self.spec.model,
            device=self.device,
            compute_type=self.compute_type,
            batch_size=self.spec.batch_size,
            diarization_available=bool(self.spec.hf_token),
            languages=None,
            **gpu,
        )

    def runtime_info(self) -> dict[str, Any]:
        return self.gpu_info()

    # -- transcription --------------------------------------------------------------------

    def _align_model(self, language: str) -> tuple[Any, Any] | None:
        if language not in self._align:
            log.info("loading alignment model for %s", language)
            try:
                self._align[language] = self.whisperx.load_align_model(language_code=language, device=self.device)
            except ValueError as exc:
                log.warning("no word alignment for language %s: %s", language, exc)
                self._align[language] = None
        return self._align[language]

    def _diarization_pipeline(self) -> Any:
        if self._diarizer is None:
            from whisperx.diarize import DiarizationPipeline

            try:
                params = inspect.signature(DiarizationPipeline).parameters
            except (TypeError, ValueError):
                params = {}
            # 3.8+: token=; 3.6/3.7: use_auth_token=
            key = "use_auth_token" if "use_auth_token" in params and "token" not in params else "token"
            log.info("loading diarization model")
            self._diarizer = DiarizationPipeline(**{key: self.spec.hf_token}, device=self.device)
        return self._diarizer

    def transcribe(self, audio: Any, options: TranscribeOptions) -> EngineResult:
        if options.diarize and not self.spec.hf_token:
            raise RequestError(
                "hf_token_required",
                "speaker diarization needs a Hugging Face token: start the server with --hf-token "
                "(or HF_TOKEN / HUGGINGFACE_TOKEN) after accepting the pyannote/speaker-diarization-community-1 terms",
            )
        language = options.language or None
        result = self.model.transcribe(audio, batch_size=self.spec.batch_size, language=language)
        language = result.get("language") or language
        segments = list(result.get("segments") or [])
        if segments and (options.word_timestamps or options.diarize) and language:
            loaded = self._align_model(language)
            if loaded is not None:
                align_model, metadata = loaded
                aligned = self.whisperx.align(segments, align_model, metadata, audio, self.device, return_char_alignments=False)
                segments = list(aligned.get("segments") or [])
        if options.diarize and segments:
            kwargs = {k: v for k, v in (("min_speakers", options.min_speakers), ("max_speakers", options.max_speakers)) if v is not None}
            diarize_df = self._diarization_pipeline()(audio, **kwargs)
            assigned = self.whisperx.assign_word_speakers(diarize_df, {"segments": segments, "language": language})
            segments = list(assigned.get("segments") or [])
        return EngineResult(segments=map_segments(segments, options.word_timestamps), language=language)
